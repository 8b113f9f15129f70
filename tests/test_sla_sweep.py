"""SLA clocks and the sweep with a controllable clock: each notice exactly once."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ticketing.config import Config, DatabaseConfig
from ticketing.config.desk_schema import StaffConfig
from ticketing.db import create_db_engine, transaction
from ticketing.incidents import open_incident
from ticketing.intake import build_pipeline
from ticketing.models import AuditEvent, Incident, Producer
from ticketing.pipeline import RawMessage
from ticketing.sla.clocks import SlaClocks
from ticketing.sla.sweep import due_actions, sweep

from .mail import make_mail
from .test_intake_pipeline import SECRET, RecordedReplies

NY = "-05:00"
OPENED = datetime.fromisoformat(f"2026-11-23T10:00:00{NY}")  # Monday
# 2 business days from Monday 10:00: warning at 75% (Tuesday 14:30), due Wednesday 10:00,
# level 2 one business day later (Monday 10:00: Thanksgiving and the Friday after are off).
STAFF = StaffConfig(domains=("exchange.example",))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text + NY)


class CountingNotices:
    """Writes each notice as a row, so that exactly-once can be counted in the database."""

    def notify(self, session: Session, incident: Incident, stage: str, now: datetime) -> None:
        session.add(
            AuditEvent(
                incident_id=incident.id, kind="test_notice", created_at=now, detail={"stage": stage}
            )
        )


def notices(engine: Engine) -> list[str]:
    with transaction(engine, readonly=True) as session:
        rows = session.exec(
            select(AuditEvent).where(AuditEvent.kind == "test_notice").order_by(AuditEvent.id)
        ).all()
    return [r.detail["stage"] for r in rows]


@pytest.fixture
def clocks() -> SlaClocks:
    return SlaClocks.from_config(Config().sla)


@pytest.fixture
def opened(engine: Engine, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", SECRET)
    with transaction(engine) as session:
        session.add(Producer(npn="1", name="Sam Amsung", email="sam@brokers.example"))
    pipeline = build_pipeline(Config(staff=STAFF), engine, replies=RecordedReplies())
    outcome = pipeline.process(
        RawMessage(make_mail(), "smtp", ("escalations",), received_at=OPENED)
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
    engine: Engine, opened: str, clocks: SlaClocks, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    sink = CountingNotices()
    sweep(engine, clocks, sink, at("2026-11-24T14:31:00"))
    pipeline = build_pipeline(Config(staff=STAFF), engine, replies=RecordedReplies())
    reply = make_mail(sender="cw@exchange.example", subject=f"RE: [{opened}]", body="On it.")
    pipeline.process(
        RawMessage(reply, "smtp", ("escalations",), received_at=at("2026-11-24T15:00:00"))
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
    from ticketing.lifecycle import transition

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
    context = multiprocessing.get_context("spawn")
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
            .group_by(AuditEvent.incident_id)
            .having(func.count() > 1)
        ).all()
    engine.dispose()
    assert (count, per_incident) == (1000, [])


def test_cli_check_lists_without_changing(run_cli, opened: str, db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
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
