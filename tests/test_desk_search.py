"""The desk's queue and search (ticketing/desk/queue.py, search.py) on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ticketing.config import DatabaseConfig
from ticketing.desk.queue import UNASSIGNED, QueueFilter, queue_page
from ticketing.desk.search import COUNT_LIMIT, fts5_query, search
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.migrate import upgrade
from ticketing.store.models import Incident, IncidentConsumer, Message, Producer, table_of

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
_SEQUENCE = count(1)


def producer(session: Session, npn: str, name: str, email: str) -> Producer:
    row = Producer(npn=npn, name=name, email=email)
    session.add(row)
    session.flush()
    return row


def incident(session: Session, number: str, **fields: Any) -> Incident:
    values: dict[str, Any] = {
        "type": "enrollment",
        "team": "escalated_cases",
        "mailbox": "escalations",
        "status": "open",
        "opened_at": NOW - timedelta(days=1),
        "subject": f"Escalated Case {number}",
    }
    row = Incident(number=number, **(values | fields))
    session.add(row)
    session.flush()
    return row


def message(session: Session, incident_id: int | None, text: str, subject: str = "") -> int:
    key = f"{next(_SEQUENCE):064d}"
    row = Message(
        incident_id=incident_id,
        direction="in",
        mailbox="escalations",
        dedup_key=key,
        raw_sha256=key,
        subject=subject,
        text=text,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def numbers(engine: Engine, query: str, page: int = 1) -> list[str]:
    with transaction(engine, readonly=True) as session:
        return [hit.number for hit in search(session, query, page).hits]


# --- search -------------------------------------------------------------------------------


@pytest.fixture
def cases(engine: Engine) -> Engine:
    """Three incidents of two producers, with Person IDs and messages."""
    with transaction(engine) as session:
        sam = producer(session, "8812345", "Sam Amsung", "sam.amsung@brokers.example")
        ana = producer(session, "4400917", "Ana O'Neil", "ana@agency.example")
        first = incident(
            session, "261205-0000001", producer_id=sam.id, opened_at=NOW - timedelta(2)
        )
        second = incident(
            session, "261206-0000002", producer_id=sam.id, opened_at=NOW - timedelta(1)
        )
        third = incident(session, "261207-0000003", producer_id=ana.id, opened_at=NOW)
        for row, person_id in ((first, "174097"), (second, "174098"), (third, "990001")):
            assert row.id is not None
            session.add(IncidentConsumer(incident_id=row.id, person_id=person_id))
        message(session, first.id, "My client was terminated after the premium posted.")
        message(session, second.id, "The 1095-A shows the wrong months.", "Form question")
        message(session, third.id, "Commission missing for [PERSON ID 990001].", "Commissions")
        message(session, None, "An unverified note about reinstatement.")
    return engine


def test_an_incident_number_whole_or_its_beginning(cases: Engine) -> None:
    assert numbers(cases, "261206-0000002") == ["261206-0000002"]
    assert numbers(cases, " 261207- ") == ["261207-0000003"]
    assert numbers(cases, "261205-00000") == ["261205-0000001"]
    assert numbers(cases, "261208-") == []


def test_a_person_id_and_an_npn(cases: Engine) -> None:
    assert numbers(cases, "174097") == ["261205-0000001"]
    assert numbers(cases, "17409") == []  # Person IDs match whole
    assert numbers(cases, "8812345") == ["261206-0000002", "261205-0000001"]


def test_a_producer_by_name_or_address_in_any_case(cases: Engine) -> None:
    assert numbers(cases, "amsung") == ["261206-0000002", "261205-0000001"]
    assert numbers(cases, "O'NEIL") == ["261207-0000003"]
    assert numbers(cases, "agency.EXAMPLE") == ["261207-0000003"]
    assert numbers(cases, "%") == []  # LIKE's wildcards are plain characters here
    assert numbers(cases, "_") == []


def test_words_of_the_stored_text_and_subject(cases: Engine) -> None:
    assert numbers(cases, "terminated") == ["261205-0000001"]
    assert numbers(cases, "TERMINATED premium") == ["261205-0000001"]
    assert numbers(cases, "form") == ["261206-0000002"]  # the subject
    assert numbers(cases, "commission") == ["261207-0000003"]
    assert numbers(cases, "terminated months") == []  # every word, in one message
    assert numbers(cases, "termin") == []  # whole words
    assert numbers(cases, "reinstatement") == []  # a message of no incident
    assert numbers(cases, "deductible") == []


def test_query_syntax_is_taken_as_words(cases: Engine) -> None:
    for query in ('terminated" OR *', "NEAR(a b)", "text:premium", "-", '"', "a AND", "^x"):
        numbers(cases, query)  # no FTS syntax error
    assert numbers(cases, '"terminated"') == ["261205-0000001"]
    assert fts5_query('say "hi" -') == '"say" """hi"""'


def test_what_matched_each_incident_found_once(cases: Engine) -> None:
    with transaction(cases, readonly=True) as session:
        found = search(session, "990001")
    assert [(hit.number, hit.matched) for hit in found.hits] == [
        ("261207-0000003", ("person_id", "text"))
    ]
    assert found.hits[0].producer == "Ana O'Neil"
    assert (found.total, found.more) == (1, False)


def test_an_empty_query_finds_nothing(cases: Engine) -> None:
    with transaction(cases, readonly=True) as session:
        assert search(session, "   ").hits == ()


def test_the_index_follows_changes_to_messages(cases: Engine) -> None:
    messages = table_of(Message)
    with transaction(cases) as session:
        row_id = message(session, None, "Dental plan question")
        assert numbers(cases, "dental") == []
        session.execute(
            update(messages)
            .where(messages.c.id == row_id)
            .values(incident_id=1, text="Vision plan question")
        )
    assert numbers(cases, "dental") == []
    assert numbers(cases, "vision") == ["261205-0000001"]
    with transaction(cases) as session:
        session.execute(delete(messages).where(messages.c.id == row_id))
    assert numbers(cases, "vision") == []


def test_newest_first_in_pages_and_counted(engine: Engine) -> None:
    with transaction(engine) as session:
        for i in range(120):
            row = incident(session, f"261207-{i:07d}", opened_at=NOW + timedelta(minutes=i))
            message(session, row.id, f"Renewal question number {i}")
    with transaction(engine, readonly=True) as session:
        first, third = search(session, "renewal"), search(session, "renewal", page=3)
    assert first.hits[0].number == "261207-0000119"
    assert [hit.number for hit in third.hits] == [f"261207-{i:07d}" for i in range(19, -1, -1)]
    assert (first.total, first.more, first.pages) == (120, False, 3)
    assert COUNT_LIMIT > 120


def test_existing_messages_are_indexed_by_the_upgrade(empty_db_url: str) -> None:
    engine = create_db_engine(DatabaseConfig(url=empty_db_url))
    upgrade(engine, "0010")
    with transaction(engine) as session:
        row = incident(session, "261201-0000001")
        message(session, row.id, "Older mail about an appeal")
    upgrade(engine)
    assert numbers(engine, "appeal") == ["261201-0000001"]
    engine.dispose()


# --- queue --------------------------------------------------------------------------------


def _clock(due: timedelta, *, paused: timedelta | None = None) -> dict[str, Any]:
    due_at = NOW + due
    return {
        "sla_clock": "first_response",
        "sla_due_at": due_at,
        "sla_warn_at": due_at - timedelta(hours=4),
        "sla_paused_at": None if paused is None else NOW + paused,
    }


def test_what_is_at_risk_comes_first(engine: Engine) -> None:
    with transaction(engine) as session:
        incident(session, "261207-0000001", **_clock(timedelta(days=1)))  # ok, due later
        incident(session, "261207-0000002", **_clock(timedelta(hours=2)))  # past its warning
        incident(session, "261207-0000003", **_clock(timedelta(hours=-1)))  # breached
        incident(session, "261207-0000004", **_clock(timedelta(hours=5)))  # ok, due sooner
        incident(session, "261207-0000005", **_clock(timedelta(hours=-2), paused=timedelta(-1)))
        incident(session, "261207-0000006", **_clock(timedelta(hours=-3), paused=timedelta(0)))
        incident(session, "261207-0000007", sla_due_at=NOW - timedelta(days=3))  # clock stopped
        incident(session, "261207-0000008", status="resolved", **_clock(timedelta(hours=-9)))
        incident(session, "261207-0000009", team="producer_operations")
    with transaction(engine, readonly=True) as session:
        found = queue_page(session, QueueFilter(team="escalated_cases"), NOW)
    assert [(row.number[-1], row.risk) for row in found.rows] == [
        ("6", "breached"),  # paused after it was due
        ("3", "breached"),
        ("2", "at_risk"),
        ("4", "ok"),
        ("1", "ok"),
        ("5", "paused"),  # paused before it was due
        ("7", "ok"),
    ]
    assert found.rows[-1].sla_due_at is None
    assert found.rows[1].sla_due_at == NOW - timedelta(hours=1)
    assert found.total == 7


def test_filters(engine: Engine) -> None:
    with transaction(engine) as session:
        sam = producer(session, "1", "Sam Amsung", "sam@brokers.example")
        incident(session, "261207-0000001", producer_id=sam.id, assignee="casey@desk.example")
        incident(session, "261207-0000002", type="termination", priority="high")
        incident(session, "261207-0000003", status="awaiting_producer")
        incident(session, "261207-0000004", status="closed")

    def chosen(**wanted: object) -> list[str]:
        with transaction(engine, readonly=True) as session:
            found = queue_page(session, QueueFilter(team="escalated_cases", **wanted), NOW)  # type: ignore[arg-type]
        return [row.number[-1] for row in found.rows]

    assert chosen() == ["1", "2", "3"]
    assert chosen(statuses=("closed",)) == ["4"]
    assert chosen(type="termination") == ["2"]
    assert chosen(priority="high") == ["2"]
    assert chosen(assignee="casey@desk.example") == ["1"]
    assert chosen(assignee=UNASSIGNED) == ["2", "3"]
    with transaction(engine, readonly=True) as session:
        row = queue_page(session, QueueFilter(team="escalated_cases"), NOW).rows[0]
    assert (row.producer, row.assignee, row.status) == ("Sam Amsung", "casey@desk.example", "open")


def test_pages_of_fifty(engine: Engine) -> None:
    with transaction(engine) as session:
        for i in range(120):
            incident(session, f"261207-{i:07d}", **_clock(timedelta(hours=10, minutes=i)))
    with transaction(engine, readonly=True) as session:
        pages = [
            queue_page(session, QueueFilter("escalated_cases", page=n), NOW) for n in (1, 3, 4)
        ]
    assert [len(found.rows) for found in pages] == [50, 20, 0]
    assert [found.total for found in pages] == [120] * 3
    assert pages[0].pages == 3
    assert pages[1].rows[0].number == "261207-0000100"


def test_past_the_count_limit_the_newest_and_more(engine: Engine) -> None:
    incidents, messages = table_of(Incident), table_of(Message)
    rows = [
        {"number": f"261207-{i:07d}", "type": "enrollment", "team": "escalated_cases"}
        | {"mailbox": "escalations", "status": "open", "opened_at": NOW + timedelta(minutes=i)}
        | {"subject": "", "updated_at": NOW, "priority": "normal", "sla_stage": 0}
        for i in range(COUNT_LIMIT + 5)
    ]
    with transaction(engine) as session:
        session.execute(insert(incidents), rows)
        ids: list[int] = list(session.execute(select(incidents.c.id)).scalars())
        session.execute(
            insert(messages),
            [
                {"incident_id": row_id, "direction": "in", "mailbox": "escalations"}
                | {"mailboxes": [], "recipients": [], "pii_findings": {}, "received_at": NOW}
                | {"dedup_key": f"{row_id:064d}", "raw_sha256": "0", "subject": "Renewal"}
                | {"text": "renewal", "new_text": "", "authentication": "none"}
                | {"authentication_results": ""}
                for row_id in ids
            ],
        )
    with transaction(engine, readonly=True) as session:
        found = search(session, "renewal")
        last = search(session, "renewal", page=found.pages)
    assert (found.total, found.more, found.pages) == (COUNT_LIMIT, True, COUNT_LIMIT // 50)
    assert found.hits[0].number == f"261207-{COUNT_LIMIT + 4:07d}"
    assert last.hits[-1].number == "261207-0000005"  # the oldest of the newest thousand
