"""Building the MIME message: headers that thread and stop loops, added by code.

Nothing here comes from a template except the subject and the bodies, so no
template edit can drop the Message-ID, the threading headers, the loop
markers or the ref token.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.charset import QP, Charset
from email.encoders import encode_base64
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr, parseaddr

from mailer.bodies import html_to_text
from ticketing.signing.message_ids import message_ids_in
from ticketing.templating.validate import has_token_line

__all__ = [
    "MailAttachment",
    "MailParts",
    "build_mime",
    "ensure_token",
    "thread_ids",
    "visible_text",
]

MAX_REFERENCES = 20


class _Policy(Compat32):
    """compat32, writing a header whose value is short printable ASCII as it is.

    compat32 runs every value through ``Header.encode``, which returns such a
    value unchanged (``tests/test_outbound_speed.py`` compares both on random
    values) but cost about a third of building an acknowledgement.
    """

    def fold_binary(self, name: str, value: object) -> bytes:
        if _short_printable(name, value, self.max_line_length or 78):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)  # type: ignore[arg-type]


def _short_printable(name: str, value: object, limit: int) -> bool:
    return (
        isinstance(value, str)
        and value.isascii()
        and value.isprintable()
        and len(name) + 2 + len(value) <= limit
    )


_POLICY = _Policy(linesep="\r\n", max_line_length=76)  # encoded words <= 75
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class MailParts:
    from_name: str
    from_address: str
    to: str
    subject: str
    text: str
    html: str | None
    message_id: str
    in_reply_to: str | None
    references: Sequence[str]
    date: datetime
    auto_submitted: str  # "auto-replied" | "auto-generated" | "" (a person's mail: none)
    reply_to: str | None = None
    extra_headers: Sequence[tuple[str, str]] = ()  # e.g. Outlook's Thread-Topic, Thread-Index
    attachments: Sequence[MailAttachment] = ()


@dataclass(frozen=True)
class MailAttachment:
    """A file to attach as it is (base64): a desk copy's attachments the guard let through."""

    filename: str
    content_type: str
    content: bytes = field(repr=False)
    charset: str | None = None  # of a text file, when we know it (the guard's own text)


def ensure_token(body: str, token: str | None, part: str) -> str:
    """``body`` with the ref token on a line of its own (text) or in a paragraph (HTML)."""
    if token is None or has_token_line(body, token, part):
        return body
    if part == "html":
        tag = f"<p>{token}</p>"
        at = body.lower().rfind("</body>")
        return body[:at] + tag + body[at:] if at >= 0 else body + tag
    return body.rstrip("\n") + "\n\n" + token + "\n"


def thread_ids(in_reply_to: str | None, references: Sequence[str]) -> tuple[str | None, list[str]]:
    """The parent id and the References chain (parent last), only well-formed ``<ids>``.

    Taking only ``<...>`` tokens also keeps line breaks a sender smuggled into
    their own Message-ID out of our headers.
    """
    parent_ids = message_ids_in(in_reply_to or "")
    parent = parent_ids[0] if parent_ids else None
    chain = [i for ref in references for i in message_ids_in(ref)]
    if parent is not None:
        chain = [i for i in chain if i != parent] + [parent]
    chain = list(dict.fromkeys(chain))
    if len(chain) > MAX_REFERENCES:  # RFC 5322: keep the first and the most recent
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return parent, chain


def build_mime(parts: MailParts) -> bytes:
    """The message as bytes with CRLF line ends, ready for a relay or a maildir.

    Built with the email package's compat32 classes (``MIMEText``, ``Header``):
    the same library as ``EmailMessage`` without its header objects, which cost
    more CPU than the rest of an acknowledgement.  Non-ASCII subjects and names
    become RFC 2047 encoded words; bodies are UTF-8 quoted-printable.
    """
    message = _with_attachments(_content(parts.text, parts.html), parts.attachments)
    for name, value in _headers(parts):
        message[name] = value  # type: ignore[assignment]  # compat32 takes Header values (documented)
    return message.as_bytes(policy=_POLICY)


def visible_text(parts: MailParts) -> str:
    """Subject, text body and the HTML body as text: what the recipient reads back from
    ``build_mime``, so what the outbound PII scan must read."""
    texts = [_subject(parts.subject), _decoded(parts.text)]
    if parts.html is not None:
        texts.append(html_to_text(_decoded(parts.html)))
    return "\n".join(texts)


def _headers(parts: MailParts) -> list[tuple[str, str | Header]]:
    """The headers code owns, in order; a line break in any value is refused."""
    parent, chain = thread_ids(parts.in_reply_to, parts.references)
    subject = _subject(parts.subject)
    headers: list[tuple[str, str | Header]] = [
        ("From", _mailbox(parts.from_name, parts.from_address)),
        *([("Reply-To", _checked(parts.reply_to))] if parts.reply_to else []),
        ("To", _recipient(parts.to)),
        ("Subject", _subject_value(subject)),
        ("Date", format_datetime(parts.date)),
        ("Message-ID", _checked(parts.message_id)),
    ]
    if parent is not None:
        headers.append(("In-Reply-To", _ids(parent)))
    if chain:
        headers.append(("References", _ids(" ".join(chain))))
    for name, value in parts.extra_headers:
        headers.append((name, _subject_value(_subject(value))))
    if parts.auto_submitted:
        headers += [("Auto-Submitted", parts.auto_submitted), ("X-Auto-Response-Suppress", "All")]
    return headers


