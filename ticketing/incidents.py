"""Incident records: opening one, finding one, listing them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from ticketing.errors import NotFoundError
from ticketing.models import AuditEvent, Incident, IncidentConsumer, Message, Producer, utcnow
from ticketing.numbering import INCIDENT_NUMBER, allocate_incident_number

__all__ = ["IncidentDetail", "get_incident", "incident_detail", "list_incidents", "open_incident"]


def open_incident(
    session: Session,
    *,
    type: str,
    team: str,
    mailbox: str,
    subject: str = "",
    producer_id: int | None = None,
    person_ids: Sequence[str] = (),
    when: datetime | None = None,
) -> Incident:
    """Create an incident with a fresh number, its consumers and an ``opened`` audit event."""
    when = when or utcnow()
    incident = Incident(
        number=allocate_incident_number(session, when),
        type=type,
        team=team,
        mailbox=mailbox,
        subject=subject,
        producer_id=producer_id,
        opened_at=when,
        updated_at=when,
    )
    session.add(incident)
    session.flush()
    assert incident.id is not None
    for person_id in dict.fromkeys(person_ids):
        session.add(IncidentConsumer(incident_id=incident.id, person_id=person_id))
    session.add(
        AuditEvent(
            incident_id=incident.id,
            kind="opened",
            created_at=when,
            detail={"type": type, "team": team, "mailbox": mailbox},
        )
    )
    return incident


def get_incident(session: Session, number: str) -> Incident:
    if not INCIDENT_NUMBER.fullmatch(number):
        raise NotFoundError(f"'{number}' is not an incident number (YYMMDD-NNNNNNN)")
    incident = session.exec(select(Incident).where(Incident.number == number)).first()
    if incident is None:
        raise NotFoundError(f"no incident {number}")
    return incident


def list_incidents(
    session: Session, *, status: str | None = None, limit: int = 50
) -> list[Incident]:
    query = select(Incident).order_by(col(Incident.opened_at).desc(), col(Incident.id).desc())
    if status:
        query = query.where(Incident.status == status)
    return list(session.exec(query.limit(limit)))


@dataclass(frozen=True)
class IncidentDetail:
    incident: Incident
    producer: Producer | None
    person_ids: list[str]
    messages: list[Message]
    events: list[AuditEvent]


def incident_detail(session: Session, number: str) -> IncidentDetail:
    incident = get_incident(session, number)
    consumers = session.exec(
        select(IncidentConsumer.person_id)
        .where(IncidentConsumer.incident_id == incident.id)
        .order_by(col(IncidentConsumer.id))
    )
    messages = session.exec(
        select(Message).where(Message.incident_id == incident.id).order_by(col(Message.received_at))
    )
    events = session.exec(
        select(AuditEvent).where(AuditEvent.incident_id == incident.id).order_by(col(AuditEvent.id))
    )
    producer = session.get(Producer, incident.producer_id) if incident.producer_id else None
    return IncidentDetail(incident, producer, list(consumers), list(messages), list(events))
