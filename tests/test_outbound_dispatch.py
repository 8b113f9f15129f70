"""The dispatcher: composed outbox rows to a real aiosmtpd relay, with a driven clock."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailer.delivery import Transport
from ticketing.config import OutboundConfig
from ticketing.outbound.outbox import OutboxDispatcher, claim_next, dispatch_due
from ticketing.outbound.request import ReplyRequest
from ticketing.signing.message_ids import find_signed_incident
from ticketing.signing.tokens import RefTokens
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, OutboxMessage, UndeliverableAddress

from .builders import (
    NOW,
    SECRET,
    Sink,
    add_case,
    make_composer,
    make_config,
    queue_mail,
    relay_config,
    withheld_ack,
)
from .conftest import RunCli, write_config
from .daemon import free_port


def queue_acks(engine: Engine, count: int, at: datetime = NOW) -> list[OutboxMessage]:
    composer = make_composer(make_config())
    rows = []
    for i in range(count):
        incident, producer = add_case(
            engine, number=f"200528-{3000000 + i}", email_address=f"p{i}@b.example", npn=f"7{i}"
        )
        request = ReplyRequest(
            kind="ack_new",
            to=producer.email,
            incident=incident,
            producer=producer,
            in_reply_to=f"<in{i}@b.example>",
        )
        row = queue_mail(engine, composer, request, now=at)
        assert row is not None and row.status == "pending"
        rows.append(row)
    return rows


def dispatch(engine: Engine, config: OutboundConfig, at: datetime) -> int:
    from ticketing.outbound.outbox import transport_from_config

    return asyncio.run(dispatch_due(engine, transport_from_config(config), at, config))


def rows(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


def events(engine: Engine, kind: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.kind == kind)))


def test_reply_reaches_the_relay_and_threads(engine: Engine, sink: Sink) -> None:
    queue_acks(engine, 1)
    config = relay_config(sink.port)
    assert dispatch(engine, config, NOW) == 1
    [got] = sink.received
    message = got.message
    assert got.mail_from == "escalations@exchange.example"
    assert got.rcpt_tos == ["p0@b.example"]
    assert message["Subject"] == "Escalated Case: Enrollment.PID #:174097"
    assert message["In-Reply-To"] == "<in0@b.example>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    # what a producer's client puts in its reply names the incident, signed
    assert find_signed_incident([message["Message-ID"]], SECRET) == "200528-3000000"
    body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [token] = RefTokens(SECRET, "00Dtkd01").find(body)
    assert RefTokens(SECRET, "00Dtkd01").verify(token) == "200528-3000000"
    [sent] = rows(engine)
    assert (sent.status, sent.attempts, sent.sent_at) == ("sent", 1, NOW)
    assert dispatch(engine, config, NOW + timedelta(days=1)) == 0
    assert len(sink.received) == 1


def test_relay_down_then_back_delivers_each_mail_exactly_once(engine: Engine) -> None:
    relay = Sink(free_port())
    config = relay_config(relay.port, retry_initial_seconds=60)
    queued = queue_acks(engine, 3)
    clock = NOW
    for _ in range(4):  # the relay is down: rounds fail, rows back off
        assert dispatch(engine, config, clock) == 0
        clock += timedelta(seconds=30)
    waiting = rows(engine)
    assert {r.status for r in waiting} == {"pending"}
    assert all(r.attempts >= 1 for r in waiting)
    assert all(r.last_error and r.last_error.startswith("relay unreachable") for r in waiting)
    relay.start()
    try:
        assert dispatch(engine, config, clock + timedelta(minutes=5)) == 3
        assert dispatch(engine, config, clock + timedelta(hours=5)) == 0
        ids = Counter(r.message["Message-ID"] for r in relay.received)
        assert ids == Counter({row.message_id: 1 for row in queued})
        assert {r.status for r in rows(engine)} == {"sent"}
    finally:
        relay.stop()


def test_backoff_is_exponential_and_capped(engine: Engine, sink: Sink) -> None:
    sink.handler.answer = "451 4.3.0 busy"
    config = relay_config(sink.port, retry_initial_seconds=60, retry_max_seconds=300)
    queue_acks(engine, 1)
    clock, gaps = NOW, []
    for _ in range(6):
        assert dispatch(engine, config, clock) == 0
        [row] = rows(engine)
        gaps.append((row.next_attempt_at - clock).total_seconds())
        clock = row.next_attempt_at
    assert gaps == [60, 120, 240, 300, 300, 300]
    assert dispatch(engine, config, clock - timedelta(seconds=1)) == 0
    assert rows(engine)[0].attempts == 6  # not due yet: no attempt


def test_gives_up_after_the_maximum_age_with_reason_and_audit(engine: Engine, sink: Sink) -> None:
    sink.handler.answer = "421 4.7.0 try later"
    config = relay_config(sink.port, retry_initial_seconds=600, max_age_hours=1)
    composer = make_composer(make_config(max_age_hours=1))
    incident, producer = add_case(engine)
    request = ReplyRequest(kind="resolved", to=producer.email, incident=incident)
    assert queue_mail(engine, composer, request, now=NOW) is not None
    clock = NOW
    for _ in range(10):
        dispatch(engine, config, clock)
        clock += timedelta(minutes=20)
    [row] = rows(engine)
    assert (row.status, row.reason) == ("failed", "expired")
    assert row.last_error == "SMTP 421 4.7.0 (DataError)"
    assert row.attempts <= 4
    [event] = events(engine, "outbox_failed")
    assert event.incident_id == incident.id
    assert event.detail["reason"] == "expired"
    assert sink.received == []


def test_permanent_refusal_fails_at_once(engine: Engine, sink: Sink) -> None:
    sink.handler.answer = "550 5.1.1 no such user"
    queue_acks(engine, 1)
    assert dispatch(engine, relay_config(sink.port), NOW) == 0
    [row] = rows(engine)
    assert (row.status, row.reason, row.attempts) == ("failed", "rejected", 1)
    assert events(engine, "outbox_failed")[0].detail["error"] == "SMTP 550 5.1.1 (DataError)"


def test_address_that_bounced_after_queueing_is_not_sent(engine: Engine, sink: Sink) -> None:
    queue_acks(engine, 1)
    with transaction(engine) as session:
        session.add(UndeliverableAddress(address="p0@b.example"))
    assert dispatch(engine, relay_config(sink.port), NOW) == 0
    assert (rows(engine)[0].status, rows(engine)[0].reason) == ("failed", "undeliverable")
    assert sink.received == []


def test_a_crashed_dispatchers_claim_expires(engine: Engine, sink: Sink) -> None:
    config = relay_config(sink.port)
    queue_acks(engine, 1)
    claim = claim_next(engine, NOW, config)  # ... and the dispatcher dies here
    assert claim is not None and claim.attempts == 1
    assert dispatch(engine, config, NOW + timedelta(seconds=59)) == 0  # lease (60 s) still held
    assert dispatch(engine, config, NOW + timedelta(minutes=10)) == 1
    [row] = rows(engine)
    assert (row.status, row.attempts) == ("sent", 2)


def test_two_dispatchers_at_once_never_send_a_row_twice(engine: Engine, sink: Sink) -> None:
    queued = queue_acks(engine, 24)
    config = relay_config(sink.port)
    barrier = threading.Barrier(3)
    counts: list[int] = []

    def worker() -> None:
        barrier.wait()
        counts.append(dispatch(engine, config, NOW))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(counts) == 24
    ids = Counter(r.message["Message-ID"] for r in sink.received)
    assert ids == Counter({row.message_id: 1 for row in queued})
    assert all(r.attempts == 1 for r in rows(engine))


def test_maildir_transport_end_to_end(engine: Engine, tmp_path: Path) -> None:
    import mailbox

    queue_acks(engine, 2)
    config = OutboundConfig(maildir=str(tmp_path / "sent"))
    assert dispatch(engine, config, NOW) == 2
    assert len(list(mailbox.Maildir(tmp_path / "sent", create=False))) == 2


def test_dispatcher_loop_wakes_and_stops(engine: Engine, sink: Sink) -> None:
    config = relay_config(sink.port, poll_interval_seconds=3600)
    from ticketing.outbound.outbox import transport_from_config

    async def scenario() -> None:
        dispatcher = OutboxDispatcher(
            engine, transport_from_config(config), config, clock=lambda: NOW
        )
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        await asyncio.sleep(0.2)  # first round: nothing due
        await asyncio.to_thread(queue_acks, engine, 1)
        dispatcher.wake()
        for _ in range(200):
            if sink.received:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())
    assert len(sink.received) == 1


# --- the command line ---------------------------------------------------------------------------


def test_outbox_list_and_retry(
    run_cli: RunCli, engine: Engine, db_url: str, tmp_path: Path, sink: Sink
) -> None:
    sink.handler.answer = "550 5.1.1 no such user"
    queue_acks(engine, 2)
    dispatch(engine, relay_config(sink.port), NOW)
    config = write_config(tmp_path, db_url)
    listed = json.loads(run_cli("--config", str(config), "outbox", "list", "--json").out)
    assert [(r["status"], r["reason"], r["kind"]) for r in listed] == [
        ("failed", "rejected", "ack_new")
    ] * 2
    table = run_cli("--config", str(config), "outbox", "list", "--status", "failed").out
    assert table.splitlines()[0].split()[:3] == ["ID", "STATUS", "KIND"]
    first = listed[-1]["id"]
    result = run_cli("--config", str(config), "outbox", "retry", str(first))
    assert result.code == 0, result
    assert result.out == f"outbox {first}: pending, due now\n"
    [retried] = [r for r in rows(engine) if r.id == first]
    assert (retried.status, retried.reason) == ("pending", None)
    assert retried.expires_at - retried.next_attempt_at == timedelta(hours=48)  # a fresh period
    assert events(engine, "outbox_retried")[0].actor == "admin"
    sink.handler.answer = None
    assert dispatch(engine, relay_config(sink.port), retried.next_attempt_at) == 1
    again = run_cli("--config", str(config), "outbox", "retry", str(first))
    assert again.code == 1
    assert again.err == f"ticketd: outbox message {first} is sent, not failed or pending\n"
    missing = run_cli("--config", str(config), "outbox", "retry", "9999")
    assert missing.err == "ticketd: no outbox message 9999\n"


class _TakenOverWhileSending:
    """The maildir transport, except that while the second mail is being written another
    dispatcher takes its row over (its lease ran out): a newer attempt now holds it."""

    def __init__(self, engine: Engine, inner: Transport, row_id: int) -> None:
        self.engine, self.inner, self.row_id = engine, inner, row_id

    async def send(self, mail_from: str, recipients: Sequence[str], message: bytes) -> None:
        await self.inner.send(mail_from, recipients, message)
        if b"<in1@b.example>" in message:
            with transaction(self.engine) as session:
                row = session.get(OutboxMessage, self.row_id)
                assert row is not None
                row.attempts += 1
                session.add(row)


def test_a_rounds_outcomes_are_recorded_together_each_only_if_its_lease_held(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ticketing.outbound.outbox import transport_from_config

    queued = queue_acks(engine, 3)
    config = OutboundConfig(maildir=str(tmp_path / "sent"))
    transport = _TakenOverWhileSending(engine, transport_from_config(config), queued[1].id or 0)
    assert asyncio.run(dispatch_due(engine, transport, NOW, config)) == 3
    assert [(r.status, r.attempts) for r in rows(engine)] == [
        ("sent", 1),
        ("sending", 2),  # the newer attempt's row: not overwritten with the older outcome
        ("sent", 1),
    ]
    assert f"outbox {queued[1].id}: lease lost before the outcome was recorded" in caplog.text


def test_a_withheld_mail_is_listed_with_the_kinds_found_and_cannot_be_retried(
    run_cli: RunCli, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    row = withheld_ack(engine)
    assert row.status == "withheld"
    config = write_config(tmp_path, db_url)
    listed = json.loads(run_cli("--config", str(config), "outbox", "list", "--json").out)
    assert [(r["status"], r["reason"], r["pii_findings"]) for r in listed] == [
        ("withheld", "personal_data", {"US_SSN": 1})
    ]
    table = run_cli("--config", str(config), "outbox", "list", "--status", "withheld").out
    assert table.splitlines()[1].endswith("personal_data: US_SSN x1")
    again = run_cli("--config", str(config), "outbox", "retry", str(row.id))
    assert again.err == f"ticketd: outbox message {row.id} is withheld, not failed or pending\n"
