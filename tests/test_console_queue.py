"""The queue and search pages and their JSON, in-process (tests/console_client.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.schemas import SchemaGenerator
from starlette.testclient import TestClient

from tests.console_client import Console, console_app, signed_in
from ticketing.console import queue_pages
from ticketing.store.db import transaction
from ticketing.store.models import Incident, IncidentConsumer, Message, Producer, utcnow


@pytest.fixture
def console(tmp_path: Path, db_url: str) -> Iterator[Console]:
    console = console_app(tmp_path, db_url)
    yield console
    console.engine.dispose()  # its pooled connections, before the database is given back


def _seed(console: Console, count: int = 3) -> None:
    """``count`` open incidents of the Escalated Cases team (the first breached), one of
    Producer Operations."""
    now = utcnow()
    with transaction(console.engine) as session:
        sam = Producer(npn="8812345", name="Sam <Amsung>", email="sam@brokers.example")
        session.add(sam)
        session.flush()
        for i in range(count):
            due = now + timedelta(hours=-1 if i == 0 else 30 + i)
            row = Incident(
                number=f"261207-{i:07d}",
                type="enrollment",
                team="escalated_cases",
                mailbox="escalations",
                subject=f"Escalated Case: Enrollment {i}",
                producer_id=sam.id,
                opened_at=now - timedelta(days=1, minutes=i),
                sla_clock="first_response",
                sla_due_at=due,
                sla_warn_at=due - timedelta(hours=4),
            )
            session.add(row)
            session.flush()
            assert row.id is not None
            session.add(IncidentConsumer(incident_id=row.id, person_id=f"17{i:04d}"))
            session.add(_message(row.id, i, "My client's premium posted twice."))
        other = Incident(
            number="261207-0009999",
            type="commission",
            team="producer_operations",
            mailbox="producer_operations",
        )
        session.add(other)


def _message(incident_id: int | None, i: int, text: str) -> Message:
    key = f"{i:064d}"
    return Message(
        incident_id=incident_id,
        direction="in",
        mailbox="escalations",
        dedup_key=key,
        raw_sha256=key,
        text=text,
    )


def test_the_queue_shows_what_is_at_risk_first(console: Console) -> None:
    _seed(console)
    answer = signed_in(console, "caseworker").get("/queue")
    assert answer.status_code == 200
    html = answer.text
    table = html[html.index('id="queue"') :]
    places = [table.index(f"261207-000000{i}") for i in range(3)]
    assert places == sorted(places)  # breached, then the soonest due
    assert "261207-0009999" not in table  # another team's
    assert '<span class="badge breached">Breached</span>' in html
    assert "Sam &lt;Amsung&gt;" in html  # escaped
    assert " EST</td>" in html or " EDT</td>" in html  # the desk's time
    # the person's own team first in the picker
    assert html.index('value="escalated_cases"') < html.index('value="producer_operations"')


def test_the_queue_of_another_team_and_filters(console: Console) -> None:
    _seed(console)
    client = signed_in(console, "lead")
    other = client.get("/queue", params={"team": "producer_operations"})
    assert "261207-0009999" in other.text
    assert "261207-0000000" not in other.text
    unassigned = client.get("/queue", params={"assignee": "none", "type": "enrollment"})
    assert "261207-0000001" in unassigned.text
    closed = client.get("/queue", params={"status": "closed"})
    assert "No incidents." in closed.text


def test_bad_filters_are_said_next_to_their_field(console: Console) -> None:
    client = signed_in(console, "caseworker")
    answer = client.get("/queue", params={"team": "nobody", "status": "lost", "page": "x"})
    assert answer.status_code == 400
    assert 'id="team-error"' in answer.text
    assert 'id="status-error"' in answer.text
    assert 'aria-describedby="status-error"' in answer.text
    assert 'id="page-error"' in answer.text
    api = client.get("/api/queue", params={"priority": "<b>"})
    assert api.status_code == 400
    assert set(api.json()["fields"]) == {"priority"}


def test_pages_of_the_queue(console: Console) -> None:
    _seed(console, 60)
    client = signed_in(console, "caseworker")
    first = client.get("/queue", params={"type": "enrollment"})
    assert "Page 1 of 2" in first.text
    assert 'href="/queue?type=enrollment&amp;page=2" rel="next"' in first.text
    second = client.get("/queue", params={"type": "enrollment", "page": "2"})
    assert second.text.count("/incidents/261207-") == 10
    assert 'rel="prev"' in second.text
    assert 'rel="next"' not in second.text


def test_search_by_person_id_and_text(console: Console) -> None:
    _seed(console)
    client = signed_in(console, "caseworker")
    answer = client.get("/search", params={"q": "170001"})
    results = answer.text[answer.text.index('id="results"') :]
    assert '<a href="/incidents/261207-0000001">' in results
    assert "261207-0000002" not in results
    assert "Person ID" in results
    words = client.get("/search", params={"q": "premium twice"})
    assert words.text.count("/incidents/261207-") == 3
    assert "3 incidents found, newest first." in words.text


def test_search_input_is_escaped_and_bounded(console: Console) -> None:
    client = signed_in(console, "caseworker")
    answer = client.get("/search", params={"q": '<script>alert("x")</script>'})
    assert answer.status_code == 200
    assert "<script>alert" not in answer.text
    assert "Nothing found." in answer.text
    long = client.get("/search", params={"q": "x" * 201})
    assert long.status_code == 400
    assert 'id="q-error"' in long.text
    empty = client.get("/search")
    assert "Type what you are looking for" in empty.text


def test_the_api(console: Console) -> None:
    _seed(console)
    client = signed_in(console, "caseworker")
    queue = client.get("/api/queue").json()
    assert (queue["team"], queue["total"], queue["pages"]) == ("escalated_cases", 3, 1)
    first = queue["rows"][0]
    assert (first["number"], first["risk"], first["producer"]) == (
        "261207-0000000",
        "breached",
        "Sam <Amsung>",
    )
    assert first["sla_due_at"].endswith("+00:00")
    found = client.get("/api/search", params={"q": "8812345"}).json()
    assert [hit["number"] for hit in found["hits"]] == [f"261207-{i:07d}" for i in range(3)]
    assert found["hits"][0]["matched"] == ["npn"]
    assert (found["total"], found["more"]) == (3, False)
    described = SchemaGenerator({"openapi": "3.0.3"}).get_schema(queue_pages.routes)["paths"]
    assert described["/api/queue"]["get"]["summary"] == "A team's queue"
    assert described["/api/search"]["get"]["summary"] == "Search incidents"


def test_signed_out_is_sent_to_sign_in(console: Console) -> None:
    client = TestClient(console.app, follow_redirects=False)
    assert client.get("/api/search", params={"q": "x"}).status_code == 401
    answer = client.get("/queue")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")
