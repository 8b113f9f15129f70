"""Canned replies on the incident page (issue 25 part 3), in process: the picker, the
pre-filled reply box, and the reply sent from it through the same outbound check."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ticketing.outbound.outbox import list_outbox
from ticketing.store.db import transaction
from ticketing.store.models import OutboxMessage

from .builders import add_case
from .console_client import Console, console_app, signed_in

NUMBER = "200528-2866868"
SPANISH = "200528-2866869"
PAGE = f"/incidents/{NUMBER}"
TEXTAREA = re.compile(r'<textarea id="reply-text"[^>]*>(.*?)</textarea>', re.DOTALL)


@pytest.fixture
def backend() -> str:
    """SQLite: ``test_desk_canned.py`` renders them on PostgreSQL too."""
    return "sqlite"


@pytest.fixture
def console(tmp_path: Path, db_url: str) -> Iterator[Console]:
    made = console_app(tmp_path, db_url)
    add_case(made.engine, number=NUMBER)
    add_case(made.engine, number=SPANISH, language="es", npn="55", email_address="r@b.example")
    yield made
    made.engine.dispose()


@pytest.fixture
def client(console: Console) -> TestClient:
    return signed_in(console, "caseworker")


def reply_box(page: str) -> str:
    """The reply box's text as the browser reads it (unescaped)."""
    found = TEXTAREA.search(page)
    assert found is not None, "no reply box"
    return html.unescape(found.group(1))


def outbox(console: Console) -> list[OutboxMessage]:
    with transaction(console.engine, readonly=True) as session:
        return list(list_outbox(session, limit=100))


def test_the_picker_lists_the_canned_replies(client: TestClient) -> None:
    page = client.get(PAGE).text
    assert '<label for="canned">Start from a canned reply</label>' in page
    assert '<form method="get" action="/incidents/200528-2866868"' in page
    for name, label in (
        ("documents_received", "Documents received"),
        ("upload_in_portal", "Upload documents in the Producer Portal"),
        ("need_more_information", "Need more information"),
        ("with_the_carrier", "Referred to the carrier"),
    ):
        assert f'<option value="{name}">{label}</option>' in page
    assert reply_box(page) == ""  # nothing chosen: an empty box


def test_canned_prefills_the_reply_box_escaped(client: TestClient) -> None:
    answer = client.get(PAGE, params={"canned": "upload_in_portal"})
    assert answer.status_code == 200
    raw = TEXTAREA.search(answer.text)
    assert raw is not None
    assert "consumers&#39; personal information" in raw.group(1)  # escaped in the page
    text = reply_box(answer.text)
    assert text.startswith("Hi sam amsung,\n\nPlease upload the supporting documents")
    assert f"for incident {NUMBER} to your" in text
    assert '<option value="upload_in_portal" selected>' in answer.text


def test_the_prefilled_text_sent_ends_in_the_outbox(console: Console, client: TestClient) -> None:
    text = reply_box(client.get(PAGE, params={"canned": "documents_received"}).text)
    edited = text.replace("as soon as", "as soon as (this week)")
    answer = client.post(f"{PAGE}/reply", data={"csrf": console.csrf(client), "text": edited})
    assert answer.status_code == 303, answer.text
    [mail] = outbox(console)
    assert (mail.kind, mail.to_address) == ("desk_reply", "sam@brokers.example")
    assert b"as soon as (this week)" in mail.mime
    assert b"We have received the documents you uploaded" in mail.mime


def test_a_canned_text_with_consumer_data_added_is_refused(
    console: Console, client: TestClient
) -> None:
    text = reply_box(client.get(PAGE, params={"canned": "need_more_information"}).text)
    edited = text.replace("-\n", "- her SSN 219-09-9999\n", 1)
    answer = client.post(f"{PAGE}/reply", data={"csrf": console.csrf(client), "text": edited})
    assert answer.status_code == 400
    assert "Social Security number (US_SSN)" in answer.text
    assert outbox(console) == []


def test_a_spanish_producer_gets_the_spanish_one(client: TestClient) -> None:
    page = f"/incidents/{SPANISH}"
    assert '<option value="documents_received">Documentos recibidos</option>' in (
        client.get(page).text
    )
    text = reply_box(client.get(page, params={"canned": "documents_received"}).text)
    assert text.splitlines()[0] == "Hola sam amsung:"
    assert f"para el incidente {SPANISH}." in text


def test_an_unknown_name_is_an_error_beside_the_picker(client: TestClient) -> None:
    answer = client.get(PAGE, params={"canned": "<b>nope</b>"})
    assert answer.status_code == 400
    assert 'id="canned-error"' in answer.text
    assert 'aria-describedby="canned-error"' in answer.text
    assert "no canned reply &#39;&lt;b&gt;nope&lt;/b&gt;&#39;" in answer.text
    assert reply_box(answer.text) == ""
    missing = client.get("/incidents/200528-2866999", params={"canned": "documents_received"})
    assert missing.status_code == 404
