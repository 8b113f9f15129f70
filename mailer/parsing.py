"""bytes -> ParsedMessage: headers, addresses, text, new text, attachments.

Parsing never raises on real-world mail: broken headers, wrong or missing
charsets, missing boundaries and endless nesting all produce a message (with
``defects`` noting what was odd) rather than an exception, because a message
the daemon cannot read still has to be recorded or refused with a reason.

What the parser is given is bounded (``mailer/structure.py``, ``mailer/headers.py``):
it reads from the first header field on (leading blank lines and a byte-order
mark skipped); a message nested deeper than ``MAX_NESTING`` is read for its
header only (``NestingTooDeep`` among its defects: intake refuses it before
parsing); header values are decoded from their first ``MAX_HEADER_VALUE``
characters and the subject kept to ``MAX_SUBJECT`` (both named in
``truncated_headers``).  The hashes are of the bytes as received.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import Message
from email.parser import BytesFeedParser, BytesHeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

from mailer.bodies import body_text, html_source, new_text_of
from mailer.headers import (
    MAX_HEADER_VALUE,
    READ_POLICY,
    clean_text,
    decode_header_value,
    header_values,
    message_ids,
    raw_header_values,
)
from mailer.structure import header_start, too_deeply_nested
from mailer.tnef import unpack_tnef

__all__ = ["MAX_SUBJECT", "Attachment", "ParsedMessage", "content_hash", "parse_message"]

# Characters of the subject kept (after unfolding and decoding): two full lines of
# RFC 5322; mail clients show a few hundred.
MAX_SUBJECT = 2000
_MAX_DEPTH = 25
_MAX_PARTS = 500
_FEED_CHUNK = 1 << 16
_NESTING_DEFECT = "NestingTooDeep"
_TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    payload: bytes = field(repr=False)
    is_tnef: bool = False
    charset: str | None = None  # the part's declared charset parameter, if any


@dataclass(frozen=True)
class ParsedMessage:
    """What the rest of the pipeline knows about a message (the raw bytes stay behind)."""

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    from_address: str | None
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime | None
    content_type: str
    text: str
    new_text: str
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...]
    size: int
    raw_sha256: str
    content_sha256: str
    headers: dict[str, tuple[str, ...]] = field(repr=False)
    message: Message = field(repr=False, compare=False)
    html: str = field(default="", repr=False)
    # lower-case names of the headers whose value was cut (MAX_HEADER_VALUE, MAX_SUBJECT)
    truncated_headers: tuple[str, ...] = ()

    def header(self, name: str) -> str:
        """The first value of header ``name`` (lower-case lookup), or ``""``."""
        values = self.headers.get(name.lower(), ())
        return values[0] if values else ""


def parse_message(raw: bytes) -> ParsedMessage:
    nested_too_deep = too_deeply_nested(raw)
    message = _message_tree(raw, headers_only=nested_too_deep)
    headers = _all_headers(message)
    leaves = _leaves(message) if not nested_too_deep else []
    text = body_text(leaves)
    sender_name, sender = _first_address(raw_header_values(message, "from"))
    subject = " ".join(headers.get("subject", ()))
    defects = {type(d).__name__ for part in leaves for d in part.defects}
    return ParsedMessage(
        message_id=_first(message_ids(" ".join(headers.get("message-id", ())))),
        in_reply_to=message_ids(" ".join(headers.get("in-reply-to", ()))),
        references=message_ids(" ".join(headers.get("references", ()))),
        subject=subject[:MAX_SUBJECT],
        from_address=sender,
        from_name=sender_name,
        to=_addresses(raw_header_values(message, "to")),
        cc=_addresses(raw_header_values(message, "cc")),
        date=_date(headers.get("date", ())),
        content_type=_safe_content_type(message),
        text=text,
        new_text=new_text_of(text),
        attachments=tuple(_attachments(leaves)),
        defects=tuple(sorted(defects | ({_NESTING_DEFECT} if nested_too_deep else set()))),
        size=len(raw),
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        content_sha256=content_hash(raw),
        headers=headers,
        message=message,
        html=html_source(leaves),
        truncated_headers=_truncated(message, len(subject) > MAX_SUBJECT),
    )


def _message_tree(raw: bytes, *, headers_only: bool = False) -> Message:
    """The stdlib parser fed in chunks, as ``message_from_bytes`` would (it feeds 8 KB at
    a time too) but without first holding the whole message as text in a StringIO, four
    bytes a character: for a 25 MB message 65 MiB at the peak instead of 184 MiB.

    It reads from the first header field on.  With ``headers_only`` the body is neither
    read into parts nor kept."""
    start = header_start(raw)
    if headers_only:
        message = BytesHeaderParser(policy=READ_POLICY).parsebytes(raw[start:])
        message.set_payload("")
        return message
    parser = BytesFeedParser(policy=READ_POLICY)
    view = memoryview(raw)
    for offset in range(start, len(raw), _FEED_CHUNK):
        parser.feed(bytes(view[offset : offset + _FEED_CHUNK]))
    return parser.close()


def _truncated(message: Message, subject_cut: bool) -> tuple[str, ...]:
    """Names of the headers whose value was cut, in order of first appearance."""
    long = (k.lower() for k, v in message.raw_items() if len(str(v)) > MAX_HEADER_VALUE)
    names = dict.fromkeys((*long, *(("subject",) if subject_cut else ())))
    return tuple(names)


def _first(values: tuple[str, ...]) -> str | None:
    return values[0] if values else None


def _all_headers(message: Message) -> dict[str, tuple[str, ...]]:
    names = dict.fromkeys(k.lower() for k, _ in message.raw_items())
    return {name: tuple(header_values(message, name)) for name in names}


def _first_address(values: list[str]) -> tuple[str, str | None]:
    """The first address of the (still encoded) From values, and its decoded display name.

    An encoded word is never an address: it can only be (part of) the display name.
    """
    for value in values:
        name, address = parseaddr(value)
        if "@" in address and "=?" not in address:
            return decode_header_value(name), address.strip().lower()
    return "", None


def _addresses(values: list[str]) -> tuple[str, ...]:
    found = (addr.strip().lower() for _, addr in getaddresses(values))
    return tuple(dict.fromkeys(a for a in found if "@" in a and "=?" not in a))


def _date(values: tuple[str, ...]) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(values[0]) if values else None
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed is None or parsed.tzinfo else None


def _safe_content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except (ValueError, IndexError, AttributeError):
        return "application/octet-stream"


def _leaves(message: Message) -> list[Message]:
    """Leaf parts in order; ``message/rfc822`` counts as a leaf (a forwarded mail).

    A walk with its own stack, not recursion: multiparts are opened ``_MAX_DEPTH``
    levels deep, each for its first ``_MAX_PARTS`` parts; a deeper multipart is a leaf.
    """
    leaves: list[Message] = []
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        payload = part.get_payload()
        multipart = depth < _MAX_DEPTH and _safe_content_type(part).startswith("multipart/")
        if multipart and isinstance(payload, list):
            subparts = [sub for sub in payload[:_MAX_PARTS] if isinstance(sub, Message)]
            stack.extend((sub, depth + 1) for sub in reversed(subparts))
        else:
            leaves.append(part)
    return leaves


def _attachments(leaves: list[Message]) -> Iterator[Attachment]:
    for part in leaves:
        content_type = _safe_content_type(part)
        filename = _filename(part)
        is_attachment = _disposition(part) == "attachment" or bool(filename)
        if not is_attachment and content_type.startswith("text/"):
            continue
        payload = _payload_bytes(part)
        is_tnef = content_type in _TNEF_TYPES or filename.lower() == "winmail.dat"
        yield _attachment(filename, content_type, payload, is_tnef=is_tnef, charset=_charset(part))
        if is_tnef:
            for name, inner_type, data in unpack_tnef(payload):
                yield _attachment(name, inner_type, data)


def _attachment(
    filename: str,
    content_type: str,
    payload: bytes,
    *,
    is_tnef: bool = False,
    charset: str | None = None,
) -> Attachment:
    return Attachment(
        filename=filename,
        content_type=content_type,
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
        payload=payload,
        is_tnef=is_tnef,
        charset=charset,
    )


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except (ValueError, IndexError, AttributeError, LookupError):
        return None


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except (ValueError, IndexError, AttributeError, LookupError):
        name = ""
    return clean_text(decode_header_value(name))[:255]


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except (ValueError, IndexError, AttributeError):
        return None


def _payload_bytes(part: Message) -> bytes:
    """The decoded payload; a forwarded message as its bytes."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return b"".join(_flatten(p) for p in payload if isinstance(p, Message))
    try:
        data = _decoded(part, payload)
    except (ValueError, LookupError, UnicodeError, TypeError, AssertionError):
        data = None
    return data if isinstance(data, bytes) else b""


