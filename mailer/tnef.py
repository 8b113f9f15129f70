"""winmail.dat (TNEF): Outlook's wrapper that hides the real attachments.

Producers on Outlook sometimes send their files inside it; unpacked with
tnefparse, the files appear as ordinary attachments so that caseworkers can
open them and the PII guard can scan them.
"""

from __future__ import annotations

import logging
import mimetypes

from tnefparse import TNEF

__all__ = ["TnefFile", "unpack_tnef"]

log = logging.getLogger(__name__)

TnefFile = tuple[str, str, bytes]  # filename, content type, data


def unpack_tnef(payload: bytes) -> list[TnefFile]:
    """The files inside a TNEF stream; empty (and a log line) when it is not readable."""
    try:
        tnef = TNEF(payload, do_checksum=False)
        files = [(_name(a), bytes(a.data or b"")) for a in tnef.attachments]
    except Exception as exc:  # noqa: BLE001  (tnefparse raises many kinds on damaged streams)
        log.info("winmail.dat could not be unpacked: %s", type(exc).__name__)
        return []
    return [
        (name, mimetypes.guess_type(name)[0] or "application/octet-stream", data)
        for name, data in files
    ]


def _name(attachment: object) -> str:
    for getter in ("long_filename",):
        try:
            value = getattr(attachment, getter)()
        except (AttributeError, ValueError, UnicodeError, TypeError):
            continue
        if value:
            return str(value)[:255]
    name = getattr(attachment, "name", "") or "attachment"
    return (name.decode("latin-1") if isinstance(name, bytes) else str(name))[:255]
