"""A team's queue: its incidents by status, type, priority and assignee, what is at risk first.

Order: breached (the SLA due time passed while the clock ran), then past the warning
time, then the other running clocks by due time, then paused clocks, then incidents with
no running clock; within each, the soonest due and the oldest first.  Fifty a page.

The risk is worked out in SQL, so ordering and paging stay in the database: the
``ix_incidents_queue`` index of migration 0011 holds every column the filters and the
order read, so a team's ten thousand open incidents are sorted without reading a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session

from ticketing.incidents.lifecycle import ACTIVE, STATUSES
from ticketing.store.models import Incident, Producer, table_of

__all__ = [
    "ACTIVE",
    "PAGE_SIZE",
    "PRIORITIES",
    "STATUSES",
    "UNASSIGNED",
    "QueueFilter",
    "QueuePage",
    "QueueRow",
    "Risk",
    "queue_page",
]

PAGE_SIZE = 50
PRIORITIES = ("high", "normal")  # what intake sets (ticketing/incidents/classify.py)
UNASSIGNED = "none"  # the assignee filter for incidents nobody holds (no address is "none")
Risk = Literal["breached", "at_risk", "ok", "paused"]
# The rank a row sorts by, and the risk each rank shows.
_RISKS: tuple[Risk, ...] = ("breached", "at_risk", "ok", "paused", "ok")


@dataclass(frozen=True)
class QueueFilter:
    """What a queue shows: one team, and the statuses, type, priority and assignee asked."""

    team: str
    statuses: tuple[str, ...] = ACTIVE
    type: str | None = None
    priority: str | None = None
    assignee: str | None = None  # an address, or UNASSIGNED
    page: int = 1


@dataclass(frozen=True)
class QueueRow:
    number: str
    subject: str
    type: str
    status: str
    priority: str
    team: str
    assignee: str | None
    producer: str | None  # the producer's name
    opened_at: datetime
    sla_due_at: datetime | None  # only while an SLA clock runs (or is paused)
    risk: Risk


@dataclass(frozen=True)
class QueuePage:
    rows: tuple[QueueRow, ...]
    page: int
    total: int
    page_size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def queue_page(session: Session, wanted: QueueFilter, now: datetime) -> QueuePage:
    """One page of ``wanted``'s queue as it stands at ``now``."""
    incidents = table_of(Incident)
    where = _conditions(incidents, wanted)
    total = session.execute(select(func.count()).select_from(incidents).where(*where)).scalar()
    page = max(1, wanted.page)
    found = session.execute(_rows_query(incidents, where, now, page)).all()
    return QueuePage(tuple(_row(found_row) for found_row in found), page, int(total or 0))


def _conditions(incidents: Any, wanted: QueueFilter) -> list[ColumnElement[bool]]:
    where = [incidents.c.team == wanted.team, incidents.c.status.in_(wanted.statuses)]
    if wanted.type:
        where.append(incidents.c.type == wanted.type)
    if wanted.priority:
        where.append(incidents.c.priority == wanted.priority)
    if wanted.assignee == UNASSIGNED:
        where.append(incidents.c.assignee.is_(None))
    elif wanted.assignee:
        where.append(incidents.c.assignee == wanted.assignee)
    return where


def _risk_rank(incidents: Any, now: datetime) -> ColumnElement[int]:
    """0 breached, 1 past the warning, 2 running, 3 paused, 4 no running clock.

    A paused clock is breached only if its due time passed before it was paused."""
    c = incidents.c
    breached = or_(
        and_(c.sla_paused_at.is_(None), c.sla_due_at <= now), c.sla_due_at <= c.sla_paused_at
    )
    return case(
        (or_(c.sla_clock.is_(None), c.sla_due_at.is_(None)), 4),
        (breached, 0),
        (c.sla_paused_at.is_not(None), 3),
        (c.sla_warn_at <= now, 1),
        else_=2,
    )


def _rows_query(
    incidents: Any, where: list[ColumnElement[bool]], now: datetime, page: int
) -> Select[Any]:
    """The page's rows: its ids chosen from the index alone (it holds every column the
    filters and the order read), then those fifty rows read and ordered again."""
    c = incidents.c
    order = (_risk_rank(incidents, now), c.sla_due_at, c.opened_at, c.id)
    chosen = (
        select(c.id).where(*where).order_by(*order).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    )
    producers = table_of(Producer)
    columns = (c.number, c.subject, c.type, c.status, c.priority, c.team, c.assignee)
    return (
        select(*columns, producers.c.name, c.opened_at, c.sla_due_at, order[0].label("rank"))
        .select_from(incidents.outerjoin(producers, producers.c.id == c.producer_id))
        .where(c.id.in_(chosen))
        .order_by(*order)
    )


def _row(found: Any) -> QueueRow:
    rank = int(found.rank)
    return QueueRow(
        number=found.number,
        subject=found.subject,
        type=found.type,
        status=found.status,
        priority=found.priority,
        team=found.team,
        assignee=found.assignee,
        producer=found.name,
        opened_at=found.opened_at,
        sla_due_at=None if rank == 4 else found.sla_due_at,
        risk=_RISKS[rank],
    )