def _content(text: str, html: str | None) -> Message:
    """One quoted-printable text part, or text and HTML as alternatives."""
    if html is None:
        return _text_part(text, "plain")
    # A boundary of our own: the generator otherwise compiles a regex per message to
    # pick one.  Both parts are quoted-printable, where "==" cannot occur: no collision.
    message = MIMEMultipart("alternative", boundary=f"=={uuid.uuid4().hex}==")
    message.attach(_text_part(text, "plain"))
    message.attach(_text_part(html, "html"))
    return message


def _with_attachments(body: Message, attachments: Sequence[MailAttachment]) -> Message:
    """``body`` alone, or as the first part of a multipart/mixed with the files after it."""
    if not attachments:
        return body
    mixed = MIMEMultipart("mixed", boundary=f"=={uuid.uuid4().hex}==")  # base64 has no "=="
    mixed.attach(body)
    for attachment in attachments:
        mixed.attach(_file_part(attachment))
    return mixed


def _file_part(attachment: MailAttachment) -> MIMEBase:
    maintype, _, subtype = attachment.content_type.partition("/")
    if not (maintype and subtype) or not attachment.content_type.isascii():
        maintype, subtype = "application", "octet-stream"
    part = MIMEBase(maintype, subtype)
    if attachment.charset:
        part.set_param("charset", attachment.charset)
    part.set_payload(attachment.content)
    encode_base64(part)
    name = " ".join(attachment.filename.split()) or "attachment"
    part.add_header("Content-Disposition", "attachment", filename=_filename(name))
    return part


def _filename(name: str) -> str | tuple[str, str, str]:
    """A filename parameter: as it is when ASCII, else RFC 2231 (UTF-8)."""
    return name if name.isascii() and name.isprintable() else ("utf-8", "", name)


def _text_part(body: str, subtype: str) -> MIMENonMultipart:
    """What ``MIMEText`` makes, but always UTF-8 quoted-printable (its default is base64)."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part.set_payload(body, _UTF8_QP)
    return part


def _subject(subject: str) -> str:
    return _checked(" ".join(subject.split()))


def _subject_value(subject: str) -> str | Header:
    """As it is when ASCII; else encoded.  An encoded-word look-alike is encoded too, so
    a mail program shows it literally, as the outbound PII scan read it."""
    if _plain_word(subject):
        return subject
    return _encoded(subject, "Subject")


def _decoded(body: str) -> str:
    """``body`` as a parser reads it back: the same text with CRLF line ends."""
    return _LINE_END.sub("\r\n", body)


def _encoded(value: str, name: str | None = None, *, phrase: bool = False) -> Header:
    """RFC 2047: plain ASCII words stay readable, each run of other words becomes encoded
    words (UTF-8; raw 8-bit bytes from surrogate escapes as ``unknown-8bit``), which the
    generator folds at most 75 characters long.  ``name`` is the header's, for the first
    line.  A display name (``phrase``) is encoded whole: its plain words could hold
    specials that would need quotes."""
    header = Header(header_name=name)
    runs = [(False, [value])] if phrase else itertools.groupby(value.split(" "), _plain_word)
    chunks = [(plain, " ".join(words)) for plain, words in runs]
    for i, (plain, text) in enumerate(chunks):
        if plain:  # the spaces beside encoded words, spelled out: Header drops some
            before, after = " " * (i > 0), " " * (i < len(chunks) - 1)
            header.append(before + text + after, "us-ascii")
            continue
        try:
            header.append(text, "utf-8")
        except UnicodeEncodeError:
            header.append(text.encode("utf-8", "surrogateescape"), "unknown-8bit")
    return header


def _plain_word(word: str) -> bool:
    """ASCII and nothing a mail program would decode (an encoded-word look-alike)."""
    return word.isascii() and "=?" not in word


def _mailbox(display_name: str, address: str) -> str:
    """``Name <address>``: the name quoted when it has specials, encoded when not ASCII."""
    _checked(display_name)
    if _plain_word(display_name):
        return formataddr((display_name, _checked(address)))
    words = _encoded(" ".join(display_name.split()), phrase=True).encode("\n", maxlinelen=75)
    return f"{' '.join(words.split())} <{_checked(address)}>"


def _ids(ids: str) -> str | Header:
    """Message ids as they are; a careless sender's non-ASCII ones as encoded words
    (useless for threading, but no reason to fail the reply)."""
    return _checked(ids) if ids.isascii() else _encoded(ids, "References")


def _recipient(to: str) -> str:
    """The To value: as given when ASCII, else re-formed with an encoded display name."""
    if to.isascii():
        return _checked(to)
    display_name, address = parseaddr(to)
    return _mailbox(display_name, address)


def _checked(value: str) -> str:
    """``value``, refused with a line break in it (header injection): compat32 does not."""
    if "\r" in value or "\n" in value:
        raise ValueError("Header values may not contain linefeed or carriage return characters")
    return value
