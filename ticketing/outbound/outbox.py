"""The outbox dispatcher: claim due rows, deliver, back off, give up after the maximum age.

A round claims its rows in one transaction that moves them to ``sending``
and pushes ``next_attempt_at`` forward by a lease: on PostgreSQL the
candidates are picked ``FOR UPDATE SKIP LOCKED``, so dispatchers on several
instances share the work; on SQLite the transaction is ``BEGIN IMMEDIATE``.
Claims a round does not get to (the relay went away) are handed back.  The
outcome is written with a guard on the attempt number, so a dispatcher whose
lease ran out cannot overwrite a newer attempt.  If a dispatcher dies
between delivery and recording, the lease runs out and the mail is sent
again: at-least-once, the only honest promise over SMTP, and the relay sees
the same Message-ID.

Each mail's envelope sender is its own return path (VERP): the sender tagged
with the outbox row under the signing secret (``mailer/address_tags.py``), so a
bounce proves which mail and which recipient it is about
(``ticketing/pipeline/own_bounces.py``).

Times come from the caller (``now``), so tests drive the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailer.address_tags import return_path
from mailer.delivery import MaildirTransport, RelaySettings, SmtpRelayTransport, Transport
from mailer.errors import (
    AddressTagError,
    DeliveryError,
    PermanentDeliveryError,
    RelayUnavailableError,
)
from ticketing import metrics
from ticketing.backoff import Backoff
from ticketing.config import OutboundConfig
from ticketing.errors import NotFoundError, OutboxStateError, TicketdError
from ticketing.store.audit import audit
from ticketing.store.db import transaction
from ticketing.store.models import OutboxMessage, UndeliverableAddress, table_of, utcnow

__all__ = [
    "OutboxDispatcher",
    "OutboxStateError",
    "dispatch_due",
    "list_outbox",
    "retry_message",
    "transport_from_config",
]

log = logging.getLogger(__name__)

# a round that keeps failing (the database is down) is retried at least this often
_MAX_ROUND_PAUSE = 60.0
_TABLE = table_of(OutboxMessage)
_DUE = ("pending", "sending")
_OUTCOMES_AT_ONCE = 20  # delivery outcomes recorded with one commit ...
_OUTCOMES_WAIT = 0.2  # ... or after this many seconds, whichever comes first


@dataclass(frozen=True)
class Claim:
    """A row this dispatcher holds; ``due_status``/``due_at`` are what it had before,
    restored if the round ends before the row is tried."""

    id: int
    attempts: int
    kind: str
    incident_id: int | None
    to_address: str
    mail_from: str
    mime: bytes
    expires_at: datetime
    due_status: str
    due_at: datetime


@dataclass(frozen=True)
class _Audit:
    """The audit event an attempt's outcome adds when it stands."""

    kind: str
    at: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class _Round:
    claims: list[Claim]
    bounced: set[str]  # lower-cased recipients known to be undeliverable


_CLAIMED = (
    "id",
    "attempts",
    "kind",
    "incident_id",
    "to_address",
    "mail_from",
    "mime",
    "expires_at",
)


def transport_from_config(config: OutboundConfig) -> Transport:
    """The transport ``[outbound]`` names; the relay password comes from ``password_env``."""
    if config.transport == "maildir":
        return MaildirTransport(config.maildir)
    password = os.environ.get(config.password_env) if config.password_env else None
    return SmtpRelayTransport(
        RelaySettings(
            host=config.host,
            port=config.port,
            starttls=config.starttls,
            username=config.username,
            password=password,
            timeout=float(config.timeout_seconds),
        )
    )


def _lease(config: OutboundConfig) -> timedelta:
    """Long enough for one whole SMTP session (several timeouts), so no twin attempt starts."""
    return timedelta(seconds=config.timeout_seconds * 6 + 30)


