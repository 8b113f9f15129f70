"""The readable text of a message and the new part of a reply.

Text comes from the inline text/plain parts, or from HTML through inscriptis
(a maintained HTML-to-text converter that keeps layout such as lists and
tables readable).  The *new text* of a reply — the writer's own words, without
quoted history, attribution lines, signatures and footers — comes from
``mailer.reply_text`` (quotequail and a small rule table).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from email.message import Message

from inscriptis import get_text

from mailer.headers import clean_text, decode_bytes
from mailer.reply_text import new_text

__all__ = ["MAX_TEXT", "body_text", "html_source", "html_to_text", "new_text_of"]

log = logging.getLogger(__name__)

MAX_TEXT = 1_000_000  # characters kept of a body; the rest is not stored


def _is_inline(part: Message) -> bool:
    try:
        return part.get_content_disposition() != "attachment" and not part.get_filename()
    except (ValueError, IndexError, AttributeError, LookupError):
        return False


def _part_text(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
        charset = part.get_content_charset()
    except (ValueError, LookupError, UnicodeError, TypeError, AssertionError):
        return ""
    if not isinstance(data, bytes):
        return ""
    return clean_text(decode_bytes(data, charset))


def html_to_text(html: str) -> str:
    try:
        return str(get_text(html)).strip()
    except (ValueError, RecursionError) as exc:  # malformed markup deep enough to break lxml
        log.warning("HTML to text failed (%s); keeping the markup", type(exc).__name__)
        return html


def body_text(leaves: Sequence[Message]) -> str:
    """Inline text/plain parts joined; else the first inline HTML part as text."""
    inline = [p for p in leaves if _is_inline(p)]
    plain = [_part_text(p) for p in inline if _content_type(p) == "text/plain"]
    if any(t.strip() for t in plain):
        return "\n".join(t.strip("\n") for t in plain)[:MAX_TEXT]
    for part in inline:
        if _content_type(part) == "text/html":
            return html_to_text(_part_text(part))[:MAX_TEXT]
    return ""


def html_source(leaves: Sequence[Message]) -> str:
    """The inline HTML parts as they came (for finding tokens that only the HTML
    alternative kept); never stored."""
    parts = [_part_text(p) for p in leaves if _is_inline(p) and _content_type(p) == "text/html"]
    return "\n".join(parts)[:MAX_TEXT]


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except (ValueError, IndexError, AttributeError):
        return ""


def new_text_of(text: str) -> str:
    """The reply's own words: quoted history, attribution lines, signatures and footers
    removed (the whole text if unsure; never raises).  See ``mailer.reply_text``."""
    return new_text(text)
