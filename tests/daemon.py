"""Running a real ``ticketd serve`` process for tests, and a TCP proxy to cut a database off."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

SECRET_ENV = {"TICKETD_TOKEN_SECRET": "t" * 40}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ticketd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ticketing", *args]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ticketd exited early with {proc.returncode}")
        with suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.1)
    raise AssertionError("ticketd did not start listening")


@contextmanager
def serving(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``ticketd serve`` until the block ends (SIGTERM), its stderr appended to ``log``."""
    with (
        log.open("ab") as sink,
        subprocess.Popen(
            ticketd("--config", str(config), "serve"),
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
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo("producer.example")
            for code, text in (client.mail(sender), client.rcpt(rcpt)):
                if code >= 400:
                    return code, text.decode(errors="replace")
            code, text = client.data(raw)
            return code, text.decode(errors="replace")
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code, exc.smtp_error.decode(errors="replace")
    except (smtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
        return 0, type(exc).__name__


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
        ticketd("--config", str(config), "producers", "import", str(roster)),
        check=True,
        capture_output=True,
        env={**os.environ, **SECRET_ENV},
    )


def serve_refused(config: Path, *, with_secret: bool = True) -> tuple[int, str]:
    """Run ``ticketd serve`` expecting it to refuse to start: exit code, last stderr line.
    ``with_secret=False`` runs it without the token secret in the environment."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    result = subprocess.run(
        ticketd("--config", str(config), "serve"),
        capture_output=True,
        text=True,
        env={**env, **SECRET_ENV} if with_secret else env,
        timeout=60,
        check=False,
    )
    lines = result.stderr.strip().splitlines()
    return result.returncode, lines[-1] if lines else ""
