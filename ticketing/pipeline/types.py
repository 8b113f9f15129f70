"""The values that travel between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ticketing.errors import TicketdError
from ticketing.models import Producer, utcnow

__all__ = [
    "Action",
    "GuardResult",
    "Identity",
    "Origin",
    "Outcome",
    "PermanentRejection",
    "RawMessage",
    "Source",
]

Source = Literal["smtp", "pipe", "imap"]
# "sent": a caseworker's mail read from a shared mailbox's sent folder (outbound
# correspondence we did not send ourselves); "received": everything else.
Origin = Literal["received", "sent"]
Action = Literal[
    "recorded", "duplicate", "screened", "pii_rejected", "unknown_sender", "not_authorized"
]


class PermanentRejection(TicketdError):
    """This message can never be accepted (SMTP 5xx, pipe exit 65); the reason says why."""

    def __init__(self, reason: str, smtp_status: str = "554 5.6.0") -> None:
        super().__init__(reason)
        self.smtp_status = smtp_status


@dataclass(frozen=True)
class RawMessage:
    """A message as an intake adapter received it; adapters know nothing else."""

    raw: bytes = field(repr=False)
    source: Source
    mailboxes: tuple[str, ...]
    envelope_from: str | None = None
    recipients: tuple[str, ...] = ()
    received_at: datetime = field(default_factory=utcnow)
    origin: Origin = "received"


@dataclass(frozen=True)
class Identity:
    """Who wrote: a producer from the roster, a caseworker (staff), or an unknown address."""

    address: str | None
    producer_id: int | None = None
    name: str = ""
    language: str = "en"
    is_staff: bool = False
    # the roster row identify read (not attached to any session): replies name the producer
    producer: Producer | None = field(default=None, compare=False, repr=False)

    @property
    def is_producer(self) -> bool:
        return self.producer_id is not None


@dataclass(frozen=True)
class GuardResult:
    """The PII guard's verdict: what may be stored, and what kinds of data were found."""

    action: Literal["pass", "redact", "reject"]
    subject: str
    text: str
    new_text: str
    counts: dict[str, int] = field(default_factory=dict)
    # per attachment, in order: "stored" or why it was not (e.g. "dropped_unscannable")
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What intake did with a message; adapters turn it into an SMTP reply or exit code."""

    action: Action
    message_row_id: int | None
    incident_number: str | None = None
    new_incident: bool = False
    kind: str = "normal"
    reason: str = ""