def _backoff(config: OutboundConfig, attempts: int) -> timedelta:
    seconds = config.retry_initial_seconds * 2 ** min(max(attempts - 1, 0), 30)
    return timedelta(seconds=min(seconds, config.retry_max_seconds))


def claim_next(engine: Engine, now: datetime, config: OutboundConfig) -> Claim | None:
    """Claim the most overdue row, or ``None`` when nothing is due."""
    with transaction(engine) as session:
        claims = _claim(session, now, config, 1)
    return claims[0] if claims else None


def _claim(session: Session, now: datetime, config: OutboundConfig, limit: int) -> list[Claim]:
    """Claim up to ``limit`` due rows, most overdue first.

    The candidates are locked (PostgreSQL) or the database is (SQLite) until
    the caller commits, so no other dispatcher claims the same row.
    """
    due = session.execute(
        select(col(OutboxMessage.id), col(OutboxMessage.status), col(OutboxMessage.next_attempt_at))
        .where(col(OutboxMessage.status).in_(_DUE), col(OutboxMessage.next_attempt_at) <= now)
        .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not due:
        return []
    stmt = (
        update(_TABLE)
        .where(_TABLE.c.id.in_([row.id for row in due]), _TABLE.c.status.in_(_DUE))
        .values(
            status="sending", attempts=_TABLE.c.attempts + 1, next_attempt_at=now + _lease(config)
        )
        .returning(*(_TABLE.c[name] for name in _CLAIMED))
    )
    claimed = {row["id"]: row for row in session.execute(stmt).mappings()}
    return [
        Claim(**claimed[row.id], due_status=row.status, due_at=row.next_attempt_at)
        for row in due
        if row.id in claimed
    ]


def _claim_round(engine: Engine, now: datetime, config: OutboundConfig, limit: int) -> _Round:
    """A round's claims and which of their recipients bounced before, in one transaction."""
    with transaction(engine) as session:
        claims = _claim(session, now, config, limit)
        return _Round(claims, _undeliverable(session, {c.to_address.lower() for c in claims}))


def _undeliverable(session: Session, addresses: set[str]) -> set[str]:
    """Those of ``addresses`` (lower-cased) that are on the undeliverable list."""
    if not addresses:
        return set()
    lowered = func.lower(UndeliverableAddress.address)
    return set(session.exec(select(lowered).where(lowered.in_(addresses))))


def _release(engine: Engine, claims: Sequence[Claim]) -> None:
    """Hand untried claims back: each row as it was (status, due time, attempts).

    Guarded like ``_finish``, so a row another dispatcher took over is left alone.
    """
    stmt = (
        update(_TABLE)
        .where(
            _TABLE.c.id == bindparam("claim_id"),
            _TABLE.c.attempts == bindparam("claimed_attempts"),
            _TABLE.c.status == "sending",
        )
        .values(
            status=bindparam("due_status"),
            attempts=_TABLE.c.attempts - 1,
            next_attempt_at=bindparam("due_at"),
        )
    )
    params = [
        {
            "claim_id": c.id,
            "claimed_attempts": c.attempts,
            "due_status": c.due_status,
            "due_at": c.due_at,
        }
        for c in claims
    ]
    with transaction(engine) as session:
        session.execute(stmt, params)


_Outcome = tuple[Claim, dict[str, Any], _Audit | None]  # what to record of one attempt


def _finish(engine: Engine, outcomes: Sequence[_Outcome]) -> None:
    """Record outcomes in one transaction, each unless a newer attempt took its row over."""
    with transaction(engine) as session:
        recorded = [_record_outcome(session, *outcome) for outcome in outcomes]
    for (claim, values, _), stands in zip(outcomes, recorded, strict=True):
        if not stands:
            log.warning("outbox %d: lease lost before the outcome was recorded", claim.id)
        else:
            metrics.count_delivery(values)  # after the commit: only outcomes that stand


def _record_outcome(
    session: Session, claim: Claim, values: dict[str, Any], event: _Audit | None
) -> bool:
    result = session.execute(
        update(_TABLE)
        .where(
            _TABLE.c.id == claim.id,
            _TABLE.c.attempts == claim.attempts,
            _TABLE.c.status == "sending",
        )
        .values(**values)
    )
    recorded = bool(getattr(result, "rowcount", 0))
    if recorded and event is not None:
        audit(
            session,
            event.kind,
            incident_id=claim.incident_id,
            created_at=event.at,
            detail=event.detail,
        )
    return recorded


def _failed(claim: Claim, now: datetime, reason: str, error: str) -> tuple[dict[str, Any], _Audit]:
    values = {"status": "failed", "reason": reason, "last_error": error, "next_attempt_at": now}
    detail = {"outbox_id": claim.id, "reply_kind": claim.kind, "reason": reason, "error": error}
    return values, _Audit("outbox_failed", now, detail)


def _outcome(
    claim: Claim, error: DeliveryError | None, now: datetime, config: OutboundConfig
) -> tuple[dict[str, Any], _Audit | None]:
    if error is None:
        return {"status": "sent", "sent_at": now, "last_error": None, "reason": None}, None
    if isinstance(error, PermanentDeliveryError):
        return _failed(claim, now, "rejected", str(error))
    retry_at = now + _backoff(config, claim.attempts)
    if retry_at > claim.expires_at:
        return _failed(claim, now, "expired", str(error))
    return {"status": "pending", "next_attempt_at": retry_at, "last_error": str(error)}, None


def _envelope_sender(claim: Claim, config: OutboundConfig, secret: bytes | None) -> str:
    """The return path of ``claim``'s mail: its sender tagged with the outbox row.  Without
    a secret, or when the tag would not fit in the local part, the plain sender: bounces
    of that mail are then believed only when they quote its signed Message-ID."""
    sender = claim.mail_from or config.from_address
    if not secret:
        return sender
    try:
        return return_path(sender, claim.id, secret)
    except AddressTagError as exc:
        log.warning("outbox %d: plain return path, the tag does not fit: %s", claim.id, exc)
        return sender


async def _deliver(
    claim: Claim, transport: Transport, config: OutboundConfig, secret: bytes | None
) -> DeliveryError | None:
    sender = _envelope_sender(claim, config, secret)
    try:
        await transport.send(sender, [claim.to_address], claim.mime)
    except DeliveryError as exc:
        log.info("outbox %d: attempt %d failed: %s", claim.id, claim.attempts, exc)
        return exc
    return None


async def dispatch_due(
    engine: Engine,
    transport: Transport,
    now: datetime,
    config: OutboundConfig,
    *,
    limit: int = 100,
    secret: bytes | None = None,
) -> int:
    """Deliver up to ``limit`` due rows, claimed together; the number sent.  ``secret``
    signs each mail's return path (the daemon's signing secret).

    Stops early when the relay cannot be reached at all: the claims not yet
    tried are handed back, so those rows stay due for the next round instead
    of each waiting for the same refusal.  So are they when the round fails,
    and when half the lease is gone (a slow relay): a claim is never sent so
    late that its lease could run out and another instance send it too.
    """
    batch = await asyncio.to_thread(_claim_round, engine, now, config, limit)
    fresh_until = time.monotonic() + _lease(config).total_seconds() / 2
    outcomes = _Outcomes(engine)
    sent = tried = 0
    try:
        for claim in batch.claims:
            if time.monotonic() > fresh_until:
                break
            tried += 1
            if claim.to_address.lower() in batch.bounced:
                bounced = _failed(claim, now, "undeliverable", "address bounced before")
                await outcomes.add(claim, *bounced)
                continue
            await outcomes.record_if_stale()  # a slow send must not hold them any longer
            error = await _deliver(claim, transport, config, secret)
            await outcomes.add(claim, *_outcome(claim, error, now, config))
            sent += error is None
            if isinstance(error, RelayUnavailableError):
                break
    finally:
        await outcomes.record()
        if tried < len(batch.claims):
            await asyncio.to_thread(_release, engine, batch.claims[tried:])
    return sent


class _Outcomes:
    """Delivery outcomes not yet recorded: written together, at most ``_OUTCOMES_AT_ONCE``
    or ``_OUTCOMES_WAIT`` seconds' worth at a time.  One commit per mail cost a writers'
    turn and a durable commit each; a crash before the write resends those few mails
    (with the same Message-ID), as one after the relay's 250 always could."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._held: list[_Outcome] = []
        self._since = 0.0

    async def add(self, claim: Claim, values: dict[str, Any], event: _Audit | None) -> None:
        if not self._held:
            self._since = time.monotonic()
        self._held.append((claim, values, event))
        if len(self._held) >= _OUTCOMES_AT_ONCE:
            await self.record()
        else:
            await self.record_if_stale()

    async def record_if_stale(self) -> None:
        if self._held and time.monotonic() - self._since > _OUTCOMES_WAIT:
            await self.record()

    async def record(self) -> None:
        held, self._held = self._held, []
        if held:
            await asyncio.to_thread(_finish, self._engine, held)


class OutboxDispatcher:
    """The daemon's delivery loop: a round every ``poll_interval_seconds`` or on ``wake()``."""

    def __init__(
        self,
        engine: Engine,
        transport: Transport,
        config: OutboundConfig,
        clock: Callable[[], datetime] = utcnow,
        *,
        secret: bytes | None = None,
    ) -> None:
        self._engine = engine
        self._transport = transport
        self._config = config
        self._clock = clock
        self._secret = secret
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Start a round now (callable from any thread, e.g. after the intake commit)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; a failed round is logged and retried after a
        growing pause (``Backoff``; a wake does not cut it short), never fatal."""
        self._loop = asyncio.get_running_loop()
        backoff = Backoff(first=self._config.poll_interval_seconds, cap=_MAX_ROUND_PAUSE)
        while not stop.is_set():
            self._wake.clear()
            try:
                await dispatch_due(
                    self._engine,
                    self._transport,
                    self._clock(),
                    self._config,
                    secret=self._secret,
                )
            except Exception as exc:
                pause = backoff.failed()
                if isinstance(exc, TicketdError):
                    log.warning("outbox round failed: %s; next in %.0f s", exc, pause)
                else:
                    log.exception("outbox round failed unexpectedly; next in %.0f s", pause)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)
                continue
            backoff.succeeded()
            await _first(stop, self._wake, self._config.poll_interval_seconds)


async def _first(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiters:
            task.cancel()


def list_outbox(
    session: Session, *, status: str | None = None, limit: int = 50
) -> list[OutboxMessage]:
    """The most recent outbox rows, newest first."""
    query = select(OutboxMessage).order_by(col(OutboxMessage.id).desc())
    if status:
        query = query.where(OutboxMessage.status == status)
    return list(session.exec(query.limit(limit)))


def retry_message(
    session: Session, outbox_id: int, now: datetime, config: OutboundConfig
) -> OutboxMessage:
    """Make a failed (or waiting) row due now with a fresh maximum age; audited.

    A ``withheld`` mail cannot be retried: it carried personal data, so its content
    was never kept."""
    row = session.get(OutboxMessage, outbox_id)
    if row is None:
        raise NotFoundError(f"no outbox message {outbox_id}")
    if row.status not in ("failed", "pending"):
        raise OutboxStateError(f"outbox message {outbox_id} is {row.status}, not failed or pending")
    row.status, row.reason = "pending", None
    row.next_attempt_at = now
    row.expires_at = now + timedelta(hours=config.max_age_hours)
    session.add(row)
    audit(
        session,
        "outbox_retried",
        incident_id=row.incident_id,
        actor="admin",
        created_at=now,
        detail={"outbox_id": outbox_id, "reply_kind": row.kind},
    )
    return row
