"""Business time on the State of Maryland's calendar.

Business hours per weekday in a time zone (default America/New_York, Mon-Fri
08:00-17:00), days off from the ``holidays`` package (US, subdivision MD: it
includes the Friday after Thanksgiving) plus extra closures.  Arithmetic is
done on aware datetimes per local date, so DST changes, midnight and year ends
need no special cases: an interval is always [open, close) of one local day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from ticketing.errors import CalendarError

__all__ = ["BusinessCalendar", "CalendarError"]

_MAX_DAYS = 3 * 366  # no calendar has three closed years in a row; a config mistake has


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: ZoneInfo
    hours: Mapping[int, tuple[time, time]]  # weekday (Mon = 0) -> (open, close)
    closures: frozenset[date] = frozenset()
    country: str = "US"
    subdivision: str | None = "MD"
    _holidays: holidays.HolidayBase = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = holidays.country_holidays(self.country, subdiv=self.subdivision)
        object.__setattr__(self, "_holidays", table)

    @property
    def business_day(self) -> timedelta:
        """The length of a business day: what "N business days" multiplies."""
        lengths = Counter(_length(o, c) for o, c in self.hours.values())
        return lengths.most_common(1)[0][0] if lengths else timedelta(hours=9)

    def is_business_day(self, day: date) -> bool:
        return (
            day.weekday() in self.hours and day not in self.closures and day not in self._holidays
        )

    def is_open(self, at: datetime) -> bool:
        return any(start <= at < end for start, end in self._intervals(at, days=1))

    def next_open(self, at: datetime) -> datetime:
        """``at`` itself during business hours, else the next opening."""
        for start, end in self._intervals(at):
            if at < end:
                return max(at, start)
        raise CalendarError("no business hours in the calendar")

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The moment ``amount`` of business time after ``start`` (which may be after hours)."""
        remaining = amount
        cursor = start
        for open_at, close_at in self._intervals(start):
            if close_at <= cursor:
                continue
            cursor = max(cursor, open_at)
            if remaining <= close_at - cursor:
                return cursor + remaining
            remaining -= close_at - cursor
        raise CalendarError("no business hours in the calendar")

    def between(self, earlier: datetime, later: datetime) -> timedelta:
        """Business time in [earlier, later)."""
        total = timedelta()
        for open_at, close_at in self._intervals(earlier):
            if open_at >= later:
                break
            total += max(timedelta(), min(close_at, later) - max(open_at, earlier))
        return total

    def _intervals(
        self, at: datetime, days: int = _MAX_DAYS
    ) -> Iterator[tuple[datetime, datetime]]:
        """Business intervals from the local day of ``at`` on, as aware datetimes."""
        day = at.astimezone(self.timezone).date()
        for offset in range(days):
            current = day + timedelta(days=offset)
            if self.is_business_day(current):
                opening, closing = self.hours[current.weekday()]
                yield (
                    datetime.combine(current, opening, self.timezone),
                    datetime.combine(current, closing, self.timezone),
                )

    @classmethod
    def standard(
        cls,
        timezone: str = "America/New_York",
        hours: Mapping[int, tuple[time, time]] | None = None,
        closures: Iterable[date] = (),
    ) -> BusinessCalendar:
        weekdays = {d: (time(8), time(17)) for d in range(5)}
        return cls(
            ZoneInfo(timezone), hours if hours is not None else weekdays, frozenset(closures)
        )


def _length(opening: time, closing: time) -> timedelta:
    anchor = date(2000, 1, 3)
    return datetime.combine(anchor, closing) - datetime.combine(anchor, opening)
