"""Stopping the SMTP intake without losing or half-taking a message.

On SIGTERM the daemon ``drain``s: the listener stays open but every new
session is greeted ``421`` and closed (RFC 5321 §3.8: the client keeps the
message and retries later, or tries another MX/instance); sessions idle
between messages are told ``421`` and closed; sessions in the middle of a
mail transaction (MAIL given, or DATA being recorded) may finish, up to a
grace period, but a client that reuses its session for another message is
told ``421`` at that MAIL: an MTA with a queue of mail for us would otherwise
keep one session busy until the deadline.  A session still busy at the
deadline is closed too: its message was never acknowledged, so the client
sends it again, and intake's dedup key makes that resend a no-op if the commit
did happen.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable

from aiosmtpd.smtp import SMTP

from mailer.smtp_sessions import GOODBYE, LimitedSMTP

__all__ = ["GOODBYE", "SessionGate"]

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.05


class _ShuttingDown(asyncio.Protocol):
    """What a connection gets once draining has begun: the 421 greeting, then close."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(GOODBYE)
        transport.close()


def _in_transaction(session: SMTP) -> bool:
    envelope = session.envelope
    return envelope is not None and envelope.mail_from is not None


def _goodbye(session: SMTP) -> None:
    transport = session.transport
    if transport is None or transport.is_closing():
        return
    if isinstance(transport, asyncio.WriteTransport):
        transport.write(GOODBYE)
    transport.close()


class SessionGate:
    """Hands out protocols for the server's connections and knows which are still open."""

    def __init__(self) -> None:
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.closing = False

    def protocol(self, make: Callable[[], SMTP]) -> asyncio.BaseProtocol:
        """A new SMTP session, or the 421 refusal once ``drain`` has begun."""
        if self.closing:
            return _ShuttingDown()
        session = make()
        self._sessions.add(session)
        return session

    def _close_the_gate(self) -> None:
        """New connections are refused from now on, and a new MAIL on an open session."""
        self.closing = True
        for session in self._sessions:
            if isinstance(session, LimitedSMTP):
                session.draining = True

    def open_sessions(self) -> list[SMTP]:
        return [s for s in self._sessions if s.transport and not s.transport.is_closing()]

    async def drain(self, grace: float, linger: float = 1.0) -> int:
        """Refuse new sessions and end the open ones; the number cut off at the deadline.

        A session that finishes its message gets ``linger`` seconds to say QUIT
        before it is told 421, so the client reads its 250 undisturbed.
        """
        self._close_the_gate()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        idle_since: dict[int, float] = {}
        for session in self.open_sessions():
            if not _in_transaction(session):
                _goodbye(session)
        while (sessions := self.open_sessions()) and loop.time() < deadline:
            now = loop.time()
            for session in sessions:
                if _in_transaction(session):
                    idle_since.pop(id(session), None)
                elif now - idle_since.setdefault(id(session), now) >= linger:
                    _goodbye(session)
            await asyncio.sleep(_POLL_SECONDS)
        remaining = self.open_sessions()
        for session in remaining:
            _goodbye(session)
        if remaining:
            log.warning("SMTP drain: %d session(s) cut off after %.0fs", len(remaining), grace)
        await self._closed(linger)
        return len(remaining)

    async def _closed(self, linger: float) -> None:
        """Wait up to ``linger`` for the sessions told 421 to close, then abort the rest.

        ``close`` ends a connection on a later turn of the loop, once what was written
        has gone out: a client that reads nothing would keep its socket open past the
        loop's end, where it is never closed (and Python warns of it when collected).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + linger
        while (left := self.unclosed_sessions()) and loop.time() < deadline:
            await asyncio.sleep(_POLL_SECONDS)
        for session in left:
            if isinstance(session.transport, asyncio.WriteTransport):
                session.transport.abort()
        await asyncio.sleep(0)  # an abort, and a 421 to a late client, close on the next turn

    def unclosed_sessions(self) -> list[SMTP]:
        """Sessions whose connection is not closed yet (told 421 or not)."""
        return [s for s in self._sessions if s.transport is not None]
