"""The PII guard as a pipeline stage: reject, redact, attachments, outbound mail."""

from __future__ import annotations

from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from pii_guard import PiiGuard
from ticketing.config import Config
from ticketing.config.pii_schema import PiiConfig
from ticketing.config.templates_schema import TemplatesConfig
from ticketing.intake.build import build_pipeline
from ticketing.outbound.request import ReplyRequest
from ticketing.outbound.sinks import ReplyOrder
from ticketing.pipeline.guard import PiiGuardStage
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import Outcome, RawMessage
from ticketing.privacy.settings import build_guard
from ticketing.store.db import transaction
from ticketing.store.models import (
    Attachment,
    AuditEvent,
    Incident,
    Message,
    OutboxMessage,
    Producer,
)
from ticketing.templating.template_store import TemplateStore

from .builders import (
    LOCAL_MTA,
    NOW,
    TOKEN_SECRET,
    RecordedReplies,
    add_case,
    make_composer,
    make_config,
    queue_mail,
)
from .mail import make_mail

SSN = "219-09-9999"
DOB_LINE = "Her date of birth is 03/14/1961."


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return build_guard(PiiConfig())


@pytest.fixture
def pipeline(
    engine: Engine, guard: PiiGuard, replies: RecordedReplies, monkeypatch: pytest.MonkeyPatch
) -> IntakePipeline:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", TOKEN_SECRET)
    with transaction(engine) as session:
        session.add(Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example"))
    return build_pipeline(Config(), engine, guard=PiiGuardStage(guard), replies=replies)


def deliver(pipeline: IntakePipeline, raw: bytes, box: str) -> Outcome:
    return pipeline.process(RawMessage(raw, "smtp", (box,), peer=LOCAL_MTA))


def test_reject_mailbox_stores_no_content(
    pipeline: IntakePipeline, engine: Engine, replies: RecordedReplies
) -> None:
    raw = make_mail(
        to="producer.operations@exchange.example",
        subject="Commission for PID 1001",
        body=f"The client's SSN is {SSN}. Please fix the commission.",
    )
    outcome = deliver(pipeline, raw, "producer-operations")
    assert (outcome.action, outcome.incident_number) == ("pii_rejected", None)
    with transaction(engine, readonly=True) as session:
        row = session.exec(select(Message)).one()
        assert session.exec(select(Incident)).first() is None
    assert (row.subject, row.text, row.new_text) == ("", "", "")
    assert row.pii_findings == {"US_SSN": 1}
    assert replies.kinds == ["pii_rejected"]
    assert replies.orders[0].extra == {"finding_types": ["US_SSN"]}


def test_redact_mailbox_stores_redacted_text(
    pipeline: IntakePipeline, engine: Engine, replies: RecordedReplies
) -> None:
    raw = make_mail(body=f"My client PID 174097 needs help. SSN {SSN}. {DOB_LINE}")
    outcome = deliver(pipeline, raw, "escalations")
    assert outcome.new_incident
    with transaction(engine, readonly=True) as session:
        row = session.exec(select(Message)).one()
    assert SSN not in row.text and "03/14/1961" not in row.text
    assert "[REDACTED:US_SSN]" in row.text and "[REDACTED:DATE_OF_BIRTH]" in row.new_text
    assert "PID 174097" in row.text  # the exchange's Person ID is not PII
    assert row.pii_findings == {"US_SSN": 1, "DATE_OF_BIRTH": 1}
    assert replies.kinds == ["ack_new"]  # one mail: the acknowledgement says what was removed
    assert replies.orders[0].extra == {"finding_types": ["DATE_OF_BIRTH", "US_SSN"]}


class HourlyAckReplies(RecordedReplies):
    """Replies whose rules hold back every ack_reply, as the hourly limit does."""

    def queue(self, session: Session, order: ReplyOrder, now: datetime) -> bool:
        return order.kind != "ack_reply" and super().queue(session, order, now)


def test_a_redacted_reply_is_told_even_when_its_ack_is_held_back(
    engine: Engine, guard: PiiGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", TOKEN_SECRET)
    replies = HourlyAckReplies()
    pipeline_ = build_pipeline(Config(), engine, guard=PiiGuardStage(guard), replies=replies)
    with transaction(engine) as session:
        session.add(Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example"))
    first = deliver(pipeline_, make_mail(body="My client PID 174097 needs help."), "escalations")
    clean = make_mail(subject=f"RE: incident {first.incident_number}", body="Any news?")
    redacted = make_mail(subject=f"RE: incident {first.incident_number}", body=f"SSN {SSN}.")
    deliver(pipeline_, clean, "escalations")
    deliver(pipeline_, redacted, "escalations")
    assert replies.kinds == ["ack_new", "pii_redacted"]
    assert replies.orders[1].extra == {"finding_types": ["US_SSN"]}


def test_attachments_that_cannot_be_vouched_for_are_dropped(
    pipeline: IntakePipeline, engine: Engine
) -> None:
    raw = make_mail(
        attachments=[
            ("card.png", "image/png", b"\x89PNG\r\n\x1a\nfake"),
            ("notes.txt", "text/plain", f"SSN {SSN}".encode()),
            ("clean.txt", "text/plain", b"Plan year 2026, form 1095-A requested."),
        ]
    )
    deliver(pipeline, raw, "escalations")
    with transaction(engine, readonly=True) as session:
        stored = session.exec(select(Attachment).order_by(col(Attachment.id))).all()
    assert [(a.filename, a.disposition, a.content is None) for a in stored] == [
        ("card.png", "dropped_unscannable", True),
        ("notes.txt", "stored_redacted", False),  # its text, redacted ([pii] default)
        ("clean.txt", "stored", False),
    ]
    assert stored[1].content is not None and SSN.encode() not in stored[1].content
    assert stored[1].content.endswith(b"SSN [REDACTED:US_SSN]")
    assert stored[2].content == b"Plan year 2026, form 1095-A requested."


def test_outbound_mail_with_personal_data_is_withheld(
    engine: Engine, guard: PiiGuard, tmp_path: Path
) -> None:
    """An admin's template that writes an SSN: the mail is withheld; the shipped one, which
    greets the producer by the roster's name (allowed), is not."""
    incident, producer = add_case(engine)
    with transaction(engine) as session:
        sam = session.get(Producer, producer.id)
        assert sam is not None
        sam.name = "Sam Amsung"
    override = tmp_path / "ack_new"
    override.mkdir()
    (override / "subject.txt").write_text("Escalated Case\n", encoding="utf-8")
    greeting = "Hi{% if producer %} {{ producer.name }}{% endif %},"
    body = f"{greeting}\n\nWe looked up SSN {SSN} for you.\n{{{{ ref_token }}}}\n"
    (override / "body.txt").write_text(body, encoding="utf-8")
    config = Config(templates=TemplatesConfig(override_dir=str(tmp_path)))
    leaky_composer = make_composer(config, TemplateStore.from_config(config))
    request = ReplyRequest(kind="ack_new", to=sam.email, incident=incident, producer=sam)
    leaky = queue_mail(engine, leaky_composer, request, now=NOW, guard=guard)
    fine = queue_mail(engine, make_composer(make_config()), request, now=NOW, guard=guard)
    assert leaky is not None and fine is not None
    with transaction(engine, readonly=True) as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
        withheld = [(r.message_id, r.status, r.pii_findings, r.mime) for r in rows]
        assert withheld == [
            (leaky.message_id, "withheld", {"US_SSN": 1}, b""),  # visible, never sent, no content
            (fine.message_id, "pending", None, fine.mime),
        ]
        event = session.exec(
            select(AuditEvent).where(AuditEvent.kind == "outbound_blocked_pii")
        ).one()
    assert event.detail == {"kind": "ack_new", "finding_counts": {"US_SSN": 1}}
    assert event.incident_id == incident.id
    assert leaky.reason == "personal_data"
    text = message_from_bytes(fine.mime, policy=policy.default).get_body(("plain",))
    assert text is not None and text.get_content().startswith("Hi Sam Amsung,")


@pytest.mark.parametrize(
    ("boxes", "headers"),
    [
        (("escalations", "producer-operations"), {}),  # SMTP: both RCPTs, the redact one first
        (("escalations",), {"Cc": "Producer Ops <Producer.Operations+x@exchange.example>"}),
    ],
    ids=["both-delivered", "other-in-cc"],
)
def test_the_strictest_policy_of_every_mailbox_reached_applies(
    pipeline: IntakePipeline,
    engine: Engine,
    replies: RecordedReplies,
    boxes: tuple[str, ...],
    headers: dict[str, str],
) -> None:
    raw = make_mail(body=f"My client PID 174097, SSN {SSN}, needs help.", headers=headers)
    outcome = pipeline.process(RawMessage(raw, "smtp", boxes, peer=LOCAL_MTA))
    assert (outcome.action, outcome.incident_number) == ("pii_rejected", None)
    with transaction(engine, readonly=True) as session:
        row = session.exec(select(Message)).one()
    assert (row.text, row.pii_findings) == ("", {"US_SSN": 1})
    assert replies.kinds == ["pii_rejected"]
