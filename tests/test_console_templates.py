"""The console's template editor pages, in-process (``tests/console_client.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import col, select
from starlette.testclient import TestClient

from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent
from ticketing.templating.files import shipped_dir

from .builders import add_case
from .console_client import Console, console_app, signed_in

ADA = "console:Ada Admin <ada@exchange.example>"
ACK_TEXT = {"kind": "ack_new", "part": "text", "language": "en", "team": ""}
RESOLVED_SUBJECT = {"kind": "resolved", "part": "subject", "language": "en", "team": ""}
FRAGMENT = {"X-Fragment": "preview"}


@pytest.fixture
def overrides(tmp_path: Path) -> Path:
    return tmp_path / "overrides"


@pytest.fixture
def console(tmp_path: Path, db_url: str, overrides: Path) -> Iterator[Console]:
    console = console_app(tmp_path, db_url, f'[templates]\noverride_dir = "{overrides}"\n')
    yield console
    console.engine.dispose()  # its pooled connections, closed before the database is dropped


@pytest.fixture
def ada(console: Console) -> TestClient:
    return signed_in(console, "admin")


def form(
    console: Console, client: TestClient, key: dict[str, str], **values: str
) -> dict[str, str]:
    return {"csrf": console.csrf(client), **key, **values}


def by_id(html: str, element_id: str) -> str:
    """The element ``element_id`` up to its closing tag (enough for these pages)."""
    found = re.search(rf'<(\w+)[^>]* id="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert found is not None, f"no #{element_id}"
    return found.group(2)


def test_only_admins_reach_the_editor(console: Console) -> None:
    for role in ("caseworker", "lead"):
        client = signed_in(console, role)
        assert client.get("/templates").status_code == 403
        assert client.get("/templates/edit", params=ACK_TEXT).status_code == 403
        data = form(console, client, ACK_TEXT, source="x")
        assert client.post("/templates/save", data=data).status_code == 403
        assert client.post("/templates/preview", data=data).status_code == 403
        headers = {"X-CSRF-Token": console.csrf(client)}
        api = client.post(
            "/api/templates/preview", json={**ACK_TEXT, "source": "x"}, headers=headers
        )
        assert api.status_code == 403
    assert not (Path(console.config.templates.override_dir or "") / "ack_new").exists()


def test_the_list_shows_each_part_and_its_layer(
    console: Console, ada: TestClient, overrides: Path
) -> None:
    (overrides / "resolved").mkdir(parents=True)
    (overrides / "resolved" / "subject.txt").write_text("Done: {{ incident.number }}\n")
    answer = ada.get("/templates")
    assert answer.status_code == 200
    table = by_id(answer.text, "templates")
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    cells = [re.sub(r"<[^>]+>|\s+", " ", row).split() for row in rows]
    row = next(c for c in cells if c[:4] == ["resolved", "subject", "en", "all"])
    assert row == [
        "resolved",
        "subject",
        "en",
        "all",
        "teams",
        "override",
        "Edit",
        "resolved/subject.txt",
    ]
    assert "/templates/edit?kind=resolved&amp;part=subject&amp;language=en&amp;team=" in table


def test_the_edit_page_has_the_source_a_preview_and_the_verdict(
    console: Console, ada: TestClient
) -> None:
    answer = ada.get("/templates/edit", params=ACK_TEXT)
    assert answer.status_code == 200
    html = answer.text
    shipped = (shipped_dir() / "ack_new" / "body.txt").read_text()
    textarea = re.search(
        r'<textarea id="template-source" name="source"[^>]*>\n(.*?)</textarea>', html, re.S
    )
    assert textarea is not None
    assert textarea.group(1).replace("&#34;", '"').replace("&#39;", "'") == shipped
    assert "Hi sam amsung," in by_id(html, "preview")
    assert "no consumer personal data found" in by_id(html, "verdict")
    assert '<script src="/static/editor.js" defer></script>' in html
    assert "<script>" not in html and "onclick" not in html  # the CSP allows neither
    assert '<meta name="csrf-token"' in html
    assert ada.get("/static/editor.js").status_code == 200


def test_unknown_templates_are_404(ada: TestClient) -> None:
    assert ada.get("/templates/edit", params={**ACK_TEXT, "kind": "nope"}).status_code == 404
    assert ada.get("/templates/edit", params={**ACK_TEXT, "team": "nobody"}).status_code == 404


def test_the_preview_fragment_for_the_script(console: Console, ada: TestClient) -> None:
    source = "Your consumer's SSN is 219-09-9999.\n{{ ref_token }}\n"
    answer = ada.post(
        "/templates/preview",
        data=form(console, ada, ACK_TEXT, source=source),
        headers={"X-CSRF-Token": console.csrf(ada), **FRAGMENT},
    )
    assert answer.status_code == 200
    assert "<html" not in answer.text and "<textarea" not in answer.text
    assert "219-09-9999" in by_id(answer.text, "preview")
    assert "US_SSN" in by_id(answer.text, "verdict")
    assert 'data-lines=""' in answer.text


def test_a_broken_preview_marks_its_line(console: Console, ada: TestClient) -> None:
    source = "Hi,\n\n{{ incident.number }\n{{ ref_token }}\n"
    answer = ada.post(
        "/templates/preview", data=form(console, ada, ACK_TEXT, source=source), headers=FRAGMENT
    )
    problems = by_id(answer.text, "source-problems")
    assert 'data-line="3">line 3</a>: syntax error' in problems
    assert 'data-lines="3"' in answer.text


def test_without_script_preview_renders_the_page_for_a_real_incident(
    console: Console, ada: TestClient
) -> None:
    add_case(console.engine, number="261207-0000042")
    source = "{{ incident.number }} for {{ producer.name }}\n{{ ref_token }}\n"
    data = form(console, ada, ACK_TEXT, source=source, incident="261207-0000042")
    answer = ada.post("/templates/preview", data=data)
    assert answer.status_code == 200
    assert "<textarea" in answer.text  # the whole page, the source kept
    assert "261207-0000042 for sam amsung" in by_id(answer.text, "preview")
    assert "incident 261207-0000042" in by_id(answer.text, "preview")
    missing = ada.post("/templates/preview", data={**data, "incident": "261207-0000043"})
    assert missing.status_code == 400
    assert "no incident 261207-0000043" in by_id(missing.text, "incident-error")
    malformed = ada.post("/templates/preview", data={**data, "incident": "42"})
    assert "looks like 261207-0000001" in by_id(malformed.text, "incident-error")


def test_a_refused_save_keeps_the_source_and_writes_nothing(
    console: Console, ada: TestClient, overrides: Path
) -> None:
    source = "Hi <b>,\r\n{{ ''.__class__ }}\r\n{{ ref_token }}\r\n"
    answer = ada.post("/templates/save", data=form(console, ada, ACK_TEXT, source=source))
    assert answer.status_code == 400
    assert "Hi &lt;b&gt;," in answer.text  # kept, escaped
    assert "line 2</a>: forbidden by the sandbox" in by_id(answer.text, "source-problems")
    assert "<mark>2</mark>" in by_id(answer.text, "source-gutter")
    assert not overrides.exists() or not any(overrides.rglob("*"))


def test_save_diff_and_revert(console: Console, ada: TestClient, overrides: Path) -> None:
    data = form(console, ada, RESOLVED_SUBJECT, source="Closed: {{ incident.number }}\r\n")
    answer = ada.post("/templates/save", data=data)
    assert answer.status_code == 303
    target = "/templates/edit?kind=resolved&part=subject&language=en&team=&done=saved"
    assert answer.headers["location"] == target
    path = overrides / "resolved" / "subject.txt"
    assert path.read_text() == "Closed: {{ incident.number }}\n"
    page = ada.get(target).text
    assert "Saved." in page and "Revert" in page
    diff = ada.get("/templates/diff", params=RESOLVED_SUBJECT)
    assert diff.status_code == 200
    assert "+Closed: {{ incident.number }}" in by_id(diff.text, "diff")
    listing = ada.get("/templates").text
    assert "override" in listing
    reverted = ada.post("/templates/revert", data=form(console, ada, RESOLVED_SUBJECT))
    assert reverted.status_code == 303
    assert not path.exists()
    assert (
        ada.post("/templates/revert", data=form(console, ada, RESOLVED_SUBJECT)).status_code == 404
    )
    with transaction(console.engine, readonly=True) as session:
        events = session.exec(
            select(AuditEvent).where(col(AuditEvent.kind).startswith("template_"))
        ).all()
        assert [(e.kind, e.actor, e.detail) for e in events] == [
            ("template_saved", ADA, {"file": str(path)}),
            ("template_reverted", ADA, {"file": str(path)}),
        ]


def test_saving_without_an_override_folder_names_the_key(tmp_path: Path, db_url: str) -> None:
    console = console_app(tmp_path, db_url, '[templates]\noverride_dir = ""\n')
    ada = signed_in(console, "admin")
    source = (shipped_dir() / "resolved" / "subject.txt").read_text()
    answer = ada.post("/templates/save", data=form(console, ada, RESOLVED_SUBJECT, source=source))
    console.engine.dispose()
    assert answer.status_code == 400
    assert "templates.override_dir" in by_id(answer.text, "source-error")


def test_the_json_preview(console: Console, ada: TestClient) -> None:
    headers = {"X-CSRF-Token": console.csrf(ada)}
    body = {**ACK_TEXT, "source": "SSN 219-09-9999\n{{ ref_token }}\n"}
    answer = ada.post("/api/templates/preview", json=body, headers=headers)
    assert answer.status_code == 200
    found = answer.json()
    assert (found["about"], found["findings"], found["problems"]) == (
        "the sample data",
        {"US_SSN": 1},
        [],
    )
    assert found["text"].startswith("SSN 219-09-9999\nref:_")
    bad = ada.post("/api/templates/preview", json={**ACK_TEXT, "source": 3}, headers=headers)
    assert (bad.status_code, bad.json()) == (400, {"errors": {"source": "must be a string"}})
    unknown = {**body, "kind": "nope"}
    assert ada.post("/api/templates/preview", json=unknown, headers=headers).status_code == 404
    assert ada.post("/api/templates/preview", json=body).status_code == 403  # no CSRF header
