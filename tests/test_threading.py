"""Threading onto incidents, routing, lifecycle and duplicate escalations (issue 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from ticketing.config import Config
from ticketing.config.desk_schema import StaffConfig
from ticketing.intake.build import build_pipeline
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import Outcome, RawMessage
from ticketing.signing.tokens import RefTokens
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, Incident, Message, OutboxMessage, Producer

from .builders import LOCAL_MTA, TOKEN_SECRET, RecordedReplies
from .mail import make_mail

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
STAFF = StaffConfig(addresses=("lead@exchange.example",), domains=("caseworkers.exchange.example",))


@pytest.fixture
def pipeline(
    engine: Engine, replies: RecordedReplies, monkeypatch: pytest.MonkeyPatch
) -> IntakePipeline:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", TOKEN_SECRET)
    with transaction(engine) as session:
        session.add(Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example"))
        session.add(Producer(npn="7654321", name="Ana Ortiz", email="ana@brokers.example"))
    return build_pipeline(Config(staff=STAFF), engine, replies=replies)


def deliver(
    pipeline: IntakePipeline, raw: bytes, when: datetime = T0, box: str = "escalations"
) -> Outcome:
    return pipeline.process(RawMessage(raw, "smtp", (box,), received_at=when, peer=LOCAL_MTA))


def incident(engine: Engine, number: str | None) -> Incident:
    assert number is not None
    with transaction(engine, readonly=True) as session:
        return session.exec(select(Incident).where(Incident.number == number)).one()


def token_for(number: str | None) -> str:
    assert number is not None
    return RefTokens(TOKEN_SECRET.encode(), "00Dtkd01").make(number)


def ack_from_us(engine: Engine, number: str | None, message_id: str) -> None:
    """What the outbox holds once our ack_new went out: our Message-ID on the incident."""
    assert number is not None
    with transaction(engine) as session:
        found = session.exec(select(Incident).where(Incident.number == number)).one()
        session.add(
            OutboxMessage(
                incident_id=found.id,
                kind="ack_new",
                message_id=message_id,
                to_address="sam@brokers.example",
                mime=b"x",
            )
        )


@pytest.mark.parametrize(
    ("subject_prefix", "quoting"),
    [("RE: ", True), ("AW: ", True), ("Fwd: ", False), ("Re: ", False)],
)
def test_client_replies_land_on_their_incident(
    pipeline: IntakePipeline, engine: Engine, subject_prefix: str, quoting: bool
) -> None:
    first = deliver(pipeline, make_mail())
    token = token_for(first.incident_number)
    ack = f"We have received your inquiry. The assigned incident number is {first.incident_number}."
    attribution = "On Tue, Nov 24, 2026 at 10:00 AM MHBE <escalations@exchange.example> wrote:"
    quoted = f"\n\n{attribution}\n> {ack}\n> {token}\n"
    body = "Here is the extra detail you asked for." + (quoted if quoting else f"\n\n{token}\n")
    reply = make_mail(subject=f"{subject_prefix}Escalated Case: Enrollment.PID #:174097", body=body)
    outcome = deliver(pipeline, reply)
    assert (outcome.incident_number, outcome.new_incident) == (first.incident_number, False)


def test_reply_that_kept_only_in_reply_to(pipeline: IntakePipeline, engine: Engine) -> None:
    first = deliver(pipeline, make_mail())
    ack_from_us(engine, first.incident_number, "<ack-1@exchange.example>")
    reply = make_mail(
        subject="quick question",
        body="Any news?",
        headers={"In-Reply-To": "<ack-1@exchange.example>"},
    )
    assert deliver(pipeline, reply).incident_number == first.incident_number


def test_reply_that_kept_only_the_number_in_the_subject(pipeline: IntakePipeline) -> None:
    first = deliver(pipeline, make_mail())
    reply = make_mail(subject=f"RE: [#{first.incident_number}] still waiting", body="Any news?")
    outcome = deliver(pipeline, reply)
    assert (outcome.incident_number, outcome.new_incident) == (first.incident_number, False)


def test_altered_token_attaches_to_nothing(pipeline: IntakePipeline, engine: Engine) -> None:
    first = deliver(pipeline, make_mail())
    token = token_for(first.incident_number)
    altered = token[:12] + ("x" if token[12] != "x" else "y") + token[13:]
    outcome = deliver(pipeline, make_mail(subject="Re: hello", body=f"more\n{altered}"))
    assert outcome.incident_number != first.incident_number
    with transaction(engine, readonly=True) as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.kind == "forged_token")).first()


def test_second_producer_quoting_number_and_token_is_refused(
    pipeline: IntakePipeline, engine: Engine, replies: RecordedReplies
) -> None:
    first = deliver(pipeline, make_mail())
    number, token = first.incident_number, token_for(first.incident_number)
    intruder = make_mail(
        sender="ana@brokers.example",
        subject=f"RE: Incident {number}",
        body=f"Tell me about this case.\n{token}",
    )
    outcome = deliver(pipeline, intruder)
    assert (outcome.action, outcome.incident_number) == ("not_authorized", None)
    assert replies.kinds[-1] == "not_authorized"
    assert replies.orders[-1].incident is None  # the reply can reveal nothing about it
    with transaction(engine, readonly=True) as session:
        on_incident = session.exec(
            select(Message).where(Message.incident_id == incident(engine, number).id)
        ).all()
    assert len(on_incident) == 1


def test_duplicate_escalation_is_attached_while_open(
    pipeline: IntakePipeline, engine: Engine
) -> None:
    first = deliver(pipeline, make_mail(subject="Escalated Case: Enrollment.PID #:174097"))
    again = make_mail(
        subject="Enrollment problem for PID 174097", body="Calling the hotline too, same client."
    )
    outcome = deliver(pipeline, again, T0 + timedelta(hours=2))
    assert (outcome.incident_number, outcome.new_incident) == (first.incident_number, False)
    with transaction(engine, readonly=True) as session:
        kinds = session.exec(select(AuditEvent.kind)).all()
    assert "duplicate_attached" in kinds
    other_type = make_mail(subject="Termination issue PID 174097", body="terminated wrongly")
    assert deliver(pipeline, other_type).new_incident


def test_types_and_routing(pipeline: IntakePipeline, engine: Engine) -> None:
    cases = {
        "Escalated Case: 1095 A.PID #:5551": ("form_1095a", "escalated_cases"),
        "Commission not paid for PID 5552": ("commission", "producer_operations"),
        "Client terminated by mistake PID 5553": ("termination", "escalated_cases"),
        "URGENT: System Error on the portal, PID 5554": ("system_error", "escalated_cases"),
    }
    for subject, (case_type, team) in cases.items():
        number = deliver(pipeline, make_mail(subject=subject)).incident_number
        found = incident(engine, number)
        assert (found.type, found.team) == (case_type, team), subject
    urgent = deliver(pipeline, make_mail(subject="urgent: help", body="PID 5555")).incident_number
    assert incident(engine, urgent).priority == "high"


def test_caseworker_reply_then_producer_reply(
    pipeline: IntakePipeline, engine: Engine, replies: RecordedReplies
) -> None:
    first = deliver(pipeline, make_mail())
    number, token = first.incident_number, token_for(first.incident_number)
    staff = make_mail(
        sender="Case Worker <cw@caseworkers.exchange.example>",
        to="sam@brokers.example",
        subject=f"RE: Escalated Case [{number}]",
        body=f"Please send the notice number.\n\n{token}",
        headers={"Bcc": "escalations@exchange.example"},
    )
    outcome = deliver(pipeline, staff, T0 + timedelta(hours=1))
    assert outcome.incident_number == number
    assert incident(engine, number).status == "awaiting_producer"
    answer = make_mail(subject=f"RE: Escalated Case [{number}]", body=f"It is 12345.\n{token}")
    deliver(pipeline, answer, T0 + timedelta(hours=2))
    assert incident(engine, number).status == "open"
    with transaction(engine, readonly=True) as session:
        directions = session.exec(
            select(Message.direction)
            .where(Message.incident_id == incident(engine, number).id)
            .order_by(col(Message.id))
        ).all()
    assert directions == ["in", "out", "in"]
    assert "ack_new" in replies.kinds and all(o.identity.is_staff is False for o in replies.orders)


def test_resolution_marker_then_reopen_within_window_then_linked_after(
    pipeline: IntakePipeline, engine: Engine
) -> None:
    number = deliver(pipeline, make_mail()).incident_number
    token = token_for(number)
    resolve = make_mail(
        sender="lead@exchange.example", subject=f"[resolved] {number}", body=f"Fixed.\n{token}"
    )
    deliver(pipeline, resolve, T0 + timedelta(days=1))
    assert incident(engine, number).status == "resolved"
    deliver(
        pipeline,
        make_mail(subject="Re: thanks", body=f"Not fixed!\n{token}"),
        T0 + timedelta(days=3),
    )
    assert incident(engine, number).status == "open"
    deliver(pipeline, resolve.replace(b"Fixed.", b"Fixed again."), T0 + timedelta(days=4))
    late = deliver(
        pipeline,
        make_mail(subject="Re: again", body=f"Broken again\n{token}"),
        T0 + timedelta(days=30),
    )
    assert late.new_incident and late.incident_number != number
    assert incident(engine, late.incident_number).linked_from_id == incident(engine, number).id
    assert incident(engine, number).status == "resolved"


def test_mail_to_a_merged_incident_follows_the_merge(
    pipeline: IntakePipeline, engine: Engine
) -> None:
    first = deliver(pipeline, make_mail(subject="Escalated Case: Enrollment.PID #:1001"))
    second = deliver(pipeline, make_mail(subject="Escalated Case: Enrollment.PID #:1002"))
    with transaction(engine) as session:
        source = session.exec(
            select(Incident).where(Incident.number == second.incident_number)
        ).one()
        target = session.exec(
            select(Incident).where(Incident.number == first.incident_number)
        ).one()
        source.merged_into_id = target.id
        session.add(source)
    reply = make_mail(subject="Re: x", body=f"more\n{token_for(second.incident_number)}")
    assert deliver(pipeline, reply).incident_number == first.incident_number


def test_staff_mail_never_opens_an_incident(
    pipeline: IntakePipeline, engine: Engine, replies: RecordedReplies
) -> None:
    outcome = deliver(pipeline, make_mail(sender="lead@exchange.example", subject="lunch?"))
    assert (outcome.action, outcome.incident_number) == ("recorded", None)
    with transaction(engine, readonly=True) as session:
        assert session.exec(select(Incident)).first() is None
    assert replies.orders == []
