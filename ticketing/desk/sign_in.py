"""Signing in to the console: sessions that expire, and the limit on failed attempts.

The browser's cookie holds a random token; the table keeps its SHA-256, the CSRF
token of the session and when it ends: after ``[web] session_idle_minutes``
without a request, and in any case ``session_max_hours`` after signing in.  Rows
live in the database, so every instance knows every session and signing out or
disabling an account ends it everywhere at once.

Failed attempts are audit events (``console_sign_in_failed``, the address tried
and the client, never the password); more than ``login_attempts`` of them in
``login_window_minutes`` for one address or from one client, and signing in is
refused until the window has passed, with no further events written.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, select

from ticketing.config.web_schema import WebConfig
from ticketing.desk.accounts import Account, account_by_id
from ticketing.store.audit import audit
from ticketing.store.models import AuditEvent, ConsoleSession

__all__ = [
    "SignedIn",
    "end_session",
    "end_sessions",
    "needs_writing",
    "note_failed_sign_in",
    "session_of",
    "sign_in_blocked",
    "start_session",
]

_FAILED = "console_sign_in_failed"
_TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most once a minute


@dataclass(frozen=True)
class SignedIn:
    """Who a request's session belongs to, and the CSRF token its forms carry."""

    account: Account
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def start_session(session: Session, account: Account, now: datetime, web: WebConfig) -> str:
    """A new session for ``account``; returns the token for the cookie.  Expired sessions
    of anyone are cleared on the way (the index on expires_at makes it cheap)."""
    session.exec(delete(ConsoleSession).where(ConsoleSession.expires_at < now))  # type: ignore[arg-type]
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            token_hash=_digest(token),
            user_id=account.id,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=web.session_max_hours),
        )
    )
    audit(session, "console_signed_in", actor=account.actor)
    return token


def session_of(session: Session, token: str, now: datetime, web: WebConfig) -> SignedIn | None:
    """The live session of ``token``: ``None`` when unknown, idle too long, past its end,
    or its account disabled (an ended session's row goes).  ``session`` may be read-only
    when ``needs_writing`` said no."""
    row = session.get(ConsoleSession, _digest(token))
    if row is None:
        return None
    account = account_by_id(session, row.user_id)
    if _ended(row, now, web) or account is None or account.disabled:
        session.delete(row)
        return None
    if now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now
    return SignedIn(account, row.csrf)


def needs_writing(session: Session, token: str, now: datetime, web: WebConfig) -> bool:
    """Whether ``session_of`` would change the row (end it, or note the request): most
    requests only read, and on SQLite a read never waits for intake's writers."""
    row = session.get(ConsoleSession, _digest(token))
    if row is None:
        return False
    return _ended(row, now, web) or now - row.last_seen_at > _TOUCH_EVERY


def _ended(row: ConsoleSession, now: datetime, web: WebConfig) -> bool:
    idle = now - row.last_seen_at > timedelta(minutes=web.session_idle_minutes)
    return idle or now >= row.expires_at


def end_session(session: Session, token: str) -> None:
    row = session.get(ConsoleSession, _digest(token))
    if row is not None:
        session.delete(row)


def end_sessions(session: Session, user_id: int) -> None:
    """Sign an account out everywhere (a new password, a disabled account)."""
    session.exec(delete(ConsoleSession).where(ConsoleSession.user_id == user_id))  # type: ignore[arg-type]


def sign_in_blocked(
    session: Session, address: str, client: str, now: datetime, web: WebConfig
) -> bool:
    """Whether this address or this client failed ``login_attempts`` times in the window."""
    since = now - timedelta(minutes=web.login_window_minutes)
    rows = session.exec(
        select(AuditEvent.actor, AuditEvent.detail).where(
            AuditEvent.kind == _FAILED, AuditEvent.created_at >= since
        )
    ).all()
    by_address = sum(1 for actor, _ in rows if actor == address.lower())
    by_client = sum(1 for _, detail in rows if detail.get("client") == client)
    return max(by_address, by_client) >= web.login_attempts


def note_failed_sign_in(session: Session, address: str, client: str, now: datetime) -> None:
    audit(session, _FAILED, actor=address.lower()[:254], detail={"client": client}, created_at=now)
