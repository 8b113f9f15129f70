"""Telling a caseworker an incident is theirs: what it is, why, and when it is due."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from ticketing.config.desk_schema import StaffPerson
from ticketing.incidents.parties import Identity
from ticketing.outbound.sinks import ReplyOrder, ReplySink
from ticketing.store.models import Incident

__all__ = ["order_assignment_notice"]


def order_assignment_notice(
    session: Session,
    replies: ReplySink,
    incident: Incident,
    assignee: StaffPerson,
    why: str,
    when: datetime,
) -> bool:
    """Order the ``assigned`` notice to ``assignee`` (internal: only the undeliverable rule
    applies); ``False`` when it was held back (audited)."""
    identity = Identity(assignee.address, name=assignee.name, is_staff=True, authenticated=True)
    extra: dict[str, object] = {
        "assignee_name": assignee.name,
        "why": why,
        "due_at": incident.sla_due_at or "no clock running",
    }
    order = ReplyOrder("assigned", identity, incident.team, incident, extra)
    return replies.queue(session, order, when)
