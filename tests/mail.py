"""Building test messages the way a mail client would."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid


def make_mail(
    *,
    sender: str = "Sam Amsung <sam@brokers.example>",
    to: str = "escalations@exchange.example",
    subject: str = "Escalated Case: Enrollment.PID #:174097",
    body: str = "My client cannot complete enrollment.\n\nThanks,\nSam",
    message_id: str | None = "auto",
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    if message_id == "auto":
        message["Message-ID"] = make_msgid(domain="brokers.example")
    elif message_id:
        message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    for filename, content_type, payload in attachments or []:
        maintype, subtype = content_type.split("/")
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=policy.SMTP)  # CRLF, as a mail client sends it
