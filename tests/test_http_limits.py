"""The operators' HTTP endpoint under abuse: a request that trickles in is dropped at
``http_timeout_seconds`` while others are served; past ``http_max_connections`` a connection
gets 503 until one finishes.  A real ``OpsHttpServer`` on loopback, real sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from ticketing.config import DatabaseConfig
from ticketing.server.http import OpsHttpServer, ServingState
from ticketing.store.db import create_db_engine

from .daemon import wait_until
from .test_observability import get


@contextmanager
def ops_http(folder: Path, *, timeout: float, max_connections: int) -> Iterator[int]:
    """The endpoint on a free loopback port (``/healthz`` never touches the database)."""
    engine = create_db_engine(DatabaseConfig(url=f"sqlite:///{folder / 'unused.db'}"))
    server = OpsHttpServer(
        "127.0.0.1",
        0,
        engine,
        ServingState(),
        CollectorRegistry(),
        timeout=timeout,
        max_connections=max_connections,
    )
    try:
        yield server.port
    finally:
        server.close()
        engine.dispose()


def _dropped_at(sock: socket.socket, dribble: bytes) -> float:
    """When (``time.monotonic``) the server closes ``sock`` while a byte of ``dribble``
    arrives every 0.1 s (a slowloris); fails if the server answers anything."""
    sock.settimeout(0.1)
    for byte in dribble:
        try:
            assert sock.recv(1024) == b"", "the server answered a request that never ended"
            break
        except TimeoutError:
            sock.sendall(bytes([byte]))
        except ConnectionError:
            break
    return time.monotonic()


def test_a_request_that_trickles_in_is_dropped_at_the_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ops_http(tmp_path, timeout=1, max_connections=4) as port:
        with socket.create_connection(("127.0.0.1", port)) as slow:
            connected = time.monotonic()
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: ticketd\r\n")
            assert get(port, "/healthz")[0] == 200  # others are served meanwhile
            assert 0.9 < _dropped_at(slow, b"X-Slow: " + b"a" * 100) - connected < 2
        with socket.create_connection(("127.0.0.1", port)) as silent:  # sends nothing
            connected = time.monotonic()
            silent.settimeout(5)
            assert silent.recv(1) == b""
            assert 0.9 < time.monotonic() - connected < 2
        assert get(port, "/healthz")[0] == 200
    assert "Traceback" not in capsys.readouterr().err


def test_connections_past_the_cap_get_503_until_one_ends(tmp_path: Path) -> None:
    with (
        ops_http(tmp_path, timeout=5, max_connections=2) as port,
        socket.create_connection(("127.0.0.1", port)) as first,
        socket.create_connection(("127.0.0.1", port)) as second,
    ):
        with socket.create_connection(("127.0.0.1", port)) as third:
            third.settimeout(5)
            reply = third.recv(1024)
        assert reply.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert reply.endswith(b'{"error": "too many connections"}\n')
        assert get(port, "/healthz")[0] == 503
        first.close()  # its thread ends, and gives its slot back
        assert wait_until(lambda: get(port, "/healthz")[0] == 200, timeout=5)
        second.close()
        # finished requests hold no slot (a thread gives it back just after its reply)
        assert wait_until(lambda: all(get(port, "/healthz")[0] == 200 for _ in range(5)), 5)
