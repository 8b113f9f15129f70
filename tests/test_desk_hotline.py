"""Hotline incidents (``ticketing/desk/hotline.py``): opened as mail opens one, the producer
acknowledged as by mail, the summary stored redacted, every bad field named."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from pii_guard import PiiGuard
from ticketing.cli.context import Context
from ticketing.cli.hotline_cmd import open_command
from ticketing.config import Config
from ticketing.config.pii_schema import PiiConfig
from ticketing.desk.actions import Desk
from ticketing.desk.hotline import (
    MAX_SUMMARY,
    FormErrors,
    HotlineForm,
    HotlineOpened,
    open_hotline,
    parse_person_ids,
)
from ticketing.incidents.records import incident_detail
from ticketing.outbound.templated import TemplatedReplies
from ticketing.privacy.settings import build_guard
from ticketing.signing.tokens import RefTokens
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, OutboxMessage, Producer

from .builders import NOW, SECRET, make_composer
from .conftest import write_config

SSN = "219-09-9999"
ACTOR = "Casey Caseworker <casey@exchange.example>"


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return build_guard(PiiConfig())


@pytest.fixture
def desk(engine: Engine, guard: PiiGuard) -> Desk:
    config = Config()
    composer = make_composer(config)
    with transaction(engine) as session:
        session.add(Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example"))
        session.add(
            Producer(npn="7654321", name="Ana Ruiz", email="ana@corredores.example", language="es")
        )
    return Desk.of(engine, config, lambda: TemplatedReplies(composer, engine, guard))


def form(**fields: object) -> HotlineForm:
    values: dict[str, object] = {
        "npn": "1234567",
        "type": "enrollment",
        "person_ids": ("174097",),
        "summary": "Producer called: client cannot enroll, the portal shows an error.",
    }
    return HotlineForm(**{**values, **fields})  # type: ignore[arg-type]


def opened(desk: Desk, guard: PiiGuard, **fields: object) -> HotlineOpened:
    result = open_hotline(desk, guard, form(**fields), ACTOR, now=NOW)
    assert isinstance(result, HotlineOpened), result
    return result


def outbox(engine: Engine, kind: str) -> list[OutboxMessage]:
    with transaction(engine, readonly=True) as session:
        query = select(OutboxMessage).where(OutboxMessage.kind == kind)
        return list(session.exec(query.order_by(col(OutboxMessage.id))))


def parsed(row: OutboxMessage) -> tuple[EmailMessage, str]:
    mail = message_from_bytes(row.mime, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    body = mail.get_body(("plain",))
    assert body is not None
    return mail, body.get_content()


def test_an_incident_opens_as_mail_opens_one(desk: Desk, guard: PiiGuard) -> None:
    result = opened(desk, guard)
    assert result.acknowledged and result.removed == {}
    with transaction(desk.engine, readonly=True) as session:
        detail = incident_detail(session, result.number)
    incident = detail.incident
    assert (incident.type, incident.team, incident.mailbox) == (
        "enrollment",
        "escalated_cases",
        "escalations",
    )
    assert incident.status == "new" and incident.opened_at == NOW
    assert detail.producer is not None and detail.producer.npn == "1234567"
    assert detail.person_ids == ["174097"]
    assert incident.subject.startswith("Hotline call: Producer called: client cannot enroll")
    assert incident.sla_clock == "first_response" and incident.sla_policy
    assert incident.sla_due_at is not None and incident.sla_due_at > NOW
    [message] = detail.messages
    assert (message.direction, message.source, message.sender) == (
        "in",
        "hotline",
        "sam@brokers.example",
    )
    assert message.text.startswith("Producer called")


def test_the_producer_gets_the_acknowledgement_mail_gives(desk: Desk, guard: PiiGuard) -> None:
    result = opened(desk, guard)
    [ack] = outbox(desk.engine, "ack_new")
    assert (ack.status, ack.to_address) == ("pending", "sam@brokers.example")
    mail, text = parsed(ack)
    assert mail["Subject"] == "Escalated Case: Enrollment.PID #:174097"
    assert mail["From"].addresses[0].addr_spec == "escalations@exchange.example"
    assert text.startswith("Hi Sam Amsung,")
    assert f"The assigned incident number is {result.number}." in text
    tokens = RefTokens(SECRET, desk.config.security.token_org)
    [token] = tokens.find(text)
    assert tokens.verify(token) == result.number
    assert "personal information" not in text  # what was removed, the caseworker typed
    # the team sees it in its mailbox as it sees mail
    assert [c.status for c in outbox(desk.engine, "desk_copy")] == ["pending"]


def test_in_the_producers_language_from_the_team_the_type_routes_to(
    desk: Desk, guard: PiiGuard
) -> None:
    result = opened(
        desk,
        guard,
        npn="7654321",
        type="commission",
        person_ids=("PIDs 174201, 174202 and 174203",),
        summary="Commission for three clients missing since March.",
    )
    with transaction(desk.engine, readonly=True) as session:
        detail = incident_detail(session, result.number)
    assert (detail.incident.team, detail.incident.mailbox) == (
        "producer_operations",
        "producer-operations",
    )
    assert detail.person_ids == ["174201", "174202", "174203"]
    [ack] = outbox(desk.engine, "ack_new")
    mail, text = parsed(ack)
    assert mail["Subject"] == "Caso escalado: Comisión.PID #:174201,174202,174203"
    assert mail["From"].addresses[0].addr_spec == "producer.operations@exchange.example"
    assert text.startswith("Hola Ana Ruiz:")
    assert f"El número de incidente asignado es {result.number}." in text


def test_the_summary_is_stored_redacted_and_the_caseworker_audited(
    desk: Desk, guard: PiiGuard
) -> None:
    result = opened(desk, guard, summary=f"Client SSN {SSN}, cannot enroll.")
    assert result.removed == {"US_SSN": 1}
    with transaction(desk.engine, readonly=True) as session:
        detail = incident_detail(session, result.number)
        events = list(session.exec(select(AuditEvent).order_by(col(AuditEvent.id))))
    [message] = detail.messages
    assert SSN not in message.text and "[REDACTED:US_SSN]" in message.text
    assert SSN not in detail.incident.subject
    assert message.pii_findings == {"US_SSN": 1}
    [event] = [e for e in events if e.kind == "hotline_opened"]
    assert event.actor == ACTOR
    assert event.incident_id == detail.incident.id and event.message_row_id == message.id
    assert event.detail["finding_counts"] == {"US_SSN": 1}
    assert "opened" in [e.kind for e in events]
    assert all(SSN not in str(e.detail) and "174097" not in str(e.detail) for e in events)


def test_a_reject_mailbox_refuses_a_summary_with_consumer_data(desk: Desk, guard: PiiGuard) -> None:
    result = open_hotline(
        desk, guard, form(type="commission", summary=f"SSN {SSN} unpaid"), ACTOR, now=NOW
    )
    assert isinstance(result, FormErrors)
    assert list(result.errors) == ["summary"]
    assert "Social Security number" in result.errors["summary"]
    assert SSN not in result.errors["summary"]
    assert outbox(desk.engine, "ack_new") == []


def test_every_bad_field_is_named_and_nothing_written(desk: Desk, guard: PiiGuard) -> None:
    bad = form(npn="99", type="dental", person_ids=("12",), summary="  ")
    result = open_hotline(desk, guard, bad, ACTOR, now=NOW)
    assert isinstance(result, FormErrors)
    assert result.errors == {
        "npn": "no producer with NPN 99 in the roster",
        "type": "no case type 'dental'",
        "person_ids": "'12' is not a Person ID (4 to 12 digits)",
        "summary": "a summary of the call is required",
    }
    with transaction(desk.engine, readonly=True) as session:
        assert list(session.exec(select(OutboxMessage))) == []
        assert list(session.exec(select(AuditEvent))) == []


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"npn": ""}, "npn", "the producer's NPN is required"),
        ({"npn": "12ab"}, "npn", "an NPN is 1 to 10 digits"),
        ({"type": ""}, "type", "choose a case type"),
        ({"summary": "x" * (MAX_SUMMARY + 1)}, "summary", "at most 10,000 characters"),
        ({"person_ids": ("174097 John Smith",)}, "person_ids", "'John Smith' is not a Person ID"),
        ({"person_ids": ("174097", "174098")}, "person_ids", "Enrollment cases are about one"),
    ],
)
def test_one_bad_field(
    desk: Desk, guard: PiiGuard, fields: dict[str, object], field: str, says: str
) -> None:
    result = open_hotline(desk, guard, form(**fields), ACTOR, now=NOW)
    assert isinstance(result, FormErrors)
    assert list(result.errors) == [field]
    assert result.errors[field].startswith(says)


def test_person_ids_are_read_as_producers_write_them() -> None:
    assert parse_person_ids(["PID #:174097"]) == ("174097",)
    assert parse_person_ids(["174201, 174202 & 174203", "", "174201"]) == (
        "174201",
        "174202",
        "174203",
    )
    assert parse_person_ids(["Person IDs 174301/174302"]) == ("174301", "174302")
    assert parse_person_ids([]) == ()


def test_the_type_may_be_named_by_its_label(desk: Desk, guard: PiiGuard) -> None:
    result = opened(desk, guard, type="1095 A")
    with transaction(desk.engine, readonly=True) as session:
        assert incident_detail(session, result.number).incident.type == "form_1095a"


# --- ticketd incidents open ---------------------------------------------------------------------


def run_open(config: Path, *args: str) -> Result:
    """``ticketd incidents open ARGS`` (the command object, before the lead registers it)."""
    context = Context(config)
    try:
        return CliRunner().invoke(open_command, list(args), obj=context, catch_exceptions=False)
    finally:
        context.close()


def test_the_command_opens_one_and_mails_the_ack(
    desk: Desk, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", "t" * 40)
    config = write_config(tmp_path, db_url)
    result = run_open(
        config,
        *("--npn", "1234567", "--type", "termination", "--person-id", "PID #:174097"),
        *("--summary", f"Terminated by mistake; SSN {SSN}", "--by", "pat", "--json"),
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["acknowledged"] is True and shown["removed"] == {"US_SSN": 1}
    with transaction(desk.engine, readonly=True) as session:
        detail = incident_detail(session, shown["number"])
    assert (detail.incident.type, detail.person_ids) == ("termination", ["174097"])
    assert [e.actor for e in detail.events if e.kind == "hotline_opened"] == ["operator:pat"]
    [ack] = outbox(desk.engine, "ack_new")
    assert shown["number"] in parsed(ack)[1]


def test_the_command_names_each_wrong_option(
    desk: Desk, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", "t" * 40)
    config = write_config(tmp_path, db_url)
    result = run_open(
        config, "--npn", "55", "--type", "enrollment", "--person-id", "abc", "--summary", "x"
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "ticketd: --npn: no producer with NPN 55 in the roster",
        "ticketd: --person-id: 'abc' is not a Person ID (4 to 12 digits)",
    ]
