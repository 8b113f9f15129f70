"""Intake replies are ordered in the recording transaction and composed after its commit;
an order a process left behind is composed by the daemon, once."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from pii_guard import PiiGuard
from ticketing.config import Config
from ticketing.config.pii_schema import PiiConfig
from ticketing.errors import StorageError
from ticketing.intake.build import build_pipeline
from ticketing.outbound.compose import ComposedMail, ReplyComposer
from ticketing.outbound.orders import (
    ORDER_LEASE,
    OrderedReply,
    compose_orders,
    compose_orphans,
    order_reply,
)
from ticketing.outbound.request import ReplyRequest
from ticketing.outbound.templated import TemplatedBatch, TemplatedReplies
from ticketing.pipeline.guard import PiiGuardStage
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import RawMessage
from ticketing.privacy.settings import build_guard
from ticketing.server.jobs import TimedJob, timed_jobs
from ticketing.signing.message_ids import verify_message_id
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, Incident, OutboxMessage, Producer, utcnow

from .builders import LOCAL_MTA, NOW, SECRET, add_case, make_composer, make_config
from .mail import make_mail


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return build_guard(PiiConfig())


@pytest.fixture
def composer() -> ReplyComposer:
    return make_composer(make_config())


def ack_new(incident: Incident, producer: Producer) -> ReplyRequest:
    return ReplyRequest(
        kind="ack_new",
        to=producer.email,
        incident=incident,
        producer=producer,
        in_reply_to="<CAF1@mail.brokers.example>",
        references=("<older@mail.brokers.example>", "<CAF1@mail.brokers.example>"),
    )


def order(engine: Engine, composer: ReplyComposer, request: ReplyRequest) -> OrderedReply:
    """An order committed and never composed: what a process that died leaves behind."""
    with transaction(engine) as session:
        ordered = order_reply(session, composer, request, sender_name="Sam Amsung", now=NOW)
    assert ordered is not None
    return ordered


def outbox(engine: Engine) -> list[OutboxMessage]:
    with transaction(engine, readonly=True) as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


def audit_kinds(engine: Engine) -> list[str]:
    with transaction(engine, readonly=True) as session:
        return [e.kind for e in session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))]


def parse(row: OutboxMessage) -> EmailMessage:
    parsed = message_from_bytes(row.mime, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_an_order_holds_ids_and_no_mail_until_composed(
    engine: Engine, composer: ReplyComposer
) -> None:
    incident, producer = add_case(engine)
    ordered = order(engine, composer, ack_new(incident, producer))
    [row] = outbox(engine)
    assert (row.status, row.mime, row.message_id) == ("composing", b"", ordered.message_id)
    assert row.reply_order is not None
    assert row.reply_order["producer_id"] == producer.id
    assert "174097" not in str(row.reply_order)  # person ids are read again, not copied
    assert audit_kinds(engine) == ["reply_queued"]


def test_the_daemon_composes_an_order_once_its_lease_has_run_out(
    engine: Engine, composer: ReplyComposer, guard: PiiGuard
) -> None:
    incident, producer = add_case(engine)
    ordered = order(engine, composer, ack_new(incident, producer))
    assert compose_orphans(engine, composer, guard) == 0  # its process may still compose it
    later = utcnow() + ORDER_LEASE + timedelta(seconds=1)
    assert compose_orphans(engine, composer, guard, now=later) == 1
    [row] = outbox(engine)
    assert (row.status, row.reply_order, row.next_attempt_at) == ("pending", None, NOW)
    mail = parse(row)
    assert mail["Message-ID"] == ordered.message_id
    assert verify_message_id(mail["Message-ID"], SECRET) == incident.number
    assert mail["In-Reply-To"] == "<CAF1@mail.brokers.example>"
    assert mail["Date"].datetime == NOW
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert text.startswith("Hi sam amsung,")  # the producer, read again by id
    assert incident.number in text
    assert compose_orphans(engine, composer, guard, now=later) == 0


def test_a_mail_composed_twice_is_written_once(
    engine: Engine, composer: ReplyComposer, guard: PiiGuard
) -> None:
    """The daemon took over an order its (slow, not dead) process then composed too."""
    incident, producer = add_case(engine)
    ordered = order(engine, composer, ack_new(incident, producer))
    compose_orders(engine, composer, guard, [ordered])
    [first] = outbox(engine)
    with transaction(engine) as session:
        session.execute(update(OutboxMessage).values(status="sent"))
    compose_orders(engine, composer, guard, [ordered])
    [again] = outbox(engine)
    assert (again.status, again.mime) == ("sent", first.mime)


def test_a_composed_mail_with_personal_data_is_withheld(
    engine: Engine, composer: ReplyComposer, guard: PiiGuard
) -> None:
    incident, producer = add_case(engine)
    leaky = ReplyRequest(
        kind="pii_redacted",
        to=producer.email,
        incident=incident,
        producer=producer,
        extra={"finding_types": ["SSN 219-09-9999"]},
    )
    ordered = order(engine, composer, leaky)
    compose_orders(engine, composer, guard, [ordered])
    compose_orders(engine, composer, guard, [ordered])
    [row] = outbox(engine)
    withheld = (row.status, row.reason, row.pii_findings, row.mime, row.reply_order)
    assert withheld == ("withheld", "personal_data", {"US_SSN": 1}, b"", None)
    assert audit_kinds(engine) == ["reply_queued", "outbound_blocked_pii"]
    with transaction(engine, readonly=True) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.kind != "reply_queued")).one()
    assert event.detail == {"kind": "pii_redacted", "finding_counts": {"US_SSN": 1}}


def test_an_order_that_cannot_be_composed_fails_alone(
    engine: Engine, composer: ReplyComposer, guard: PiiGuard
) -> None:
    incident, producer = add_case(engine)
    broken = ReplyRequest(kind="pii_redacted", to=producer.email, incident=incident)
    orders = [order(engine, composer, broken), order(engine, composer, ack_new(incident, producer))]
    compose_orders(engine, composer, guard, orders)
    bad, good = outbox(engine)
    assert (bad.status, bad.reason, bad.reply_order) == ("failed", "unrenderable", None)
    assert bad.last_error is not None and "missing ['finding_types']" in bad.last_error
    assert good.status == "pending"
    assert "reply_unrenderable" in audit_kinds(engine)


def test_a_bug_while_composing_fails_that_reply_alone_without_its_text(
    engine: Engine, composer: ReplyComposer, guard: PiiGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    incident, producer = add_case(engine)
    compose = composer.compose

    def faulty(request: ReplyRequest, **kwargs: Any) -> ComposedMail:
        if request.kind == "ack_reply":
            raise RuntimeError("unexpected 219-09-9999")
        return compose(request, **kwargs)

    monkeypatch.setattr(composer, "compose", faulty)
    reply = replace(ack_new(incident, producer), kind="ack_reply")
    orders = [order(engine, composer, reply), order(engine, composer, ack_new(incident, producer))]
    compose_orders(engine, composer, guard, orders)
    bad, good = outbox(engine)
    assert (bad.status, bad.last_error, good.status) == (
        "failed",
        "RuntimeError while composing",
        "pending",
    )


def test_the_orders_job_composes_what_a_crash_left_and_wakes_the_dispatcher(
    engine: Engine, composer: ReplyComposer, guard: PiiGuard
) -> None:
    incident, producer = add_case(engine)
    order(engine, composer, ack_new(incident, producer))
    with transaction(engine) as session:  # ordered a lease ago
        session.execute(update(OutboxMessage).values(next_attempt_at=utcnow() - ORDER_LEASE))
    woken = threading.Event()

    def compose_left_orders() -> None:
        if compose_orphans(engine, composer, guard):
            woken.set()

    scheduler = timed_jobs([TimedJob("orders left composing", compose_left_orders, 0.05)])
    scheduler.start()
    try:
        assert woken.wait(30)
    finally:
        scheduler.shutdown(wait=True)
    assert [row.status for row in outbox(engine)] == ["pending"]


# --- through the pipeline -----------------------------------------------------------------------


class ComposeFails(TemplatedReplies):
    """The process dies (here: the database goes away) between commit and composing."""

    def batch(self) -> TemplatedBatch:
        return _FailingBatch(self.composer, self.engine, self.guard)


class _FailingBatch(TemplatedBatch):
    def compose(self) -> None:
        raise StorageError("database unavailable: test")


def pipeline_with(engine: Engine, replies: TemplatedReplies, guard: PiiGuard) -> IntakePipeline:
    with transaction(engine) as session:
        session.add(Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example"))
    return build_pipeline(
        Config(), engine, guard=PiiGuardStage(guard), replies=replies, secret=SECRET
    )


def test_the_pipeline_composes_its_replies_after_the_commit(
    engine: Engine, composer: ReplyComposer, guard: PiiGuard
) -> None:
    pipeline = pipeline_with(engine, TemplatedReplies(composer, engine, guard), guard)
    outcome = pipeline.process(
        RawMessage(make_mail(), "smtp", ("escalations",), received_at=NOW, peer=LOCAL_MTA)
    )
    # the acknowledgement, and the desk copy for the team (tests/test_desk_copies.py)
    rows = {row.kind: row for row in outbox(engine)}
    assert sorted(rows) == ["ack_new", "desk_copy"]
    row = rows["ack_new"]
    assert (row.status, row.reply_order) == ("pending", None)
    assert (rows["desk_copy"].status, rows["desk_copy"].reply_order) == ("pending", None)
    mail = parse(row)
    assert verify_message_id(mail["Message-ID"], SECRET) == outcome.incident_number
    assert mail["Date"].datetime == NOW


def test_a_message_stays_recorded_when_its_replies_cannot_be_composed(
    engine: Engine, composer: ReplyComposer, guard: PiiGuard, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = pipeline_with(engine, ComposeFails(composer, engine, guard), guard)
    first = RawMessage(make_mail(), "smtp", ("escalations",), received_at=NOW, peer=LOCAL_MTA)
    second = RawMessage(make_mail(subject="System Error"), "smtp", ("escalations",), peer=LOCAL_MTA)
    outcomes = [pipeline.process(first), *pipeline.process_batch([second, first])]
    assert [o.action for o in outcomes if not isinstance(o, Exception)] == [
        "recorded",
        "recorded",
        "duplicate",
    ]
    assert "replies left for the daemon to compose (StorageError)" in caplog.text
    # two acknowledgements and two desk copies
    assert [row.status for row in outbox(engine)] == ["composing"] * 4
    later = utcnow() + ORDER_LEASE + timedelta(seconds=1)
    assert compose_orphans(engine, composer, guard, now=later) == 4
    assert [row.status for row in outbox(engine)] == ["pending"] * 4
