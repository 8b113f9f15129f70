"""SLA clocks and the sweep with a controllable clock: each notice exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ticketing.config import Config, DatabaseConfig
from ticketing.config.desk_schema import StaffConfig
from ticketing.incidents.records import open_incident
from ticketing.intake.build import build_pipeline
from ticketing.pipeline.types import RawMessage
from ticketing.sla.clocks import SlaClocks
from ticketing.sla.sweep import _apply_arrays, _apply_rows, _plan, due_actions, sweep
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.models import AuditEvent, Incident, Producer

from .builders import LOCAL_MTA, TOKEN_SECRET, RecordedReplies
from .conftest import CliResult, RunCli
from .daemon import process_context
from .mail import make_mail

NY = "-05:00"
OPENED = datetime.fromisoformat(f"2026-11-23T10:00:00{NY}")  # Monday
# 2 business days from Monday 10:00: warning at 75% (Tuesday 14:30), due Wednesday 10:00,
# level 2 one business day later (Monday 10:00: Thanksgiving and the Friday after are off).
STAFF = StaffConfig(domains=("exchange.example",))
SWEEP_KINDS = ("sla_warning", "sla_breach", "sla_level2")  # the sweep's audit events


def at(text: str) -> datetime:
    return datetime.fromisoformat(text + NY)


class CountingNotices:
    """Writes each notice as a row, so that exactly-once can be counted in the database."""

    def batch(self) -> CountingNotices:
        return self

    def compose(self) -> None:
        return None

    def notify(self, session: Session, incident: Incident, stage: str, now: datetime) -> None:
        session.add(
            AuditEvent(
                incident_id=incident.id, kind="test_notice", created_at=now, detail={"stage": stage}
            )
        )


def notices(engine: Engine) -> list[str]:
    with transaction(engine, readonly=True) as session:
        rows = session.exec(
            select(AuditEvent).where(AuditEvent.kind == "test_notice").order_by(col(AuditEvent.id))
        ).all()
    return [r.detail["stage"] for r in rows]


@pytest.fixture
def clocks() -> SlaClocks:
    return SlaClocks.from_config(Config().sla)


@pytest.fixture
def opened(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", TOKEN_SECRET)
    with transaction(engine) as session:
        session.add(Producer(npn="1", name="Sam Amsung", email="sam@brokers.example"))
    pipeline = build_pipeline(Config(staff=STAFF), engine, replies=RecordedReplies())
    outcome = pipeline.process(
        RawMessage(make_mail(), "smtp", ("escalations",), received_at=OPENED, peer=LOCAL_MTA)
    )
    assert outcome.incident_number is not None
    return outcome.incident_number


def test_deadlines_follow_the_policy(engine: Engine, opened: str) -> None:
    with transaction(engine, readonly=True) as session:
        incident = session.exec(select(Incident).where(Incident.number == opened)).one()
    assert (incident.sla_clock, incident.sla_policy, incident.sla_stage) == (
        "first_response",
        "default",
        0,
    )
    assert incident.sla_warn_at == at("2026-11-24T14:30:00")
    assert incident.sla_due_at == at("2026-11-25T10:00:00")
    # one business day after the breach: Wednesday 10-17, Thanksgiving and the Friday
    # after off, Monday 08-10
    assert incident.sla_level2_at == at("2026-11-30T10:00:00")


def test_warning_breach_and_level2_each_once(
    engine: Engine, opened: str, clocks: SlaClocks
) -> None:
    sink = CountingNotices()
    for moment in (
        "2026-11-24T14:00:00",
        "2026-11-24T14:31:00",
        "2026-11-24T14:32:00",
        "2026-11-25T10:01:00",
        "2026-11-25T10:02:00",
        "2026-11-27T11:00:00",
        "2026-11-30T08:00:30",
        "2026-11-30T09:00:00",
        "2026-12-02T09:00:00",
    ):
        sweep(engine, clocks, sink, at(moment))
    assert notices(engine) == ["warning", "breach", "level2"]
    with transaction(engine, readonly=True) as session:
        incident = session.exec(select(Incident).where(Incident.number == opened)).one()
    assert (incident.sla_stage, incident.sla_next_at, incident.priority) == (3, None, "high")


def test_caseworker_reply_stops_the_clock(
    engine: Engine, opened: str, clocks: SlaClocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = CountingNotices()
    sweep(engine, clocks, sink, at("2026-11-24T14:31:00"))
    pipeline = build_pipeline(Config(staff=STAFF), engine, replies=RecordedReplies())
    reply = make_mail(sender="cw@exchange.example", subject=f"RE: [{opened}]", body="On it.")
    pipeline.process(
        RawMessage(
            reply, "smtp", ("escalations",), received_at=at("2026-11-24T15:00:00"), peer=LOCAL_MTA
        )
    )
    for moment in ("2026-11-25T10:01:00", "2026-11-30T10:00:00", "2026-12-10T10:00:00"):
        sweep(engine, clocks, sink, at(moment))
    assert notices(engine) == ["warning"]
    with transaction(engine, readonly=True) as session:
        incident = session.exec(select(Incident).where(Incident.number == opened)).one()
        kinds = session.exec(
            select(AuditEvent.kind).where(AuditEvent.incident_id == incident.id)
        ).all()
    assert incident.first_response_at == at("2026-11-24T15:00:00")
    assert incident.sla_clock is None and "sla_clock_stopped" in kinds


def test_downtime_over_a_weekend_escalates_on_start(
    engine: Engine, opened: str, clocks: SlaClocks
) -> None:
    sink = CountingNotices()
    sweep(engine, clocks, sink, at("2026-11-28T12:00:00"))  # Saturday: notices wait
    assert notices(engine) == []
    with transaction(engine, readonly=True) as session:
        assert due_actions(session, at("2026-11-30T08:00:30"))
    sweep(engine, clocks, sink, at("2026-11-30T08:00:30"))
    sweep(engine, clocks, sink, at("2026-11-30T08:01:00"))
    assert notices(engine) == ["breach"]  # the stale warning is skipped
    sweep(engine, clocks, sink, at("2026-12-07T09:00:00"))  # down again past level 2
    assert notices(engine) == ["breach", "level2"]


def test_resolution_clock_pauses_while_awaiting_the_producer(engine: Engine) -> None:
    from ticketing.config.sla_schema import SlaConfig, SlaPolicyConfig
    from ticketing.incidents.lifecycle import transition

    clocks = SlaClocks.from_config(SlaConfig(policy=SlaPolicyConfig(resolution_days=5)))
    with transaction(engine) as session:
        incident = open_incident(
            session, type="enrollment", team="escalated_cases", mailbox="escalations", when=OPENED
        )
        clocks.start(session, incident, OPENED)
        reply_at = at("2026-11-23T12:00:00")
        clocks.on_staff_reply(session, incident, reply_at)
        transition(
            session,
            incident,
            "awaiting_producer",
            actor="cw",
            reason="t",
            when=reply_at,
            clocks=clocks,
        )
        due_before = incident.sla_due_at
        assert (incident.sla_clock, incident.sla_next_at) == ("resolution", None)
        transition(
            session,
            incident,
            "open",
            actor="sam",
            reason="t",
            when=at("2026-11-24T12:00:00"),
            clocks=clocks,
        )  # waited 9 business hours
        assert due_before is not None
        assert incident.sla_due_at == clocks.calendar.add(due_before, timedelta(hours=9))
        transition(
            session,
            incident,
            "resolved",
            actor="cw",
            reason="t",
            when=at("2026-11-24T13:00:00"),
            clocks=clocks,
        )
        assert (incident.sla_clock, incident.sla_next_at) == (None, None)


def _open(engine: Engine, clocks: SlaClocks, when: datetime, count: int) -> list[int]:
    ids: list[int] = []
    with transaction(engine) as session:
        for _ in range(count):
            incident = open_incident(
                session, type="enrollment", team="escalated_cases", mailbox="escalations", when=when
            )
            clocks.start(session, incident, when)
            session.flush()
            assert incident.id is not None
            ids.append(incident.id)
    return ids


def _thresholds(engine: Engine, incident_id: int) -> tuple[datetime, datetime, datetime]:
    with transaction(engine, readonly=True) as session:
        incident = session.get_one(Incident, incident_id)
    assert incident.sla_warn_at and incident.sla_due_at and incident.sla_level2_at
    return incident.sla_warn_at, incident.sla_due_at, incident.sla_level2_at


def test_one_sweep_in_small_batches_writes_every_stage_once(
    engine: Engine, clocks: SlaClocks
) -> None:
    """Several batches, and within a batch incidents that enter two stages (breach and
    level 2, the stale warning skipped) next to ones entering one: the batch statements
    (arrays on PostgreSQL, executemany on SQLite) write each row's own values."""
    late = _open(engine, clocks, OPENED, 3)  # past level 2 at ``now``
    recent = _open(engine, clocks, at("2026-11-25T10:00:00"), 3)  # breached, not level 2
    now = _thresholds(engine, recent[0])[1] + timedelta(minutes=1)
    assert _thresholds(engine, late[0])[2] <= now < _thresholds(engine, recent[0])[2]
    assert sweep(engine, clocks, CountingNotices(), now, batch=2) == 3 * 2 + 3 * 1
    with transaction(engine, readonly=True) as session:
        rows = {i: session.get_one(Incident, i) for i in late + recent}
        events = session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.kind).in_(SWEEP_KINDS))
            .order_by(col(AuditEvent.id))
        ).all()
    for i in late:
        assert (rows[i].sla_stage, rows[i].sla_next_at, rows[i].priority) == (3, None, "high")
    for i in recent:
        state = (rows[i].sla_stage, rows[i].sla_next_at, rows[i].priority)
        assert state == (2, rows[i].sla_level2_at, "high")
    by_incident: dict[int | None, list[str]] = {}
    for event in events:
        assert (event.actor, event.created_at) == ("system", now)
        assert (event.detail, event.message_row_id) == ({"clock": "first_response"}, None)
        by_incident.setdefault(event.incident_id, []).append(event.kind)
    expected = {i: ["sla_breach", "sla_level2"] for i in late}
    assert by_incident == expected | {i: ["sla_breach"] for i in recent}
    assert sweep(engine, clocks, CountingNotices(), now, batch=2) == 0


