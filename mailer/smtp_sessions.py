"""The abuse limits of the SMTP front: how many sessions at once, and for how long.

    SessionLimits   the numbers (``[smtp] max_sessions`` …) and who is told when one bites
    SessionCount    the sessions open now, overall and per client address (one per listener)
    LimitedSMTP     aiosmtpd's session that keeps to them

A connection over either cap is greeted ``421`` and closed before it becomes a
session, so it never holds a slot.  A session that sends nothing for
``idle_timeout_seconds`` (aiosmtpd's ``timeout``; during DATA any bytes count,
not only commands) is told ``421`` and closed.  No session lasts longer than
``session_max_seconds``, however many NOOPs or RSETs keep it busy — except that
a message being received or recorded at that moment finishes and gets its reply
first (for at most one more ``session_max_seconds``, so trickling DATA cannot
stretch it for ever): cutting it would make the client send it again.

A slot is given back in ``connection_lost``, which comes exactly once however
the connection ends: QUIT, a timeout, a reset, a failed STARTTLS (aiosmtpd calls
it itself then).  Everything here runs on the event loop's thread, so the
counts need no lock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP

__all__ = ["GOODBYE", "LimitedSMTP", "SessionCount", "SessionLimits"]

_REFUSALS = {
    "max_sessions": b"421 4.7.0 Too many connections, try again later\r\n",
    "max_sessions_per_client": b"421 4.7.0 Too many connections from your address, "
    b"try again later\r\n",
}
_IDLE = b"421 4.4.2 Idle too long, closing connection\r\n"
GOODBYE = b"421 4.3.2 Service shutting down, try again later\r\n"
_TOO_LONG = b"421 4.7.0 Session lasted too long, try again later\r\n"


def _nobody(limit: str) -> None:
    return


@dataclass(frozen=True)
class SessionLimits:
    """The limits, named as in ``[smtp]``; ``on_refused`` hears the name of the cap that
    refused a connection (``max_sessions``, ``max_sessions_per_client``), ``on_timed_out``
    the limit that ended a session (``idle_timeout``, ``session_max``)."""

    max_sessions: int = 200
    max_sessions_per_client: int = 20
    idle_timeout_seconds: float = 60
    session_max_seconds: float = 900
    on_refused: Callable[[str], None] = _nobody
    on_timed_out: Callable[[str], None] = _nobody


class SessionCount:
    """The sessions a listener has open, overall and per client address."""

    def __init__(self, limits: SessionLimits) -> None:
        self.limits = limits
        self.total = 0
        self._clients: Counter[str] = Counter()

    def admit(self, client: str) -> str | None:
        """Take a slot for ``client``; else the cap it hit (and no slot is taken)."""
        if self.total >= self.limits.max_sessions:
            return "max_sessions"
        if self._clients[client] >= self.limits.max_sessions_per_client:
            return "max_sessions_per_client"
        self.total += 1
        self._clients[client] += 1
        return None

    def release(self, client: str) -> None:
        self.total -= 1
        self._clients[client] -= 1
        if self._clients[client] <= 0:  # keep only connected clients: the map stays small
            del self._clients[client]


class LimitedSMTP(SMTP):
    """An aiosmtpd session within ``count``'s limits (a fresh count with the defaults if
    none is given; only the server shares one between sessions)."""

    def __init__(self, handler: Any, *, count: SessionCount | None = None, **options: Any) -> None:
        self._count = count or SessionCount(SessionLimits())
        limits = self._count.limits
        super().__init__(handler, timeout=limits.idle_timeout_seconds, **options)
        self._limits = limits
        self._client: str | None = None  # holds a slot from connection_made to _lost
        self._lifetime: asyncio.TimerHandle | None = None
        self._in_data = False  # from the DATA command to its reply
        self._recording = False  # the handler has the message: the client waits for us
        self._expired = False  # session_max passed while in DATA: close after the reply
        # the daemon is stopping (``smtp_drain``): the message in hand may finish, but a
        # client that reuses the session for another one is told 421 at its MAIL
        self.draining = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # aiosmtpd calls this again for the TLS layer after STARTTLS: admit once
        if self._original_transport is None and not self._admitted(transport):
            return
        super().connection_made(transport)

    def _admitted(self, transport: asyncio.BaseTransport) -> bool:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if peer else ""
        refused = self._count.admit(client)
        if refused is not None:
            self._limits.on_refused(refused)
            _say_and_close(transport, _REFUSALS[refused])
            return False
        self._client = client
        self._lifetime = self.loop.call_later(self._limits.session_max_seconds, self._lifetime_over)
        return True

    def connection_lost(self, error: Exception | None) -> None:
        if self._client is None:  # refused at connect: aiosmtpd never started
            return
        self._count.release(self._client)
        self._client = None
        if self._lifetime is not None:
            self._lifetime.cancel()
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if self._in_data:  # a long message arriving steadily is not idle
            self._reset_timeout()
        super().data_received(data)

    def _timeout_cb(self) -> None:
        if self._recording:  # the client waits for our reply: not idle
            self._reset_timeout()
            return
        self._end("idle_timeout", _IDLE)

    def _lifetime_over(self) -> None:
        if self._in_data and not self._expired:
            self._expired = True  # smtp_DATA ends the session after its reply
            self._lifetime = self.loop.call_later(
                self._limits.session_max_seconds, self._lifetime_over
            )
            return
        self._end("session_max", _TOO_LONG)

    async def smtp_MAIL(self, arg: str) -> None:
        if self.draining:
            self._end(None, GOODBYE)
            return
        await super().smtp_MAIL(arg)

    async def smtp_DATA(self, arg: str) -> None:
        self._in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self._in_data = False
        if self._expired:
            self._end("session_max", _TOO_LONG)

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        if command != "DATA":
            return await super()._call_handler_hook(command, *args)
        self._recording = True
        try:
            return await super()._call_handler_hook(command, *args)
        finally:
            self._recording = False

    def _end(self, limit: str | None, line: bytes) -> None:
        """Say ``line`` and close; ``limit`` names the limit that ended it (``None``: the
        daemon is stopping, no limit bit)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if limit is not None:
            self._limits.on_timed_out(limit)
        _say_and_close(transport, line)


def _say_and_close(transport: asyncio.BaseTransport, line: bytes) -> None:
    """The last reply, then close (asyncio sends what is buffered before it closes)."""
    if isinstance(transport, asyncio.WriteTransport):
        transport.write(line)
    transport.close()
