"""The session cookie, and the signed-in person of a request (cookie or SSO proxy).

The cookie is ``HttpOnly``, ``SameSite=Strict`` and ``Secure`` over https (or
always, with ``[web] secure_cookies = true``).  In proxy mode a request from one
of ``[web] trusted_proxies`` that names a user in ``trusted_proxy_header`` signs
that user in (a session is opened, for its CSRF token); the header from any other
client is ignored, so nobody can name themselves in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from ticketing.config.web_schema import WebConfig
from ticketing.console.context import ConsoleDesk
from ticketing.desk.accounts import account_by_address
from ticketing.desk.sign_in import SignedIn, needs_writing, session_of, start_session
from ticketing.store.db import transaction
from ticketing.store.models import utcnow

__all__ = [
    "SESSION_COOKIE",
    "Opened",
    "clear_session_cookie",
    "client_of",
    "open_session",
    "set_session_cookie",
]

SESSION_COOKIE = "ticketd_session"


@dataclass(frozen=True)
class Opened:
    """A request's session; ``new_token`` when one was opened for it (proxy mode)."""

    signed_in: SignedIn
    new_token: str | None = None


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


def _proxy_user(desk: ConsoleDesk, request: Request) -> str | None:
    """The address the trusted proxy names, or ``None`` (not a proxy, or no header)."""
    web = desk.config.web
    if not web.proxy_mode or client_of(request) not in web.trusted_proxies:
        return None
    return request.headers.get(web.trusted_proxy_header) or None


def open_session(desk: ConsoleDesk, request: Request) -> Opened | None:
    """The live session of the request's cookie; in proxy mode, the proxy's user's."""
    now, web = utcnow(), desk.config.web
    proxied = _proxy_user(desk, request)
    token = request.cookies.get(SESSION_COOKIE)
    with transaction(desk.engine, readonly=True) as session:  # most requests only read
        if not (token and needs_writing(session, token, now, web)):
            found = session_of(session, token, now, web) if token else None
            if proxied is None or (found and found.account.address == proxied.lower()):
                return Opened(found) if found else None
    with transaction(desk.engine) as session:
        found = session_of(session, token, now, web) if token else None
        if proxied is None or (found and found.account.address == proxied.lower()):
            return Opened(found) if found else None
        return _proxy_session(session, proxied, now, web)


def _proxy_session(session: Session, address: str, now: datetime, web: WebConfig) -> Opened | None:
    """A new session for the user the trusted proxy names (enabled accounts only)."""
    account = account_by_address(session, address)
    if account is None or account.disabled:
        return None
    token = start_session(session, account, now, web)
    found = session_of(session, token, now, web)
    return Opened(found, token) if found else None


def _secure(desk: ConsoleDesk, request: Request) -> bool:
    setting = desk.config.web.secure_cookies
    return request.url.scheme == "https" if setting == "auto" else setting


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    desk: ConsoleDesk = request.app.state.desk
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=desk.config.web.session_max_hours * 3600,
        path="/",
        secure=_secure(desk, request),
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
