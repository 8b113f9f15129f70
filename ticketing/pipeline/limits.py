"""The size and header limits of ``[smtp]``: checked by the pipeline, and by the SMTP front
before it spools a message (a message it will refuse must get its 5xx while the client
is still connected).

Both read a message as the parser does (``mailer/structure.py``): the header from its
first field on, after any leading blank lines and byte-order mark, and parts nested no
deeper than ``MAX_NESTING``."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesHeaderParser

from mailer.structure import MAX_NESTING, header_start, too_deeply_nested
from ticketing.config import SmtpConfig
from ticketing.errors import PermanentRejection

__all__ = ["check_header_count", "check_header_fields", "check_size", "header_field_count"]

_END_OF_HEADER = re.compile(rb"\r?\n\r?\n")
_FIELD_LINE = re.compile(rb"[\041-\071\073-\176]+:")  # a name, then its colon: a field


def check_size(raw: bytes, limits: SmtpConfig) -> None:
    """Refuse a message over ``max_message_size``, with nothing in it, or with parts nested
    deeper than the parser can follow."""
    if len(raw) > limits.max_message_size:
        raise PermanentRejection(
            f"message exceeds the size limit of {limits.max_message_size} bytes", "552 5.3.4"
        )
    if not raw.strip():
        raise PermanentRejection("empty message")
    if too_deeply_nested(raw):
        raise PermanentRejection(
            f"message parts are too deeply nested (more than {MAX_NESTING} levels)", "552 5.3.4"
        )


def check_header_count(count: int, limits: SmtpConfig) -> None:
    """Refuse a message with more than ``max_header_count`` header fields, or none."""
    if count > limits.max_header_count:
        raise PermanentRejection(f"more than {limits.max_header_count} header fields", "552 5.3.4")
    if count == 0:
        raise PermanentRejection("not an email message: no header fields")


def header_field_count(raw: bytes) -> int:
    """Top-level header fields, read without parsing the body (compat32: no header objects)."""
    return len(BytesHeaderParser(policy=policy.compat32).parsebytes(_head(raw)).keys())


def check_header_fields(raw: bytes, limits: SmtpConfig) -> None:
    """``check_header_count(header_field_count(raw))``, without parsing most messages.

    A header that opens with a field has at least one, and no more fields than it
    has lines: when those lines are within the limit, the answer is known.  Anything
    else (more lines, a first line that is no field) is counted by the parser.
    """
    head = _head(raw)
    lines = head.count(b"\n") + head.count(b"\r") + 1
    if lines <= limits.max_header_count and _FIELD_LINE.match(head):
        return
    check_header_count(header_field_count(raw), limits)


def _head(raw: bytes) -> bytes:
    """The header of ``raw`` (from its first field on), with the blank line that ends it."""
    start = header_start(raw)
    end = _END_OF_HEADER.search(raw, start)
    if end is None:
        return raw[start:] if start else raw
    return raw[start : end.end()]
