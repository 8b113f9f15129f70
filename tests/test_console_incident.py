"""The incident page and its actions, in process (``tests/console_client.py``): notes kept
redacted and never mailed, replies refused with the kinds of consumer data found or
ordered to the producer, who may do what, 404 and CSRF."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from sqlmodel import col, select
from starlette.testclient import TestClient

from ticketing.outbound.outbox import list_outbox
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, Incident, Message, OutboxMessage

from .builders import add_case
from .console_client import PEOPLE, Console, console_app, signed_in

SSN = "219-09-9999"
NUMBER = "200528-2866868"
PAGE = f"/incidents/{NUMBER}"


@pytest.fixture
def backend() -> str:
    """SQLite: the desk's actions are tested on PostgreSQL in ``test_desk_actions.py``."""
    return "sqlite"


@pytest.fixture
def console(tmp_path: Path, db_url: str) -> Iterator[Console]:
    made = console_app(tmp_path, db_url)
    add_case(made.engine, number=NUMBER)
    yield made
    made.engine.dispose()  # its pooled connections, before the database is dropped


def _outbox(console: Console) -> list[OutboxMessage]:
    with transaction(console.engine, readonly=True) as session:
        return list(list_outbox(session, limit=100))


def _messages(console: Console) -> list[Message]:
    with transaction(console.engine, readonly=True) as session:
        return list(session.exec(select(Message).order_by(col(Message.id))))


def _incident(console: Console) -> Incident:
    with transaction(console.engine, readonly=True) as session:
        return session.exec(select(Incident).where(Incident.number == NUMBER)).one()


def _post(console: Console, client: TestClient, action: str, **data: str) -> httpx2.Response:
    return client.post(f"{PAGE}/{action}", data={"csrf": console.csrf(client), **data})


def test_the_page_shows_the_incident_and_its_forms(console: Console) -> None:
    client = signed_in(console, "caseworker")
    answer = client.get(PAGE)
    assert answer.status_code == 200
    html = answer.text
    for expected in (NUMBER, "Enrollment", "sam amsung", "NPN 19283746", "174097"):
        assert expected in html
    for ident in ('id="conversation"', 'id="note-text"', 'id="reply-text"', 'id="sla"'):
        assert ident in html
    assert "Add note" in html
    assert 'action="/incidents/200528-2866868/merge"' not in html  # merging is a lead's


def test_a_note_with_an_ssn_is_stored_redacted_and_never_mailed(console: Console) -> None:
    client = signed_in(console, "caseworker")
    answer = _post(console, client, "notes", text=f"Called Sam: SSN {SSN} given on the phone.")
    assert (answer.status_code, answer.headers["location"]) == (303, PAGE)
    [note] = _messages(console)
    assert (note.disposition, note.direction, note.pii_findings) == (
        "internal_note",
        "out",
        {"US_SSN": 1},
    )
    assert SSN not in note.text and "[REDACTED:US_SSN]" in note.text
    assert _outbox(console) == []
    page = client.get(PAGE).text
    assert "Called Sam" in page and SSN not in page
    assert "Social Security number (US_SSN)" in page  # what the guard removed
    with transaction(console.engine, readonly=True) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.kind == "note_added")).one()
    name, address = PEOPLE["caseworker"]
    assert event.actor == f"console:{name} <{address}>"


def test_a_reply_with_an_ssn_is_refused_with_its_kind(console: Console) -> None:
    client = signed_in(console, "caseworker")
    text = f"Hi Sam, her SSN is {SSN}."
    answer = client.post(f"{PAGE}/reply", data={"csrf": console.csrf(client), "text": text})
    assert answer.status_code == 400
    assert "Not sent" in answer.text and "Social Security number (US_SSN)" in answer.text
    assert 'aria-describedby="reply-error"' in answer.text
    textarea = re.search(r'<textarea id="reply-text"[^>]*>([^<]*)</textarea>', answer.text)
    assert textarea is not None and SSN in textarea.group(1)  # their text is kept to edit
    assert _outbox(console) == []
    assert _messages(console) == []


