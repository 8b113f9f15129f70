"""Header decoding that never raises.

The standard library's header objects raise on some broken input (and return
surrogate-escaped text for undeclared 8-bit bytes).  Intake needs a string for
every header, so it decodes the raw values itself: RFC 2047 words where they
parse, undeclared 8-bit as UTF-8 or else Windows-1252, never an exception.

Time is bounded too.  The stdlib's header parsers take time that grows with the
square of a value's length (a 2 MB folded Content-Type took ten minutes, a
2 MB Subject of encoded words ten seconds); no real header is that long.
Every value is cut to ``MAX_HEADER_VALUE`` characters before it is decoded
(Postfix's own ``header_size_limit``: it keeps no more of one header), and to
``MAX_PARSED_HEADER`` before the stdlib builds a header object from it
(``READ_POLICY``: Content-Type, Content-Disposition, a parameter).
"""

from __future__ import annotations

import functools
import re
from email import policy
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.policy import EmailPolicy
from typing import Any

__all__ = [
    "MAX_HEADER_VALUE",
    "MAX_PARSED_HEADER",
    "READ_POLICY",
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

MAX_HEADER_VALUE = 102_400  # characters of one header's value that are decoded
MAX_PARSED_HEADER = 4 * 998  # characters a header object is built from: four full lines
_MAX_CACHED_HEADER = 2000


class _ReadPolicy(EmailPolicy):
    """``policy.default`` that builds each header object once, from a bounded value.

    The stdlib re-parses a header on every access: the parser itself and
    ``get_content_type``, ``get_param``, ``get_filename`` ask for Content-Type a
    dozen times a part, which was most of the parsing time.  Header objects are
    immutable, so handing out the one already built changes nothing.  A value
    over ``MAX_PARSED_HEADER`` characters is parsed from its first that many.
    """

    def header_fetch_parse(self, name: str, value: str) -> Any:  # typeshed: Any
        if hasattr(value, "name"):  # already a header object
            return value
        if len(value) > _MAX_CACHED_HEADER:  # rare: a few held, for the part being read
            return _long_header(name, value[:MAX_PARSED_HEADER])
        return _default_header(name, value)


@functools.lru_cache(maxsize=256)
def _default_header(name: str, value: str) -> Any:
    return policy.default.header_fetch_parse(name, value)


@functools.lru_cache(maxsize=8)
def _long_header(name: str, value: str) -> Any:
    return policy.default.header_fetch_parse(name, value)


READ_POLICY = _ReadPolicy()


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Text of ``data``: the declared charset if it works, else UTF-8, cp1252, latin-1."""
    for charset in (declared, *_FALLBACK_CHARSETS) if declared else _FALLBACK_CHARSETS:
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError, ValueError):  # ValueError: a NUL in the name
            continue
    return data.decode("latin-1")  # pragma: no cover  (latin-1 decodes everything)


def clean_text(text: str) -> str:
    """Replace surrogate escapes (raw 8-bit bytes) and NULs with real characters."""
    if _SURROGATES.search(text):
        text = decode_bytes(text.encode("utf-8", "surrogateescape"))
    return text.replace("\x00", "")


def decode_header_value(raw: str) -> str:
    """One header's value as text: RFC 2047 decoded where possible, unfolded (from its
    first ``MAX_HEADER_VALUE`` characters)."""
    value = clean_text(str(raw)[:MAX_HEADER_VALUE])
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
    text, where ``=?utf-8?q?sam=40brokers.example?=`` would become an address.  Each
    from its first ``MAX_HEADER_VALUE`` characters."""
    lowered = name.lower()
    return [
        " ".join(clean_text(str(v)[:MAX_HEADER_VALUE]).split())
        for k, v in message.raw_items()
        if k.lower() == lowered
    ]


def message_ids(value: str) -> tuple[str, ...]:
    """The ``<id>`` tokens of a Message-ID, In-Reply-To or References value, in order."""
    return tuple(dict.fromkeys(f"<{m}>" for m in _MSGID.findall(value)))