@pytest.mark.postgres
def test_postgres_array_statements_write_what_executemany_writes(
    pg_db_url: str, clocks: SlaClocks
) -> None:
    """The same plans applied both ways, in a session whose time zone is not UTC (a
    naive time would be read in it): incidents and audit events must match, down to
    the stored JSON text (``json`` keeps the text it is given)."""
    engine = create_db_engine(DatabaseConfig(url=pg_db_url))
    both = _open(engine, clocks, OPENED, 2) + _open(engine, clocks, at("2026-11-24T10:00:00"), 2)
    now = at("2026-11-30T11:00:00")  # the first pair past level 2, the second breached
    with transaction(engine) as session:
        session.connection().exec_driver_sql("SET LOCAL TIME ZONE 'America/New_York'")
        plans = [_plan(clocks, session.get_one(Incident, i), now, None) for i in both]
        assert {len(p.stages) for p in plans} == {1, 2} and None in {p.next_at for p in plans}
        _apply_rows(session.connection(), plans[0::2], now)
        _apply_arrays(session.connection(), plans[1::2], now)
    incidents = text("SELECT sla_stage, sla_next_at, priority FROM incidents WHERE id = :id")
    events = text(
        "SELECT kind, actor, created_at, detail::text, message_row_id FROM audit_events"
        " WHERE incident_id = :id AND kind IN ('sla_warning', 'sla_breach', 'sla_level2')"
        " ORDER BY id"
    )
    with engine.connect() as conn:
        for rows_way, arrays_way in ((both[0], both[1]), (both[2], both[3])):
            for query in (incidents, events):
                written = [conn.execute(query, {"id": i}).all() for i in (rows_way, arrays_way)]
                assert written[0] == written[1] and written[0]
    engine.dispose()


