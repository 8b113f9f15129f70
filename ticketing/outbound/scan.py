"""Outbound mail is scanned too: no template or quoted text may mail PII out.

``personal_data_in`` scans the text a composed mail's recipient reads (the
composer's own ``ComposedMail.visible_text``).  ``ticketing.outbound.orders``
withholds a mail whose text the guard flags in the transaction that would
have made it ``pending``: its outbox row stays, so operators see it
(``ticketd outbox list``, ``status``, ``/metrics``), with status
``withheld``, the kinds of data found and their counts, and without its
content (which is what must not travel), ``withheld_values``; it is never
sent.  ``note_withheld`` records the ``outbound_blocked_pii`` audit event,
which names the kinds too — never the values.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace

from sqlmodel import Session

from pii_guard import AllowList, PiiGuard
from ticketing.config import Config
from ticketing.privacy.allow import desk_allow, party_allow
from ticketing.store.audit import audit
from ticketing.store.models import Producer

__all__ = [
    "WITHHELD",
    "note_withheld",
    "personal_data_in",
    "recipient_allow",
    "withheld_values",
]

WITHHELD = "withheld"

log = logging.getLogger(__name__)


def _each_line_once(text: str) -> str:
    """``text`` without the lines it repeats: an HTML alternative says again what the
    text part said, and a line found clean once is clean again (half the scan)."""
    return "\n".join(dict.fromkeys(line.strip() for line in text.splitlines()))


def withheld_values(counts: dict[str, int]) -> dict[str, object]:
    """The columns of a withheld row: never sent, its content dropped, the kinds kept."""
    return {
        "status": WITHHELD,
        "reason": "personal_data",
        "pii_findings": dict(counts),
        "mime": b"",
    }


def recipient_allow(config: Config, producer: Producer | None, to: str) -> AllowList:
    """What the outbound scan of a mail to ``producer`` at ``to`` allows: the desk's own
    identity and the producer's (the daemon's replies use the same rule)."""
    allow = party_allow(desk_allow(config), producer=producer, address=to)
    # our mail greets its recipient: a consumer's name there must be found
    return replace(allow, greeting_names_the_desk=False)


def personal_data_in(guard: PiiGuard, allow: AllowList, visible_text: str) -> dict[str, int]:
    """How many findings of each entity type the mail's visible text holds (none: ``{}``)."""
    findings = guard.scan(_each_line_once(visible_text), allow)
    return dict(Counter(f.entity_type for f in findings))


def note_withheld(
    session: Session, incident_id: int | None, kind: str, counts: dict[str, int]
) -> None:
    """The ``outbound_blocked_pii`` audit event and warning of a mail that is not sent."""
    audit(
        session,
        "outbound_blocked_pii",
        incident_id=incident_id,
        detail={"kind": kind, "finding_counts": counts},
    )
    log.warning(
        "outbound %s for incident id %s withheld: personal data (%s)",
        kind,
        incident_id,
        ", ".join(sorted(counts)),
    )
