"""winmail.dat (TNEF): Outlook's wrapper that hides the real attachments.

Producers on Outlook sometimes send their files inside it; unpacked with
tnefparse, the files appear as ordinary attachments so that caseworkers can
open them and the PII guard can scan them.

tnefparse copies the rest of the stream for every attribute it reads (its
cost is attributes times size: a 1 MB stream of tiny attributes took seconds,
a 20 MB one would take many minutes) and parses an Outlook item embedded in
an attachment by calling itself.  A stream is unpacked only when a walk over
its attribute headers finds that cost within ``_MAX_COPIED`` and it embeds at
most ``_MAX_EMBEDDED`` items; otherwise it stays one opaque attachment.
"""

from __future__ import annotations

import logging
import mimetypes
import struct

from tnefparse import TNEF
from tnefparse.mapi import IMESSAGE_SIG

__all__ = ["TnefFile", "unpack_tnef"]

log = logging.getLogger(__name__)

TnefFile = tuple[str, str, bytes]  # filename, content type, data

_MAX_EMBEDDED = 8  # Outlook items inside winmail.dat (a forwarded item: one or two)
_MAX_COPIED = 1 << 32  # bytes tnefparse may copy in all: about a tenth of a second
_ATTRIBUTE = struct.Struct("<BHHI")  # level, name, type, length: tnefparse's reading
_FIRST_ATTRIBUTE = 6  # after the signature and the key
_MIN_ATTRIBUTE = 12  # tnefparse stops with fewer bytes left


def unpack_tnef(payload: bytes) -> list[TnefFile]:
    """The files inside a TNEF stream; empty (and a log line) when it is not readable, or
    would cost tnefparse too much to read."""
    if not _affordable(payload):
        log.info("winmail.dat not unpacked: too many attributes or embedded items")
        return []
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


def _affordable(payload: bytes) -> bool:
    """Whether tnefparse reads ``payload`` within ``_MAX_COPIED`` copied bytes, counting an
    embedded item's stream (after its signature) as if it ran to the end of the payload."""
    embedded = payload.count(IMESSAGE_SIG)
    if embedded > _MAX_EMBEDDED:
        return False
    starts, found = [0], payload.find(IMESSAGE_SIG)
    while found >= 0:
        starts.append(found + len(IMESSAGE_SIG))
        found = payload.find(IMESSAGE_SIG, found + 1)
    copied = 0
    for start in starts:
        copied += _copied(payload, start, _MAX_COPIED - copied)
        if copied > _MAX_COPIED:
            return False
    return True


def _copied(payload: bytes, start: int, budget: int) -> int:
    """The bytes tnefparse copies reading the stream at ``start``: what is left of it, once
    per attribute; counting stops past ``budget``."""
    copied, offset = 0, start + _FIRST_ATTRIBUTE
    while offset + _MIN_ATTRIBUTE < len(payload) and copied <= budget:
        left = len(payload) - offset
        copied += left
        offset += min(left, _ATTRIBUTE.unpack_from(payload, offset)[3] + 11)
    return copied
