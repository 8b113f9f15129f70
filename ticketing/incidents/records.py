"""Incident records: opening one, finding one, listing them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import insert
from sqlalchemy.orm import QueryableAttribute, defer
from sqlalchemy.orm.interfaces import LoaderOption
from sqlmodel import Session, col, select

from ticketing.errors import InvalidTransitionError, NotFoundError
from ticketing.incidents.lifecycle import transition
from ticketing.incidents.numbering import INCIDENT_NUMBER, allocate_incident_number
from ticketing.sla.clocks import SlaClocks
from ticketing.store.audit import audit
from ticketing.store.models import (
    Attachment,
    AuditEvent,
    Incident,
    IncidentConsumer,
    Message,
    OutboxMessage,
    Producer,
    table_of,
    utcnow,
)

__all__ = [
    "IncidentDetail",
    "assign_incident",
    "get_incident",
    "incident_detail",
    "list_incidents",
    "merge_incidents",
    "move_incident",
    "open_incident",
]


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
    priority: str = "normal",
    opened_by: str | None = None,
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
        priority=priority,
        opened_by=opened_by,
        opened_at=when,
        updated_at=when,
    )
    session.add(incident)
    session.flush()
    assert incident.id is not None
    consumers = [{"incident_id": incident.id, "person_id": p} for p in dict.fromkeys(person_ids)]
    if consumers:  # plain rows, nothing changes them later: no unit-of-work entries
        session.execute(insert(table_of(IncidentConsumer)), consumers)
    audit(
        session,
        "opened",
        incident_id=incident.id,
        created_at=when,
        detail={"type": type, "team": team, "mailbox": mailbox},
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
    """An incident with everything a caseworker reads about it.

    ``attachments`` maps a message row id to its attachments (metadata only: the
    content is never loaded); ``replies`` are the incident's outbox rows, oldest first,
    without their MIME (what a caseworker reads is what was stored and why a reply
    went or did not; mail bodies are the outbox's business).
    """

    incident: Incident
    producer: Producer | None
    person_ids: list[str]
    messages: list[Message]
    events: list[AuditEvent]
    linked_from: str | None = None
    merged_into: str | None = None
    attachments: dict[int, list[Attachment]] = field(default_factory=dict)
    replies: list[OutboxMessage] = field(default_factory=list)


def incident_detail(session: Session, number: str) -> IncidentDetail:
    incident = get_incident(session, number)
    assert incident.id is not None
    consumers = session.exec(
        select(IncidentConsumer.person_id)
        .where(IncidentConsumer.incident_id == incident.id)
        .order_by(col(IncidentConsumer.id))
    )
    messages = session.exec(
        select(Message)
        .where(Message.incident_id == incident.id)
        .order_by(col(Message.received_at), col(Message.id))
    )
    events = session.exec(
        select(AuditEvent).where(AuditEvent.incident_id == incident.id).order_by(col(AuditEvent.id))
    )
    producer = session.get(Producer, incident.producer_id) if incident.producer_id else None
    return IncidentDetail(
        incident,
        producer,
        list(consumers),
        list(messages),
        list(events),
        linked_from=_number_of(session, incident.linked_from_id),
        merged_into=_number_of(session, incident.merged_into_id),
        attachments=_attachments_of(session, incident.id),
        replies=_replies_of(session, incident.id),
    )


def _attachments_of(session: Session, incident_id: int) -> dict[int, list[Attachment]]:
    """The attachments of the incident's messages, by message row id."""
    found: dict[int, list[Attachment]] = {}
    rows = session.exec(
        select(Attachment)
        .options(_never_loaded(Attachment.content))
        .join(Message, col(Message.id) == col(Attachment.message_row_id))
        .where(Message.incident_id == incident_id)
        .order_by(col(Attachment.id))
    )
    for row in rows:
        found.setdefault(row.message_row_id, []).append(row)
    return found


def _never_loaded(column: object) -> LoaderOption:
    """Leave a column out, and raise if anything reads it later: the detail is for
    showing, and an attachment's bytes or a mail's MIME have no business there.
    (SQLModel types class attributes as their values; ``defer`` wants the attribute.)"""
    return defer(cast("QueryableAttribute[Any]", column), raiseload=True)


def _replies_of(session: Session, incident_id: int) -> list[OutboxMessage]:
    return list(
        session.exec(
            select(OutboxMessage)
            .options(_never_loaded(OutboxMessage.mime), _never_loaded(OutboxMessage.reply_order))
            .where(OutboxMessage.incident_id == incident_id)
            .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
        )
    )


def _number_of(session: Session, incident_id: int | None) -> str | None:
    other = session.get(Incident, incident_id) if incident_id else None
    return other.number if other else None


def assign_incident(
    session: Session, number: str, assignee: str, actor: str, clocks: SlaClocks | None = None
) -> Incident:
    """Give the incident to a caseworker; a new incident becomes open."""
    incident = get_incident(session, number)
    when = utcnow()
    audit(
        session,
        "assigned",
        incident_id=incident.id,
        actor=actor,
        created_at=when,
        detail={"from": incident.assignee, "to": assignee},
    )
    incident.assignee = assignee
    if incident.status == "new":
        transition(
            session, incident, "open", actor=actor, reason="assigned", when=when, clocks=clocks
        )
    session.add(incident)
    return incident


def merge_incidents(
    session: Session, number: str, into: str, actor: str, clocks: SlaClocks | None = None
) -> Incident:
    """Close ``number`` as merged into ``into``; later mail to it follows the merge."""
    source, target = get_incident(session, number), get_incident(session, into)
    if source.id == target.id or target.merged_into_id is not None:
        raise InvalidTransitionError(f"cannot merge {number} into {into}")
    when = utcnow()
    source.merged_into_id = target.id
    if source.status != "closed":
        transition(
            session,
            source,
            "closed",
            actor=actor,
            reason=f"merged into {into}",
            when=when,
            clocks=clocks,
        )
    for incident, other in ((source, into), (target, number)):
        audit(
            session,
            "merged",
            incident_id=incident.id,
            actor=actor,
            created_at=when,
            detail={"other": other},
        )
    session.add(source)
    return target


def move_incident(
    session: Session,
    number: str,
    to: str,
    actor: str,
    reason: str,
    clocks: SlaClocks | None = None,
) -> Incident:
    """An operator's state change (resolve, reopen, close)."""
    incident = get_incident(session, number)
    moved = transition(
        session, incident, to, actor=actor, reason=reason, when=utcnow(), clocks=clocks
    )
    if not moved:
        raise InvalidTransitionError(f"incident {number} is already {to}")
    return incident
