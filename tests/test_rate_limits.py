"""The abuse limits of ``[limits]``: replies per recipient and day, ``unknown_sender``
replies per day over everyone, new incidents per sender and hour; each hold-back audited
and counted in ``ticketd_rate_limited_total`` once committed, and safe with two writers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ticketing import metrics
from ticketing.config import Config, LimitsConfig
from ticketing.incidents.records import open_incident
from ticketing.outbound.orders import order_reply
from ticketing.outbound.request import ReplyRequest
from ticketing.pipeline.rates import NEW_INCIDENTS, count_held_back, may_open_incident
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, Incident

from .builders import NOW, add_case, make_composer, queue_mail
from .daemon import Ticketd, free_port
from .mail import make_mail
from .test_observability import scrape_until, value

LEAD = "lead@exchange.example"


def limits(**values: int) -> Config:
    return Config(limits=LimitsConfig(**values))


def sent(engine: Engine, config: Config, request: ReplyRequest, at: datetime = NOW) -> bool:
    """Whether ``request`` was ordered (else a rule held it back), through the one path."""
    return queue_mail(engine, make_composer(config), request, now=at) is not None


def ack(incident: Incident, to: str) -> ReplyRequest:
    return ReplyRequest(kind="ack_new", to=to, incident=incident)


def stranger(to: str) -> ReplyRequest:
    return ReplyRequest(kind="unknown_sender", to=to, team="escalated_cases")


def sla_warning(incident: Incident) -> ReplyRequest:
    extra = {"due_at": NOW, "level": "team_lead"}
    return ReplyRequest(kind="sla_warning", to=LEAD, incident=incident, extra=extra)


def suppressed(engine: Engine) -> list[dict[str, object]]:
    with Session(engine) as session:
        query = select(AuditEvent).where(AuditEvent.kind == "auto_reply_suppressed")
        return [event.detail for event in session.exec(query)]


def counted(limit: str) -> float:
    return REGISTRY.get_sample_value("ticketd_rate_limited_total", {"limit": limit}) or 0.0


# --- replies -----------------------------------------------------------------------------------


def test_a_recipient_gets_at_most_the_daily_replies(engine: Engine) -> None:
    config = limits(replies_per_recipient_day=3)
    incident, producer = add_case(engine)
    before = counted("replies_per_recipient_day")
    spaced = [NOW + timedelta(hours=2 * i) for i in range(4)]  # under the hourly ceiling
    assert [sent(engine, config, ack(incident, producer.email), at) for at in spaced] == [
        True,
        True,
        True,
        False,
    ]
    assert sent(engine, config, ack(incident, "other@brokers.example"), spaced[-1])
    assert sent(engine, config, ack(incident, producer.email), NOW + timedelta(days=1, seconds=1))
    assert suppressed(engine) == [{"reply_kind": "ack_new", "rule": "replies_per_recipient_day"}]
    assert counted("replies_per_recipient_day") == before + 1


def test_unknown_sender_replies_are_limited_over_all_addresses(engine: Engine) -> None:
    config = limits(unknown_sender_replies_day=2)
    incident, producer = add_case(engine)
    before = counted("unknown_sender_replies_day")
    strangers = [stranger(f"forged{i}@victim{i}.example") for i in range(3)]
    assert [
        sent(engine, config, s, NOW + timedelta(minutes=i)) for i, s in enumerate(strangers)
    ] == [
        True,
        True,
        False,
    ]
    assert sent(engine, config, ack(incident, producer.email))  # other kinds still go
    assert sent(engine, config, stranger("late@x.example"), NOW + timedelta(days=1, seconds=1))
    assert suppressed(engine) == [
        {"reply_kind": "unknown_sender", "rule": "unknown_sender_replies_day"}
    ]
    assert counted("unknown_sender_replies_day") == before + 1


def test_zero_sends_no_unknown_sender_reply_at_all(engine: Engine) -> None:
    config = limits(unknown_sender_replies_day=0)
    incident, producer = add_case(engine)
    assert not sent(engine, config, stranger("first@x.example"))
    assert sent(engine, config, ack(incident, producer.email))
    assert [e["rule"] for e in suppressed(engine)] == ["unknown_sender_replies_day"]


def test_internal_notices_are_neither_limited_nor_counted(engine: Engine) -> None:
    config = limits(replies_per_recipient_day=1, unknown_sender_replies_day=0)
    incident, _ = add_case(engine)
    minutes = [NOW + timedelta(minutes=i) for i in range(3)]
    assert all(sent(engine, config, sla_warning(incident), at) for at in minutes)
    # the notices drew nothing from the lead's daily replies: the first reply still goes
    assert sent(engine, config, ack(incident, LEAD), NOW + timedelta(minutes=5))
    assert not sent(engine, config, ack(incident, LEAD), NOW + timedelta(minutes=6))


def test_a_hold_back_is_counted_once_committed_and_loop_rules_never(engine: Engine) -> None:
    config = limits(unknown_sender_replies_day=0)
    composer = make_composer(config)
    before = counted("unknown_sender_replies_day")
    with pytest.raises(RuntimeError), transaction(engine) as session:
        assert (
            order_reply(session, composer, stranger("a@x.example"), sender_name=None, now=NOW)
            is None
        )
        raise RuntimeError("the message failed to record")
    assert (suppressed(engine), counted("unknown_sender_replies_day")) == ([], before)
    assert not sent(engine, config, stranger("a@x.example"))
    assert counted("unknown_sender_replies_day") == before + 1
    incident, producer = add_case(engine)
    repeated = ReplyRequest(
        kind="ack_new", to=producer.email, incident=incident, trigger_fingerprint="f" * 64
    )
    assert sent(engine, config, repeated)
    assert not sent(engine, config, repeated)
    assert [e["rule"] for e in suppressed(engine)][-1] == "duplicate"
    assert counted("duplicate") == 0


def test_the_existing_ceiling_is_counted_too(engine: Engine) -> None:
    config = Config(outbound=Config().outbound.model_copy(update={"auto_reply_ceiling": 1}))
    incident, producer = add_case(engine)
    before = counted("sender_ceiling")
    assert sent(engine, config, ack(incident, producer.email))
    assert not sent(engine, config, ack(incident, producer.email), NOW + timedelta(minutes=1))
    assert counted("sender_ceiling") == before + 1


def test_a_worker_sends_its_counts_to_the_daemon() -> None:
    seen: list[str] = []
    before = counted(NEW_INCIDENTS)
    metrics.forward_rate_limited(seen.append)
    try:
        metrics.report_rate_limited(NEW_INCIDENTS)
    finally:
        metrics.forward_rate_limited(None)
    assert (seen, counted(NEW_INCIDENTS)) == ([NEW_INCIDENTS], before)


# --- new incidents -----------------------------------------------------------------------------


def opened(session: Session, by: str, at: datetime) -> None:
    open_incident(
        session,
        type="enrollment",
        team="escalated_cases",
        mailbox="escalations",
        opened_by=by,
        when=at,
    )


def test_may_open_incident_counts_only_that_senders_last_hour(engine: Engine) -> None:
    two = LimitsConfig(new_incidents_per_sender_hour=2)
    with transaction(engine) as session:
        opened(session, "a@x.example", NOW - timedelta(minutes=61))  # before the hour
        opened(session, "a@x.example", NOW - timedelta(minutes=30))
        opened(session, "b@x.example", NOW - timedelta(minutes=10))
        opened(session, "b@x.example", NOW - timedelta(minutes=5))
    with transaction(engine) as session:
        assert may_open_incident(session, "a@x.example", NOW, two)
        assert not may_open_incident(session, "b@x.example", NOW, two)
        assert may_open_incident(session, "c@x.example", NOW, two)
        # one opened earlier in the same transaction (a worker's batch) counts as well
        opened(session, "a@x.example", NOW - timedelta(minutes=1))
        assert not may_open_incident(session, "A@X.example", NOW, two)
        assert may_open_incident(session, "a@x.example", NOW + timedelta(minutes=31), two)


def test_an_incident_held_back_is_counted_once_committed(engine: Engine) -> None:
    before = counted(NEW_INCIDENTS)
    with pytest.raises(RuntimeError), transaction(engine) as session:
        count_held_back(session)
        raise RuntimeError("the message failed to record")
    assert counted(NEW_INCIDENTS) == before
    with transaction(engine) as session:
        count_held_back(session)
    assert counted(NEW_INCIDENTS) == before + 1


# --- two writers at once -----------------------------------------------------------------------


def take_turns(
    engine: Engine, first: Callable[[Session], bool], second: Callable[[Session], bool]
) -> tuple[bool, bool]:
    """``first`` decides and writes in a transaction kept open while ``second`` starts in
    another thread; ``second`` must wait for that commit, then decide on what it wrote."""
    decided, release = threading.Event(), threading.Event()

    def hold() -> bool:
        with transaction(engine) as session:
            result = first(session)
            decided.set()
            release.wait(10)
        return result

    def follow() -> bool:
        with transaction(engine) as session:
            return second(session)

    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(hold)
        assert decided.wait(10)
        followed = pool.submit(follow)
        with pytest.raises(TimeoutError):  # the lock (PostgreSQL), the writers' turn (SQLite)
            followed.result(timeout=0.5)
        release.set()
        return held.result(timeout=10), followed.result(timeout=10)


def test_two_writers_cannot_both_open_the_last_incident(engine: Engine) -> None:
    one = LimitsConfig(new_incidents_per_sender_hour=1)

    def open_if_allowed(session: Session) -> bool:
        allowed = may_open_incident(session, "a@x.example", NOW, one)
        if allowed:
            opened(session, "a@x.example", NOW)
        return allowed

    assert take_turns(engine, open_if_allowed, open_if_allowed) == (True, False)


def test_two_writers_cannot_both_send_the_last_unknown_sender_reply(engine: Engine) -> None:
    composer = make_composer(limits(unknown_sender_replies_day=1))

    def answer(to: str) -> Callable[[Session], bool]:
        def run(session: Session) -> bool:
            ordered = order_reply(session, composer, stranger(to), sender_name=None, now=NOW)
            return ordered is not None

        return run

    assert take_turns(engine, answer("a@x.example"), answer("b@x.example")) == (True, False)


# --- the daemon --------------------------------------------------------------------------------


def test_a_workers_hold_back_reaches_the_daemons_metrics(
    db_url: str, tmp_path: Path, ticketd: Ticketd
) -> None:
    http = free_port()
    (tmp_path / "var").mkdir()
    daemon = ticketd(
        '[smtp]\nworkers = 1\nspool = true\nspool_dir = "spool"\n',
        "[limits]\nunknown_sender_replies_day = 0\n",
        f"[observability]\nhttp_port = {http}\n",
    )
    with daemon.serve_process():
        stranger_mail = make_mail(sender="forged@victim.example")
        assert daemon.send(stranger_mail, sender="forged@victim.example")[0] == 250
        limit = "unknown_sender_replies_day"
        samples = scrape_until(
            http, lambda s: value(s, "ticketd_rate_limited_total", limit=limit) > 0
        )
    assert value(samples, "ticketd_rate_limited_total", limit=limit) == 1
