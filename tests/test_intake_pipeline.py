"""The intake pipeline on real databases: one message, one pass, recorded once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from ticketing.config import Config, IntakeConfig
from ticketing.errors import PermanentRejection
from ticketing.intake.build import build_pipeline
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import RawMessage
from ticketing.signing.message_ids import make_message_id
from ticketing.signing.tokens import RefTokens
from ticketing.store.db import transaction
from ticketing.store.models import (
    Attachment,
    AuditEvent,
    Incident,
    IncidentConsumer,
    Message,
    OutboxMessage,
    Producer,
    UndeliverableAddress,
)

from .builders import LOCAL_MTA, TOKEN_SECRET, RecordedReplies
from .mail import make_mail


def _pipeline(
    engine: Engine, replies: RecordedReplies, config: Config | None = None
) -> IntakePipeline:
    return build_pipeline(config or Config(), engine, replies=replies)


@pytest.fixture
def pipeline(
    engine: Engine, replies: RecordedReplies, monkeypatch: pytest.MonkeyPatch
) -> IntakePipeline:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", TOKEN_SECRET)
    with transaction(engine) as session:
        session.add(Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example"))
        session.add(Producer(npn="7654321", name="Ana Ortiz", email="ana@brokers.example"))
    return _pipeline(engine, replies)


def smtp(raw: bytes, *mailboxes: str, mail_from: str | None = "sam@brokers.example") -> RawMessage:
    return RawMessage(raw, "smtp", mailboxes or ("escalations",), mail_from, peer=LOCAL_MTA)


def count(engine: Engine, model: type) -> int:
    with transaction(engine, readonly=True) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def test_new_escalation_opens_an_incident(
    pipeline: IntakePipeline, engine: Engine, replies: RecordedReplies
) -> None:
    outcome = pipeline.process(smtp(make_mail()))
    assert (outcome.action, outcome.new_incident) == ("recorded", True)
    with transaction(engine, readonly=True) as session:
        incident = session.exec(select(Incident)).one()
        message = session.exec(select(Message)).one()
        consumers = session.exec(select(IncidentConsumer.person_id)).all()
        producer = session.get(Producer, incident.producer_id)
    assert incident.number == outcome.incident_number
    assert (incident.type, incident.team, incident.mailbox) == (
        "enrollment",
        "escalated_cases",
        "escalations",
    )
    assert producer is not None and producer.npn == "1234567"
    assert consumers == ["174097"]
    assert message.new_text.startswith("My client cannot complete enrollment.")
    assert (message.kind, message.disposition, message.mailboxes) == (
        "normal",
        "recorded",
        ["escalations"],
    )
    assert replies.kinds == ["ack_new"]


def test_the_same_message_twice_is_recorded_once(
    pipeline: IntakePipeline, engine: Engine, replies: RecordedReplies
) -> None:
    raw = make_mail()
    first = pipeline.process(smtp(raw))
    again = pipeline.process(smtp(raw))
    assert again.action == "duplicate"
    assert again.incident_number == first.incident_number
    assert (count(engine, Message), count(engine, Incident)) == (1, 1)
    assert replies.kinds == ["ack_new"]


def test_copy_to_a_second_mailbox_is_one_message_noted_as_sent_to_both(
    pipeline: IntakePipeline, engine: Engine
) -> None:
    raw = make_mail(to="escalations@exchange.example, producer.operations@exchange.example")
    pipeline.process(smtp(raw, "escalations"))
    by_other_path = b"Received: from relay.example by mx.exchange.example; today\r\n" + raw
    outcome = pipeline.process(
        RawMessage(by_other_path, "pipe", ("producer-operations",), peer=LOCAL_MTA)
    )
    assert outcome.action == "duplicate"
    with transaction(engine, readonly=True) as session:
        message = session.exec(select(Message)).one()
        events = session.exec(select(AuditEvent.kind)).all()
    assert message.mailboxes == ["escalations", "producer-operations"]
    assert "also_sent_to" in events


def test_messages_without_message_id_are_keyed_by_content(
    pipeline: IntakePipeline, engine: Engine
) -> None:
    one = make_mail(message_id=None, body="First question")
    pipeline.process(smtp(one))
    assert pipeline.process(smtp(one)).action == "duplicate"
    pipeline.process(smtp(make_mail(message_id=None, body="Second question")))
    assert count(engine, Message) == 2


def test_unknown_sender_gets_a_reply_and_no_incident(
    pipeline: IntakePipeline, engine: Engine, replies: RecordedReplies
) -> None:
    outcome = pipeline.process(smtp(make_mail(sender="stranger@elsewhere.example")))
    assert (outcome.action, outcome.incident_number) == ("unknown_sender", None)
    assert count(engine, Incident) == 0
    assert replies.kinds == ["unknown_sender"]


def test_unknown_sender_accepted_when_configured(
    engine: Engine, replies: RecordedReplies, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", TOKEN_SECRET)
    config = Config(intake=IntakeConfig(unknown_senders="accept"))
    outcome = _pipeline(engine, replies, config).process(
        smtp(make_mail(sender="stranger@elsewhere.example"))
    )
    assert (outcome.action, outcome.new_incident) == ("recorded", True)
    assert replies.kinds == ["ack_new"]


@pytest.mark.parametrize(
    ("headers", "sender", "subject", "kind"),
    [
        ({"Auto-Submitted": "auto-replied"}, "sam@brokers.example", "Re: case", "auto_reply"),
        ({}, "sam@brokers.example", "Automatic reply: Escalated Case", "auto_reply"),
        ({"Precedence": "bulk"}, "news@brokers.example", "Newsletter", "bulk"),
        ({}, "escalations@exchange.example", "Escalated Case: x", "loop"),
        ({}, "MAILER-DAEMON@mx.brokers.example", "Undelivered Mail Returned to Sender", "bounce"),
    ],
)
def test_machines_get_no_answer_and_open_nothing(
    pipeline: IntakePipeline,
    engine: Engine,
    replies: RecordedReplies,
    headers: dict[str, str],
    sender: str,
    subject: str,
    kind: str,
) -> None:
    outcome = pipeline.process(smtp(make_mail(sender=sender, subject=subject, headers=headers)))
    assert (outcome.action, outcome.kind) == ("screened", kind)
    assert count(engine, Incident) == 0
    assert replies.orders == []
    with transaction(engine, readonly=True) as session:
        assert session.exec(select(Message.disposition)).one() == f"screened_{kind}"


def test_reply_with_token_threads_onto_the_incident(
    pipeline: IntakePipeline, engine: Engine, replies: RecordedReplies
) -> None:
    first = pipeline.process(smtp(make_mail()))
    assert first.incident_number is not None
    token = RefTokens(TOKEN_SECRET.encode(), "00Dtkd01").make(first.incident_number)
    reply = make_mail(subject="Re: something else entirely", body=f"More detail.\n\n> {token}\n")
    outcome = pipeline.process(smtp(reply))
    assert (outcome.action, outcome.incident_number, outcome.new_incident) == (
        "recorded",
        first.incident_number,
        False,
    )
    assert replies.kinds == ["ack_new", "ack_reply"]


def test_forged_or_foreign_tokens_do_not_attach(pipeline: IntakePipeline, engine: Engine) -> None:
    first = pipeline.process(smtp(make_mail()))
    assert first.incident_number is not None
    token = RefTokens(TOKEN_SECRET.encode(), "00Dtkd01").make(first.incident_number)
    forged = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    outcome = pipeline.process(smtp(make_mail(subject="Re: x", body=f"hi {forged}")))
    assert outcome.new_incident
    other = make_mail(sender="ana@brokers.example", subject="Re: x", body=f"hi {token}")
    refused = pipeline.process(smtp(other, mail_from="ana@brokers.example"))
    assert (refused.action, refused.incident_number) == ("not_authorized", None)
    with transaction(engine, readonly=True) as session:
        kinds = session.exec(select(AuditEvent.kind)).all()
    assert "forged_token" in kinds and "match_refused" in kinds


def test_reply_headers_thread_onto_the_incident(pipeline: IntakePipeline) -> None:
    first_raw = make_mail(message_id="<first@brokers.example>")
    first = pipeline.process(smtp(first_raw))
    follow = make_mail(subject="more", headers={"In-Reply-To": "<first@brokers.example>"})
    assert pipeline.process(smtp(follow)).incident_number == first.incident_number


def test_bounce_of_our_mail_marks_the_outbox_row_and_the_address(
    pipeline: IntakePipeline, engine: Engine
) -> None:
    """A bounce quoting our signed Message-ID (tests/test_own_bounces.py: which bounces are
    believed)."""
    first = pipeline.process(smtp(make_mail()))
    ours = make_message_id(first.incident_number, TOKEN_SECRET.encode(), "exchange.example")
    with transaction(engine) as session:
        incident = session.exec(select(Incident)).one()
        session.add(
            OutboxMessage(
                incident_id=incident.id,
                kind="ack_new",
                to_address="sam@brokers.example",
                message_id=ours,
                mime=b"x",
                status="sent",
            )
        )
    dsn = (
        b"From: MAILER-DAEMON@mx.brokers.example\r\nTo: escalations@exchange.example\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.brokers.example>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
        b'boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n'
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.brokers.example\r\n\r\n"
        b"Final-Recipient: rfc822; sam@brokers.example\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"Message-ID: " + ours.encode() + b"\r\nSubject: Escalated Case\r\n\r\n--B--\r\n"
    )
    outcome = pipeline.process(smtp(dsn, mail_from=""))
    assert (outcome.action, outcome.kind, outcome.incident_number) == (
        "screened",
        "bounce",
        first.incident_number,
    )
    with transaction(engine, readonly=True) as session:
        row = session.exec(select(OutboxMessage)).one()
        address = session.get(UndeliverableAddress, "sam@brokers.example")
    assert row.status == "bounced"
    assert address is not None and address.bounces == 1


def test_attachments_are_listed_with_hash_and_size(
    pipeline: IntakePipeline, engine: Engine
) -> None:
    raw = make_mail(
        attachments=[
            ("notes.txt", "text/plain", b"call me"),
            ("winmail.dat", "application/ms-tnef", b"\x78\x9f\x3e\x22"),
        ]
    )
    pipeline.process(smtp(raw))
    with transaction(engine, readonly=True) as session:
        stored = session.exec(select(Attachment).order_by(col(Attachment.id))).all()
    assert [(a.filename, a.size, a.disposition) for a in stored] == [
        ("notes.txt", 7, "stored"),
        ("winmail.dat", 4, "stored"),
    ]
    assert stored[0].content == b"call me"


def test_commission_case_names_several_consumers(pipeline: IntakePipeline, engine: Engine) -> None:
    raw = make_mail(
        to="producer.operations@exchange.example",
        subject="Commission missing for PID 1001 and PID 1002",
        body="Also Person ID 1003 please.",
    )
    outcome = pipeline.process(smtp(raw, "producer-operations"))
    with transaction(engine, readonly=True) as session:
        incident = session.exec(select(Incident)).one()
        ids = session.exec(select(IncidentConsumer.person_id)).all()
    assert outcome.new_incident
    assert (incident.type, incident.team) == ("commission", "producer_operations")
    assert sorted(ids) == ["1001", "1002", "1003"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"   \r\n", "empty message"),
        (b"just some words with no header\n", "not an email message"),
        (b"".join(b"X-H%d: v\r\n" % i for i in range(1001)) + b"\r\nbody", "header fields"),
    ],
)
def test_hopeless_input_is_refused_with_a_reason(
    pipeline: IntakePipeline, raw: bytes, reason: str
) -> None:
    with pytest.raises(PermanentRejection, match=reason):
        pipeline.process(smtp(raw))


def test_timestamps_are_utc(pipeline: IntakePipeline, engine: Engine) -> None:
    when = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    outcome = pipeline.process(
        RawMessage(make_mail(), "pipe", ("escalations",), received_at=when, peer=LOCAL_MTA)
    )
    assert outcome.incident_number is not None
    assert outcome.incident_number.startswith("261126-")


def test_every_corpus_message_is_recorded_or_refused_with_a_reason(
    pipeline: IntakePipeline, engine: Engine, shared_dir: Path
) -> None:
    from .corpus import corpus_files

    outcomes: dict[str, str] = {}
    for item in corpus_files(shared_dir):
        if not item.is_message:
            continue
        try:
            outcome = pipeline.process(smtp(item.path.read_bytes(), mail_from=None))
            outcomes[item.rel] = outcome.action
        except PermanentRejection as exc:
            assert str(exc), item.rel
            outcomes[item.rel] = "rejected"
    assert len(outcomes) > 300
    assert set(outcomes.values()) <= {
        "recorded",
        "duplicate",
        "screened",
        "unknown_sender",
        "rejected",
    }
    assert count(engine, Message) == sum(v != "rejected" for v in outcomes.values()) - sum(
        v == "duplicate" for v in outcomes.values()
    )
