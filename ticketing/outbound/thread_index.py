"""Outlook's conversation headers: ``Thread-Index`` and ``Thread-Topic``.

Thunderbird threads by References; Outlook (and Exchange's conversation view)
by the conversation index, [MS-OXOMSG] 2.2.1.3 ``PidTagConversationIndex``:
a 22-byte header block (the 6 high-order bytes of a FILETIME and a 16-byte
GUID) shared by every message of the conversation, then one 5-byte child block
per reply.  A child block is a delta code bit, 31 bits of the time since the
header's time, 4 random bits and a 4-bit sequence count.

Every desk copy of an incident is written as a reply in one conversation: the
header block comes from the incident alone (its opening time, and a GUID
derived from its number under the signing secret), so copies composed by
different processes, or again after a crash, agree.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime

__all__ = ["conversation_guid", "thread_index"]

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_SHORT_DELTA = 1 << 49  # below this a delta is written as bits 48-18, above as bits 53-23


def _filetime(when: datetime) -> int:
    """100-nanosecond intervals since 1601 (Windows FILETIME)."""
    delta = when.astimezone(UTC) - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def conversation_guid(number: str, secret: bytes) -> bytes:
    """16 bytes naming the incident's conversation: stable, and not guessable from the number."""
    return hmac.new(secret, b"thread-index\0" + number.encode(), hashlib.sha256).digest()[:16]


def thread_index(guid: bytes, started: datetime, replies: Sequence[datetime]) -> str:
    """The base64 ``Thread-Index`` of a message ``len(replies)`` deep in the conversation
    begun at ``started``: the header block, then a child block for each reply time."""
    start = _filetime(started)
    index = start.to_bytes(8, "big")[:6] + guid
    for sequence, when in enumerate(replies):
        index += _child_block(max(_filetime(when) - start, 0), sequence)
    return base64.b64encode(index).decode("ascii")


def _child_block(delta: int, sequence: int) -> bytes:
    short = delta < _SHORT_DELTA
    bits = (delta >> 18) & 0x7FFF_FFFF if short else (1 << 31) | ((delta >> 23) & 0x7FFF_FFFF)
    # the random nibble is derived from the time too: the same copy always gets one index
    nibble = (delta >> 4) & 0xF
    return ((bits << 8) | (nibble << 4) | (sequence & 0xF)).to_bytes(5, "big")
