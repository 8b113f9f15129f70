"""Telling the producer their incident is resolved, whoever resolved it.

A caseworker resolves by writing the resolution marker, an operator with
``ticketd incidents resolve``, a caseworker by moving the conversation into
a state folder: each of these, and only a move *into* ``resolved``, orders
one ``resolved`` mail in the transaction that moved the incident.  Reopened
and resolved again, the incident is mailed about again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from ticketing.incidents.parties import Identity
from ticketing.outbound.sinks import ReplyOrder, ReplySink
from ticketing.store.models import Incident, Message, Producer

__all__ = ["correspondent", "order_resolution_mail"]

_LATEST = (
    select(Message.message_id, Message.references)
    .where(Message.incident_id == bindparam("incident"), col(Message.message_id).is_not(None))
    .order_by(col(Message.received_at).desc(), col(Message.id).desc())
    .limit(1)
)
_OPENER = (
    select(Message.sender)
    .where(Message.incident_id == bindparam("incident"), Message.direction == "in")
    .order_by(col(Message.id))
    .limit(1)
)


def order_resolution_mail(
    session: Session, replies: ReplySink, incident: Incident, when: datetime
) -> bool:
    """Order the ``resolved`` mail to the incident's producer (or, on an incident an
    accepted stranger opened, to them), threaded under the conversation's latest mail;
    ``False`` when there is no one to tell or a rule held it back (audited)."""
    identity = correspondent(session, incident)
    if identity is None:
        return False
    parent, references = _thread(session, incident)
    order = ReplyOrder(
        "resolved", identity, incident.team, incident, in_reply_to=parent, references=references
    )
    return replies.queue(session, order, when)


def correspondent(session: Session, incident: Incident) -> Identity | None:
    """Who mail about ``incident`` goes to: its producer, else the stranger who opened it."""
    producer = session.get(Producer, incident.producer_id) if incident.producer_id else None
    if producer is not None:
        return Identity(
            producer.email, producer.id, producer.name, producer.language, producer=producer
        )
    opener = session.exec(_OPENER, params={"incident": incident.id}).first()
    return Identity(opener) if opener else None


def _thread(session: Session, incident: Incident) -> tuple[str | None, tuple[str, ...]]:
    """The latest recorded mail of the conversation: the parent, and the chain to it."""
    latest = session.exec(_LATEST, params={"incident": incident.id}).first()
    if latest is None:
        return None, ()
    message_id, references = latest
    return message_id, (*(references or "").split(), *([message_id] if message_id else []))
