"""Incident numbers ``YYMMDD-NNNNNNN``: the New York date and a daily counter.

The counter lives in the database (``incident_counters``) and is advanced with
one atomic ``INSERT … ON CONFLICT DO UPDATE … RETURNING``, so any number of
processes on SQLite or PostgreSQL draw distinct numbers without a random draw
and without a retry loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from ticketing.errors import CounterExhaustedError
from ticketing.store.models import IncidentCounter, table_of, utcnow

__all__ = [
    "INCIDENT_NUMBER",
    "NEW_YORK",
    "CounterExhaustedError",
    "allocate_incident_number",
    "day_key",
]

NEW_YORK = ZoneInfo("America/New_York")
INCIDENT_NUMBER = re.compile(r"(?<![0-9])([0-9]{6})-([0-9]{7})(?![0-9])")
_MAX_PER_DAY = 9_999_999


def day_key(when: datetime) -> str:
    """``YYMMDD`` of ``when`` on the exchange's calendar (America/New_York)."""
    return when.astimezone(NEW_YORK).strftime("%y%m%d")


def _next_value(insert: Callable[[Any], Any]) -> Any:
    """The counter's ``INSERT … ON CONFLICT DO UPDATE … RETURNING``, built once."""
    table = table_of(IncidentCounter)
    return (
        insert(table)
        .values(day=bindparam("day"), last_value=1)
        .on_conflict_do_update(
            index_elements=[table.c.day], set_={"last_value": table.c.last_value + 1}
        )
        .returning(table.c.last_value)
    )


_NEXT_VALUE = {True: _next_value(postgresql.insert), False: _next_value(sqlite.insert)}


def allocate_incident_number(session: Session, when: datetime | None = None) -> str:
    """Draw the next incident number for the day of ``when`` (default: now).

    Runs inside the caller's transaction: if that transaction rolls back, the
    number is never used, and the next caller gets it again.
    """
    day = day_key(when or utcnow())
    stmt = _NEXT_VALUE[session.get_bind().dialect.name == "postgresql"]
    value = int(session.execute(stmt, {"day": day}).scalar_one())
    if value > _MAX_PER_DAY:
        raise CounterExhaustedError(f"incident counter for {day} is exhausted")
    return f"{day}-{value:07d}"
