"""From ``[sla]`` to a calendar and to the due times of one policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from ticketing.config.sla_schema import WEEKDAYS, SlaConfig, SlaPolicyConfig, parse_hours
from ticketing.sla.calendar import BusinessCalendar

__all__ = ["Deadlines", "calendar_from_config", "deadlines"]


def calendar_from_config(config: SlaConfig) -> BusinessCalendar:
    hours = {
        WEEKDAYS.index(day): parse_hours(value) for day, value in config.business_hours.items()
    }
    return BusinessCalendar(
        ZoneInfo(config.timezone),
        hours,
        frozenset(config.extra_closures),
        config.holiday_country,
        config.holiday_subdivision,
    )


@dataclass(frozen=True)
class Deadlines:
    """When a clock started at ``start`` warns, falls due and reaches level 2."""

    warn_at: datetime
    due_at: datetime
    level2_at: datetime


def deadlines(
    calendar: BusinessCalendar, policy: SlaPolicyConfig, start: datetime, days: float
) -> Deadlines:
    window = calendar.business_day * days
    return Deadlines(
        warn_at=calendar.add(start, window * policy.warning_share),
        due_at=calendar.add(start, window),
        level2_at=calendar.add(start, window + calendar.business_day * policy.level2_after_days),
    )
