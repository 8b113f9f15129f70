"""The operator's HTTP endpoint: ``/metrics``, ``/healthz`` and ``/readyz``.

A small WSGI server in its own threads, not on the daemon's event loop: a
scrape or a readiness probe that waits for a slow database must never delay
SMTP sessions, and a busy event loop must not make the process look dead.

* ``/healthz`` — the process runs and answers: 200.  For restart decisions
  (container HEALTHCHECK, liveness probes); it checks nothing else, so a
  database outage does not get every instance restarted at once.
* ``/readyz`` — the database answers, the SMTP listener accepts sessions and
  the disk has room above the storage reserve (``mailer.storage``): 200, else
  503 with what is wrong.  For load balancers; during a SIGTERM drain, or
  while the reserve refuses mail, it is 503, so new mail goes elsewhere.
* ``/metrics`` — Prometheus text format (``ticketing.metrics``).

Abuse limits (``[observability]``): a request must arrive whole within
``http_timeout_seconds`` — each read gets only the time left, so a client that
trickles a byte at a time (slowloris) is dropped at the deadline too — and the
reply must be taken within as long.  At most ``http_max_connections`` are served
at once; one more is answered 503 and closed at once, without a thread.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from mailer.storage import StorageReserve
from ticketing.errors import HttpEndpointError, TicketdError
from ticketing.store.db import transaction

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["HttpEndpointError", "OpsHttpServer", "ServingState"]

log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass
class ServingState:
    """What the daemon tells ``/readyz`` beyond the database; set from the event loop."""

    smtp_listening: bool = False
    reserve: StorageReserve = field(default_factory=lambda: StorageReserve((), 0))


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """A thread per connection, up to ``slots`` at once; ``request_seconds`` per request."""

    daemon_threads = True
    allow_reuse_address = True
    request_seconds: float  # both set by OpsHttpServer before it serves
    slots: threading.BoundedSemaphore

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as exc:
            # out of descriptors the listener stays readable: without a pause
            # serve_forever would spin on accept() until one is free
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                time.sleep(_ACCEPT_PAUSE_SECONDS)
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            _refuse(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: it would have given the slot back
            self.slots.release()
            raise

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            super().finish_request(request, client_address)
        finally:
            self.slots.release()  # before the close: a client that saw it may come back at once


_ACCEPT_PAUSE_SECONDS = 0.5


class _IPv6Server(_ThreadingServer):
    address_family = socket.AF_INET6


_BUSY_BODY = b'{"error": "too many connections"}\n'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


def _refuse(request: socket.socket) -> None:
    """503 on a fresh connection: its send buffer is empty, so this never blocks."""
    try:
        request.sendall(_BUSY)
    except OSError:
        return  # the client is gone already


class _QuietHandler(WSGIRequestHandler):
    """No access log: probes every few seconds would drown the daemon's own lines.

    The request must arrive by a deadline (``_ReadBefore``); a client too slow is
    dropped without an answer.
    """

    def setup(self) -> None:
        super().setup()
        self._seconds = cast(_ThreadingServer, self.server).request_seconds
        self.rfile.close()
        deadline = time.monotonic() + self._seconds
        self.rfile = io.BufferedReader(_ReadBefore(self.connection, deadline))

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self.connection.settimeout(self._seconds)  # for sending the reply: as long again
        return parsed

    def handle(self) -> None:
        try:
            super().handle()
        except TimeoutError:
            return  # too slow: the server closes the connection

    def log_message(self, format: str, *args: Any) -> None:
        return


class _ReadBefore(io.RawIOBase):
    """A socket's reads, each given only the time left until ``deadline``: a request
    that trickles in fails at the deadline, however often a byte arrives."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


def _database_ok(engine: Engine) -> bool:
    try:
        with transaction(engine, readonly=True) as session:
            session.execute(text("SELECT 1"))
    except (TicketdError, SQLAlchemyError) as exc:
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        return False
    return True


class OpsHttpServer:
    """Serves the three endpoints until ``close``; ``port`` is the bound one."""

    def __init__(
        self,
        host: str,
        port: int,
        engine: Engine,
        state: ServingState,
        registry: CollectorRegistry = REGISTRY,
        *,
        timeout: float = 10.0,
        max_connections: int = 64,
    ) -> None:
        self._engine = engine
        self._state = state
        self._metrics = make_wsgi_app(registry)
        server_class = _IPv6Server if ":" in host else _ThreadingServer
        try:
            self._server = make_server(
                host, port, self._app, server_class=server_class, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise HttpEndpointError(
                f"cannot serve /metrics on {host}:{port}: {exc.strerror or exc}"
            ) from None
        self._server.request_seconds = timeout
        self._server.slots = threading.BoundedSemaphore(max_connections)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ticketd-http", daemon=True
        )
        self._thread.start()
        log.info("metrics and health endpoints on http://%s:%d/", host, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _reply(start_response, "405 Method Not Allowed", {"error": "GET only"})
        if path == "/metrics":
            return self._metrics(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            return _reply(start_response, "200 OK", {"status": "alive"})
        if path == "/readyz":
            return self._ready(start_response)
        return _reply(start_response, "404 Not Found", {"error": "not found"})

    def _ready(self, start_response: StartResponse) -> Iterable[bytes]:
        database = _database_ok(self._engine)
        smtp = self._state.smtp_listening
        storage = self._state.reserve.admits()
        ready = database and smtp and storage
        body = {
            "ready": ready,
            "database": "ok" if database else "unreachable",
            "smtp": "listening" if smtp else "not listening",
            "storage": "ok" if storage else "below the reserve",
        }
        status = "200 OK" if ready else "503 Service Unavailable"
        return _reply(start_response, status, body)


def _reply(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = (json.dumps(body) + "\n").encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