def _decoded(part: Message, payload: object) -> Any:
    """``part.get_payload(decode=True)``, with well-formed base64 decoded in one copy.

    For base64 the stdlib first splits the payload into a list of lines and joins
    them: for a 25 MB attachment that list alone is about 40 MB at the peak.
    Deleting CR and LF is the same join.  What the stdlib would repair (padding,
    stray characters) goes its way, so the part gets the same bytes and defects.
    """
    if (
        isinstance(payload, str)
        and payload.isascii()
        and str(part.get("content-transfer-encoding", "")).lower() == "base64"
    ):
        joined = payload.encode("ascii").translate(None, b"\r\n")
        if len(joined) % 4 == 0:  # else the stdlib pads it and notes a defect
            with contextlib.suppress(binascii.Error):
                return base64.b64decode(joined, validate=True)
    return part.get_payload(decode=True)


def _flatten(message: Message) -> bytes:
    """An embedded message's bytes.  compat32 writes headers back as they came, where
    the default policy re-parses them and can fail on broken ones."""
    try:
        return message.as_bytes(policy=policy.compat32)
    except Exception:  # noqa: BLE001  (the generator raises many kinds on broken input)
        return b""


_TRACE_HEADERS = frozenset(
    {
        "received",
        "return-path",
        "delivered-to",
        "x-original-to",
        "x-envelope-from",
        "x-envelope-to",
        "authentication-results",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
        "received-spf",
        "x-spam-status",
        "x-spam-score",
        "x-spam-flag",
        "x-virus-scanned",
    }
)


def content_hash(raw: bytes) -> str:
    """SHA-256 of the message without trace headers: the same mail reaching two of our
    mailboxes by different paths hashes the same, a different mail does not.

    The digest is stored (the dedup key), so its definition never changes: the kept
    header lines joined by LF, a blank line, then the body, all with CRLF read as LF.
    The body is hashed in place rather than copied twice more (a 25 MB message).
    """
    normalized = raw.replace(b"\r\n", b"\n")
    blank = normalized.find(b"\n\n")
    head_end, body_start = (blank, blank + 2) if blank >= 0 else (len(normalized), len(normalized))
    digest = hashlib.sha256(b"\n".join(_untraced(normalized[:head_end])))
    digest.update(b"\n\n")
    digest.update(memoryview(normalized)[body_start:])
    return digest.hexdigest()


def _untraced(head: bytes) -> Iterator[bytes]:
    """The header lines of ``head`` outside trace headers (with their continuations)."""
    keep = True
    for line in head.split(b"\n"):
        if line[:1] not in (b" ", b"\t"):
            name = line.split(b":", 1)[0].strip().lower()
            keep = name.decode("latin-1") not in _TRACE_HEADERS
        if keep:
            yield line
