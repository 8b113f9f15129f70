"""The console's listener: its socket bound at build, Hypercorn serving it inside ``run``.

The socket is bound before anything listens (``bind_console``), so a taken port
stops the start with the key named, as the SMTP port does; Hypercorn then serves
the bound socket (``fd://``) on the daemon's event loop until the daemon's stop
event, and lets requests in flight finish for ``_GRACE_SECONDS``.  Endpoints are
plain functions that Starlette runs in threads, so a slow database never blocks
the SMTP sessions on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from starlette.applications import Starlette

from ticketing.config import Config
from ticketing.errors import HttpEndpointError

__all__ = ["ConsoleListener", "bind_console", "serve_console"]

log = logging.getLogger(__name__)

_GRACE_SECONDS = 5.0  # a page being rendered when the daemon stops may finish
_READ_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class ConsoleListener:
    """The console's bound socket and the URL people open."""

    sock: socket.socket
    url: str


def bind_console(config: Config) -> ConsoleListener | None:
    """Bind ``[web] host:port`` (``None`` when the port is 0); ``HttpEndpointError`` names
    the key when it cannot."""
    web = config.web
    if not web.enabled:
        log.info("console off ([web] port = 0)")
        return None
    family = socket.AF_INET6 if ":" in web.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((web.host, web.port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        where = f"{web.host}:{web.port}"
        raise HttpEndpointError(
            f"cannot serve the console on {where} ([web] host, port): {exc.strerror or exc}"
        ) from None
    sock.setblocking(False)
    host = f"[{web.host}]" if ":" in web.host else web.host
    return ConsoleListener(sock, f"http://{host}:{sock.getsockname()[1]}/")


def _hypercorn_config(listener: ConsoleListener) -> HypercornConfig:
    settings = HypercornConfig()
    # Hypercorn owns (and closes) the socket it is given: a duplicate, so ours stays ours.
    settings.bind = [f"fd://{os.dup(listener.sock.fileno())}"]
    settings.accesslog = None  # URLs carry search terms; the audit trail says who did what
    settings.errorlog = logging.getLogger("ticketing.console")
    settings.graceful_timeout = _GRACE_SECONDS
    settings.read_timeout = _READ_TIMEOUT_SECONDS  # a client that stops sending is let go
    settings.include_server_header = False
    return settings


async def serve_console(app: Starlette, listener: ConsoleListener, stop: asyncio.Event) -> None:
    """Serve the console on ``listener`` until ``stop`` is set; the socket closes after."""
    log.info("console on %s", listener.url)
    try:
        await serve(app, _hypercorn_config(listener), shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    finally:
        listener.sock.close()
