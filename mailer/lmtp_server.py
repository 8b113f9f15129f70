"""The LMTP intake (RFC 2033): the SMTP intake's sessions, spoken as LMTP, for Postfix's
``lmtp:`` transport and ``ticketd ingest``.

Everything but the greeting and the replies to DATA is the SMTP intake's: the same
handler and delivery, the same session limits (counted per listener), the same drain
on SIGTERM (the ``SessionGate`` is shared), the same storage reserve and maximum size.
LMTP asks for one reply per accepted recipient after the message, in RCPT order; the
pipeline records one message for all our mailboxes it reached, under the strictest PII
policy among them, so every recipient hears the same answer, after the commit.

    start_lmtp_socket   a Unix socket (mode 0660): every client may send XFORWARD
    start_lmtp_tcp      a TCP port: XFORWARD from the trusted hosts only

There is no STARTTLS: LMTP is spoken on the host, or on a network you trust.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import stat
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Any, AnyStr

from aiosmtpd.lmtp import LMTP

from mailer.smtp_drain import SessionGate
from mailer.smtp_server import IntakeHandler, SmtpSettings, _IntakeSMTP, intake_protocols
from mailer.xforward import XForwardAccess

__all__ = ["SocketListener", "start_lmtp_socket", "start_lmtp_tcp"]

log = logging.getLogger(__name__)

_SOCKET_MODE = 0o660  # the group (Postfix's lmtp client, ``ticketd ingest``) may connect
_FOLDER_MODE = 0o750  # a folder made for it: the group may reach the socket, not list it
_PATH_MAX = 107  # bytes of a path in struct sockaddr_un (108 with the final NUL), on Linux
_PROBE_SECONDS = 1.0


class _IntakeLMTP(LMTP, _IntakeSMTP):
    """The intake's session as LMTP: LHLO instead of HELO and EHLO, and the reply to the
    end of DATA once per accepted recipient — whoever gave it, the handler or aiosmtpd's
    own checks (552 over the size, 500 for a line too long)."""

    def __init__(self, handler: Any, **options: Any) -> None:
        super().__init__(handler, **options)
        self._replies_due = 0  # set by the 354: copies owed of the next reply

    async def smtp_DATA(self, arg: str) -> None:
        try:
            await super().smtp_DATA(arg)
        finally:
            self._replies_due = 0

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and self._replies_due:
            copies, self._replies_due = self._replies_due, 0
            await super().push("\r\n".join([status] * copies))
            return
        if isinstance(status, str) and status.startswith("354") and self.envelope is not None:
            self._replies_due = len(self.envelope.rcpt_tos)
        await super().push(status)


class SocketListener:
    """An LMTP server on a Unix socket file; closing it removes the file, unless another
    process has put its own socket there since."""

    def __init__(self, server: asyncio.Server, path: Path) -> None:
        self._server = server
        self.path = path
        self._file = _identity(path)

    def close(self) -> None:
        self._server.close()
        with suppress(FileNotFoundError):
            if _identity(self.path) == self._file:
                self.path.unlink()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()


async def start_lmtp_socket(
    path: Path, settings: SmtpSettings, handler: IntakeHandler, gate: SessionGate
) -> SocketListener:
    """Listen for LMTP on the Unix socket ``path`` (its folder made if missing; a stale
    socket left by a killed daemon replaced).  ``OSError`` says why it cannot: the path
    is too long, another kind of file or a live socket is there, no permission.

    Every client there has the same (no) address, so only ``max_sessions`` counts."""
    sock = _bound_socket(path)
    limits = replace(settings.limits, max_sessions_per_client=settings.limits.max_sessions)
    factory = intake_protocols(
        replace(settings, limits=limits),
        handler,
        gate,
        kind=_IntakeLMTP,
        xforward=XForwardAccess(everyone=True),
    )
    try:
        server = await asyncio.get_running_loop().create_unix_server(factory, sock=sock)
    except OSError:
        sock.close()
        path.unlink(missing_ok=True)
        raise
    log.info("LMTP intake listening on %s", path)
    return SocketListener(server, path)


async def start_lmtp_tcp(
    host: str, port: int, settings: SmtpSettings, handler: IntakeHandler, gate: SessionGate
) -> asyncio.Server:
    """Listen for LMTP on ``host:port``; XFORWARD from ``settings.xforward_hosts`` only."""
    factory = intake_protocols(
        settings,
        handler,
        gate,
        kind=_IntakeLMTP,
        xforward=XForwardAccess(frozenset(settings.xforward_hosts)),
    )
    server = await asyncio.get_running_loop().create_server(factory, host=host, port=port)
    log.info("LMTP intake listening on %s:%d", host, port)
    return server


def _bound_socket(path: Path) -> socket.socket:
    """A Unix stream socket bound at ``path``, mode 0660."""
    size = len(os.fsencode(path))
    if size > _PATH_MAX:
        why = f"path is {size} bytes long, a Unix socket's at most {_PATH_MAX}"
        raise OSError(errno.ENAMETOOLONG, why)
    path.parent.mkdir(mode=_FOLDER_MODE, parents=True, exist_ok=True)
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        path.chmod(_SOCKET_MODE)
    except OSError:
        sock.close()
        raise
    return sock


def _remove_stale(path: Path) -> None:
    """Remove a socket file nobody listens on (a killed daemon's); refuse anything else."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, "a file that is not a socket is in the way")
    if _listened_on(path):
        raise OSError(errno.EADDRINUSE, "another process is listening on it")
    path.unlink()


def _listened_on(path: Path) -> bool:
    """Does a process accept connections there?  (No permission to try: ``OSError``.)"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(_PROBE_SECONDS)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except TimeoutError:  # its backlog is full: it is alive
            return True
    return True


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = path.lstat()
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino
