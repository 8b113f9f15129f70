"""The size and header limits of ``[smtp]``: checked by the pipeline, and by the SMTP front
before it spools a message (a message it will refuse must get its 5xx while the client
is still connected)."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesHeaderParser

from ticketing.config import SmtpConfig
from ticketing.pipeline.types import PermanentRejection

__all__ = ["check_header_count", "check_size", "header_field_count"]

_END_OF_HEADER = re.compile(rb"\r?\n\r?\n")


def check_size(raw: bytes, limits: SmtpConfig) -> None:
    """Refuse a message over ``max_message_size`` or with nothing in it."""
    if len(raw) > limits.max_message_size:
        raise PermanentRejection(
            f"message exceeds the size limit of {limits.max_message_size} bytes", "552 5.3.4"
        )
    if not raw.strip():
        raise PermanentRejection("empty message")


def check_header_count(count: int, limits: SmtpConfig) -> None:
    """Refuse a message with more than ``max_header_count`` header fields, or none."""
    if count > limits.max_header_count:
        raise PermanentRejection(f"more than {limits.max_header_count} header fields", "552 5.3.4")
    if count == 0:
        raise PermanentRejection("not an email message: no header fields")


def header_field_count(raw: bytes) -> int:
    """Top-level header fields, read without parsing the body (compat32: no header objects)."""
    end = _END_OF_HEADER.search(raw)
    head = raw[: end.end()] if end else raw
    return len(BytesHeaderParser(policy=policy.compat32).parsebytes(head).keys())
