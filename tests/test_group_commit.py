"""Group commit: several messages recorded with one commit, each as if it came alone."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ticketing import metrics
from ticketing.config import Config, DatabaseConfig
from ticketing.errors import PermanentRejection, StorageError
from ticketing.intake.build import build_pipeline
from ticketing.outbound.sinks import ReplyOrder
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import Outcome, RawMessage
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.models import Incident, Message, Producer

from .builders import LOCAL_MTA
from .mail import make_mail

SECRET = "s" * 40


class Replies:
    """Keeps the orders; an order for ``fail_for`` raises, as a bug in a stage would."""

    def __init__(self, fail_for: str | None = None) -> None:
        self.fail_for = fail_for
        self.orders: list[ReplyOrder] = []  # the replies; desk copies are kept apart
        self.desk_copies: list[ReplyOrder] = []

    def queue(self, session: Session, order: ReplyOrder, now: datetime) -> bool:
        if order.identity.address == self.fail_for:
            raise RuntimeError("bug in a stage")
        (self.desk_copies if order.kind == "desk_copy" else self.orders).append(order)
        return True


def _pipeline(engine: Engine, replies: Replies) -> IntakePipeline:
    with transaction(engine) as session:
        session.add(Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example"))
        session.add(Producer(npn="7654321", name="Ana Ortiz", email="ana@brokers.example"))
    return build_pipeline(Config(), engine, replies=replies, secret=SECRET.encode())


def _smtp(raw: bytes, mailbox: str = "escalations") -> RawMessage:
    return RawMessage(raw, "smtp", (mailbox,), peer=LOCAL_MTA)


def _escalation(
    pid: int, sender: str = "Sam Amsung <sam@brokers.example>", message_id: str = "auto"
) -> bytes:
    subject = f"Escalated Case: Enrollment.PID #:{pid}"
    return make_mail(sender=sender, subject=subject, message_id=message_id)


def _stored(engine: Engine) -> list[tuple[str, str | None, str | None]]:
    """(sender, incident number, disposition) of every recorded message, in order."""
    with transaction(engine, readonly=True) as session:
        rows = session.exec(
            select(Message.sender, Incident.number, Message.disposition)
            .join(Incident, isouter=True)
            .order_by(col(Message.id))
        ).all()
    return [(sender, number, disposition) for sender, number, disposition in rows]


def test_a_batch_records_each_message_as_one_by_one_would(engine: Engine) -> None:
    replies = Replies()
    pipeline = _pipeline(engine, replies)
    raws = [_smtp(_escalation(100_000 + i)) for i in range(5)]
    results = pipeline.process_batch(raws)
    assert all(isinstance(r, Outcome) and r.action == "recorded" for r in results)
    numbers = [r.incident_number for r in results if isinstance(r, Outcome)]
    assert len(set(numbers)) == 5 and all(numbers)
    assert [(n, d) for _, n, d in _stored(engine)] == [(n, "recorded") for n in numbers]
    assert [o.kind for o in replies.orders] == ["ack_new"] * 5


def test_later_messages_of_a_batch_see_what_earlier_ones_recorded(engine: Engine) -> None:
    pipeline = _pipeline(engine, Replies())
    first = _escalation(174_097, message_id="<first@brokers.example>")
    reply = make_mail(
        subject="RE: Escalated Case: Enrollment.PID #:174097",
        headers={"In-Reply-To": "<first@brokers.example>"},
    )
    results = pipeline.process_batch([_smtp(first), _smtp(first), _smtp(reply)])
    assert [r.action for r in results if isinstance(r, Outcome)] == [
        "recorded",
        "duplicate",
        "recorded",
    ]
    opened, again, threaded = (r for r in results if isinstance(r, Outcome))
    assert opened.new_incident and not threaded.new_incident
    assert opened.incident_number == again.incident_number == threaded.incident_number
    assert len(_stored(engine)) == 2


def test_a_refused_message_gets_its_error_and_the_others_are_recorded(engine: Engine) -> None:
    pipeline = _pipeline(engine, Replies())
    raws = [
        _smtp(_escalation(100_001)),
        _smtp(_escalation(100_002), mailbox="nobody-here"),
        _smtp(_escalation(100_003)),
    ]
    results = pipeline.process_batch(raws)
    assert isinstance(results[1], PermanentRejection)
    assert "unknown mailbox" in str(results[1])
    assert [type(r) for r in (results[0], results[2])] == [Outcome, Outcome]
    assert len(_stored(engine)) == 2


def test_a_failure_in_the_shared_commit_costs_only_the_message_that_caused_it(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "ticketing.pipeline.runner")
    replies = Replies(fail_for="ana@brokers.example")
    pipeline = _pipeline(engine, replies)
    raws = [
        _smtp(_escalation(100_001)),
        _smtp(_escalation(100_002, sender="Ana Ortiz <ana@brokers.example>")),
        _smtp(_escalation(100_003)),
    ]
    results = pipeline.process_batch(raws)
    assert isinstance(results[1], RuntimeError)
    assert [r.action for r in (results[0], results[2]) if isinstance(r, Outcome)] == [
        "recorded",
        "recorded",
    ]
    senders = [sender for sender, _, _ in _stored(engine)]
    assert senders == ["sam@brokers.example", "sam@brokers.example"]  # nothing of Ana's
    assert "group commit failed (RuntimeError): recording one by one" in caplog.text


def test_every_message_of_a_batch_is_counted_once(engine: Engine) -> None:
    pipeline = _pipeline(engine, Replies())
    seen: list[metrics.IntakeObservation] = []
    metrics.forward_intake(seen.append)
    try:
        pipeline.process_batch(
            [_smtp(_escalation(100_001)), _smtp(b"no headers at all"), _smtp(_escalation(100_002))]
        )
    finally:
        metrics.forward_intake(None)
    assert [o.action for o in seen] == ["recorded", "refused", "recorded"]
    assert all(o.seconds > 0 for o in seen if o.action == "recorded")


def test_an_unreachable_database_makes_every_message_wait() -> None:
    down = create_db_engine(DatabaseConfig(url="postgresql://postgres@127.0.0.1:9/none"))
    pipeline = build_pipeline(Config(), down, replies=Replies(), secret=SECRET.encode())
    results = pipeline.process_batch([_smtp(_escalation(100_001)), _smtp(_escalation(100_002))])
    assert [type(r) for r in results] == [StorageError, StorageError]
    down.dispose()
