"""Building the MIME message: headers that thread and stop loops, added by code.

Nothing here comes from a template except the subject and the bodies, so no
template edit can drop the Message-ID, the threading headers, the loop
markers or the ref token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from ticketing.message_ids import message_ids_in
from ticketing.replies.validate import has_token_line

__all__ = ["MailParts", "build_mime", "ensure_token", "thread_ids"]

MAX_REFERENCES = 20


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
    auto_submitted: str  # "auto-replied" | "auto-generated"


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
    """The message as bytes with CRLF line ends, ready for a relay or a maildir."""
    msg = EmailMessage(policy=SMTP)
    local, _, domain = parts.from_address.partition("@")
    msg["From"] = Address(display_name=parts.from_name, username=local, domain=domain)
    msg["To"] = parts.to
    msg["Subject"] = " ".join(parts.subject.split())
    msg["Date"] = format_datetime(parts.date)
    msg["Message-ID"] = parts.message_id
    parent, chain = thread_ids(parts.in_reply_to, parts.references)
    if parent is not None:
        msg["In-Reply-To"] = parent
    if chain:
        msg["References"] = " ".join(chain)
    msg["Auto-Submitted"] = parts.auto_submitted
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(parts.text, charset="utf-8", cte="quoted-printable")
    if parts.html is not None:
        msg.add_alternative(parts.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg.as_bytes()