def _sweep_in_process(url: str, now: datetime) -> int:
    engine = create_db_engine(DatabaseConfig(url=url, busy_timeout_ms=30_000))
    fired = sweep(engine, SlaClocks.from_config(Config().sla), CountingNotices(), now, batch=50)
    engine.dispose()
    return fired


@pytest.mark.postgres
def test_two_daemons_on_postgres_send_each_escalation_once(pg_db_url: str) -> None:
    engine = create_db_engine(DatabaseConfig(url=pg_db_url))
    clocks = SlaClocks.from_config(Config().sla)
    with transaction(engine) as session:
        for _ in range(1000):
            incident = open_incident(
                session,
                type="enrollment",
                team="escalated_cases",
                mailbox="escalations",
                when=OPENED,
            )
            clocks.start(session, incident, OPENED)
    now = at("2026-11-25T10:30:00")  # every one breached, none at level 2
    context = process_context()
    with context.Pool(2) as pool:
        fired = pool.starmap(_sweep_in_process, [(pg_db_url, now), (pg_db_url, now)])
    assert sum(fired) == 1000
    with transaction(engine, readonly=True) as session:
        count = session.exec(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "test_notice")
        ).one()
        per_incident = session.exec(
            select(AuditEvent.incident_id, func.count())
            .where(AuditEvent.kind == "test_notice")
            .group_by(col(AuditEvent.incident_id))
            .having(func.count() > 1)
        ).all()
    engine.dispose()
    assert (count, per_incident) == (1000, [])


