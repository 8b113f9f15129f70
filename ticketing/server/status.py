"""What the desk looks like right now, read from the database.

One read-only snapshot serves ``ticketd status`` and the ``/metrics`` backlog
gauges.  It is computed from the database at the moment it is asked for, not
from counters kept in a process, so it is right however many instances share
the database and whichever of them answers.  It carries counts, times,
incident numbers and mailbox names only: never addresses or subjects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from ticketing.incidents.unverified import HELD
from ticketing.store.models import Incident, MailboxCursor, Message, OutboxMessage

__all__ = [
    "ImapCursor",
    "LastMessage",
    "NextSlaTimer",
    "OutboxBacklog",
    "StatusSnapshot",
    "read_status",
]

_WAITING = ("composing", "pending", "sending")
_NEXT_STAGE = ("warning", "breach", "level2")


@dataclass(frozen=True)
class OutboxBacklog:
    """Outbound mail not yet delivered (``pending`` or being sent), given up (``failed``),
    and kept back because the outbound scan found personal data in it (``withheld``)."""

    pending: int
    failed: int
    oldest_pending_at: datetime | None
    withheld: int = 0

    def oldest_pending_age(self, now: datetime) -> float | None:
        """Seconds the oldest undelivered mail has waited; ``None`` when none waits."""
        if self.oldest_pending_at is None:
            return None
        return max(0.0, (now - self.oldest_pending_at).total_seconds())


@dataclass(frozen=True)
class NextSlaTimer:
    incident_number: str
    stage: str
    at: datetime


@dataclass(frozen=True)
class LastMessage:
    received_at: datetime
    source: str
    mailbox: str
    direction: str
    incident_number: str | None


@dataclass(frozen=True)
class ImapCursor:
    """How far the IMAP poller of one mailbox folder has read, and when it last moved."""

    mailbox: str
    folder: str
    last_uid: int
    updated_at: datetime


@dataclass(frozen=True)
class StatusSnapshot:
    now: datetime
    incidents: dict[str, int]
    outbox: OutboxBacklog
    next_sla: NextSlaTimer | None
    last_message: LastMessage | None
    imap: tuple[ImapCursor, ...] = ()
    # mail recorded but attached to nothing until staff look (``incidents unverified``)
    unverified: int = 0


def incident_counts(session: Session) -> dict[str, int]:
    """Incidents by status (statuses with none are absent)."""
    rows = session.exec(select(Incident.status, func.count()).group_by(col(Incident.status))).all()
    return {status: int(count) for status, count in sorted(rows)}


def outbox_backlog(session: Session) -> OutboxBacklog:
    """Two look-ups on the status index (``ix_outbox_due``): cheap enough for every scrape."""
    waiting = col(OutboxMessage.status).in_(_WAITING)
    pending, oldest = session.exec(
        select(func.count(), func.min(OutboxMessage.created_at)).where(waiting)
    ).one()
    stopped = _counts_by_status(session, ("failed", "withheld"))
    return OutboxBacklog(
        int(pending), stopped.get("failed", 0), oldest, withheld=stopped.get("withheld", 0)
    )


def _counts_by_status(session: Session, statuses: tuple[str, ...]) -> dict[str, int]:
    status = col(OutboxMessage.status)
    rows = session.exec(
        select(status, func.count()).where(status.in_(statuses)).group_by(status)
    ).all()
    return {name: int(count) for name, count in rows}


def next_sla_timer(session: Session) -> NextSlaTimer | None:
    """The incident whose SLA stage changes next (the sweep's own index, ``sla_next_at``)."""
    incident = session.exec(
        select(Incident)
        .where(col(Incident.sla_next_at).is_not(None))
        .order_by(col(Incident.sla_next_at))
        .limit(1)
    ).first()
    if incident is None or incident.sla_next_at is None:
        return None
    stage = _NEXT_STAGE[min(incident.sla_stage, len(_NEXT_STAGE) - 1)]
    return NextSlaTimer(incident.number, stage, incident.sla_next_at)


def last_message(session: Session) -> LastMessage | None:
    row = session.exec(
        select(Message, Incident.number)
        .join(Incident, col(Message.incident_id) == col(Incident.id), isouter=True)
        .order_by(col(Message.received_at).desc(), col(Message.id).desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    message, number = row
    return LastMessage(
        message.received_at, message.source, message.mailbox, message.direction, number
    )


def imap_cursors(session: Session) -> tuple[ImapCursor, ...]:
    rows = session.exec(
        select(MailboxCursor).order_by(col(MailboxCursor.mailbox), col(MailboxCursor.folder))
    ).all()
    return tuple(ImapCursor(r.mailbox, r.folder, r.last_uid, r.updated_at) for r in rows)


def read_status(session: Session, now: datetime) -> StatusSnapshot:
    return StatusSnapshot(
        now=now,
        incidents=incident_counts(session),
        outbox=outbox_backlog(session),
        next_sla=next_sla_timer(session),
        last_message=last_message(session),
        imap=imap_cursors(session),
        unverified=waiting_for_staff(session),
    )


def waiting_for_staff(session: Session) -> int:
    """Messages in the queue of unverified mail (``ticketing/incidents/unverified.py``)."""
    statement = select(func.count()).where(
        col(Message.disposition).in_(HELD), col(Message.incident_id).is_(None)
    )
    return int(session.exec(statement).one())
