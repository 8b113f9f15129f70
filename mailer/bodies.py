"""The readable text of a message and the new part of a reply.

Text comes from the inline text/plain parts, or from HTML through inscriptis
(a maintained HTML-to-text converter that keeps layout such as lists and
tables readable).  The *new text* of a reply — without quoted history and
signatures — comes from mail-parser-reply, which knows the reply headers of
many clients in English and Spanish.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from email.message import Message

from inscriptis import get_text
from mailparser_reply import EmailReplyParser
from mailparser_reply.parser import EmailMessage

from mailer.headers import clean_text, decode_bytes

__all__ = ["body_text", "html_source", "html_to_text", "new_text_of"]

log = logging.getLogger(__name__)

_MAX_TEXT = 1_000_000  # characters kept of a body; the rest is not stored
_MAX_REPLY_PARSE = 100_000  # reply parsing is skipped beyond this (pathological quoting)
# English and Spanish first (the exchange's languages), then what producers' clients
# may be set to; the library knows each language's reply headers.
_reply_parser = EmailReplyParser(
    languages=["en", "es", "de", "fr", "it", "nl", "pl", "sv", "da", "cs"]
)


def _reply_patterns() -> dict[str, re.Pattern[str]]:
    """The library's patterns, compiled once instead of for every message (building
    them cost about as much as using them).

    Every reply header the library knows starts at a line start or at a newline; the
    header pattern gets that as a leading assertion, so the scan fails at once at any
    other position instead of trying each language there: the same matches, about
    five times sooner.
    """
    template = EmailMessage(text="", languages=list(_reply_parser.languages))
    header = template.HEADER_REGEX
    return {
        "_header_regex": re.compile(rf"(?:^|(?=\n))(?:{header.pattern})", header.flags),
        "_disclaimers_regex": template.DISCLAIMERS_REGEX,
        "_signature_regex": template.SIGNATURE_REGEX,
    }


_REPLY_PATTERNS = _reply_patterns()
_QUOTED_LINE = re.compile(r"^\s*>")
_ATTRIBUTION = re.compile(r"(wrote|escribi[oó]|schrieb|a [ée]crit|написал)\s*:\s*$", re.I)


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
        return "\n".join(t.strip("\n") for t in plain)[:_MAX_TEXT]
    for part in inline:
        if _content_type(part) == "text/html":
            return html_to_text(_part_text(part))[:_MAX_TEXT]
    return ""


def html_source(leaves: Sequence[Message]) -> str:
    """The inline HTML parts as they came (for finding tokens that only the HTML
    alternative kept); never stored."""
    parts = [_part_text(p) for p in leaves if _is_inline(p) and _content_type(p) == "text/html"]
    return "\n".join(parts)[:_MAX_TEXT]


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except (ValueError, IndexError, AttributeError):
        return ""


def new_text_of(text: str) -> str:
    """The reply's own text: quoted history and signature removed (whole text if unsure)."""
    if not text.strip() or len(text) > _MAX_REPLY_PARSE:
        return text.strip()
    try:
        reply = str(_latest_reply(text)).strip()
    except (ValueError, IndexError, RecursionError, TypeError) as exc:
        log.warning("reply parsing failed (%s); keeping the whole text", type(exc).__name__)
        return text.strip()
    return _without_quoted_lines(reply) or reply or text.strip()


def _latest_reply(text: str) -> str | None:
    """What ``_reply_parser.parse_reply(text)`` returns, with the precompiled patterns."""
    message = EmailMessage(text=text, languages=list(_reply_parser.languages), **_REPLY_PATTERNS)
    latest: str | None = message.read().latest_reply
    return latest


def _without_quoted_lines(text: str) -> str:
    """Bottom- and inline-posted replies: what the parser left, less ``>`` lines and the
    attribution line above them."""
    lines = text.splitlines()
    if not any(_QUOTED_LINE.match(line) for line in lines):
        return text
    kept: list[str] = []
    for index, line in enumerate(lines):
        follows_quote = index + 1 < len(lines) and _QUOTED_LINE.match(lines[index + 1])
        if _QUOTED_LINE.match(line) or (follows_quote and _ATTRIBUTION.search(line)):
            continue
        kept.append(line)
    return "\n".join(kept).strip()
