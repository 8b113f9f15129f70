"""The JSON API's own description: every ``/api/`` endpoint documented in OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console_client import Console, console_app, signed_in


@pytest.fixture
def console(tmp_path: Path, db_url: str) -> Iterator[Console]:
    console = console_app(tmp_path, db_url)
    yield console
    console.engine.dispose()  # its pooled connections, before the database is dropped


def test_the_openapi_document_lists_the_api_and_only_the_api(console: Console) -> None:
    client = signed_in(console, "caseworker")
    schema = client.get("/api/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert "/api/me" in schema["paths"]
    assert "/api/incidents/{number}" in schema["paths"]
    assert all(path.startswith("/api/") for path in schema["paths"])
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
            assert operation.get("responses"), f"{method} {path} has no responses"


def test_the_api_page_names_each_endpoint(console: Console) -> None:
    client = signed_in(console, "caseworker")
    page = client.get("/api")
    assert page.status_code == 200
    assert "/api/incidents/{number}" in page.text and "The signed-in person" in page.text


def test_the_api_answers_401_without_a_session_and_who_with_one(console: Console) -> None:
    from starlette.testclient import TestClient

    assert TestClient(console.app).get("/api/me").status_code == 401
    me = signed_in(console, "lead").get("/api/me").json()
    assert me == {
        "address": "lee@exchange.example",
        "name": "Lee Lead",
        "role": "lead",
        "team": "escalated_cases",
    }
