"""A redact mailbox read over IMAP: the original in the inbox is replaced by its desk copy.

Under ``pii_policy = "redact"`` the database keeps a producer's message without
the consumer data the guard found; moving the original to the processed folder
would leave that data in the shared mailbox for every caseworker to read.  So
when the message's desk copy goes to this mailbox's own desk folder, the poller
delivers it itself, right after the commit, and then removes the original:

1. claim the copy's outbox row (``pending`` → ``sending``, with a lease), as the
   dispatcher would;
2. APPEND it unless the desk folder already holds its Message-ID;
3. mark the row ``sent``;
4. expunge the original from the inbox.

A crash anywhere leaves at most both, never neither: the original stays in the
inbox until the copy is there, and a re-fetched original is a duplicate whose
copy is found ``sent`` (only the removal is left), not composed yet (a process
killed after the commit: ``compose_orphans`` composes it) or still held by a
lease (a killed poller's runs out in 30 seconds): the original waits a round.
The copy's row is due for the dispatcher only a minute after composing
(``desk_copies.POLLER_FIRST``), so the two rarely meet;
when they do, the Message-ID search keeps one copy.  A copy that is not this
mailbox's to deliver (routed to another team's mailbox) or could not be
composed leaves the original to the processed folder, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, OutboxMessage, table_of

__all__ = ["HeldCopy", "finish_desk_copy", "take_desk_copy"]

_TABLE = table_of(OutboxMessage)
# Long enough for one APPEND, so the dispatcher keeps off; short, since a poller killed
# while holding a claim leaves its original in the inbox until the lease runs out.
_LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class HeldCopy:
    """A desk copy this poller claimed: deliver it, then ``finish_desk_copy``."""

    outbox_id: int
    attempts: int
    message_id: str
    mime: bytes


Taken = HeldCopy | Literal["delivered", "busy", "elsewhere"]


def take_desk_copy(engine: Engine, message_row_id: int, recipient: str, now: datetime) -> Taken:
    """The desk copy of ``message_row_id`` for this poller to deliver (claimed), or why not:
    ``delivered`` (already in the desk folder), ``busy`` (another process holds it; try next
    round), ``elsewhere`` (not ours to deliver, or nothing to deliver)."""
    with transaction(engine) as session:
        row = _copy_of(session, message_row_id, recipient)
        if row is None or row.id is None:
            return "elsewhere"
        if row.status == "sent":
            return "delivered"
        if row.status == "composing" or (row.status == "sending" and row.next_attempt_at > now):
            return "busy"  # not composed yet (its process died: the daemon composes it), held
        if row.status not in ("pending", "sending"):
            return "elsewhere"  # failed, bounced: the original goes to the processed folder
        claimed = session.execute(  # as the dispatcher claims: pending, or a lease run out
            update(_TABLE)
            .where(
                _TABLE.c.id == row.id,
                _TABLE.c.status == row.status,
                _TABLE.c.attempts == row.attempts,
            )
            .values(status="sending", attempts=_TABLE.c.attempts + 1, next_attempt_at=now + _LEASE)
        )
        if not getattr(claimed, "rowcount", 0):
            return "busy"
        return HeldCopy(row.id, row.attempts + 1, row.message_id, row.mime)


def finish_desk_copy(engine: Engine, held: HeldCopy, now: datetime) -> None:
    """Record the copy delivered (unless its lease was lost meanwhile)."""
    with transaction(engine) as session:
        session.execute(
            update(_TABLE)
            .where(
                _TABLE.c.id == held.outbox_id,
                _TABLE.c.status == "sending",
                _TABLE.c.attempts == held.attempts,
            )
            .values(status="sent", sent_at=now, last_error=None)
        )


def _copy_of(session: Session, message_row_id: int, recipient: str) -> OutboxMessage | None:
    """The outbox row of a message's desk copy to ``recipient``: named by the audit event
    that ordered it (an assignee may have a copy of their own)."""
    details = session.exec(
        select(AuditEvent.detail)
        .where(AuditEvent.kind == "desk_copy_queued", AuditEvent.message_row_id == message_row_id)
        .order_by(col(AuditEvent.id))
    ).all()
    for detail in details:
        outbox_id = detail.get("outbox_id") if isinstance(detail, dict) else None
        row = session.get(OutboxMessage, outbox_id) if isinstance(outbox_id, int) else None
        if row is not None and row.kind == "desk_copy" and row.to_address == recipient:
            return row
    return None
