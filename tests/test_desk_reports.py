"""Reports (``ticketing/desk/reports.py``) over incidents and messages with known times and
findings, and their charts (``ticketing/desk/charts.py``)."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ticketing.cli.context import Context as CliContext
from ticketing.cli.reports_cmd import reports_group
from ticketing.config import DatabaseConfig
from ticketing.config.sla_schema import SlaConfig, SlaPolicyConfig
from ticketing.desk.charts import bar_chart, line_chart
from ticketing.desk.reports import (
    Cell,
    Compliance,
    KindCount,
    Period,
    ResponseTimes,
    Tally,
    VolumeRow,
    build_report,
    first_response_report,
    last_weeks,
    pii_report,
    report_csv,
    report_json,
    report_rows,
    sla_report,
    volume_report,
)
from ticketing.sla.policy import calendar_from_config
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.models import AuditEvent, Incident, Message, Producer, utcnow

from .conftest import migrated_database, write_config

ZONE = ZoneInfo("America/New_York")
# Wednesday 2026-11-18, noon in Baltimore: two weeks are those of Mon 11-09 and Mon 11-16.
NOW = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)
HOSTILE = "<script>alert('x')</script> & Co"


def rows_of(session: Session, name: str, period: Period, sla: SlaConfig) -> list[list[Cell]]:
    return report_rows(name, build_report(session, name, period, sla))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def sqlite_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    yield from migrated_database("sqlite", tmp_path / "db", request)


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = create_db_engine(DatabaseConfig(url=sqlite_url))
    yield engine
    engine.dispose()


def add_incident(
    engine: Engine,
    number: str,
    team: str,
    case_type: str,
    *,
    opened: str = "2026-11-09T14:00:00",
    due: str | None = None,
    first: str | None = None,
    resolved: str | None = None,
    policy: str = "default",
    producer_id: int | None = None,
) -> int:
    with transaction(engine) as session:
        incident = Incident(
            number=number,
            type=case_type,
            team=team,
            mailbox="escalations",
            opened_at=utc(opened),
            updated_at=utc(opened),
            sla_policy=policy,
            sla_due_at=utc(due) if due else None,
            first_response_at=utc(first) if first else None,
            resolved_at=utc(resolved) if resolved else None,
            status="resolved" if resolved else "open",
            producer_id=producer_id,
        )
        session.add(incident)
        session.flush()
        assert incident.id is not None
        return incident.id


# --- the period --------------------------------------------------------------------------


def test_weeks_start_on_monday_in_the_desk_zone() -> None:
    period = last_weeks(NOW, 2, ZONE)
    assert period.labels == ("2026-11-09", "2026-11-16")
    assert period.start == datetime(2026, 11, 9, 5, 0, tzinfo=UTC)
    assert period.end == datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    assert period.last_day == date(2026, 11, 22)
    # across the end of daylight saving time (Sunday 2026-11-01), a week is 169 hours
    wide = last_weeks(NOW, 4, ZONE)
    assert wide.boundaries[0] == datetime(2026, 10, 26, 4, 0, tzinfo=UTC)
    assert wide.boundaries[1] == datetime(2026, 11, 2, 5, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="1 to 104"):
        last_weeks(NOW, 105, ZONE)


# --- SLA compliance (both databases) -----------------------------------------------------


SLA = SlaConfig(
    policies=(SlaPolicyConfig(name="commission", team="producer_operations", resolution_days=5),)
)


def seed_sla(engine: Engine) -> None:
    ec, po = "escalated_cases", "producer_operations"
    add_incident(engine, "1", ec, "enrollment", due="2026-11-10T15:00", first="2026-11-10T14:00")
    add_incident(engine, "2", ec, "enrollment", due="2026-11-12T15:00", first="2026-11-12T16:00")
    # resolved before any reply: the first-response clock stopped in time
    add_incident(engine, "3", ec, "determination", due="2026-11-16T15:00", resolved="2026-11-13")
    add_incident(engine, "4", po, "commission", due="2026-11-17T15:00")  # no reply: breached
    add_incident(engine, "5", po, "commission", due="2026-11-19T15:00")  # not due yet
    add_incident(engine, "6", ec, "enrollment", due="2026-11-02T15:00")  # before the period
    # Sunday 23:30 in Baltimore (Monday in UTC): the first week
    add_incident(engine, "7", ec, "enrollment", due="2026-11-16T04:30", first="2026-11-13T14:00")
    # a resolution clock (answered in time, never resolved): its deadline is breached
    add_incident(
        engine,
        "8",
        po,
        "commission",
        due="2026-11-13T15:00",
        first="2026-11-10T13:00",
        policy="commission",
    )


def test_sla_compliance_by_team_type_and_week(engine: Engine) -> None:
    seed_sla(engine)
    with transaction(engine, readonly=True) as session:
        report = sla_report(session, last_weeks(NOW, 2, ZONE), SLA)
        only_po = sla_report(session, last_weeks(NOW, 2, ZONE, "producer_operations"), SLA)
    assert report.total == Compliance("all", 6, 3, 3, 0.5)
    assert report.by_team == (
        Compliance("escalated_cases", 4, 3, 1, 0.75),
        Compliance("producer_operations", 2, 0, 2, 0.0),
    )
    assert report.by_type == (
        Compliance("commission", 2, 0, 2, 0.0),
        Compliance("determination", 1, 1, 0, 1.0),
        Compliance("enrollment", 3, 2, 1, 0.6667),
    )
    assert report.by_week == (
        Compliance("2026-11-09", 4, 2, 2, 0.5),
        Compliance("2026-11-16", 2, 1, 1, 0.5),
    )
    assert only_po.total == Compliance("all", 2, 0, 2, 0.0)
    assert [c.key for c in only_po.by_team] == ["producer_operations"]


def test_sla_with_nothing_due(sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine, readonly=True) as session:
        report = sla_report(session, last_weeks(NOW, 3, ZONE), SlaConfig())
    assert report.total == Compliance("all", 0, 0, 0, None)
    assert [c.due for c in report.by_week] == [0, 0, 0]
    assert report.by_team == report.by_type == ()


def test_sla_csv(sqlite_engine: Engine) -> None:
    seed_sla(sqlite_engine)
    with transaction(sqlite_engine, readonly=True) as session:
        rows = rows_of(session, "sla", last_weeks(NOW, 2, ZONE), SLA)
    parsed = list(csv.reader(io.StringIO(report_csv(rows))))
    assert parsed[0] == ["grouping", "key", "due", "met", "breached", "compliance"]
    assert parsed[1] == ["week", "2026-11-09", "4", "2", "2", "0.5"]
    assert parsed[-1] == ["total", "all", "6", "3", "3", "0.5"]
    assert ["team", "producer_operations", "2", "0", "2", "0.0"] in parsed


# --- volume and first-response times -----------------------------------------------------


def seed_responses(engine: Engine) -> None:
    ec, po = "escalated_cases", "producer_operations"
    # Mon 09:00 -> 11:00 EST: 2 business hours
    add_incident(engine, "A", ec, "enrollment", opened="2026-11-09T14:00", first="2026-11-09T16:00")
    # Tue 16:00 -> Thu 09:00, Wednesday 11-11 is Veterans Day (MD): 1 + 1 hours
    add_incident(engine, "B", ec, "enrollment", opened="2026-11-10T21:00", first="2026-11-12T14:00")
    # Thu 10:00 -> Fri 10:00: 7 + 2 hours
    add_incident(
        engine, "C", ec, "determination", opened="2026-11-12T15:00", first="2026-11-13T15:00"
    )
    # Saturday 10:00 -> Monday 09:00: the clock starts at Monday's opening, 1 hour
    add_incident(engine, "D", po, "commission", opened="2026-11-14T15:00", first="2026-11-16T14:00")
    add_incident(engine, "E", po, "commission", opened="2026-11-16T14:00")  # waiting
    # Sunday 23:30 in Baltimore: the first week, though Monday in UTC; waiting
    add_incident(engine, "F", ec, "enrollment", opened="2026-11-16T04:30")
    add_incident(engine, "G", ec, "enrollment", opened="2026-11-06T14:00")  # before the period


def test_volume_by_week_team_and_type(sqlite_engine: Engine) -> None:
    seed_responses(sqlite_engine)
    with transaction(sqlite_engine, readonly=True) as session:
        report = volume_report(session, last_weeks(NOW, 2, ZONE))
        five = volume_report(session, last_weeks(NOW, 5, ZONE))
    assert [t.count for t in five.by_week] == [0, 0, 1, 5, 1]  # G in the week of 11-02
    assert report.total == 6
    assert report.by_week == (Tally("2026-11-09", 5), Tally("2026-11-16", 1))
    assert report.by_team == (Tally("escalated_cases", 4), Tally("producer_operations", 2))
    assert report.by_type == (
        Tally("commission", 2),
        Tally("determination", 1),
        Tally("enrollment", 3),
    )
    assert report.rows == (
        VolumeRow("2026-11-09", "escalated_cases", "determination", 1),
        VolumeRow("2026-11-09", "escalated_cases", "enrollment", 3),
        VolumeRow("2026-11-09", "producer_operations", "commission", 1),
        VolumeRow("2026-11-16", "producer_operations", "commission", 1),
    )


def test_first_response_in_business_hours(sqlite_engine: Engine) -> None:
    seed_responses(sqlite_engine)
    calendar = calendar_from_config(SlaConfig())
    with transaction(sqlite_engine, readonly=True) as session:
        report = first_response_report(session, last_weeks(NOW, 2, ZONE), calendar)
    assert report.unit == "business hours"
    assert report.total == ResponseTimes("all", 4, 2, 2.0, 6.9)
    assert report.by_team == (
        ResponseTimes("escalated_cases", 3, 1, 2.0, 7.6),
        ResponseTimes("producer_operations", 1, 1, 1.0, 1.0),
    )
    assert report.by_week == (
        ResponseTimes("2026-11-09", 4, 1, 2.0, 6.9),
        ResponseTimes("2026-11-16", 0, 1, None, None),
    )


def test_volume_and_first_response_csv(sqlite_engine: Engine) -> None:
    seed_responses(sqlite_engine)
    period = last_weeks(NOW, 2, ZONE)
    with transaction(sqlite_engine, readonly=True) as session:
        volume = rows_of(session, "volume", period, SlaConfig())
        first = rows_of(session, "first_response", period, SlaConfig())
    assert volume[0] == ["week", "team", "type", "opened"]
    assert volume[2] == ["2026-11-09", "escalated_cases", "enrollment", 3]
    assert first[0] == ["grouping", "key", "answered", "waiting", "median_hours", "p90_hours"]
    assert ["week", "2026-11-16", 0, 1, None, None] in first
    assert first[-1] == ["total", "all", 4, 2, 2.0, 6.9]


# --- PII findings ------------------------------------------------------------------------


def add_message(
    engine: Engine,
    key: str,
    findings: dict[str, int],
    incident_id: int | None,
    *,
    received: str = "2026-11-10T15:00",
    direction: str = "in",
) -> None:
    with transaction(engine) as session:
        session.add(
            Message(
                incident_id=incident_id,
                direction=direction,
                mailbox="escalations",
                dedup_key=key,
                raw_sha256=key,
                pii_findings=findings,
                received_at=utc(received),
            )
        )


def seed_findings(engine: Engine) -> None:
    with transaction(engine) as session:
        sam = Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example")
        odd = Producer(npn="7654321", name=HOSTILE, email="odd@brokers.example")
        session.add_all([sam, odd])
        session.flush()
        sam_id, odd_id = sam.id, odd.id
    ec, po = "escalated_cases", "producer_operations"
    sams = add_incident(engine, "S", ec, "enrollment", producer_id=sam_id)
    odds = add_incident(engine, "O", po, "commission", producer_id=odd_id)
    add_message(engine, "m1", {"US_SSN": 2, "PHONE_NUMBER": 1}, sams)
    add_message(engine, "m2", {"US_SSN": 1}, sams)
    add_message(engine, "m3", {"DATE_OF_BIRTH": 1}, odds)
    add_message(engine, "m4", {"US_SSN": 1}, None)  # unverified mail, on no incident
    add_message(engine, "m5", {}, sams)  # nothing found
    add_message(engine, "m6", {"US_SSN": 4}, sams, direction="out")  # our own mail
    add_message(engine, "m7", {"US_SSN": 4}, sams, received="2026-11-01T15:00")  # too early


def test_pii_findings_by_kind_and_producer(engine: Engine) -> None:
    seed_findings(engine)
    with transaction(engine, readonly=True) as session:
        report = pii_report(session, last_weeks(NOW, 2, ZONE))
        only_po = pii_report(session, last_weeks(NOW, 2, ZONE, "producer_operations"))
    assert (report.messages, report.findings) == (4, 6)
    assert report.by_kind == (
        KindCount("US_SSN", 3, 4),
        KindCount("DATE_OF_BIRTH", 1, 1),
        KindCount("PHONE_NUMBER", 1, 1),
    )
    assert [(p.npn, p.name, p.messages, p.findings) for p in report.by_producer] == [
        ("1234567", "Sam Amsung", 2, 4),
        ("7654321", HOSTILE, 1, 1),
        (None, "(no producer)", 1, 1),
    ]
    assert report.by_producer[0].kinds == (
        KindCount("US_SSN", 2, 3),
        KindCount("PHONE_NUMBER", 1, 1),
    )
    assert [(p.npn, p.findings) for p in only_po.by_producer] == [("7654321", 1)]


def test_pii_csv_has_counts_and_a_safe_name(sqlite_engine: Engine) -> None:
    seed_findings(sqlite_engine)
    with transaction(sqlite_engine, readonly=True) as session:
        period = last_weeks(NOW, 2, ZONE)
        kinds = rows_of(session, "pii_by_kind", period, SlaConfig())
        producers = rows_of(session, "pii_by_producer", period, SlaConfig())
    assert kinds == [
        ["kind", "messages", "findings"],
        ["US_SSN", 3, 4],
        ["DATE_OF_BIRTH", 1, 1],
        ["PHONE_NUMBER", 1, 1],
    ]
    assert producers[0] == ["npn", "producer", "kind", "messages", "findings"]
    assert producers[1] == ["1234567", "Sam Amsung", "US_SSN", 2, 3]
    formula = report_csv([["npn", "producer"], ["1", "=HYPERLINK(1)"]])
    assert list(csv.reader(io.StringIO(formula)))[1] == ["1", "'=HYPERLINK(1)"]


def test_report_json_is_plain_data(sqlite_engine: Engine) -> None:
    seed_findings(sqlite_engine)
    with transaction(sqlite_engine, readonly=True) as session:
        data = report_json(pii_report(session, last_weeks(NOW, 2, ZONE)))
    assert data["period"]["weeks"] == ["2026-11-09", "2026-11-16"]
    assert data["period"]["timezone"] == "America/New_York"
    assert data["by_kind"][0] == {"kind": "US_SSN", "messages": 3, "findings": 4}
    assert report_json(date(2026, 11, 9)) == "2026-11-09"


# --- charts ------------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def test_bar_chart_is_accessible_svg_with_escaped_names() -> None:
    chart = bar_chart("PII findings by producer", [("Sam Amsung", 4), ("<script>x</script>", 1.5)])
    root = ET.fromstring(str(chart))
    assert root.tag == f"{SVG}svg"
    assert (root.get("role"), root.get("aria-label")) == ("img", "PII findings by producer")
    assert root.findtext(f"{SVG}title") == "PII findings by producer"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "<script>x</script>" in texts
    assert [t for t in texts if t and t[0].isdigit()] == ["4", "1.5"]
    assert "<script>" not in chart.markup
    assert chart.__html__() == chart.markup


def test_line_chart_gaps_and_hostile_title() -> None:
    chart = line_chart(
        f"Compliance {HOSTILE}", [("w1", 50.0), ("w2", None), ("w3", 100.0)], "%", 100
    )
    root = ET.fromstring(chart.markup)
    assert root.get("aria-label") == f"Compliance {HOSTILE}"
    assert len(list(root.iter(f"{SVG}circle"))) == 2
    assert not list(root.iter(f"{SVG}polyline"))  # the gap leaves no two points together
    dots = [t.text for t in root.iter(f"{SVG}title")]
    assert dots[1:] == ["w1: 50 %", "w3: 100 %"]


def test_empty_charts_say_so() -> None:
    for chart in (bar_chart("Nothing", []), line_chart("Nothing", [("w1", None)])):
        root = ET.fromstring(chart.markup)
        assert [t.text for t in root.iter(f"{SVG}text")] == ["No data"]


# --- the command line (the group as ``ticketd`` runs it, with its Context) ----------------


def naive(moment: datetime) -> str:
    """``utc()``'s form of a moment."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def run_reports(config: Path, *args: str) -> Result:
    return CliRunner().invoke(reports_group, list(args), obj=CliContext(config))


