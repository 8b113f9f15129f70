"""Header decoding that never raises.

The standard library's header objects raise on some broken input (and return
surrogate-escaped text for undeclared 8-bit bytes).  Intake needs a string for
every header, so it decodes the raw values itself: RFC 2047 words where they
parse, undeclared 8-bit as UTF-8 or else Windows-1252, never an exception.
"""

from __future__ import annotations

import re
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message

__all__ = [
    "clean_text",
    "decode_bytes",
    "decode_header_value",
    "header_values",
    "message_ids",
    "raw_header_values",
]

_SURROGATES = re.compile(r"[\udc80-\udcff]")
_MSGID = re.compile(r"<([^<>\s]{1,900})>")
_FALLBACK_CHARSETS = ("utf-8", "cp1252", "latin-1")


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Text of ``data``: the declared charset if it works, else UTF-8, cp1252, latin-1."""
    for charset in (declared, *_FALLBACK_CHARSETS) if declared else _FALLBACK_CHARSETS:
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")  # pragma: no cover  (latin-1 decodes everything)


def clean_text(text: str) -> str:
    """Replace surrogate escapes (raw 8-bit bytes) and NULs with real characters."""
    if _SURROGATES.search(text):
        text = decode_bytes(text.encode("utf-8", "surrogateescape"))
    return text.replace("\x00", "")


def decode_header_value(raw: str) -> str:
    """One header's value as text: RFC 2047 decoded where possible, unfolded."""
    value = clean_text(str(raw))
    try:
        decoded = str(make_header(decode_header(value)))
    # MessageError: broken base64 (HeaderParseError), unknown charsets (CharsetError)
    except (ValueError, LookupError, UnicodeError, AssertionError, IndexError, MessageError):
        decoded = value
    return " ".join(clean_text(decoded).split())


def header_values(message: Message, name: str) -> list[str]:
    """Every value of header ``name``, decoded; never raises."""
    lowered = name.lower()
    return [decode_header_value(v) for k, v in message.raw_items() if k.lower() == lowered]


def raw_header_values(message: Message, name: str) -> list[str]:
    """Every value of header ``name`` as it was written (unfolded, 8-bit made text), with
    RFC 2047 words still encoded: addresses are parsed from these, never from decoded
    text, where ``=?utf-8?q?sam=40brokers.example?=`` would become an address."""
    lowered = name.lower()
    return [
        " ".join(clean_text(str(v)).split()) for k, v in message.raw_items() if k.lower() == lowered
    ]


def message_ids(value: str) -> tuple[str, ...]:
    """The ``<id>`` tokens of a Message-ID, In-Reply-To or References value, in order."""
    return tuple(dict.fromkeys(f"<{m}>" for m in _MSGID.findall(value)))
