"""Reports for leads and admins: SLA compliance, volume, first-response times, PII findings.

A report covers a ``Period``: the last N whole weeks, each from Monday 00:00 in the
desk's time zone (``[sla] timezone``) to the next Monday, the current week included,
optionally for one team.  Counting is done in the database (``GROUP BY`` with the week
as a ``CASE`` over the period's Monday boundaries, computed here in the desk's zone so
that DST is right on both databases); only what SQL cannot do simply on both SQLite and
PostgreSQL is done here: business-time response times and their percentiles, and
summing the per-kind counts of the PII findings (a JSON column).

What the SLA report measures.  An incident's row keeps the deadline of its current
clock in ``sla_due_at`` (``ticketing/sla/clocks.py``): the first-response clock, or,
under a policy with ``resolution_days``, the resolution clock once the first response is
given (the reading ``outbound/desk_copies.py`` makes too).  An incident counts in the
week its deadline fell in, once that deadline has passed; it *met* the deadline when the
event that stops its clock came at or before it — the first staff reply (or resolving or
closing it before any reply) for the first-response clock, resolving or closing it for
the resolution clock — and is *breached* otherwise (the sweeper's ``sla_breach`` audit
events mark the same incidents, but wait for business hours to be written).

First-response times are business hours (``ticketing/sla/calendar.py``: the calendar
the SLA clocks use), from the opening to the first staff reply, of the incidents opened
in the period.  PII findings are counts per kind only (``Message.pii_findings``), of
inbound mail received in the period, per the producer of the incident it belongs to:
never a value found.
"""

from __future__ import annotations

import csv
import io
import math
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Text, and_, case, cast, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from ticketing.config.sla_schema import SlaConfig
from ticketing.sla.calendar import BusinessCalendar
from ticketing.sla.policy import calendar_from_config
from ticketing.store.audit import audit
from ticketing.store.models import Incident, Message, Producer, table_of

__all__ = [
    "MAX_WEEKS",
    "REPORT_NAMES",
    "Cell",
    "Compliance",
    "FirstResponseReport",
    "KindCount",
    "Period",
    "PiiReport",
    "ProducerFindings",
    "Report",
    "ResponseTimes",
    "SlaReport",
    "Tally",
    "VolumeReport",
    "VolumeRow",
    "build_report",
    "first_response_report",
    "last_weeks",
    "pii_report",
    "record_export",
    "report_csv",
    "report_json",
    "report_rows",
    "sla_report",
    "volume_report",
]

MAX_WEEKS = 104
# what ``report_rows`` (the CSV exports) knows, by name
REPORT_NAMES = ("sla", "volume", "first_response", "pii_by_kind", "pii_by_producer")
NO_PRODUCER = "(no producer)"  # mail on no incident, or on one with no known producer
_HOUR = 3600.0
# the Core tables: rows come back as plain tuples
_INCIDENTS = table_of(Incident)
_MESSAGES = table_of(Message)
_PRODUCERS = table_of(Producer)

Cell = str | int | float | None


# --- the period --------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole weeks in the desk's zone: ``mondays`` (the first day of each week, oldest
    first), up to ``now`` (the current week is still running)."""

    mondays: tuple[date, ...]
    zone: ZoneInfo
    now: datetime
    team: str | None = None

    @property
    def boundaries(self) -> tuple[datetime, ...]:
        """Each week's start, then the end of the last week: aware, at local midnight."""
        days = (*self.mondays, self.mondays[-1] + timedelta(days=7))
        return tuple(datetime.combine(day, time(0), self.zone) for day in days)

    @property
    def start(self) -> datetime:
        return self.boundaries[0]

    @property
    def end(self) -> datetime:
        return self.boundaries[-1]

    @property
    def last_day(self) -> date:
        """The Sunday the period ends with."""
        return self.mondays[-1] + timedelta(days=6)

    @property
    def labels(self) -> tuple[str, ...]:
        """A week's name: its Monday (``2026-11-23``)."""
        return tuple(day.isoformat() for day in self.mondays)