def test_cli_check_lists_without_changing(
    run_cli: RunCli, opened: str, db_url: str, tmp_path: Path
) -> None:
    import json

    from .conftest import write_config

    config = str(write_config(tmp_path, db_url))
    first = json.loads(
        run_cli(
            "--config", config, "sla", "check", "--at", "2026-11-25T10:30:00-05:00", "--json"
        ).out
    )
    assert [(d["incident"], d["stage"]) for d in first["due"]] == [(opened, "breach")]
    again = json.loads(
        run_cli(
            "--config",
            config,
            "sla",
            "check",
            "--at",
            "2026-11-25T10:30:00-05:00",
            "--json",
            "--apply",
        ).out
    )
    assert again["applied"] is True
    after = json.loads(
        run_cli(
            "--config", config, "sla", "check", "--at", "2026-11-25T10:30:00-05:00", "--json"
        ).out
    )
    assert after["due"] == []
    _ = UTC


def test_cli_check_speaks_the_desk_timezone(
    run_cli: RunCli, opened: str, db_url: str, tmp_path: Path
) -> None:
    import json

    from .conftest import write_config

    config = str(write_config(tmp_path, db_url))

    def check(*args: str) -> CliResult:
        return run_cli("--config", config, "sla", "check", *args)

    # the moment given in UTC comes back in New York time, as `sla due` prints it
    data = json.loads(check("--at", "2026-11-25T15:30:00+00:00", "--json").out)
    assert data["at"] == "2026-11-25T10:30:00-05:00"
    assert data["due"] == [
        {"incident": opened, "stage": "breach", "due_at": "2026-11-25T10:00:00-05:00"}
    ]
    table = check("--at", "2026-11-25T10:30:00").out.splitlines()
    assert table[0].split() == ["INCIDENT", "STAGE", "DUE"]
    assert table[1].split() == [opened, "breach", "2026-11-25", "10:00", "EST"]
    # before the warning (Tuesday 14:30) nothing is due: say so, not a bare header
    quiet = check("--at", "2026-11-24T09:00:00-05:00")
    assert (quiet.code, quiet.out) == (0, "nothing due at 2026-11-24 09:00 EST\n")
    assert json.loads(check("--at", "2026-11-24T09:00:00-05:00", "--json").out)["due"] == []
