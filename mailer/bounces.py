"""Failed recipients of a bounce, found by flufl.bounce (Mailman's bounce library).

flufl.bounce knows some forty MTA formats, standard DSNs and non-standard
ones; we ask it for permanent and temporary failures and keep the addresses.
"""

from __future__ import annotations

import logging

from flufl.bounce import all_failures

from mailer.parsing import ParsedMessage

__all__ = ["failed_recipients"]

log = logging.getLogger(__name__)


def failed_recipients(message: ParsedMessage) -> tuple[str, ...]:
    """The addresses a bounce reports as failed; empty when it is not a bounce."""
    try:
        temporary, permanent = all_failures(message.message)
    except Exception as exc:  # noqa: BLE001  (detectors raise many kinds on odd mail)
        log.debug("bounce detection failed: %s", type(exc).__name__)
        return ()
    found = (a.decode("utf-8", "replace").strip().lower() for a in (*permanent, *temporary))
    return tuple(sorted({a for a in found if "@" in a}))