def test_a_clean_reply_goes_to_the_outbox(console: Console) -> None:
    client = signed_in(console, "caseworker")
    answer = _post(console, client, "reply", text="Hi Sam, the carrier confirmed it.")
    assert answer.status_code == 303
    [mail] = _outbox(console)
    assert (mail.kind, mail.to_address, mail.status) == (
        "desk_reply",
        "sam@brokers.example",
        "pending",
    )
    assert b"the carrier confirmed it" in mail.mime
    assert _incident(console).status == "awaiting_producer"
    assert "Caseworker&#39;s reply" in client.get(PAGE).text


def test_resolve_reopen_close_and_assign_oneself(console: Console) -> None:
    client = signed_in(console, "caseworker")
    _, address = PEOPLE["caseworker"]
    assert _post(console, client, "assign", assignee=address).status_code == 303
    assert _incident(console).assignee == address
    assert _post(console, client, "resolve", reason="done").status_code == 303
    assert [r.kind for r in _outbox(console)] == ["resolved", "assigned"]
    again = _post(console, client, "resolve")
    assert again.status_code == 400
    assert "already resolved" in again.text
    assert _post(console, client, "reopen").status_code == 303
    assert _post(console, client, "close").status_code == 303
    assert _incident(console).status == "closed"


def test_leads_assign_others_and_merge_caseworkers_may_not(console: Console) -> None:
    add_case(console.engine, number="200528-2866869", email_address="pat@b.example", npn="7")
    caseworker, lead = signed_in(console, "caseworker"), signed_in(console, "lead")
    _, other = PEOPLE["admin"]
    assert _post(console, caseworker, "assign", assignee=other).status_code == 403
    assert _post(console, caseworker, "merge", into="200528-2866869").status_code == 403
    assert _incident(console).assignee is None
    assert _post(console, lead, "assign", assignee=other).status_code == 303
    assert _incident(console).assignee == other
    nobody = _post(console, lead, "assign", assignee="stranger@elsewhere.example")
    assert nobody.status_code == 400
    assert "is not staff" in nobody.text
    merged = _post(console, lead, "merge", into="200528-2866869")
    assert merged.headers["location"] == "/incidents/200528-2866869"
    assert _incident(console).status == "closed"


def test_unknown_incident_is_404(console: Console) -> None:
    client = signed_in(console, "caseworker")
    assert client.get("/incidents/200528-0000001").status_code == 404
    assert client.get("/incidents/nonsense").status_code == 404
    assert _post_to(console, client, "/incidents/200528-0000001/notes").status_code == 404
    assert client.get("/api/incidents/200528-0000001").status_code == 404


def _post_to(console: Console, client: TestClient, path: str) -> httpx2.Response:
    answer = client.post(path, data={"csrf": console.csrf(client), "text": "a note"})
    return answer


def test_a_post_without_the_csrf_token_is_refused(console: Console) -> None:
    client = signed_in(console, "caseworker")
    answer = client.post(f"{PAGE}/notes", data={"text": "a note"})
    assert answer.status_code == 403
    assert _messages(console) == []


def test_an_empty_note_is_refused_next_to_the_field(console: Console) -> None:
    client = signed_in(console, "caseworker")
    answer = client.post(f"{PAGE}/notes", data={"csrf": console.csrf(client), "text": "  "})
    assert answer.status_code == 400
    assert 'id="note-error"' in answer.text and "write something first" in answer.text


def test_the_api_gives_the_incident_and_takes_a_note(console: Console) -> None:
    client = signed_in(console, "caseworker")
    csrf = {"X-CSRF-Token": console.csrf(client)}
    added = client.post(f"/api{PAGE}/notes", json={"text": f"SSN {SSN}"}, headers=csrf)
    assert added.status_code == 201
    assert added.json()["finding_counts"] == {"US_SSN": 1}
    assert client.post(f"/api{PAGE}/notes", json={"text": "x"}).status_code == 403
    assert client.post(f"/api{PAGE}/notes", json={}, headers=csrf).status_code == 400
    shown = client.get(f"/api{PAGE}").json()
    assert (shown["number"], shown["person_ids"]) == (NUMBER, ["174097"])
    assert shown["removed"] == {"US_SSN": 1}
    assert [e["what"] for e in shown["conversation"]] == ["Note"]
    assert SSN not in str(shown)
