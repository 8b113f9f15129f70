"""The desk's actions (``ticketing/desk``) on a real database: assign, resolve, reopen,
close, merge with their mails; a caseworker's note kept redacted and mailed to no one;
a reply to the producer refused with the kinds of consumer data found, or ordered.
The command line's behaviour over them is ``test_cli_operator.py`` and
``test_incident_operations.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from pii_guard import PiiGuard
from ticketing.config import Config, DatabaseConfig
from ticketing.config.desk_schema import StaffConfig, StaffPerson
from ticketing.config.pii_schema import PiiConfig
from ticketing.desk import actions
from ticketing.desk.actions import Desk
from ticketing.desk.notes import add_note, reply_to_producer, text_problem
from ticketing.errors import InvalidTransitionError, NotFoundError
from ticketing.incidents.records import get_incident
from ticketing.outbound.outbox import list_outbox
from ticketing.outbound.templated import TemplatedReplies
from ticketing.privacy.settings import build_guard
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.models import AuditEvent, Incident, Message, OutboxMessage

from .builders import NOW, add_case, make_composer

SSN = "219-09-9999"
CASEY = StaffPerson(name="Casey Caseworker", address="casey@exchange.example", role="caseworker")
ACTOR = "Casey Caseworker <casey@exchange.example>"
NUMBER = "200528-2866868"


@pytest.fixture
def backend() -> str:
    """SQLite here; ``test_a_note_and_a_reply_on_postgresql`` runs on PostgreSQL."""
    return "sqlite"


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return build_guard(PiiConfig())


def _desk(engine: Engine, guard: PiiGuard) -> Desk:
    config = Config(staff=StaffConfig(people=(CASEY,), domains=("exchange.example",)))
    composer = make_composer(config)
    return Desk.of(engine, config, lambda: TemplatedReplies(composer, engine, guard))


@pytest.fixture
def desk(engine: Engine, guard: PiiGuard) -> Desk:
    add_case(engine, number=NUMBER)
    return _desk(engine, guard)


def _outbox(engine: Engine) -> list[OutboxMessage]:
    with transaction(engine, readonly=True) as session:
        return list(reversed(list_outbox(session, limit=100)))


def _events(engine: Engine, kind: str) -> list[AuditEvent]:
    with transaction(engine, readonly=True) as session:
        query = select(AuditEvent).where(AuditEvent.kind == kind).order_by(col(AuditEvent.id))
        return list(session.exec(query))


def _incident(engine: Engine, number: str = NUMBER) -> Incident:
    with transaction(engine, readonly=True) as session:
        incident = session.exec(select(Incident).where(Incident.number == number)).one()
    return incident


def _messages(engine: Engine) -> list[Message]:
    with transaction(engine, readonly=True) as session:
        return list(session.exec(select(Message).order_by(col(Message.id))))


# --- assign, resolve, reopen, close, merge ---------------------------------------------------


def test_assign_by_name_mails_the_assignee_and_opens_the_incident(desk: Desk) -> None:
    done = actions.assign(desk, NUMBER, "casey caseworker", ACTOR, why="you know the carrier")
    assert (done.number, done.status, done.assignee, done.told) == (NUMBER, "open", CASEY, True)
    [notice] = _outbox(desk.engine)
    assert (notice.kind, notice.to_address, notice.status) == (
        "assigned",
        CASEY.address,
        "pending",
    )
    assert b"you know the carrier" in notice.mime
    [assigned] = _events(desk.engine, "assigned")
    assert (assigned.actor, assigned.detail["to"]) == (ACTOR, CASEY.address)


def test_assign_refuses_who_is_not_staff(desk: Desk) -> None:
    with pytest.raises(NotFoundError, match="is not staff"):
        actions.assign(desk, NUMBER, "someone@elsewhere.example", ACTOR)
    assert _incident(desk.engine).assignee is None


def test_resolve_mails_the_producer_and_reopen_and_close_do_not(desk: Desk) -> None:
    resolved = actions.resolve(desk, NUMBER, ACTOR, "answered on the phone")
    assert (resolved.status, resolved.told) == ("resolved", True)
    assert [(r.kind, r.to_address) for r in _outbox(desk.engine)] == [
        ("resolved", "sam@brokers.example")
    ]
    assert actions.move(desk, NUMBER, actions.MOVES["reopen"], ACTOR, "more questions").status == (
        "open"
    )
    assert actions.move(desk, NUMBER, actions.MOVES["close"], ACTOR, "done").status == "closed"
    with pytest.raises(InvalidTransitionError, match="already closed"):
        actions.move(desk, NUMBER, "closed", ACTOR, "again")
    assert len(_outbox(desk.engine)) == 1
    changes = _events(desk.engine, "status_changed")
    assert [(e.detail["to"], e.actor) for e in changes] == [
        ("resolved", ACTOR),
        ("open", ACTOR),
        ("closed", ACTOR),
    ]


def test_merge_closes_the_merged_incident(desk: Desk) -> None:
    add_case(desk.engine, number="200528-2866869", email_address="pat@brokers.example", npn="77")
    assert actions.merge(desk, "200528-2866869", NUMBER, ACTOR) == NUMBER
    merged = _incident(desk.engine, "200528-2866869")
    assert merged.status == "closed"
    assert merged.merged_into_id == _incident(desk.engine).id
    with pytest.raises(InvalidTransitionError):
        actions.merge(desk, NUMBER, NUMBER, ACTOR)


def test_unknown_incident_is_not_found(desk: Desk) -> None:
    with pytest.raises(NotFoundError, match="no incident 200528-0000001"):
        actions.resolve(desk, "200528-0000001", ACTOR, "x")
    with pytest.raises(NotFoundError):
        add_note(desk, build_guard(PiiConfig()), "200528-0000001", "a note", ACTOR)


# --- notes ---------------------------------------------------------------------------------


def test_a_note_is_stored_redacted_and_mailed_to_no_one(desk: Desk, guard: PiiGuard) -> None:
    noted = add_note(desk, guard, NUMBER, f"Called Sam; the consumer's SSN is {SSN}.", ACTOR)
    assert noted.finding_counts == {"US_SSN": 1}
    [note] = _messages(desk.engine)
    assert (note.direction, note.disposition, note.source) == ("out", "internal_note", "console")
    assert (note.sender, note.pii_findings) == ("casey@exchange.example", {"US_SSN": 1})
    assert SSN not in note.text and "Called Sam" in note.text
    assert "[REDACTED:US_SSN]" in note.text
    assert _outbox(desk.engine) == []
    [event] = _events(desk.engine, "note_added")
    assert (event.actor, event.message_row_id) == (ACTOR, note.id)
    assert event.detail == {"source": "console", "finding_counts": {"US_SSN": 1}}
    assert SSN not in str(event.detail)


def test_a_clean_note_is_kept_as_written(desk: Desk, guard: PiiGuard) -> None:
    text = "Sam Amsung will call back tomorrow about PID 174097."
    assert add_note(desk, guard, NUMBER, text, ACTOR).finding_counts == {}
    [note] = _messages(desk.engine)
    assert note.text == text


def test_empty_or_huge_text_is_refused(desk: Desk, guard: PiiGuard) -> None:
    assert text_problem("  \n") == "write something first"
    assert "at most" in (text_problem("x" * 20_001) or "")
    with pytest.raises(ValueError, match="write something first"):
        add_note(desk, guard, NUMBER, " ", ACTOR)
    assert _messages(desk.engine) == []


# --- replies -------------------------------------------------------------------------------


def test_a_reply_with_consumer_data_is_refused_with_its_kinds(desk: Desk, guard: PiiGuard) -> None:
    replied = reply_to_producer(desk, guard, NUMBER, f"Her SSN {SSN} is on file.", ACTOR)
    assert replied.refused and replied.finding_counts == {"US_SSN": 1}
    assert replied.message_row_id is None
    assert _outbox(desk.engine) == []
    assert _messages(desk.engine) == []
    [event] = _events(desk.engine, "desk_reply_withheld")
    assert event.detail == {"source": "console", "finding_counts": {"US_SSN": 1}}
    assert _incident(desk.engine).status == "new"


def test_a_clean_reply_is_ordered_and_stops_the_first_response_clock(
    desk: Desk, guard: PiiGuard
) -> None:
    with transaction(desk.engine) as session:  # as intake opens it: the clock running
        desk.clocks.start(session, get_incident(session, NUMBER), NOW)
    text = "Hi Sam, the carrier confirmed the enrollment for PID 174097."
    replied = reply_to_producer(desk, guard, NUMBER, text, ACTOR)
    assert not replied.refused and replied.ordered
    [mail] = _outbox(desk.engine)
    assert (mail.kind, mail.to_address, mail.status) == (
        "desk_reply",
        "sam@brokers.example",
        "pending",
    )
    assert b"the carrier confirmed the enrollment" in mail.mime
    assert b"ref:_" in mail.mime  # the ref token, so the producer's answer threads
    [stored] = _messages(desk.engine)
    assert (stored.disposition, stored.direction, stored.text) == ("desk_reply", "out", text)
    incident = _incident(desk.engine)
    assert incident.status == "awaiting_producer"
    assert incident.first_response_at is not None
    assert incident.sla_clock != "first_response"
    [event] = _events(desk.engine, "desk_reply")
    assert (event.actor, event.detail) == (ACTOR, {"source": "console", "ordered": True})


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def pg_engine(pg_db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(DatabaseConfig(url=pg_db_url))
    yield engine
    engine.dispose()


@pytest.mark.postgres
def test_a_note_and_a_reply_on_postgresql(pg_engine: Engine, guard: PiiGuard) -> None:
    add_case(pg_engine, number=NUMBER)
    desk = _desk(pg_engine, guard)
    add_note(desk, guard, NUMBER, f"SSN {SSN} was on the phone", ACTOR)
    assert reply_to_producer(desk, guard, NUMBER, f"SSN {SSN}", ACTOR).refused
    assert reply_to_producer(desk, guard, NUMBER, "All set, Sam.", ACTOR).ordered
    actions.resolve(desk, NUMBER, ACTOR, "done")
    assert [m.disposition for m in _messages(pg_engine)] == ["internal_note", "desk_reply"]
    assert all(SSN not in m.text for m in _messages(pg_engine))
    assert [r.kind for r in _outbox(pg_engine)] == ["desk_reply", "resolved"]
