"""The console's hotline form and unverified queue, in-process (``tests/console_client.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from ticketing.incidents.records import incident_detail, open_incident
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, Message, OutboxMessage, Producer, utcnow

from .console_client import Console, console_app, signed_in

SSN = "219-09-9999"
CASEY = "console:Casey Caseworker <casey@exchange.example>"


@pytest.fixture
def console(tmp_path: Path, db_url: str) -> Iterator[Console]:
    console = console_app(tmp_path, db_url)
    with transaction(console.engine) as session:
        session.add(Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example"))
    yield console
    console.engine.dispose()


def hotline_form(console: Console, client: object, **fields: str) -> dict[str, str]:
    values = {
        "npn": "1234567",
        "type": "enrollment",
        "person_ids": "174097",
        "summary": f"Called: client cannot enroll (SSN {SSN}).",
    }
    return {"csrf": console.csrf(client), **values, **fields}  # type: ignore[arg-type]


def kinds_in_outbox(console: Console) -> list[str]:
    with transaction(console.engine, readonly=True) as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))
        return [row.kind for row in rows]


# --- the hotline form ------------------------------------------------------------------------


def test_the_form_has_its_fields_and_every_case_type(console: Console) -> None:
    page = signed_in(console, "caseworker").get("/hotline/new")
    assert page.status_code == 200
    for field in ("npn", "type", "person_ids", "summary"):
        assert f'id="{field}"' in page.text
    assert '<option value="form_1095a">1095 A</option>' in page.text
    assert '<option value="commission">Commission</option>' in page.text


def test_opening_one_goes_to_its_page_and_mails_the_ack(console: Console) -> None:
    client = signed_in(console, "caseworker")
    answer = client.post("/hotline", data=hotline_form(console, client))
    assert answer.status_code == 303
    match = re.fullmatch(r"/incidents/(\d{6}-\d{7})", answer.headers["location"])
    assert match is not None
    with transaction(console.engine, readonly=True) as session:
        detail = incident_detail(session, match.group(1))
    [message] = detail.messages
    assert SSN not in message.text and message.source == "hotline"
    assert [e.actor for e in detail.events if e.kind == "hotline_opened"] == [CASEY]
    assert "ack_new" in kinds_in_outbox(console)


def test_each_bad_field_is_shown_beside_it_and_what_was_typed_kept(console: Console) -> None:
    client = signed_in(console, "caseworker")
    typed = hotline_form(
        console, client, npn="999", type="", person_ids="Jane <b>Doe</b>", summary=""
    )
    answer = client.post("/hotline", data=typed)
    assert answer.status_code == 400
    text = answer.text
    assert 'aria-describedby="npn-error"' in text
    assert (
        '<p class="field-error" id="npn-error">no producer with NPN 999 in the roster</p>' in text
    )
    assert 'id="type-error">choose a case type' in text
    assert 'id="summary-error">a summary of the call is required</p>' in text
    assert "&lt;b&gt;Doe&lt;/b&gt;" in text and "<b>Doe</b>" not in text  # escaped, never markup
    assert 'value="999"' in text
    assert kinds_in_outbox(console) == []


def test_a_form_without_its_csrf_token_is_refused(console: Console) -> None:
    client = signed_in(console, "caseworker")
    typed = {k: v for k, v in hotline_form(console, client).items() if k != "csrf"}
    assert client.post("/hotline", data=typed).status_code == 403
    assert kinds_in_outbox(console) == []


def test_the_json_api_opens_one_and_names_bad_fields(console: Console) -> None:
    client = signed_in(console, "caseworker")
    headers = {"X-CSRF-Token": console.csrf(client)}
    body = {"npn": "1234567", "type": "commission", "person_ids": ["174201, 174202"]}
    answer = client.post("/api/hotline", json={**body, "summary": "Unpaid"}, headers=headers)
    assert answer.status_code == 201, answer.text
    opened = answer.json()
    assert opened["url"] == f"/incidents/{opened['number']}" and opened["acknowledged"] is True
    refused = client.post("/api/hotline", json={**body, "summary": 7}, headers=headers)
    assert (refused.status_code, refused.json()) == (
        400,
        {"errors": {"summary": "must be a string"}},
    )
    bad = client.post("/api/hotline", json={**body, "npn": "", "summary": "x"}, headers=headers)
    assert bad.json()["errors"] == {"npn": "the producer's NPN is required"}
    assert client.post("/api/hotline", json=body).status_code == 403  # no CSRF header


def test_signed_out_the_api_says_401_and_the_form_sends_to_sign_in(console: Console) -> None:
    from starlette.testclient import TestClient

    client = TestClient(console.app, follow_redirects=False)
    assert client.post("/api/hotline", json={}).status_code == 401
    assert client.get("/hotline/new").headers["location"].startswith("/login?next=")


# --- the unverified queue --------------------------------------------------------------------


def hold_message(console: Console, disposition: str = "unverified") -> int:
    """A message intake kept unattached (as ``pipeline/record._record_held`` stores it)."""
    message = Message(
        direction="in",
        mailbox="escalations",
        mailboxes=["escalations"],
        dedup_key=f"held-{disposition}",
        disposition=disposition,
        sender="sam@brokers.example",
        subject="Escalated Case: Enrollment.PID #:174097 <urgent>",
        raw_sha256="0" * 64,
        received_at=utcnow(),
    )
    with transaction(console.engine) as session:
        session.add(message)
        session.flush()
        assert message.id is not None
        return message.id


def an_incident(console: Console) -> str:
    with transaction(console.engine) as session:
        return open_incident(
            session, type="enrollment", team="escalated_cases", mailbox="escalations"
        ).number


def test_the_queue_lists_what_waits_with_why(console: Console) -> None:
    held = hold_message(console)
    hold_message(console, "rate_limited")
    page = signed_in(console, "caseworker").get("/unverified")
    assert page.status_code == 200
    assert "the sender could not be authenticated" in page.text
    assert "the sender opened more incidents this hour than allowed" in page.text
    assert "Enrollment.PID #:174097 &lt;urgent&gt;" in page.text
    assert f'action="/unverified/{held}/attach"' in page.text
    assert " EST" in page.text or " EDT" in page.text  # received, in desk time


def test_attaching_moves_it_to_the_incident_audited_with_the_caseworker(
    console: Console,
) -> None:
    held, number = hold_message(console), an_incident(console)
    client = signed_in(console, "caseworker")
    answer = client.post(
        f"/unverified/{held}/attach", data={"csrf": console.csrf(client), "number": number}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/unverified?attached={held}&to={number}"
    shown = client.get(answer.headers["location"])
    assert f"Message {held} is attached to" in shown.text and "Nothing is waiting." in shown.text
    with transaction(console.engine, readonly=True) as session:
        message = session.get(Message, held)
        events = session.exec(select(AuditEvent).where(AuditEvent.kind == "message_attached"))
        actors = [e.actor for e in events]
    assert message is not None and message.disposition == "attached_by_staff"
    assert actors == [CASEY]
    assert kinds_in_outbox(console) == []  # nothing is mailed


@pytest.mark.parametrize(
    ("number", "says"),
    [("", "give the number of an incident"), ("261207-0000099", "no incident 261207-0000099")],
)
def test_a_wrong_number_is_said_beside_the_message(
    console: Console, number: str, says: str
) -> None:
    held = hold_message(console)
    client = signed_in(console, "caseworker")
    answer = client.post(
        f"/unverified/{held}/attach", data={"csrf": console.csrf(client), "number": number}
    )
    assert answer.status_code == 400
    assert f'<p class="field-error" id="{held}-error">{says}</p>' in answer.text
    with transaction(console.engine, readonly=True) as session:
        message = session.get(Message, held)
    assert message is not None and message.incident_id is None


def test_a_message_no_longer_waiting_is_refused(console: Console) -> None:
    number = an_incident(console)
    client = signed_in(console, "caseworker")
    answer = client.post(
        "/unverified/424242/attach", data={"csrf": console.csrf(client), "number": number}
    )
    assert answer.status_code == 400
    assert "Message 424242 was not attached: no message 424242" in answer.text


def test_the_queue_as_json(console: Console) -> None:
    held = hold_message(console)
    listed = signed_in(console, "caseworker").get("/api/unverified").json()
    assert [(m["id"], m["why"], m["sender"]) for m in listed] == [
        (held, "unverified", "sam@brokers.example")
    ]
