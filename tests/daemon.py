"""Running a real ``ticketd serve`` for tests — in this process through its shutdown
trigger, or as a process where a test needs signals — the config it runs with (``DaemonSetup``,
written by the ``ticketd`` fixture of ``conftest.py``), and a TCP proxy to cut a database off."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import tomli_w

from ticketing.config import load_config
from ticketing.logs import quiet_libraries
from ticketing.server.daemon import Daemon, build
from ticketing.store.db import create_db_engine

SECRET_ENV = {"TICKETD_TOKEN_SECRET": "t" * 40}


# Load tests send hundreds of new escalations from a handful of senders in seconds:
# past [limits] new_incidents_per_sender_hour they would be held back as abuse.
UNLIMITED_INCIDENTS = "[limits]\nnew_incidents_per_sender_hour = 1000000\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ticketd_command(*args: str) -> list[str]:
    """The command line of ``ticketd ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "ticketing", *args]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    _wait_for(port, lambda: proc.poll() is not None, timeout)


@contextmanager
def serving(config: Path, port: int, log: Path) -> Iterator[None]:
    """The daemon ``ticketd serve`` builds from ``config``, run in this process until the
    block ends (its shutdown trigger), its log appended to ``log``.  Tests that need
    signals, SIGKILL or a process of its own use ``serving_process``."""
    with _environment(SECRET_ENV), _log_to(log):
        loaded = load_config(config)
        engine = create_db_engine(loaded.config.database)
        try:
            daemon = build(loaded.config, str(config), engine)
            with _running(daemon, port):
                yield
        finally:
            engine.dispose()


@contextmanager
def _running(daemon: Daemon, port: int) -> Iterator[None]:
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(daemon.run(stop.wait))
        except BaseException as exc:  # noqa: BLE001  handed to the test below
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="ticketd-serve")
    thread.start()
    try:
        _wait_for(port, lambda: not thread.is_alive())
        yield
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(60)
    assert not thread.is_alive(), "ticketd serve did not stop"
    if failure:
        raise failure[0]


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """What ``serve`` logs to stderr, appended to ``path`` (INFO and up, as the CLI sets)."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    quiet_libraries()
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def _wait_for(port: int, died: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if died():
            raise AssertionError("ticketd serve stopped before listening (see its log)")
        with suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.05)
    raise AssertionError("ticketd did not start listening")


@contextmanager
def serving_process(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``ticketd serve`` as a process until the block ends (SIGTERM), its stderr appended
    to ``log``."""
    with (
        log.open("ab") as sink,
        subprocess.Popen(
            ticketd_command("--config", str(config), "serve"),
            stderr=sink,
            env={**os.environ, **SECRET_ENV},
        ) as proc,
    ):
        try:
            wait_for_port(port, proc)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def send(
    port: int,
    raw: bytes,
    sender: str = "sam@brokers.example",
    rcpt: str = "escalations@exchange.example",
) -> tuple[int, str]:
    """One message in its own SMTP session; the first refusal or the DATA reply."""
    try:
        return smtp_session(port, raw, sender, [rcpt])
    except (smtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
        return 0, type(exc).__name__


def smtp_session(
    port: int,
    raw: bytes,
    sender: str,
    rcpts: Sequence[str],
    *,
    helo: str = "producer.example",
    source: tuple[str, int] | None = None,
) -> tuple[int, str]:
    """MAIL, RCPT for each of ``rcpts``, DATA: the first refusal, or the reply to DATA."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=source) as client:
            client.ehlo(helo)
            replies = itertools.chain([client.mail(sender)], (client.rcpt(rcpt) for rcpt in rcpts))
            for code, text in replies:
                if code >= 400:
                    return code, text.decode(errors="replace")
            code, text = client.data(raw)
            return code, text.decode(errors="replace")
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        reply = error.decode(errors="replace") if isinstance(error, bytes) else error
        return exc.smtp_code, reply


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


# --- the config of a daemon --------------------------------------------------------------------


def daemon_config(path: Path, db_url: str, port: int, *sections: str) -> Path:
    """Write the config ``path`` of a daemon on ``db_url`` that listens for SMTP on ``port``:
    ``[database] url`` and ``[smtp] port``, then ``sections`` (TOML texts, merged in order:
    tables merge key by key, a later value replaces an earlier one)."""
    merged: dict[str, Any] = {"database": {"url": db_url}, "smtp": {"port": port}}
    for text in sections:
        parsed = tomllib.loads(text)
        for table, key, argument in (("database", "url", "db_url"), ("smtp", "port", "port")):
            if key in parsed.get(table, {}):
                raise ValueError(f"[{table}] {key} is not a section's to set: pass {argument}=")
        _merge(merged, parsed)
    path.write_text(tomli_w.dumps(merged), encoding="utf-8")
    return path


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@dataclass(frozen=True)
class DaemonSetup:
    """A daemon's config file, the SMTP port it listens on and the log its runs append to."""

    config: Path
    port: int
    log: Path

    def serve(self) -> AbstractContextManager[None]:
        """The daemon run in this process for the block (``serving``)."""
        return serving(self.config, self.port, self.log)

    def serve_process(self) -> AbstractContextManager[subprocess.Popen[bytes]]:
        """The daemon as a process of its own for the block (``serving_process``)."""
        return serving_process(self.config, self.port, self.log)

    def send(
        self,
        raw: bytes,
        sender: str = "sam@brokers.example",
        rcpt: str = "escalations@exchange.example",
    ) -> tuple[int, str]:
        """One message to the daemon in its own SMTP session (``send``)."""
        return send(self.port, raw, sender, rcpt)


class Ticketd(Protocol):
    """The ``ticketd`` fixture: writes a daemon's config and returns its ``DaemonSetup``."""

    def __call__(
        self,
        *sections: str,
        port: int | None = None,
        db_url: str | None = None,
        folder: Path | None = None,
    ) -> DaemonSetup: ...


class TcpProxy:
    """Forwards a loopback port to a server; ``stop`` cuts every connection, like an outage."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        for sock in [self._listener, *self._sockets]:
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._sockets.clear()
        self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def import_roster(
    config: Path, folder: Path, rows: str = "1234567,sam amsung,sam@brokers.example\n"
) -> None:
    """``ticketd producers import`` of a small roster (CSV rows after the header)."""
    roster = folder / "roster.csv"
    roster.write_text("npn,name,email\n" + rows)
    subprocess.run(
        ticketd_command("--config", str(config), "producers", "import", str(roster)),
        check=True,
        capture_output=True,
        env={**os.environ, **SECRET_ENV},
    )


def serve_refused(config: Path, *, with_secret: bool = True) -> tuple[int, str]:
    """Run ``ticketd serve`` expecting it to refuse to start: exit code, last stderr line.
    ``with_secret=False`` runs it without the token secret in the environment."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    result = subprocess.run(
        ticketd_command("--config", str(config), "serve"),
        capture_output=True,
        text=True,
        env={**env, **SECRET_ENV} if with_secret else env,
        timeout=60,
        check=False,
    )
    lines = result.stderr.strip().splitlines()
    return result.returncode, lines[-1] if lines else ""