def test_reports_commands(sqlite_engine: Engine, sqlite_url: str, tmp_path: Path) -> None:
    due = utcnow() - timedelta(days=2)
    ec = "escalated_cases"
    answered = naive(due - timedelta(hours=1))
    add_incident(sqlite_engine, "1", ec, "enrollment", due=naive(due), first=answered)
    add_incident(sqlite_engine, "2", ec, "commission", due=naive(due))
    config = write_config(tmp_path, sqlite_url)
    table = run_reports(config, "sla", "--weeks", "3")
    assert table.exit_code == 0, table.output
    assert re.search(r"^escalated_cases\s+2\s+1\s+1\s+50\.0%$", table.output, re.MULTILINE)
    exported = run_reports(config, "sla", "--weeks", "3", "--csv", "--by", "Lee")
    rows = list(csv.reader(io.StringIO(exported.output)))
    assert rows[0] == ["grouping", "key", "due", "met", "breached", "compliance"]
    assert rows[-1] == ["total", "all", "2", "1", "1", "0.5"]
    with transaction(sqlite_engine, readonly=True) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.kind == "report_exported")).one()
    assert (event.actor, event.detail["report"]) == ("operator:Lee", "sla")
    as_json = json.loads(run_reports(config, "volume", "--json").output)
    assert as_json["total"] == 2 and len(as_json["by_week"]) == 12
    assert run_reports(config, "first-response", "--team", ec).exit_code == 0
    assert "No data" not in run_reports(config, "pii", "--group", "producer").output
    refused = run_reports(config, "sla", "--team", "nobody")
    assert refused.exit_code == 2 and "unknown team 'nobody'" in refused.output
    assert run_reports(config, "sla", "--weeks", "105").exit_code == 2


def test_the_business_clock_agrees_with_the_calendar() -> None:
    """The reports' day table gives what ``BusinessCalendar.between`` gives (across DST,
    weekends and Maryland holidays), and falls back to it outside its days."""
    from ticketing.desk.reports import _BusinessClock

    calendar = calendar_from_config(SlaConfig())
    clock = _BusinessClock.over(calendar, date(2026, 10, 26), date(2026, 12, 6))
    rnd = random.Random(7)
    start = datetime(2026, 10, 26, 4, tzinfo=UTC)
    for _ in range(300):
        earlier = start + timedelta(minutes=rnd.randrange(0, 60 * 24 * 40))
        later = earlier + timedelta(minutes=rnd.randrange(0, 60 * 24 * 9))
        expected = calendar.between(earlier, later).total_seconds()
        assert clock.between(earlier, later) == pytest.approx(expected), (earlier, later)
