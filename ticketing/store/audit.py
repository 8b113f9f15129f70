"""Audit events, written together with one INSERT when their transaction commits.

A recorded message writes four or five audit events.  As ORM objects each one
is an object to build and a unit-of-work entry to flush, inside the writers'
turn.  ``audit`` keeps them as plain rows on the session instead, and just
before the commit they are inserted with one executemany: for a worker's
batch of messages, one statement.  Nothing reads audit events in the
transaction that writes them; they become visible with the commit, as before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.orm import Session

from ticketing.store.models import AuditEvent, table_of, utcnow
from ticketing.store.storable import fit_row

__all__ = ["audit"]

_PENDING = "ticketd.audit_events"
_TABLE = table_of(AuditEvent)


def audit(
    session: Session,
    kind: str,
    *,
    incident_id: int | None = None,
    message_row_id: int | None = None,
    actor: str = "system",
    detail: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> None:
    """Add an audit event to ``session``'s transaction; ``detail`` holds ids and reasons,
    never personal data."""
    pending: list[dict[str, Any]] = session.info.setdefault(_PENDING, [])
    pending.append(
        {
            "incident_id": incident_id,
            "message_row_id": message_row_id,
            "kind": kind,
            "actor": actor,
            "detail": detail or {},
            "created_at": created_at or utcnow(),
        }
    )


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:  # an actor is often a sender's address: fitted to the column, as any value
        session.execute(insert(_TABLE), [fit_row(_TABLE, row) for row in pending])


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