def last_weeks(now: datetime, weeks: int, zone: ZoneInfo, team: str | None = None) -> Period:
    """The ``weeks`` weeks up to and including the one ``now`` is in."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValueError(f"weeks must be 1 to {MAX_WEEKS}, not {weeks}")
    today = now.astimezone(zone).date()
    this_monday = today - timedelta(days=today.weekday())
    mondays = tuple(this_monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks))
    return Period(mondays, zone, now, team or None)


def _week_index(column: Any, period: Period) -> ColumnElement[int]:
    """The week (0 = oldest) a time in the period falls in, as SQL: nested ``CASE``s over
    the boundaries, halving the weeks at each level (7 comparisons a row for 104 weeks,
    not 52), bound through the column's type so that both databases compare UTC."""
    return _bisect(column, period.boundaries[1:-1], 0)


def _bisect(column: Any, inner: Sequence[datetime], first: int) -> ColumnElement[int]:
    """The index (from ``first``) of the week ``column`` is in, given the boundaries
    ``inner`` between those weeks."""
    if not inner:
        return literal(first)
    middle = len(inner) // 2
    return case(
        (column < inner[middle], _bisect(column, inner[:middle], first)),
        else_=_bisect(column, inner[middle + 1 :], first + middle + 1),
    )


def _in_period(column: Any, period: Period, until: datetime | None = None) -> ColumnElement[bool]:
    return and_(column >= period.start, column < min(period.end, until or period.end))


def _rows(session: Session, query: Any) -> list[Any]:
    """A query's rows as plain tuples (their types are the columns', unknown to mypy)."""
    return list(session.execute(query).all())


def _of_team(period: Period) -> ColumnElement[bool]:
    return _INCIDENTS.c.team == period.team if period.team else literal(True)


# --- SLA compliance ----------------------------------------------------------------------


@dataclass(frozen=True)
class Compliance:
    """Deadlines that came due for ``key`` (a team, a type or a week), met or breached;
    ``ratio`` is met / due (``None`` when nothing came due)."""

    key: str
    due: int
    met: int
    breached: int
    ratio: float | None

    @classmethod
    def of(cls, key: str, due: int, met: int) -> Compliance:
        return cls(key, due, met, due - met, round(met / due, 4) if due else None)


@dataclass(frozen=True)
class SlaReport:
    period: Period
    total: Compliance
    by_team: tuple[Compliance, ...]
    by_type: tuple[Compliance, ...]
    by_week: tuple[Compliance, ...]  # every week of the period, in order


def _met(resolution_policies: Sequence[str]) -> ColumnElement[int]:
    """1 when the incident's clock stopped at or before its deadline, else 0."""
    due = _INCIDENTS.c.sla_due_at
    resolved = or_(_INCIDENTS.c.resolved_at <= due, _INCIDENTS.c.closed_at <= due)
    answered = or_(_INCIDENTS.c.first_response_at <= due, resolved)
    if not resolution_policies:
        return case((answered, 1), else_=0)
    on_resolution_clock = and_(
        _INCIDENTS.c.first_response_at.is_not(None),
        _INCIDENTS.c.sla_policy.in_(resolution_policies),
    )
    return case(
        (on_resolution_clock, case((resolved, 1), else_=0)),
        else_=case((answered, 1), else_=0),
    )


def sla_report(session: Session, period: Period, sla: SlaConfig) -> SlaReport:
    """Deadlines that fell in the period (and have passed), met or breached, by team,
    type and week."""
    with_resolution = [p.name for p in (sla.policy, *sla.policies) if p.resolution_days]
    week = _week_index(_INCIDENTS.c.sla_due_at, period)
    query = (
        select(
            _INCIDENTS.c.team,
            _INCIDENTS.c.type,
            week,
            func.count(),
            func.sum(_met(with_resolution)),
        )
        .where(_in_period(_INCIDENTS.c.sla_due_at, period, until=period.now), _of_team(period))
        .group_by(_INCIDENTS.c.team, _INCIDENTS.c.type, week)
    )
    rows = [(t, k, int(w), int(n), int(m or 0)) for t, k, w, n, m in _rows(session, query)]
    return SlaReport(
        period,
        Compliance.of("all", sum(r[3] for r in rows), sum(r[4] for r in rows)),
        _compliance_by(rows, 0),
        _compliance_by(rows, 1),
        _compliance_by(rows, 2, period.labels),
    )


