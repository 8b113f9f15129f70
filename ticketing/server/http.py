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
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from mailer.storage import StorageReserve
from ticketing.errors import HttpEndpointError, TicketdError
from ticketing.store.db import transaction

__all__ = ["HttpEndpointError", "OpsHttpServer", "ServingState"]

log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass
class ServingState:
    """What the daemon tells ``/readyz`` beyond the database; set from the event loop."""

    smtp_listening: bool = False
    reserve: StorageReserve = field(default_factory=lambda: StorageReserve((), 0))


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _IPv6Server(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """No access log: probes every few seconds would drown the daemon's own lines."""

    def log_message(self, format: str, *args: Any) -> None:
        return


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
