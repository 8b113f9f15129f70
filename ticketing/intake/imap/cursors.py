"""Where a poller is in each folder: UIDVALIDITY and the highest UID handled.

A cursor moves forward only after the messages up to it are committed, so a
crash replays at most the last batch (and deduplication makes that a no-op).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from ticketing.store.db import transaction
from ticketing.store.models import MailboxCursor, utcnow

__all__ = ["Cursor", "load_cursor", "save_cursor"]


@dataclass(frozen=True)
class Cursor:
    uidvalidity: int
    last_uid: int
    updated_at: datetime


def load_cursor(engine: Engine, mailbox: str, folder: str) -> Cursor | None:
    with transaction(engine, readonly=True) as session:
        row = session.exec(
            select(MailboxCursor).where(
                MailboxCursor.mailbox == mailbox, MailboxCursor.folder == folder
            )
        ).first()
        if row is None:
            return None
        return Cursor(row.uidvalidity, row.last_uid, row.updated_at)


def save_cursor(engine: Engine, mailbox: str, folder: str, uidvalidity: int, last_uid: int) -> None:
    """Record the position (creating the cursor on first use)."""
    with transaction(engine) as session:
        row = session.exec(
            select(MailboxCursor).where(
                MailboxCursor.mailbox == mailbox, MailboxCursor.folder == folder
            )
        ).first()
        if row is None:
            row = MailboxCursor(mailbox=mailbox, folder=folder)
        row.uidvalidity, row.last_uid, row.updated_at = uidvalidity, last_uid, utcnow()
        session.add(row)