def _compliance_by(
    rows: Sequence[tuple[str, str, int, int, int]], part: int, labels: Sequence[str] = ()
) -> tuple[Compliance, ...]:
    """Sum (team, type, week, due, met) rows by one of the first three parts; with
    ``labels``, the part is a week index and every week is listed."""
    due: Counter[Any] = Counter()
    met: Counter[Any] = Counter()
    for row in rows:
        due[row[part]] += row[3]
        met[row[part]] += row[4]
    if labels:
        return tuple(Compliance.of(label, due[i], met[i]) for i, label in enumerate(labels))
    return tuple(Compliance.of(str(key), due[key], met[key]) for key in sorted(due))


# --- volume ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    key: str
    count: int


@dataclass(frozen=True)
class VolumeRow:
    week: str
    team: str
    type: str
    opened: int


@dataclass(frozen=True)
class VolumeReport:
    """Incidents opened in the period: by week (every week), team and type, and each
    (week, team, type) that had any."""

    period: Period
    total: int
    by_week: tuple[Tally, ...]
    by_team: tuple[Tally, ...]
    by_type: tuple[Tally, ...]
    rows: tuple[VolumeRow, ...]


def volume_report(session: Session, period: Period) -> VolumeReport:
    week = _week_index(_INCIDENTS.c.opened_at, period)
    query = (
        select(week, _INCIDENTS.c.team, _INCIDENTS.c.type, func.count())
        .where(_in_period(_INCIDENTS.c.opened_at, period), _of_team(period))
        .group_by(week, _INCIDENTS.c.team, _INCIDENTS.c.type)
    )
    labels = period.labels
    found = [VolumeRow(labels[int(w)], t, k, int(n)) for w, t, k, n in _rows(session, query)]
    rows = sorted(found, key=lambda r: (r.week, r.team, r.type))
    weeks = Counter({label: 0 for label in labels})
    for row in rows:
        weeks[row.week] += row.opened
    return VolumeReport(
        period,
        sum(r.opened for r in rows),
        tuple(Tally(label, weeks[label]) for label in labels),
        _tallies((r.team, r.opened) for r in rows),
        _tallies((r.type, r.opened) for r in rows),
        tuple(rows),
    )


def _tallies(pairs: Iterable[tuple[str, int]]) -> tuple[Tally, ...]:
    totals: Counter[str] = Counter()
    for key, count in pairs:
        totals[key] += count
    return tuple(Tally(key, totals[key]) for key in sorted(totals))


# --- first-response times ----------------------------------------------------------------


@dataclass(frozen=True)
class ResponseTimes:
    """First-response times of ``answered`` incidents for ``key``, in business hours:
    median and 90th percentile (linear interpolation, as PostgreSQL's
    ``percentile_cont``); ``waiting`` incidents have had no first response yet."""

    key: str
    answered: int
    waiting: int
    median_hours: float | None
    p90_hours: float | None

    @classmethod
    def of(cls, key: str, hours: Sequence[float], waiting: int) -> ResponseTimes:
        ordered = sorted(hours)
        return cls(key, len(ordered), waiting, _percentile(ordered, 0.5), _percentile(ordered, 0.9))


@dataclass(frozen=True)
class FirstResponseReport:
    period: Period
    unit: str  # "business hours"
    total: ResponseTimes
    by_team: tuple[ResponseTimes, ...]
    by_week: tuple[ResponseTimes, ...]  # by the week the incident opened, every week


def _percentile(ordered: Sequence[float], share: float) -> float | None:
    if not ordered:
        return None
    position = share * (len(ordered) - 1)
    lower, upper = math.floor(position), math.ceil(position)
    value = ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)
    return round(value, 2)


