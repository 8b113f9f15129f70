"""What the guard reads of an attachment: its text, or why there is none.

- Text files (``pii_guard.is_scannable``: text/*, CSV, JSON, XML…) are decoded by their
  byte-order mark, then their declared charset, then detection
  (``mailer/text_files.py``): an Excel "Unicode text" export is UTF-16.
- Forwarded mail (message/rfc822, or an ``.eml`` sent as a file) is parsed with intake's
  own parser and read as a message: the headers that name people (From, Sender,
  Reply-To, To, Cc, Bcc and the delivery headers, display names and addresses), the
  subject, its text (plain, and the HTML as text) and its own attachments by these same
  rules, at most ``MAX_FORWARD_DEPTH`` forwards deep.  Message-IDs and the trace headers
  are not read.
- PDF text layers, Word (.docx) and Excel (.xlsx) files (``mailer/documents.py``).
- Anything else (images, archives, old .doc and .xls) is not read.

A reading is ``whole`` only when all of the file was read: a forward that holds a photo,
a document cut at a cap, is not, and its original cannot be vouched for; only the text
that was read can be (``ticketing.pipeline.guard`` decides what is kept).

Bounded: a file over ``max_bytes`` is not read; the files read inside one forward share
``max_bytes`` and ``max_chars`` between them; ``stop`` is the message's time budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from mailer.bodies import MAX_TEXT, html_to_text
from mailer.documents import DocumentKind, DocumentLimits, document_kind, document_text
from mailer.errors import DocumentError, ReadingStopped
from mailer.parsing import Attachment, ParsedMessage, parse_message
from mailer.text_files import decode_text_file
from pii_guard import is_scannable
from ticketing.config.pii_schema import PiiConfig

__all__ = [
    "DEFAULT_RULES",
    "MAX_FORWARD_DEPTH",
    "AttachmentRules",
    "Reading",
    "StopReading",
    "attachment_rules",
    "read_attachment",
]

MAX_FORWARD_DEPTH = 5  # a forward of a forward of …: deeper ones are not read
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
# Headers of a forwarded message that name people or what they wrote about.
_PEOPLE_HEADERS = (
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "delivered-to",
    "x-original-to",
    "return-path",
    "disposition-notification-to",
    "subject",
)

WithPii = Literal["redacted_text", "drop"]
_DEFAULT_LIMITS = DocumentLimits()  # frozen: one shared default


class StopReading(Protocol):
    """The message's budget as reading sees it (``pii_guard.ScanBudget``)."""

    def spent(self) -> bool:
        """True once the message's time has run out."""
        ...


@dataclass(frozen=True)
class AttachmentRules:
    """``[pii]``'s rules for attachments: how much is read, and what is kept of a file
    whose text holds personal data (its redacted text, or nothing)."""

    limits: DocumentLimits = _DEFAULT_LIMITS
    with_pii: WithPii = "redacted_text"


DEFAULT_RULES = AttachmentRules()


def attachment_rules(config: PiiConfig) -> AttachmentRules:
    limits = DocumentLimits(max_bytes=config.max_document_bytes)
    return AttachmentRules(limits, config.attachments_with_pii)


@dataclass(frozen=True)
class Reading:
    """The text read of one attachment (``None``: nothing could be read), whether that is
    all of it, why not, and whether the message's time ran out meanwhile."""

    text: str | None = field(default=None, repr=False)
    whole: bool = True
    why: str = ""
    stopped: bool = False


class _Allowance:
    """Bytes and characters left to the files read inside one attachment."""

    def __init__(self, limits: DocumentLimits) -> None:
        self.bytes = limits.max_bytes
        self.chars = limits.max_chars

    def take(self, text: str) -> tuple[str, bool]:
        """``text`` as far as the characters left reach, and whether it was all of it."""
        kept = text[: max(self.chars, 0)]
        self.chars -= len(kept)
        return kept, len(kept) == len(text)


def read_attachment(part: Attachment, rules: AttachmentRules, stop: StopReading) -> Reading:
    """The text of ``part`` for the guard, or why there is none."""
    limits = rules.limits
    if part.size > limits.max_bytes:
        return Reading(why=f"larger than {limits.max_bytes:,} bytes")
    return _read(part, limits, stop, 0, _Allowance(limits))


def _read(
    part: Attachment, limits: DocumentLimits, stop: StopReading, depth: int, left: _Allowance
) -> Reading:
    kind = _kind(part)
    if kind == "message":
        return _read_message(part.payload, limits, stop, depth, left)
    if kind is None:
        return Reading(why="not text, mail, PDF, Word or Excel")
    if part.size > left.bytes:
        return Reading(why="the files inside are larger than allowed all told")
    left.bytes -= part.size
    if kind == "text":
        text, whole = left.take(decode_text_file(part.payload, part.charset))
        return Reading(text, whole, "" if whole else "too long")
    try:
        document = document_text(kind, part.payload, limits, stop.spent)
    except ReadingStopped:
        return Reading(why="out of time", stopped=True)
    except DocumentError as exc:
        return Reading(why=str(exc))
    text, whole = left.take(document.text)
    return Reading(text, whole and document.complete, document.cut or ("" if whole else "too long"))


def _kind(part: Attachment) -> DocumentKind | Literal["message", "text"] | None:
    content_type = part.content_type.lower()
    if content_type in _MESSAGE_TYPES or part.filename.lower().endswith(".eml"):
        return "message"
    document = document_kind(part.filename, content_type, part.payload)
    if document is not None:
        return document
    return "text" if is_scannable(content_type) else None


def _read_message(
    raw: bytes, limits: DocumentLimits, stop: StopReading, depth: int, left: _Allowance
) -> Reading:
    """A forwarded message as text: the people in its headers, its text, its files."""
    if depth >= MAX_FORWARD_DEPTH:
        return Reading(why=f"forwarded more than {MAX_FORWARD_DEPTH} times over")
    parsed = parse_message(raw)
    text, read_whole = _message_text(parsed)
    head, kept_whole = left.take(text)
    pieces, whole, why = [head], read_whole and kept_whole, ""
    for inner in parsed.attachments:
        if stop.spent():
            return Reading(why="out of time", stopped=True)
        reading = _read(inner, limits, stop, depth + 1, left)
        if reading.stopped:
            return reading
        pieces.append(_inner_block(inner, reading))
        read = reading.whole and reading.text is not None
        whole, why = whole and read, why or reading.why
    return Reading("\n\n".join(pieces), whole, why if not whole else "")


def _message_text(parsed: ParsedMessage) -> tuple[str, bool]:
    """The people headers as lines, a blank line, the text; the HTML as text too when
    the plain text came first (the original holds both).  ``False`` when the parser kept
    only part of it (a text cut at ``MAX_TEXT``, parts nested past its depth)."""
    lines = [
        f"{name.title()}: {value}"
        for name in _PEOPLE_HEADERS
        for value in parsed.headers.get(name, ())
    ]
    body = [parsed.text]
    if parsed.html:
        html = html_to_text(parsed.html)
        if html.strip() != parsed.text.strip():
            body.append(html)
    whole = len(parsed.text) < MAX_TEXT and "NestingTooDeep" not in parsed.defects
    return "\n".join(lines) + "\n\n" + "\n\n".join(body), whole


def _inner_block(inner: Attachment, reading: Reading) -> str:
    title = f"[Attachment {inner.filename or '(no name)'} ({inner.content_type})"
    if reading.text is None:
        return f"{title}: not read, {reading.why}]"
    return f"{title}]\n{reading.text}"
