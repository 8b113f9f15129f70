"""Desk copies: what the pipeline orders for the team's mailbox, what a copy holds, where
it goes; the desk's signed reply and note addresses; Outlook's conversation index.
The whole conversation through ``ticketd serve`` is ``tests/journeys/test_desk.py``."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import select

from pii_guard import PiiGuard
from ticketing.config import MailboxConfig, TeamConfig
from ticketing.config.desk_schema import StaffConfig
from ticketing.config.loader import load_config, validate_config
from ticketing.config.pii_schema import PiiConfig
from ticketing.config.schema import ImapConfig
from ticketing.errors import ConfigError
from ticketing.incidents.records import assign_incident
from ticketing.intake.build import build_pipeline
from ticketing.outbound.compose import ReplyComposer
from ticketing.outbound.desk_copies import desk_destination
from ticketing.outbound.outbox import list_outbox
from ticketing.outbound.templated import TemplatedReplies
from ticketing.outbound.thread_index import conversation_guid, thread_index
from ticketing.pipeline.guard import PiiGuardStage
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import RawMessage
from ticketing.privacy.settings import build_guard
from ticketing.signing.desk_addresses import desk_address, desk_route
from ticketing.store.db import transaction
from ticketing.store.models import OutboxMessage, Producer

from .builders import LOCAL_MTA, NOW, SECRET, make_composer, make_config
from .conftest import RunCli
from .mail import make_mail

OUTSIDE = "192.0.2.7"  # a client no trusted host vouches for: its From is not authenticated
SSN = "219-09-9999"


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return build_guard(PiiConfig())


@pytest.fixture
def composer() -> ReplyComposer:
    return make_composer(make_config())


def _pipeline(engine: Engine, composer: ReplyComposer, guard: PiiGuard) -> IntakePipeline:
    with transaction(engine) as session:
        session.add(
            Producer(
                npn="1234567", name="Sam Amsung", email="sam@brokers.example", agency="Amsung Ins"
            )
        )
    replies = TemplatedReplies(composer, engine, guard)
    return build_pipeline(
        composer.config, engine, guard=PiiGuardStage(guard), replies=replies, secret=SECRET
    )


def _copies(engine: Engine) -> list[EmailMessage]:
    with transaction(engine, readonly=True) as session:
        rows = [r for r in list_outbox(session, limit=100) if r.kind == "desk_copy"]
    assert all(r.status == "pending" for r in rows), [r.status for r in rows]
    return [message_from_bytes(r.mime, policy=policy.default) for r in reversed(rows)]


def _text(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def test_a_producer_message_reaches_the_desk_redacted_with_its_head_and_clean_files(
    engine: Engine, composer: ReplyComposer, guard: PiiGuard
) -> None:
    pipeline = _pipeline(engine, composer, guard)
    raw = make_mail(
        body=f"My client (SSN {SSN}) cannot enroll. Person ID 174097.\n\nThanks,\nSam",
        attachments=[
            ("notes.txt", "text/plain", b"Carrier called back on Tuesday."),
            ("ssn.txt", "text/plain", f"SSN {SSN}".encode()),
            ("scan.png", "image/png", b"\x89PNG\r\n\x1a\n0000"),
        ],
    )
    outcome = pipeline.process(
        RawMessage(raw, "smtp", ("escalations",), received_at=NOW, peer=LOCAL_MTA)
    )
    (copy,) = _copies(engine)
    raw_copy = copy.as_bytes()
    assert SSN.encode() not in raw_copy
    assert copy["Subject"] == (
        f"[#{outcome.incident_number}] Enrollment — Escalated Case: Enrollment.PID #:174097"
    )
    assert str(copy["From"]) == "Sam Amsung via escalations <escalations@exchange.example>"
    assert copy["To"] == "escalations@exchange.example"
    assert copy["Auto-Submitted"] == "auto-generated"
    text = _text(copy)
    assert f"{outcome.incident_number} · Enrollment · new" in text
    assert "Sam Amsung (NPN 1234567, Amsung Ins) <sam@brokers.example>" in text
    assert "Person IDs:" in text and "174097" in text
    assert "Removed by the PII guard: Social Security number (2)" in text  # body, ssn.txt
    assert "cannot enroll" in text
    files = list(copy.iter_attachments())
    assert [p.get_filename() for p in files] == ["notes.txt", "ssn.txt"]  # ssn.txt: its text
    redacted = files[1].get_content()
    assert files[1].get_content_charset() == "utf-8" and "SSN [REDACTED:US_SSN]" in redacted
    (reply_to,) = copy["Reply-To"].addresses
    route = desk_route([reply_to.addr_spec], SECRET)
    assert route is not None and route.use == "reply"
    html = copy.get_body(("html",))
    assert html is not None and "&lt;sam@brokers.example&gt;" in str(html.get_content())


def test_copies_of_one_incident_are_one_conversation(
    engine: Engine, composer: ReplyComposer, guard: PiiGuard
) -> None:
    pipeline = _pipeline(engine, composer, guard)
    first = pipeline.process(
        RawMessage(make_mail(), "smtp", ("escalations",), received_at=NOW, peer=LOCAL_MTA)
    )
    follow_up = make_mail(subject=f"Re: case {first.incident_number}", body="Any news?")
    later = NOW + timedelta(hours=3)
    second = pipeline.process(
        RawMessage(follow_up, "smtp", ("escalations",), received_at=later, peer=LOCAL_MTA)
    )
    assert second.incident_number == first.incident_number
    one, two = _copies(engine)
    assert two["In-Reply-To"] == one["Message-ID"]
    assert two["References"] == one["Message-ID"]
    assert two["Thread-Topic"] == one["Thread-Topic"]
    index_one, index_two = (base64.b64decode(str(m["Thread-Index"])) for m in (one, two))
    assert (len(index_one), len(index_two)) == (22, 27)
    assert index_two[:22] == index_one


def test_unverified_mail_reaches_the_desk_marked_and_attached_to_nothing(
    engine: Engine, composer: ReplyComposer, guard: PiiGuard
) -> None:
    pipeline = _pipeline(engine, composer, guard)
    outcome = pipeline.process(RawMessage(make_mail(), "smtp", ("escalations",), peer=OUTSIDE))
    assert outcome.action == "unverified"
    (copy,) = _copies(engine)
    text = _text(copy)
    assert copy["Subject"].startswith("[unverified] ")
    assert text.startswith("UNVERIFIED SENDER")
    assert f"ticketd incidents attach {outcome.message_row_id} <incident number>" in text
    assert copy["Reply-To"] is None and copy["Thread-Index"] is None
    with transaction(engine, readonly=True) as session:
        kinds = session.exec(select(OutboxMessage.kind)).all()
    assert list(kinds) == ["desk_copy"]  # and nothing to the sender


def test_automatic_mail_makes_no_desk_copy(
    engine: Engine, composer: ReplyComposer, guard: PiiGuard
) -> None:
    pipeline = _pipeline(engine, composer, guard)
    auto = make_mail(subject="Out of office", headers={"Auto-Submitted": "auto-replied"})
    assert pipeline.process(RawMessage(auto, "smtp", ("escalations",), peer=LOCAL_MTA)).action == (
        "screened"
    )
    assert _copies(engine) == []


def _imap() -> ImapConfig:
    return ImapConfig(host="imap.example", username="u", password_env="X")


@pytest.mark.parametrize(
    ("outbound", "desk", "imap", "expected"),
    [
        ({}, None, False, "escalations@exchange.example"),  # the embedded default: the maildir
        ({"transport": "smtp"}, "desk@exchange.example", False, "desk@exchange.example"),
        ({"transport": "smtp"}, None, False, None),  # nowhere: the mailbox would loop
        ({"transport": "smtp"}, "desk@exchange.example", True, "imap:escalations"),
    ],
)
def test_where_desk_copies_go(
    outbound: dict[str, str], desk: str | None, imap: bool, expected: str | None
) -> None:
    base = make_config(**outbound)
    mailbox = MailboxConfig(
        name="escalations",
        address="escalations@exchange.example",
        team="escalated_cases",
        imap=_imap() if imap else None,
    )
    teams = dict(base.teams)
    teams["escalated_cases"] = TeamConfig(name="Escalations", desk_address=desk)
    config = base.model_copy(update={"mailboxes": (mailbox,), "teams": teams})
    assert desk_destination(config, "escalated_cases") == expected


def test_desk_addresses_verify_only_as_signed() -> None:
    reply = desk_address("escalations@exchange.example", "reply", 4242, SECRET)
    note = desk_address("escalations@exchange.example", "note", 4242, SECRET)
    assert reply is not None and note is not None and reply != note
    assert reply.startswith("escalations+") and reply.endswith("@exchange.example")
    found = desk_route([reply.upper()], SECRET)  # mail systems may fold case
    assert found is not None and (found.use, found.incident_id) == ("reply", 4242)
    assert found.mailbox_address == "escalations@exchange.example"
    local, _, domain = reply.partition("@")
    for i in range(len(local.partition("+")[0]) + 1, len(local)):
        changed = local[:i] + ("a" if local[i] != "a" else "b") + local[i + 1 :]
        assert desk_route([f"{changed}@{domain}"], SECRET) is None
    assert desk_route([reply], b"another secret of forty characters......") is None
    assert desk_route([reply.replace("@exchange.example", "@elsewhere.example")], SECRET) is None
    assert desk_address("x" * 50 + "@exchange.example", "reply", 1, SECRET) is None


def test_thread_index_is_outlooks_shape_and_stable() -> None:
    opened = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    guid = conversation_guid("261207-0000001", SECRET)
    head = base64.b64decode(thread_index(guid, opened, []))
    # the 6 high bytes of the FILETIME of the opening, then the GUID
    filetime = int((opened - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds() * 10**7)
    assert head == filetime.to_bytes(8, "big")[:6] + guid
    later = [opened + timedelta(hours=1), opened + timedelta(days=3)]
    child = base64.b64decode(thread_index(guid, opened, later))
    assert len(child) == 32 and child[:22] == head
    assert thread_index(guid, opened, later) == thread_index(guid, opened, later)
    assert conversation_guid("261207-0000002", SECRET) != guid


def test_a_desk_folder_the_poller_reads_is_refused() -> None:
    raw = {
        "mailboxes": [
            {
                "name": "escalations",
                "address": "escalations@exchange.example",
                "team": "escalated_cases",
                "imap": {"host": "h", "username": "u", "password_env": "P", "desk_folder": "INBOX"},
            }
        ]
    }
    with pytest.raises(ConfigError) as info:
        validate_config(raw, "c.toml")
    assert str(info.value).splitlines()[-1:] == [
        "c.toml: mailboxes[0].imap.desk_folder: 'INBOX' is a folder ticketd reads: "
        "desk copies would be read back as mail"
    ]


def test_a_follow_up_on_an_assigned_incident_reaches_the_assignee_when_the_team_asks(
    engine: Engine, guard: PiiGuard
) -> None:
    base = make_config()
    teams = dict(base.teams)
    teams["escalated_cases"] = TeamConfig(name="Escalations", notify_assignee=True)
    composer = make_composer(base.model_copy(update={"teams": teams}))
    pipeline = _pipeline(engine, composer, guard)
    first = pipeline.process(
        RawMessage(make_mail(), "smtp", ("escalations",), received_at=NOW, peer=LOCAL_MTA)
    )
    assert first.incident_number is not None
    with transaction(engine) as session:
        assign_incident(session, first.incident_number, "casey@exchange.example", "test")
    follow_up = make_mail(subject=f"Re: case {first.incident_number}", body="Any news?")
    pipeline.process(
        RawMessage(follow_up, "smtp", ("escalations",), received_at=NOW, peer=LOCAL_MTA)
    )
    with transaction(engine, readonly=True) as session:
        rows = session.exec(
            select(OutboxMessage.to_address).where(OutboxMessage.kind == "desk_copy")
        ).all()
    assert sorted(rows) == [
        "casey@exchange.example",  # the follow-up, to the assignee too
        "escalations@exchange.example",  # the escalation
        "escalations@exchange.example",  # the follow-up
    ]


def test_the_staff_directory_names_its_people_and_they_are_staff() -> None:
    casey = {"name": "Casey Caseworker", "address": "Casey@Exchange.example", "role": "lead"}
    config = validate_config({"staff": {"people": [{**casey, "team": "escalated_cases"}]}}, "c")
    person = config.staff.person("casey caseworker")
    assert person is not None and (person.address, person.role) == (
        "casey@exchange.example",
        "lead",
    )
    assert config.staff.person("CASEY@exchange.example") == person
    assert config.staff.is_staff("casey@exchange.example")
    assert not config.staff.is_staff("sam@brokers.example")
    with pytest.raises(ConfigError) as info:
        validate_config({"staff": {"people": [{**casey, "team": "nope"}]}}, "c.toml")
    assert str(info.value).splitlines()[-1] == (
        "c.toml: staff.people[0].team: unknown team 'nope' "
        "(known: escalated_cases, producer_operations)"
    )


def test_a_caseworker_who_mailed_consumer_data_past_ticketd_is_told_and_so_is_the_lead(
    engine: Engine, guard: PiiGuard
) -> None:
    base = make_config()
    teams = dict(base.teams)
    teams["escalated_cases"] = TeamConfig(name="Escalations", lead="lead@exchange.example")
    config = base.model_copy(
        update={"teams": teams, "staff": StaffConfig(domains=("exchange.example",))}
    )
    pipeline = _pipeline(engine, make_composer(config), guard)
    first = pipeline.process(
        RawMessage(make_mail(), "smtp", ("escalations",), received_at=NOW, peer=LOCAL_MTA)
    )
    answer = make_mail(
        sender="Casey Caseworker <casey@exchange.example>",
        to="sam@brokers.example",
        subject=f"RE: case {first.incident_number}",
        body=f"Hi Sam, I fixed it for SSN {SSN}.\n\nCasey",
        headers={"Cc": "escalations@exchange.example"},
    )
    recorded = pipeline.process(RawMessage(answer, "smtp", ("escalations",), peer=LOCAL_MTA))
    assert recorded.incident_number == first.incident_number
    with transaction(engine, readonly=True) as session:
        rows = session.exec(
            select(OutboxMessage).where(OutboxMessage.kind == "staff_sent_pii")
        ).all()
    assert sorted(r.to_address for r in rows) == ["casey@exchange.example", "lead@exchange.example"]
    for row in rows:
        assert row.status == "pending"
        mail = message_from_bytes(row.mime, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        assert "Social Security number" in _text(mail) and SSN not in _text(mail)


def test_the_staff_file_joins_the_directory_and_its_mistakes_are_named(
    run_cli: RunCli, tmp_path: Path
) -> None:
    staff = tmp_path / "staff.csv"
    staff.write_text(
        "name,address,team,role\nCasey Caseworker,casey@exchange.example,escalated_cases,\n"
        "Lee Lead,LEE@exchange.example,,lead\n",
        encoding="utf-8",
    )
    config = tmp_path / "config.toml"
    config.write_text('[staff]\nfile = "staff.csv"\n', encoding="utf-8")
    loaded = load_config(config).config
    assert [(p.name, p.address, p.team, p.role) for p in loaded.staff.people] == [
        ("Casey Caseworker", "casey@exchange.example", "escalated_cases", "caseworker"),
        ("Lee Lead", "lee@exchange.example", None, "lead"),
    ]
    assert loaded.staff.is_staff("lee@exchange.example")
    staff.write_text(
        "name,address,team,role\n,casey@exchange.example,,\nRobin,robin@,nope,boss\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(config), "config", "check")
    assert result.code == 1
    assert result.err.splitlines() == [
        f"ticketd: {staff}: line 2, name: is required",
        f"ticketd: {staff}: line 3, address: must be a single email address like casey@example.org",
        f"ticketd: {staff}: line 3, role: must be one of caseworker, lead, admin",
    ]


def test_the_acknowledgement_and_the_desk_copy_name_the_person_ids_read_once(
    engine: Engine, composer: ReplyComposer, guard: PiiGuard
) -> None:
    pipeline = _pipeline(engine, composer, guard)
    reads: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("SELECT incident_consumers.incident_id"):
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        pipeline.process(
            RawMessage(
                make_mail(subject="Escalated Case: Enrollment.PID #:174097,174098"),
                "smtp",
                ("escalations",),
                received_at=NOW,
                peer=LOCAL_MTA,
            )
        )
    finally:
        event.remove(engine, "before_cursor_execute", note)
    (copy,) = _copies(engine)
    assert "Person IDs:" in _text(copy) and "174097, 174098" in _text(copy)
    with transaction(engine, readonly=True) as session:
        ack = session.exec(select(OutboxMessage).where(OutboxMessage.kind == "ack_new")).one()
    mail = message_from_bytes(ack.mime, policy=policy.default)
    assert mail["Subject"] == "Escalated Case: Enrollment.PID #:174097,174098"
    assert len(reads) == 1  # for the copy and the acknowledgement together