@dataclass(frozen=True)
class _BusinessClock:
    """Business seconds since a start date, per local day, so that the business time
    between two moments is a difference of two lookups (``BusinessCalendar.between``
    walks the days: 100,000 incidents took seconds).  Moments outside the days it
    knows are measured by the calendar itself."""

    calendar: BusinessCalendar
    days: Mapping[date, tuple[float, datetime | None, float]]  # before, opening, length

    @classmethod
    def over(cls, calendar: BusinessCalendar, first: date, last: date) -> _BusinessClock:
        days: dict[date, tuple[float, datetime | None, float]] = {}
        total, day = 0.0, first
        while day <= last:
            opening, length = _opening(calendar, day)
            days[day] = (total, opening, length)
            total, day = total + length, day + timedelta(days=1)
        return cls(calendar, days)

    def _since_start(self, moment: datetime) -> float | None:
        known = self.days.get(moment.astimezone(self.calendar.timezone).date())
        if known is None:
            return None
        before, opening, length = known
        if opening is None:
            return before
        return before + min(max((moment - opening).total_seconds(), 0.0), length)

    def between(self, earlier: datetime, later: datetime) -> float:
        """Business seconds in [earlier, later)."""
        start, end = self._since_start(earlier), self._since_start(later)
        if start is None or end is None:
            return self.calendar.between(earlier, later).total_seconds()
        return max(end - start, 0.0)


def _opening(calendar: BusinessCalendar, day: date) -> tuple[datetime | None, float]:
    """When ``day`` opens (``None``: closed) and for how many seconds."""
    if not calendar.is_business_day(day):
        return None, 0.0
    opens, closes = calendar.hours[day.weekday()]
    opening = datetime.combine(day, opens, calendar.timezone).astimezone(UTC)
    closing = datetime.combine(day, closes, calendar.timezone).astimezone(UTC)
    return opening, (closing - opening).total_seconds()  # in UTC: subtracting is cheaper


def first_response_report(
    session: Session, period: Period, calendar: BusinessCalendar
) -> FirstResponseReport:
    """Business hours from opening to first response, of the incidents opened in the
    period (one row each: percentiles are not simple SQL on SQLite)."""
    query = select(_INCIDENTS.c.team, _INCIDENTS.c.opened_at, _INCIDENTS.c.first_response_at).where(
        _in_period(_INCIDENTS.c.opened_at, period), _of_team(period)
    )
    last = max(period.now, period.end).astimezone(period.zone).date()
    clock = _BusinessClock.over(calendar, period.mondays[0], last)
    inner = [moment.astimezone(UTC) for moment in period.boundaries[1:-1]]  # UTC compares fast
    hours: dict[tuple[str, int], list[float]] = defaultdict(list)
    waiting: Counter[tuple[str, int]] = Counter()
    for team, opened_at, answered_at in _rows(session, query):
        key = (team, bisect_right(inner, opened_at))  # the rows are read anyway
        if answered_at is None:
            waiting[key] += 1
        else:
            hours[key].append(clock.between(opened_at, answered_at) / _HOUR)
    return FirstResponseReport(
        period,
        "business hours",
        _times_by(hours, waiting, lambda key: "all")[0],
        _times_by(hours, waiting, lambda key: key[0]),
        _weeks_times(hours, waiting, period.labels),
    )


def _grouped(
    hours: Mapping[tuple[str, int], list[float]],
    waiting: Mapping[tuple[str, int], int],
    key_of: Callable[[tuple[str, int]], Any],
) -> tuple[dict[Any, list[float]], Counter[Any]]:
    merged_hours: dict[Any, list[float]] = defaultdict(list)
    merged_waiting: Counter[Any] = Counter()
    for key, values in hours.items():
        merged_hours[key_of(key)].extend(values)
    for key, count in waiting.items():
        merged_waiting[key_of(key)] += count
    return merged_hours, merged_waiting


def _times_by(
    hours: Mapping[tuple[str, int], list[float]],
    waiting: Mapping[tuple[str, int], int],
    key_of: Callable[[tuple[str, int]], str],
) -> tuple[ResponseTimes, ...]:
    """One ``ResponseTimes`` per key, sorted; for a single "all" key, that one even when
    nothing was opened."""
    merged, pending = _grouped(hours, waiting, key_of)
    keys = sorted(set(merged) | set(pending)) or ["all"]
    return tuple(ResponseTimes.of(k, merged.get(k, []), pending[k]) for k in keys)


