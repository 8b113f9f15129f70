"""The values that travel between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ticketing.store.models import utcnow

__all__ = [
    "Action",
    "GuardResult",
    "KeptAttachment",
    "Origin",
    "Outcome",
    "RawMessage",
    "Source",
]

Source = Literal["smtp", "pipe", "imap"]
# "sent": a caseworker's mail read from a shared mailbox's sent folder (outbound
# correspondence we did not send ourselves); "received": everything else.
Origin = Literal["received", "sent"]
Action = Literal[
    "recorded",
    "duplicate",
    "screened",
    "pii_rejected",
    "unknown_sender",
    "not_authorized",
    "unverified",
    "rate_limited",
]


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
    # The client that handed the message over (SMTP; the pipe when the MTA says), for
    # SPF and the trusted hosts of sender authentication; None when nobody knows.
    peer: str | None = None
    helo: str | None = None


@dataclass(frozen=True)
class KeptAttachment:
    """What may be stored of one attachment.

    ``disposition``: ``stored`` (the file as it came), ``stored_redacted`` (its text,
    redacted, as a text file: ``content`` holds it, ``filename`` ends in ``.txt``),
    ``dropped_unscannable`` or ``dropped_pii`` (listed, no content).  ``filename`` is
    redacted like text.  ``size`` and ``sha256`` are those of ``content`` when there is
    one, else of the file as it came.
    """

    disposition: str
    filename: str
    content_type: str
    size: int
    sha256: str
    content: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class GuardResult:
    """The PII guard's verdict: what may be stored, and what kinds of data were found."""

    action: Literal["pass", "redact", "reject"]
    subject: str
    text: str
    new_text: str
    counts: dict[str, int] = field(default_factory=dict)
    # per attachment, in order: what may be stored of it (all of them, "stored", when
    # the guard did not look)
    attachments: tuple[KeptAttachment, ...] = ()
    # the message's recipients as they may be stored (addresses and +tags redacted);
    # None: the guard did not look, store them as they came
    recipients: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Outcome:
    """What intake did with a message; adapters turn it into an SMTP reply or exit code."""

    action: Action
    message_row_id: int | None
    incident_number: str | None = None
    new_incident: bool = False
    kind: str = "normal"
    reason: str = ""
