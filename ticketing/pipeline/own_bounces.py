"""What a bounce of our own mail changes: the outbox row and the address."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from mailer.screening import Screening
from ticketing.store.audit import audit
from ticketing.store.models import OutboxMessage, UndeliverableAddress

__all__ = ["note_bounce"]


def note_bounce(session: Session, screening: Screening, row_id: int, now: datetime) -> None:
    """Mark the bounced outbox row, and each failed recipient we had written to."""
    original = screening.original_message_id
    outbound = (
        session.exec(select(OutboxMessage).where(OutboxMessage.message_id == original)).first()
        if original
        else None
    )
    if outbound is not None:
        outbound.status = "bounced"
        outbound.last_error = f"bounced: {screening.reason}"[:500]
        session.add(outbound)
        audit(
            session,
            "outbound_bounced",
            incident_id=outbound.incident_id,
            message_row_id=row_id,
            detail={"outbox_id": outbound.id},
        )
    ours = set(
        session.exec(
            select(OutboxMessage.to_address).where(
                col(OutboxMessage.to_address).in_(screening.failed_recipients)
            )
        )
    )
    for address in sorted(ours):
        _mark_undeliverable(session, address, screening.reason, now)


def _mark_undeliverable(session: Session, address: str, reason: str, now: datetime) -> None:
    known = session.get(UndeliverableAddress, address)
    if known is None:
        session.add(
            UndeliverableAddress(
                address=address, reason=reason[:255], first_seen=now, last_seen=now
            )
        )
        return
    known.bounces += 1
    known.last_seen = now
    session.add(known)
