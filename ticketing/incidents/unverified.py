"""The queue of unverified mail: messages recorded but attached to nothing.

Mail whose sender could not be authenticated (``pipeline/authenticate.py``), and a
sender's new incidents past the hourly limit, wait here for staff.  A caseworker
who knows the message is genuine (a producer whose domain publishes nothing, mail
forwarded on the way) attaches it by hand: audited, and nothing is mailed.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from ticketing.errors import InvalidTransitionError, NotFoundError
from ticketing.incidents.records import get_incident
from ticketing.store.audit import audit
from ticketing.store.models import Incident, Message, utcnow

__all__ = ["HELD", "attach_message", "unverified_messages"]

# The dispositions of mail that waits for staff.
HELD = ("unverified", "rate_limited")


def unverified_messages(session: Session, limit: int) -> list[Message]:
    """The messages waiting for staff, newest first."""
    statement = (
        select(Message)
        .where(col(Message.disposition).in_(HELD), col(Message.incident_id).is_(None))
        .order_by(col(Message.id).desc())
        .limit(limit)
    )
    return list(session.exec(statement))


def attach_message(session: Session, message_id: int, number: str, actor: str) -> Incident:
    """Attach a waiting message to incident ``number`` (its state and clock unchanged)."""
    message = session.get(Message, message_id)
    if message is None:
        raise NotFoundError(f"no message {message_id}")
    if message.incident_id is not None or message.disposition not in HELD:
        raise InvalidTransitionError(
            f"message {message_id} is not waiting to be attached ({message.disposition})"
        )
    incident = get_incident(session, number)
    held = message.disposition
    message.incident_id = incident.id
    message.disposition = "attached_by_staff"
    incident.updated_at = utcnow()
    session.add_all([message, incident])
    audit(
        session,
        "message_attached",
        incident_id=incident.id,
        message_row_id=message.id,
        actor=actor,
        detail={"was": held, "sender": message.sender},
    )
    return incident
