"""The sweep: fire what is due, each warning and escalation exactly once.

Due incidents are found through the indexed ``sla_next_at`` column and
claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (several daemons sweep
at once, none takes another's rows); SQLite's write lock serialises sweeps.
The stage change is written in the same transaction as the notices' outbox
rows, so a notice exists if and only if its stage was entered; a batch is
planned in Python and applied with one executemany UPDATE and one INSERT.
After downtime the sweep catches up: a stale warning is skipped when the
breach is already due, and every escalation level still fires once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from ticketing.db import transaction
from ticketing.models import AuditEvent, Incident
from ticketing.sla.clocks import SlaClocks

__all__ = ["DueAction", "NoticeSink", "due_actions", "sweep"]

_NOTICE_GRACE = timedelta(minutes=15)
_STAGES = ("running", "warning", "breach", "level2")


class NoticeSink(Protocol):
    def notify(self, session: Session, incident: Incident, stage: str, now: datetime) -> None:
        """Queue the internal notice for ``stage`` (``warning``, ``breach``, ``level2``)."""
        ...


@dataclass(frozen=True)
class DueAction:
    incident_number: str
    stage: str
    due_at: datetime | None


def _target_stage(incident: Incident, now: datetime) -> int:
    thresholds = (incident.sla_warn_at, incident.sla_due_at, incident.sla_level2_at)
    return sum(1 for t in thresholds if t is not None and t <= now)


def due_actions(session: Session, now: datetime, limit: int = 1000) -> list[DueAction]:
    """What a sweep at ``now`` would fire, changing nothing (``ticketd sla check``)."""
    rows = session.exec(_due_query(now, limit)).all()
    actions: list[DueAction] = []
    for incident in rows:
        for stage in _entered(incident.sla_stage, _target_stage(incident, now)):
            actions.append(DueAction(incident.number, stage, incident.sla_due_at))
    return actions


def _due_query(now: datetime, limit: int) -> SelectOfScalar[Incident]:
    return (
        select(Incident)
        .where(col(Incident.sla_next_at).is_not(None), col(Incident.sla_next_at) <= now)
        .order_by(col(Incident.sla_next_at))
        .limit(limit)
    )


def _entered(old: int, new: int) -> list[str]:
    """Stages to announce going from ``old`` to ``new``: a warning overtaken by the
    breach is not sent."""
    stages = [_STAGES[s] for s in range(old + 1, new + 1)]
    return [s for s in stages if not (s == "warning" and new > 1)]


def sweep(
    engine: Engine, clocks: SlaClocks, sink: NoticeSink, now: datetime, batch: int = 2000
) -> int:
    """Fire everything due at ``now``; returns the number of notices queued."""
    fired = 0
    while True:
        with transaction(engine) as session, session.no_autoflush:
            # no autoflush: the batch's outbox rows go out in one flush at commit
            claimed = session.exec(_due_query(now, batch).with_for_update(skip_locked=True)).all()
            in_hours = _notice_hours(clocks, now)
            plans = [_plan(clocks, incident, now, in_hours) for incident in claimed]
            _apply(session, plans, now)
            for plan in plans:
                for stage in plan.stages:
                    sink.notify(session, plan.incident, stage, now)
                fired += len(plan.stages)
        if len(claimed) < batch:
            return fired


@dataclass(frozen=True)
class _Plan:
    incident: Incident
    stage: int
    next_at: datetime | None
    priority: str
    stages: tuple[str, ...]


def _plan(clocks: SlaClocks, incident: Incident, now: datetime, in_hours: bool) -> _Plan:
    """What the sweep does to one claimed incident (pure: nothing written yet)."""
    if clocks.config.notices_in_business_hours_only and not in_hours:
        return _Plan(
            incident, incident.sla_stage, clocks.calendar.next_open(now), incident.priority, ()
        )
    new = _target_stage(incident, now)
    thresholds = (incident.sla_warn_at, incident.sla_due_at, incident.sla_level2_at)
    raise_priority = new >= 2 and clocks.policy_of(incident).raise_priority_on_breach
    return _Plan(
        incident,
        new,
        thresholds[new] if new < len(thresholds) else None,
        "high" if raise_priority else incident.priority,
        tuple(_entered(incident.sla_stage, new)),
    )


def _apply(session: Session, plans: list[_Plan], now: datetime) -> None:
    """The batch's stage changes and audit events, as two statements.  The rows were
    claimed under lock (``FOR UPDATE SKIP LOCKED``; SQLite's single writer), so what
    was read is what is changed: no other sweeper can hold them meanwhile."""
    if not plans:
        return
    table = Incident.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    connection.execute(
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values(
            sla_stage=bindparam("_stage"),
            sla_next_at=bindparam("_next"),
            priority=bindparam("_priority"),
        ),
        [
            {"_id": p.incident.id, "_stage": p.stage, "_next": p.next_at, "_priority": p.priority}
            for p in plans
        ],
    )
    events = [
        {
            "incident_id": p.incident.id,
            "kind": f"sla_{stage}",
            "actor": "system",
            "created_at": now,
            "detail": {"clock": p.incident.sla_clock},
        }
        for p in plans
        for stage in p.stages
    ]
    if events:
        connection.execute(insert(AuditEvent.__table__), events)  # type: ignore[attr-defined]


def _notice_hours(clocks: SlaClocks, now: datetime) -> bool:
    return clocks.calendar.between(now - _NOTICE_GRACE, now) > timedelta()
