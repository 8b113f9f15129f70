"""Signing in and out: ``/login`` and ``/logout``.

The sign-in form has no session yet, so its CSRF token is a double submit: a
random value in a short-lived cookie and in the form, which must match.  Failed
attempts count against the address and the client (``desk.sign_in``); past the
limit the form answers 429 without checking the password at all.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ticketing.console.access import desk_of, form_of, signed_in
from ticketing.console.render import page
from ticketing.console.session_cookie import (
    SESSION_COOKIE,
    clear_session_cookie,
    client_of,
    set_session_cookie,
)
from ticketing.desk.accounts import check_password
from ticketing.desk.sign_in import (
    end_session,
    note_failed_sign_in,
    sign_in_blocked,
    start_session,
)
from ticketing.store.db import transaction
from ticketing.store.models import utcnow

__all__ = ["routes"]

_LOGIN_COOKIE = "ticketd_login"
_WRONG = "The address or the password is wrong."


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of ours only (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/queue"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/queue"


def _form(request: Request, status: int = 200, **values: object) -> Response:
    # The token the browser already holds: another tab, or a request the page itself makes,
    # must not make the form on screen stale.
    token = request.cookies.get(_LOGIN_COOKIE) or secrets.token_urlsafe(24)
    values.setdefault("address", "")
    values.setdefault("next", request.query_params.get("next", ""))
    response = page(request, "login.html", status, login_token=token, **values)
    response.set_cookie(_LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict")
    return response


def login_form(request: Request) -> Response:
    if signed_in(request) is not None:
        return RedirectResponse("/queue", status_code=303)
    return _form(request)


def _login_token_ok(request: Request, given: object) -> bool:
    expected = request.cookies.get(_LOGIN_COOKIE, "")
    return bool(expected) and isinstance(given, str) and secrets.compare_digest(given, expected)


def login(request: Request) -> Response:
    form = form_of(request)
    address = str(form.get("address", "")).strip()[:254]
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    if not _login_token_ok(request, form.get("csrf")):
        return _form(request, 403, address=address, failure="The form was stale: try again.")
    desk, client, now = desk_of(request), client_of(request), utcnow()
    with transaction(desk.engine) as session:
        if sign_in_blocked(session, address, client, now, desk.config.web):
            minutes = desk.config.web.login_window_minutes
            failure = f"Too many failed sign-ins: try again in {minutes} minutes."
            return _form(request, 429, address=address, failure=failure)
        account = check_password(session, address, password) if address and password else None
        if account is None:
            note_failed_sign_in(session, address or "-", client, now)
        else:
            token = start_session(session, account, now, desk.config.web)
    if account is None:
        return _form(request, 400, address=address, failure=_WRONG)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, token)
    response.delete_cookie(_LOGIN_COOKIE)
    return response


def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with transaction(desk_of(request).engine) as session:
            end_session(session, token)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


def home(request: Request) -> Response:
    return RedirectResponse("/queue", status_code=303)


routes = [
    Route("/", home, methods=["GET"], name="home"),
    Route("/login", login_form, methods=["GET"], name="login_form"),
    Route("/login", login, methods=["POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
]