def _weeks_times(
    hours: Mapping[tuple[str, int], list[float]],
    waiting: Mapping[tuple[str, int], int],
    labels: Sequence[str],
) -> tuple[ResponseTimes, ...]:
    merged, pending = _grouped(hours, waiting, lambda key: key[1])
    return tuple(
        ResponseTimes.of(label, merged.get(i, []), pending[i]) for i, label in enumerate(labels)
    )


# --- PII findings ------------------------------------------------------------------------


@dataclass(frozen=True)
class KindCount:
    """How often a kind of personal data was found: in how many messages, how many times."""

    kind: str
    messages: int
    findings: int


@dataclass(frozen=True)
class ProducerFindings:
    """One producer's mail with personal data in it (``npn`` ``None``: no producer known)."""

    npn: str | None
    name: str
    messages: int
    findings: int
    kinds: tuple[KindCount, ...]


@dataclass(frozen=True)
class PiiReport:
    """Inbound mail received in the period in which the guard found personal data:
    counts by kind, and by producer (most findings first).  Never a value."""

    period: Period
    messages: int
    findings: int
    by_kind: tuple[KindCount, ...]
    by_producer: tuple[ProducerFindings, ...]


def pii_report(session: Session, period: Period) -> PiiReport:
    """Only messages with findings are read (an empty ``{}`` is filtered out in SQL)."""
    query = (
        select(_MESSAGES.c.pii_findings, _PRODUCERS.c.npn, _PRODUCERS.c.name)
        .select_from(_MESSAGES)
        .join(_INCIDENTS, _MESSAGES.c.incident_id == _INCIDENTS.c.id, isouter=not period.team)
        .join(_PRODUCERS, _INCIDENTS.c.producer_id == _PRODUCERS.c.id, isouter=True)
        .where(
            _MESSAGES.c.direction == "in",
            cast(_MESSAGES.c.pii_findings, Text) != "{}",
            _in_period(_MESSAGES.c.received_at, period),
            _of_team(period),
        )
    )
    everyone: list[Mapping[str, int]] = []
    producers: dict[tuple[str | None, str], list[Mapping[str, int]]] = defaultdict(list)
    for findings, npn, name in _rows(session, query):
        counts = {str(k): int(v) for k, v in findings.items() if int(v) > 0}
        if counts:
            everyone.append(counts)
            producers[(npn, name or NO_PRODUCER)].append(counts)
    by_producer = [_producer_findings(npn, name, found) for (npn, name), found in producers.items()]
    by_producer.sort(key=lambda p: (-p.findings, p.npn is None, p.name, p.npn or ""))
    return PiiReport(
        period,
        len(everyone),
        sum(sum(c.values()) for c in everyone),
        _kind_counts(everyone),
        tuple(by_producer),
    )


def _kind_counts(messages: Sequence[Mapping[str, int]]) -> tuple[KindCount, ...]:
    """Per kind: messages it was found in and times found, most found first."""
    seen: Counter[str] = Counter()
    found: Counter[str] = Counter()
    for counts in messages:
        seen.update(counts.keys())
        found.update(counts)
    ordered = sorted(found, key=lambda kind: (-found[kind], kind))
    return tuple(KindCount(kind, seen[kind], found[kind]) for kind in ordered)


def _producer_findings(
    npn: str | None, name: str, messages: Sequence[Mapping[str, int]]
) -> ProducerFindings:
    kinds = _kind_counts(messages)
    return ProducerFindings(npn, name, len(messages), sum(k.findings for k in kinds), kinds)


# --- CSV and JSON ------------------------------------------------------------------------


