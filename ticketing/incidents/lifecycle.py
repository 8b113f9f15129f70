"""Incident states and the moves between them, each one an audit event.

    new -> open -> awaiting_producer -> open ... -> resolved -> closed

A caseworker's reply sets ``awaiting_producer`` (or ``resolved`` with the
resolution marker); a producer's reply sets ``open`` again, and reopens a
resolved incident within ``[lifecycle] reopen_days``.  After that, or once
closed, a producer's reply opens a new incident linked to the old one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from ticketing.errors import InvalidTransitionError
from ticketing.sla.clocks import SlaClocks
from ticketing.store.audit import audit
from ticketing.store.models import Incident

__all__ = [
    "ACTIVE",
    "STATUSES",
    "InvalidTransitionError",
    "may_reopen",
    "transition",
]

STATUSES = ("new", "open", "awaiting_producer", "resolved", "closed")
ACTIVE = ("new", "open", "awaiting_producer")
_ALLOWED: dict[str, set[str]] = {
    "new": {"open", "awaiting_producer", "resolved", "closed"},
    "open": {"awaiting_producer", "resolved", "closed"},
    "awaiting_producer": {"open", "resolved", "closed"},
    "resolved": {"open", "closed"},
    "closed": {"open"},  # only by an operator: producers' mail opens a linked incident
}


def transition(
    session: Session,
    incident: Incident,
    to: str,
    *,
    actor: str,
    reason: str,
    when: datetime,
    clocks: SlaClocks | None = None,
) -> bool:
    """Move ``incident`` to ``to`` (audited, and its SLA clocks told); ``False`` when it
    is there already."""
    if incident.status == to:
        return False
    old = incident.status
    if to not in _ALLOWED.get(incident.status, set()):
        raise InvalidTransitionError(f"incident {incident.number} is {incident.status}, not {to}")
    audit(
        session,
        "status_changed",
        incident_id=incident.id,
        actor=actor,
        created_at=when,
        detail={"from": incident.status, "to": to, "reason": reason},
    )
    incident.status = to
    incident.updated_at = when
    incident.resolved_at = when if to == "resolved" else incident.resolved_at
    incident.closed_at = when if to == "closed" else None
    if clocks is not None:
        clocks.on_transition(session, incident, old, to, when)
    session.add(incident)
    return True


def may_reopen(incident: Incident, when: datetime, reopen_days: int) -> bool:
    """A producer's reply reopens a resolved incident only within the reopen window."""
    if incident.status != "resolved" or incident.resolved_at is None:
        return False
    return when - incident.resolved_at <= timedelta(days=reopen_days)
