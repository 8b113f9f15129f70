"""The console's gate: signing in and out, sessions, CSRF, roles, limits, the SSO proxy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from tests.console_client import PASSWORD, PEOPLE, Console, console_app, signed_in
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, ConsoleSession, utcnow


@pytest.fixture
def console(tmp_path: Path, db_url: str) -> Iterator[Console]:
    console = console_app(tmp_path, db_url)
    yield console
    console.engine.dispose()  # its pooled connections, before the database is dropped


def _login(client: TestClient, address: str, password: str) -> int:
    client.get("/login")
    token = client.cookies.get("ticketd_login") or ""
    answer = client.post("/login", data={"address": address, "password": password, "csrf": token})
    return answer.status_code


def test_a_page_without_a_session_sends_the_browser_to_sign_in(console: Console) -> None:
    client = TestClient(console.app, follow_redirects=False)
    answer = client.get("/users?x=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fusers%3Fx%3D1"
    assert client.get("/api/anything").status_code == 401


def test_signing_in_opens_a_session_and_lands_where_asked(console: Console) -> None:
    client = TestClient(console.app, follow_redirects=False)
    client.get("/login")
    token = client.cookies.get("ticketd_login") or ""
    _, address = PEOPLE["admin"]
    data = {"address": address, "password": PASSWORD, "csrf": token, "next": "/users"}
    answer = client.post("/login", data=data)
    assert answer.status_code == 303 and answer.headers["location"] == "/users"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = client.get("/users")
    assert page.status_code == 200 and "Ada Admin (admin)" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_next_never_leads_to_another_site(console: Console) -> None:
    _, address = PEOPLE["admin"]
    for target in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        client = TestClient(console.app, follow_redirects=False)
        client.get("/login")
        token = client.cookies.get("ticketd_login") or ""
        data = {"address": address, "password": PASSWORD, "csrf": token, "next": target}
        answer = client.post("/login", data=data)
        assert answer.headers["location"] == "/queue", target


def test_a_wrong_password_is_refused_and_audited_without_the_password(console: Console) -> None:
    client = TestClient(console.app, follow_redirects=False)
    _, address = PEOPLE["lead"]
    assert _login(client, address, "not the password at all") == 400
    with transaction(console.engine, readonly=True) as session:
        events = session.exec(
            select(AuditEvent).where(AuditEvent.kind == "console_sign_in_failed")
        ).all()
    assert [e.actor for e in events] == [address]
    assert "not the password" not in repr([e.detail for e in events])


def test_too_many_failures_lock_the_address_out_even_with_the_right_password(
    console: Console,
) -> None:
    client = TestClient(console.app, follow_redirects=False)
    _, address = PEOPLE["lead"]
    for _ in range(console.config.web.login_attempts):
        assert _login(client, address, "wrong password, again") == 400
    assert _login(client, address, PASSWORD) == 429


def test_a_form_without_the_sessions_csrf_token_is_refused(console: Console) -> None:
    client = signed_in(console, "admin")
    refused = client.post("/logout", data={})
    assert refused.status_code == 403
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
    ok = client.post("/logout", data={"csrf": console.csrf(client)})
    assert ok.status_code == 303
    assert client.get("/users").status_code == 303  # signed out: back to the sign-in form


def test_the_sign_in_form_needs_its_own_token(console: Console) -> None:
    client = TestClient(console.app, follow_redirects=False)
    _, address = PEOPLE["admin"]
    answer = client.post("/login", data={"address": address, "password": PASSWORD, "csrf": "x"})
    assert answer.status_code == 403


def test_a_role_below_the_page_gets_403(console: Console) -> None:
    client = signed_in(console, "caseworker")
    answer = client.get("/users")
    assert answer.status_code == 403 and "admin role" in answer.text


def test_an_idle_session_ends(console: Console) -> None:
    client = signed_in(console, "admin")
    idle = timedelta(minutes=console.config.web.session_idle_minutes + 1)
    with transaction(console.engine) as session:
        for row in session.exec(select(ConsoleSession)).all():
            row.last_seen_at = utcnow() - idle
    assert client.get("/users").status_code == 303


def test_a_disabled_account_is_signed_out_at_once(console: Console) -> None:
    admin = signed_in(console, "admin")
    lead = signed_in(console, "lead")
    _, address = PEOPLE["lead"]
    data = {"csrf": console.csrf(admin), "address": address, "action": "disable"}
    assert admin.post("/users/change", data=data).status_code == 303
    assert lead.get("/users").status_code == 303
    assert _login(TestClient(console.app, follow_redirects=False), address, PASSWORD) == 400


def test_an_account_is_only_for_staff(console: Console) -> None:
    admin = signed_in(console, "admin")
    data = {"csrf": console.csrf(admin), "address": "stranger@elsewhere.example", "name": "S"}
    answer = admin.post("/users", data=data)
    assert answer.status_code == 400 and "is not staff" in answer.text


def test_the_proxy_header_is_believed_only_from_the_proxy(tmp_path: Path, db_url: str) -> None:
    extra = '[web]\ntrusted_proxy_header = "X-Remote-User"\ntrusted_proxies = ["testclient"]\n'
    console = console_app(tmp_path, db_url, extra)
    _, address = PEOPLE["lead"]
    client = TestClient(console.app, follow_redirects=False)
    answer = client.get("/reports-nowhere", headers={"X-Remote-User": address})
    assert answer.status_code == 404  # signed in: the page simply does not exist
    stranger = TestClient(console.app, follow_redirects=False, client=("10.0.0.9", 5000))
    answer = stranger.get("/users", headers={"X-Remote-User": PEOPLE["admin"][1]})
    assert answer.status_code == 303
    console.engine.dispose()


def test_a_body_past_the_cap_is_refused_even_without_a_declared_length(
    console: Console,
) -> None:
    client = signed_in(console, "admin")
    csrf = console.csrf(client)

    def chunks() -> Iterator[bytes]:  # chunked: no Content-Length to refuse it by
        yield b"text="
        for _ in range(3 * 1024):
            yield b"x" * 1024

    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded"}
    answer = client.post("/logout", content=chunks(), headers=headers)
    assert answer.status_code == 413
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303  # small: served
