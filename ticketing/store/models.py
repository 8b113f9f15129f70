"""The tables.  Migrations in ``ticketing/store/migrations`` must match these exactly
(a test compares them with Alembic's autogenerate).

Message rows keep the *stored* (redacted) text and the PII finding types with
their counts — never the values found.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

__all__ = [
    "KEPT_ATTACHMENTS",
    "Attachment",
    "AuditEvent",
    "ConsoleSession",
    "ConsoleUser",
    "Incident",
    "IncidentConsumer",
    "IncidentCounter",
    "MailboxCursor",
    "Message",
    "OutboxMessage",
    "Producer",
    "UndeliverableAddress",
    "utcnow",
]


# Named constraints, so later migrations can alter them on SQLite (batch mode).
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def table_of(model: type[SQLModel]) -> Any:
    """The Core table of a table model, for plain INSERTs and UPDATEs (SQLModel does not
    type ``__table__``)."""
    return model.__table__  # type: ignore[attr-defined]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _when(*, index: bool = False, nullable: bool = False) -> Any:
    return Field(
        default_factory=utcnow if not nullable else None,
        sa_column=Column(UTCDateTime(), nullable=nullable, index=index),
    )


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Producer(SQLModel, table=True):
    """A licensed broker, known by NPN; the roster is imported from CSV."""

    __tablename__ = "producers"
    id: int | None = Field(default=None, primary_key=True)
    npn: str = Field(max_length=10, unique=True)
    name: str = Field(max_length=200)
    email: str = Field(max_length=254, unique=True)
    language: str = Field(default="en", max_length=8)
    # The producer's own phone numbers and agency: in their mail's signature they are
    # not consumers' data (the PII guard allows them for this sender).
    phones: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=text("'[]'")),
    )
    agency: str | None = Field(default=None, max_length=200)
    created_at: datetime = _when()
    updated_at: datetime = _when()


class IncidentCounter(SQLModel, table=True):
    """The last incident number handed out per New York calendar day."""

    __tablename__ = "incident_counters"
    day: str = Field(primary_key=True, max_length=6)
    last_value: int


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"
    # the desk queue (ticketing/desk/queue.py): every column its filters and its order read
    __table_args__ = (
        Index(
            "ix_incidents_queue",
            "team",
            "status",
            "sla_clock",
            "sla_due_at",
            "sla_warn_at",
            "sla_paused_at",
            "opened_at",
            "type",
            "priority",
            "assignee",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=14, unique=True)
    type: str = Field(max_length=32, index=True)
    status: str = Field(default="new", max_length=32, index=True)
    priority: str = Field(default="normal", max_length=16)
    team: str = Field(max_length=64)
    mailbox: str = Field(max_length=64)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    producer_id: int | None = Field(default=None, foreign_key="producers.id", index=True)
    merged_into_id: int | None = Field(default=None, foreign_key="incidents.id")
    linked_from_id: int | None = Field(default=None, foreign_key="incidents.id")
    assignee: str | None = Field(default=None, max_length=254)
    # the address whose message opened it (the new-incident limit counts by it)
    opened_by: str | None = Field(default=None, max_length=254, index=True)
    opened_at: datetime = _when(index=True)
    updated_at: datetime = _when()
    resolved_at: datetime | None = _when(nullable=True)
    closed_at: datetime | None = _when(nullable=True)
    # SLA clock (ticketing/sla): the running clock, its deadlines, and how far the
    # escalation has gone (0 running, 1 warned, 2 breached, 3 level 2).
    first_response_at: datetime | None = _when(nullable=True)
    sla_policy: str | None = Field(default=None, max_length=64)
    sla_clock: str | None = Field(default=None, max_length=16)
    sla_warn_at: datetime | None = _when(nullable=True)
    sla_due_at: datetime | None = _when(nullable=True)
    sla_level2_at: datetime | None = _when(nullable=True)
    sla_paused_at: datetime | None = _when(nullable=True)
    sla_stage: int = 0
    sla_next_at: datetime | None = _when(index=True, nullable=True)


class IncidentConsumer(SQLModel, table=True):
    """A consumer a case is about, by the exchange's Person ID (not PII)."""

    __tablename__ = "incident_consumers"
    __table_args__ = (UniqueConstraint("incident_id", "person_id"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    person_id: str = Field(max_length=32, index=True)


class Message(SQLModel, table=True):
    """One message, once, however many times or ways it arrived.

    ``dedup_key`` (Message-ID + a hash of the content without trace headers)
    makes ingest idempotent; ``mailboxes`` lists every mailbox it reached.
    ``kind`` is what screening found (``normal``, ``auto_reply``, ``bounce``,
    ``loop``, ``bulk``, ``feedback``, ``receipt``, ``report``, ``list``,
    ``challenge``: ``mailer/screening.py``), ``disposition`` what was done with it.
    """

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_dedup", "message_id", "raw_sha256"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    direction: str = Field(max_length=3)  # "in" | "out"
    mailbox: str = Field(max_length=64)
    mailboxes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    dedup_key: str = Field(max_length=64, unique=True)
    kind: str = Field(default="normal", max_length=16, index=True)
    disposition: str = Field(default="recorded", max_length=32)
    source: str = Field(default="smtp", max_length=8)  # smtp | pipe | imap
    message_id: str | None = Field(default=None, max_length=998)
    in_reply_to: str | None = Field(default=None, sa_column=Column(Text))
    references: str | None = Field(default=None, sa_column=Column(Text))
    sender: str = Field(default="", max_length=254)
    recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    new_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    size: int = 0
    raw_sha256: str = Field(max_length=64)
    pii_findings: dict[str, int] = _json()
    received_at: datetime = _when(index=True)
    # sender authentication (pipeline/authenticate.py): how the From: was vouched for
    # ("verified", "trusted_results", "trusted_host", "mailbox", "off") or "none", and
    # the Authentication-Results we stamped
    authentication: str = Field(default="none", max_length=32)
    authentication_results: str = Field(default="", sa_column=Column(Text, nullable=False))


# Attachment dispositions whose content is kept (what a caseworker can open).
KEPT_ATTACHMENTS = ("stored", "stored_redacted")


class Attachment(SQLModel, table=True):
    __tablename__ = "attachments"
    id: int | None = Field(default=None, primary_key=True)
    message_row_id: int = Field(foreign_key="messages.id", index=True)
    filename: str = Field(default="", max_length=255)
    content_type: str = Field(max_length=255)
    size: int
    sha256: str = Field(max_length=64)
    # stored (the file as it came) | stored_redacted (the PII guard's redacted text of it:
    # content, filename, type, size and hash are those of that text file) |
    # dropped_unscannable | dropped_pii | not_stored (content withheld by policy)
    disposition: str = Field(default="stored", max_length=32)
    content: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class OutboxMessage(SQLModel, table=True):
    """Mail to send, written in the transaction of the event that causes it.

    ``status``: ``composing`` (an intake reply ordered in the recording
    transaction: ``reply_order`` holds what composing it needs, and
    ``next_attempt_at`` is the lease of the process composing it, see
    ``ticketing.outbound.orders``) → ``pending`` → ``sending`` (claimed by a dispatcher until
    ``next_attempt_at``, a lease a crashed dispatcher lets run out) → ``sent``,
    or ``failed`` with a ``reason`` (``rejected``, ``expired``,
    ``undeliverable``); intake marks a sent row ``bounced`` when its bounce
    comes back.  A composed mail the outbound PII scan flags is ``withheld``
    (reason ``personal_data``, the kinds found in ``pii_findings``, no MIME kept):
    never sent, but visible to operators.  ``trigger_fingerprint`` is the hash of the inbound
    message that caused an auto-reply, so the same mail is never answered twice.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_recipient_recent", "to_address", "created_at"),
        # the daily unknown_sender replies over all addresses (outbound/policy.py)
        Index("ix_outbox_kind_recent", "kind", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    kind: str = Field(max_length=32)
    to_address: str = Field(max_length=254)
    mail_from: str = Field(default="", max_length=254)
    message_id: str = Field(max_length=998, unique=True)
    mime: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    trigger_fingerprint: str | None = Field(default=None, max_length=64)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = _when()
    expires_at: datetime = _when()
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    reason: str | None = Field(default=None, max_length=32)
    created_at: datetime = _when()
    sent_at: datetime | None = _when(nullable=True)
    reply_order: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    # A ``withheld`` mail: the kinds of personal data the outbound scan found, and how
    # many of each (its content is not kept).
    pii_findings: dict[str, int] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )


class AuditEvent(SQLModel, table=True):
    """What happened and why, for people; ``detail`` holds ids and reasons, never PII."""

    __tablename__ = "audit_events"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    message_row_id: int | None = Field(default=None, foreign_key="messages.id")
    kind: str = Field(max_length=64, index=True)
    actor: str = Field(default="system", max_length=254)
    detail: dict[str, Any] = _json()
    created_at: datetime = _when(index=True)


class UndeliverableAddress(SQLModel, table=True):
    """An address our mail bounced from: no more auto-replies go there."""

    __tablename__ = "undeliverable_addresses"
    address: str = Field(primary_key=True, max_length=254)
    reason: str = Field(default="", max_length=255)
    bounces: int = 1
    first_seen: datetime = _when()
    last_seen: datetime = _when()


class MailboxCursor(SQLModel, table=True):
    """Where an IMAP poller is in a folder: UIDVALIDITY and the last UID handled."""

    __tablename__ = "mailbox_cursors"
    __table_args__ = (UniqueConstraint("mailbox", "folder"),)
    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(max_length=64)
    folder: str = Field(max_length=255)
    uidvalidity: int = Field(default=0, sa_type=BigInteger)
    last_uid: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = _when()


class ConsoleUser(SQLModel, table=True):
    """A person who signs in to the console: one of the staff directory's people.

    ``password_hash`` is argon2 (``ticketing.desk.accounts``); empty for a person who
    signs in only through the trusted SSO proxy.  Disabled accounts keep their row,
    so the audit trail still names them.
    """

    __tablename__ = "console_users"
    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=254, unique=True)
    name: str = Field(max_length=200)
    role: str = Field(default="caseworker", max_length=16)
    team: str | None = Field(default=None, max_length=64)
    password_hash: str | None = Field(default=None, max_length=255)
    disabled: bool = False
    created_at: datetime = _when()
    updated_at: datetime = _when()


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random token, this row its SHA-256, so a
    copy of the database signs nobody in.  Every instance reads the same rows."""

    __tablename__ = "console_sessions"
    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="console_users.id", index=True)
    csrf: str = Field(max_length=64)
    created_at: datetime = _when()
    last_seen_at: datetime = _when()
    expires_at: datetime = _when(index=True)
