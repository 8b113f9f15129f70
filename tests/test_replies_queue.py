"""A reply through the one path (ordered in the transaction, composed after its commit):
the mail it composes, the row it writes, and the loop and rate rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ticketing.config import Config
from ticketing.config.templates_schema import TemplatesConfig
from ticketing.outbound.mime import ensure_token
from ticketing.outbound.orders import order_reply
from ticketing.outbound.request import ReplyRequest
from ticketing.signing.message_ids import verify_message_id
from ticketing.signing.tokens import RefTokens
from ticketing.store.db import transaction
from ticketing.store.models import (
    AuditEvent,
    Incident,
    OutboxMessage,
    Producer,
    UndeliverableAddress,
)
from ticketing.templating.template_store import TemplateStore

from .builders import NOW, SECRET, add_case, make_composer, make_config, queue_mail

DOMAIN_EXAMPLE = """Hi sam amsung,

We have received your inquiry. The assigned incident number is 200528-2866868.
You can expect a reply within 2 business days.

Thanks
MHBE Escalated caseworkers Team
"""


def parse(row: OutboxMessage) -> EmailMessage:
    message = BytesParser(policy=default).parsebytes(row.mime)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def queue(
    engine: Engine, request: ReplyRequest, *, config: Config | None = None, at: datetime = NOW
) -> OutboxMessage | None:
    return queue_mail(engine, make_composer(config or make_config()), request, now=at)


def ack_new(incident: Incident, producer: Producer, **extra: object) -> ReplyRequest:
    values: dict[str, object] = {
        "kind": "ack_new",
        "to": producer.email,
        "incident": incident,
        "producer": producer,
        "in_reply_to": "<CAF1@mail.brokers.example>",
        "references": ("<older@mail.brokers.example>",),
    }
    return ReplyRequest(**{**values, **extra})  # type: ignore[arg-type]


def audit_events(engine: Engine, kind: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.kind == kind)))


def test_ack_new_follows_the_exchanges_case_email(engine: Engine) -> None:
    incident, producer = add_case(engine)
    row = queue(engine, ack_new(incident, producer))
    assert row is not None
    message = parse(row)
    assert message["Subject"] == "Escalated Case: Enrollment.PID #:174097"
    body = text_of(message)
    assert body.startswith(DOMAIN_EXAMPLE)
    token_line = body[len(DOMAIN_EXAMPLE) :].strip()
    assert RefTokens(SECRET, "00Dtkd01").verify(token_line) == "200528-2866868"
    assert body.endswith(token_line + "\n")


def test_headers_thread_and_stop_loops(engine: Engine) -> None:
    incident, producer = add_case(engine)
    row = queue(engine, ack_new(incident, producer))
    assert row is not None
    message = parse(row)
    assert message["From"] == "MHBE Escalated caseworkers Team <escalations@exchange.example>"
    assert message["Reply-To"] == "escalations@exchange.example"
    assert message["To"] == "sam@brokers.example"
    assert message["In-Reply-To"] == "<CAF1@mail.brokers.example>"
    assert message["References"] == "<older@mail.brokers.example> <CAF1@mail.brokers.example>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["Message-ID"] == row.message_id
    assert verify_message_id(row.message_id, SECRET) == "200528-2866868"
    html = message.get_body(("html",))
    assert html is not None and "<strong>200528-2866868</strong>" in html.get_content()
    assert (row.kind, row.to_address, row.mail_from) == (
        "ack_new",
        "sam@brokers.example",
        "escalations@exchange.example",
    )
    assert (row.status, row.next_attempt_at, row.expires_at) == (
        "pending",
        NOW,
        NOW + timedelta(hours=48),
    )


def test_spanish_producer_gets_spanish(engine: Engine) -> None:
    incident, producer = add_case(engine, language="es", case_type="system_error")
    row = queue(engine, ack_new(incident, producer))
    assert row is not None
    message = parse(row)
    assert message["Subject"] == "Caso escalado: Error del sistema.PID #:174097"
    assert text_of(message).startswith("Hola sam amsung:\n\nHemos recibido su consulta.")


def test_commission_lists_every_person_id(engine: Engine) -> None:
    incident, producer = add_case(engine, case_type="commission", person_ids=("1", "22"))
    row = queue(engine, ack_new(incident, producer, team="producer_operations"))
    assert row is not None
    assert parse(row)["Subject"] == "Escalated Case: Commission.PID #:1,22"
    assert "MHBE Producer Operations Team\nref:_" in text_of(parse(row))
    # it comes from, and is answered to, the mailbox that speaks for the owning team
    producer_operations = "producer.operations@exchange.example"
    assert parse(row)["From"].addresses[0].addr_spec == producer_operations
    assert parse(row)["Reply-To"] == producer_operations
    assert row.mail_from == "escalations@exchange.example"  # bounces: [outbound] from_address


def test_header_injection_through_the_producers_message_id_is_dropped(engine: Engine) -> None:
    incident, producer = add_case(engine)
    row = queue(engine, ack_new(incident, producer, in_reply_to="<a@b>\r\nBcc: x@evil.example"))
    assert row is not None
    assert b"evil" not in row.mime
    assert parse(row)["In-Reply-To"] == "<a@b>"


def test_row_belongs_to_the_callers_transaction(engine: Engine) -> None:
    incident, producer = add_case(engine)
    composer = make_composer(make_config())
    with pytest.raises(RuntimeError), transaction(engine) as session:
        request = ack_new(incident, producer)
        assert order_reply(session, composer, request, sender_name=None, now=NOW) is not None
        assert session.exec(select(OutboxMessage)).one().status == "composing"
        raise RuntimeError("the event failed to record")
    with Session(engine) as session:
        assert session.exec(select(OutboxMessage)).all() == []
        assert session.exec(select(AuditEvent)).all() == []


def test_not_authorized_never_carries_a_token(engine: Engine) -> None:
    incident, _ = add_case(engine)
    request = ReplyRequest(
        kind="not_authorized", to="eve@other.example", incident=incident, team="escalated_cases"
    )
    row = queue(engine, request)
    assert row is not None
    assert b"ref:_" not in row.mime
    assert verify_message_id(row.message_id, SECRET) is None
    assert row.incident_id is not None  # the audit trail still knows the case


def test_unknown_sender_has_no_incident(engine: Engine) -> None:
    row = queue(
        engine, ReplyRequest(kind="unknown_sender", to="who@x.example", team="escalated_cases")
    )
    assert row is not None
    assert "who@x.example" in text_of(parse(row))
    assert row.incident_id is None


def test_pii_rejected_names_the_kinds_found_in_words(engine: Engine) -> None:
    incident, producer = add_case(engine)
    request = ReplyRequest(
        kind="pii_rejected",
        to=producer.email,
        incident=incident,
        producer=producer,
        extra={"finding_types": ["US_SSN", "DATE_OF_BIRTH"]},
    )
    row = queue(engine, request)
    assert row is not None
    text = " ".join(text_of(parse(row)).split())
    assert "(Social Security number, date of birth)" in text
    assert "Person ID only" in text and "Producer Portal" in text


def test_missing_or_unknown_extras_are_programming_errors(engine: Engine) -> None:
    """Such a mail is never sent: its row fails as unrenderable, naming the extras."""
    incident, producer = add_case(engine)
    missing = queue(engine, ReplyRequest(kind="pii_redacted", to=producer.email, incident=incident))
    unknown = queue(engine, ack_new(incident, producer, extra={"ssn": "x"}))
    assert missing is not None and unknown is not None
    for row, error in ((missing, "missing ['finding_types']"), (unknown, "unknown ['ssn']")):
        assert (row.status, row.reason, row.mime) == ("failed", "unrenderable", b"")
        assert row.last_error is not None and error in row.last_error
    events = audit_events(engine, "reply_unrenderable")
    assert [e.detail["outbox_id"] for e in events] == [missing.id, unknown.id]


def test_sla_notice_is_internal(engine: Engine) -> None:
    incident, producer = add_case(engine)
    request = ReplyRequest(
        kind="sla_breach",
        to="lead@exchange.example",
        incident=incident,
        producer=producer,
        extra={"due_at": NOW, "level": "supervisor"},
    )
    row = queue(engine, request)
    assert row is not None
    message = parse(row)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Subject"] == (
        "[SLA breached] Incident 200528-2866868 (Enrollment) was due 2026-11-26 10:00 EST"
    )


# --- loop and rate rules ------------------------------------------------------------------------


def suppressed_rules(engine: Engine) -> list[str]:
    return [e.detail["rule"] for e in audit_events(engine, "auto_reply_suppressed")]


def test_identical_mail_is_answered_once_per_window(engine: Engine) -> None:
    incident, producer = add_case(engine)
    request = ack_new(incident, producer, trigger_fingerprint="f" * 64)
    assert queue(engine, request) is not None
    assert queue(engine, request, at=NOW + timedelta(hours=23)) is None
    assert suppressed_rules(engine) == ["duplicate"]
    assert queue(engine, request, at=NOW + timedelta(hours=24, seconds=1)) is not None
    other = ack_new(incident, producer, trigger_fingerprint="e" * 64)
    assert queue(engine, other, at=NOW + timedelta(hours=24, seconds=2)) is not None


def test_the_duplicate_window_stops_only_the_same_kind_about_the_same_incident(
    engine: Engine,
) -> None:
    """The same text answered as an unknown sender, then (once in the roster) acknowledged,
    then acknowledged again about another incident: only an identical mail is a duplicate."""
    incident, producer = add_case(engine)
    fingerprint = "f" * 64
    stranger = ReplyRequest(
        kind="unknown_sender",
        to=producer.email,
        team="escalated_cases",
        trigger_fingerprint=fingerprint,
    )
    assert queue(engine, stranger) is not None
    assert queue(engine, ack_new(incident, producer, trigger_fingerprint=fingerprint)) is not None
    other, _ = add_case(engine, number="200528-2866869", email_address="b@x.example", npn="2")
    assert queue(engine, ack_new(other, producer, trigger_fingerprint=fingerprint)) is not None
    assert suppressed_rules(engine) == []
    assert queue(engine, ack_new(other, producer, trigger_fingerprint=fingerprint)) is None
    assert suppressed_rules(engine) == ["duplicate"]


def test_one_ack_reply_per_incident_per_hour(engine: Engine) -> None:
    incident, producer = add_case(engine)
    request = ack_new(incident, producer, kind="ack_reply")
    assert queue(engine, request) is not None
    assert queue(engine, request, at=NOW + timedelta(minutes=59)) is None
    assert queue(engine, request, at=NOW + timedelta(minutes=60, seconds=1)) is not None
    other, _ = add_case(engine, number="200528-2866869", email_address="b@x.example", npn="2")
    assert queue(engine, ack_new(other, producer, kind="ack_reply")) is not None
    assert suppressed_rules(engine) == ["ack_reply_hourly"]


def test_unknown_sender_once_a_day_per_address(engine: Engine) -> None:
    request = ReplyRequest(kind="unknown_sender", to="Who@X.example", team="escalated_cases")
    assert queue(engine, request) is not None
    assert queue(engine, request, at=NOW + timedelta(hours=23, minutes=59)) is None
    other = ReplyRequest(kind="unknown_sender", to="else@x.example", team="escalated_cases")
    assert queue(engine, other) is not None
    assert queue(engine, request, at=NOW + timedelta(days=1, seconds=1)) is not None


def test_per_sender_ceiling(engine: Engine) -> None:
    config = make_config(auto_reply_ceiling=3)
    producer = None
    incidents = []
    for i in range(5):
        incident, maybe = add_case(
            engine, number=f"200528-00000{i}0", email_address=f"p{i}@x.example", npn=str(i)
        )
        incidents.append(incident)
        producer = producer or maybe
    assert producer is not None
    sent = [
        queue(engine, ack_new(inc, producer), config=config, at=NOW + timedelta(minutes=i))
        for i, inc in enumerate(incidents)
    ]
    assert [row is not None for row in sent] == [True, True, True, False, False]
    assert suppressed_rules(engine) == ["sender_ceiling", "sender_ceiling"]
    assert (
        queue(
            engine,
            ack_new(incidents[4], producer),
            config=config,
            at=NOW + timedelta(hours=1, seconds=1),
        )
        is not None
    )


def test_default_ceiling_lets_a_busy_producer_get_every_ack(engine: Engine) -> None:
    _, producer = add_case(engine, number="200528-1000000")
    rows = []
    for i in range(50):
        incident, _ = add_case(
            engine, number=f"200528-{2000000 + i}", email_address=f"z{i}@x.example", npn=f"9{i}"
        )
        rows.append(queue(engine, ack_new(incident, producer), at=NOW + timedelta(seconds=i)))
    assert all(rows)


def test_never_to_an_undeliverable_address(engine: Engine) -> None:
    incident, producer = add_case(engine)
    with transaction(engine) as session:
        session.add(UndeliverableAddress(address="sam@brokers.example", reason="5.1.1"))
    assert queue(engine, ack_new(incident, producer, to="SAM@brokers.example")) is None
    sla = ReplyRequest(
        kind="sla_warning",
        to="sam@brokers.example",
        incident=incident,
        extra={"due_at": NOW, "level": "team_lead"},
    )
    assert queue(engine, sla) is None
    assert suppressed_rules(engine) == ["undeliverable", "undeliverable"]
    events = audit_events(engine, "auto_reply_suppressed")
    assert events[0].incident_id == incident.id
    assert events[0].detail == {"reply_kind": "ack_new", "rule": "undeliverable"}


def test_internal_notices_are_not_rate_limited(engine: Engine) -> None:
    incident, _ = add_case(engine)
    config = make_config(auto_reply_ceiling=1)
    for minute in range(3):
        sla = ReplyRequest(
            kind="sla_warning",
            to="lead@exchange.example",
            incident=incident,
            extra={"due_at": NOW, "level": "team_lead"},
        )
        assert queue(engine, sla, config=config, at=NOW + timedelta(minutes=minute)) is not None


@pytest.mark.parametrize(
    "to",
    [
        "not an address",
        "s" * 240 + "@brokers.example",  # 256 characters: longer than SMTP carries
        "s" * 65 + "@brokers.example",  # a local part past 64 octets
    ],
)
def test_invalid_address_is_suppressed_not_raised(engine: Engine, to: str) -> None:
    incident, producer = add_case(engine)
    assert queue(engine, ack_new(incident, producer, to=to)) is None
    assert suppressed_rules(engine) == ["invalid_address"]


def test_the_longest_address_smtp_carries_is_answered(engine: Engine) -> None:
    incident, producer = add_case(engine)
    to = "s" * 64 + "@" + "b" * 181 + ".example"  # 254 characters
    assert queue(engine, ack_new(incident, producer, to=to)) is not None


# --- templates that fail at send time -----------------------------------------------------------


def override_store(folder: Path, kind: str, files: dict[str, str]) -> tuple[Config, TemplateStore]:
    target = folder / kind
    target.mkdir(parents=True)
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    config = Config(templates=TemplatesConfig(override_dir=str(folder)))
    store = TemplateStore.from_config(config)
    assert store.select(kind, "escalated_cases", "en").text.name.layer == "override"
    return config, store


def test_sandbox_violation_on_real_data_falls_back_to_shipped_and_is_audited(
    engine: Engine, tmp_path: Path
) -> None:
    """A trap the sample data does not spring: check passes it, real data sets it off."""
    body = (
        "Hi\n{% if incident.number != '200528-2866868' %}"
        "{{ incident.number | attr('__cl' ~ 'ass__') }}{% endif %}\n"
        "{{ ref_token }}\n"
    )
    config, store = override_store(tmp_path, "ack_new", {"subject.txt": "S\n", "body.txt": body})
    incident, producer = add_case(engine, number="261126-0000001")
    row = queue_mail(engine, make_composer(config, store), ack_new(incident, producer), now=NOW)
    assert row is not None
    assert parse(row)["Subject"] == "Escalated Case: Enrollment.PID #:174097"
    [event] = audit_events(engine, "template_security_violation")
    assert event.detail["file"] == str(tmp_path / "ack_new" / "body.txt")
    assert event.detail["line"] == 2
    assert event.detail["used_instead"][1].endswith("templates/ack_new/body.txt")
    assert event.incident_id == incident.id


def test_token_is_added_by_code_when_a_template_drops_it(engine: Engine, tmp_path: Path) -> None:
    body = "Thanks\n{% if incident.number == '200528-2866868' %}{{ ref_token }}{% endif %}\n"
    config, store = override_store(
        tmp_path, "resolved", {"subject.txt": "Done\n", "body.txt": body}
    )
    incident, producer = add_case(engine, number="261126-0000002")
    request = ack_new(incident, producer, kind="resolved")
    row = queue_mail(engine, make_composer(config, store), request, now=NOW)
    assert row is not None
    lines = text_of(parse(row)).splitlines()
    assert lines[0] == "Thanks"
    assert RefTokens(SECRET, "00Dtkd01").verify(lines[-1]) == "261126-0000002"


def test_ensure_token_in_html() -> None:
    assert ensure_token("<html><body><p>x</p></body></html>", "ref:_a._b:ref", "html") == (
        "<html><body><p>x</p><p>ref:_a._b:ref</p></body></html>"
    )
    assert ensure_token("a\nref:_a._b:ref\n", "ref:_a._b:ref", "text") == "a\nref:_a._b:ref\n"