def _sla_rows(report: SlaReport) -> list[list[Cell]]:
    header: list[Cell] = ["grouping", "key", "due", "met", "breached", "compliance"]
    groups = (("week", report.by_week), ("team", report.by_team), ("type", report.by_type))
    body: list[list[Cell]] = [
        [grouping, c.key, c.due, c.met, c.breached, c.ratio]
        for grouping, items in (*groups, ("total", (report.total,)))
        for c in items
    ]
    return [header, *body]


def _volume_rows(report: VolumeReport) -> list[list[Cell]]:
    body: list[list[Cell]] = [[r.week, r.team, r.type, r.opened] for r in report.rows]
    return [["week", "team", "type", "opened"], *body]


def _first_response_rows(report: FirstResponseReport) -> list[list[Cell]]:
    header: list[Cell] = ["grouping", "key", "answered", "waiting", "median_hours", "p90_hours"]
    groups = (("week", report.by_week), ("team", report.by_team), ("total", (report.total,)))
    body: list[list[Cell]] = [
        [grouping, t.key, t.answered, t.waiting, t.median_hours, t.p90_hours]
        for grouping, items in groups
        for t in items
    ]
    return [header, *body]


def _pii_kind_rows(report: PiiReport) -> list[list[Cell]]:
    body: list[list[Cell]] = [[k.kind, k.messages, k.findings] for k in report.by_kind]
    return [["kind", "messages", "findings"], *body]


def _pii_producer_rows(report: PiiReport) -> list[list[Cell]]:
    body: list[list[Cell]] = [
        [p.npn, p.name, k.kind, k.messages, k.findings] for p in report.by_producer for k in p.kinds
    ]
    return [["npn", "producer", "kind", "messages", "findings"], *body]


Report = SlaReport | VolumeReport | FirstResponseReport | PiiReport

# each export's rows from its report (both PII exports come from the one PII report)
_ROWS: dict[str, Callable[[Any], list[list[Cell]]]] = {
    "sla": _sla_rows,
    "volume": _volume_rows,
    "first_response": _first_response_rows,
    "pii_by_kind": _pii_kind_rows,
    "pii_by_producer": _pii_producer_rows,
}


def build_report(session: Session, name: str, period: Period, sla: SlaConfig) -> Report:
    """The report behind ``name`` (one of ``REPORT_NAMES``); ``KeyError`` for another."""
    if name == "sla":
        return sla_report(session, period, sla)
    if name == "volume":
        return volume_report(session, period)
    if name == "first_response":
        return first_response_report(session, period, calendar_from_config(sla))
    if name in ("pii_by_kind", "pii_by_producer"):
        return pii_report(session, period)
    raise KeyError(name)


def report_rows(name: str, report: Report) -> list[list[Cell]]:
    """The rows of the CSV export ``name`` of ``report``, header first."""
    return _ROWS[name](report)


def record_export(session: Session, name: str, period: Period, actor: str) -> None:
    """An audit event for a CSV export (the report leaves the desk): who, which report,
    which weeks and team — no row of it."""
    detail = {"report": name, "weeks": len(period.mondays), "from": period.labels[0]}
    audit(session, "report_exported", actor=actor, detail=detail | {"team": period.team})


def report_csv(rows: Sequence[Sequence[Cell]]) -> str:
    """CSV text (RFC 4180 line ends); a cell that looks like a formula is quoted with a
    leading ``'`` so a spreadsheet shows a producer's name instead of running it."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows([[_safe_cell(cell) for cell in row] for row in rows])
    return out.getvalue()


def _safe_cell(cell: Cell) -> Cell:
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell


def report_json(report: object) -> Any:
    """A report as JSON-ready data: dataclasses as objects, times and dates as ISO text,
    the period as its weeks, team and end."""
    if isinstance(report, Period):
        return {
            "weeks": list(report.labels),
            "team": report.team,
            "start": report.start.isoformat(),
            "end": report.end.isoformat(),
            "timezone": str(report.zone),
        }
    if is_dataclass(report) and not isinstance(report, type):
        return {f.name: report_json(getattr(report, f.name)) for f in fields(report)}
    if isinstance(report, tuple | list):
        return [report_json(item) for item in report]
    if isinstance(report, datetime | date):
        return report.isoformat()
    return report
