"""``ticketd serve`` as a real process, spoken to by a real SMTP client."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import write_config
from .daemon import serve_refused


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"serve exited early: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("serve did not start listening")


def ticketd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ticketing", *args]


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    config = write_config(tmp_path, db_url, f"[smtp]\nport = {port}\nmax_message_size = 100000\n")
    env = {**os.environ, "TICKETD_TOKEN_SECRET": "x" * 40}
    with subprocess.Popen(
        ticketd("--config", str(config), "serve"), stderr=subprocess.PIPE, env=env
    ) as proc:
        try:
            wait_for_port(port, proc)
            yield port, proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def test_serve_answers_smtp_and_refuses_strangers(
    served: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, proc = served
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        code, _ = client.ehlo("producer.example")
        assert code == 250
        assert client.has_extn("size")
        assert client.esmtp_features["size"] == "100000"
        assert client.mail("sam@brokers.example") == (250, b"OK")
        assert client.rcpt("someone@elsewhere.example")[0] == 550
        assert client.rcpt("Escalations+Urgent@Exchange.Example")[0] == 250
        assert client.rcpt("producer.operations@exchange.example")[0] == 250
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def test_oversized_message_is_refused(served: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = served
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("producer.example")
        code, _ = client.mail("sam@brokers.example", options=["SIZE=200000"])
        assert code == 552


def test_serve_refuses_an_uninitialised_database(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, f"sqlite:///{tmp_path / 'fresh.db'}", f"[smtp]\nport = {free_port()}\n"
    )
    result = subprocess.run(
        ticketd("--config", str(config), "serve"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1].startswith("ticketd: database schema is at nothing")
    )
    assert "Traceback" not in result.stderr


def test_an_empty_generated_secret_file_makes_the_secret_variable_mandatory(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path,
        f"sqlite:///{tmp_path / 'fresh.db'}",
        f'[smtp]\nport = {free_port()}\n[security]\ngenerated_secret_file = ""\n',
    )
    assert serve_refused(config, with_secret=False) == (
        1,
        f"ticketd: {config}: security.token_secret_env: "
        "environment variable TICKETD_TOKEN_SECRET is not set",
    )
    assert not (tmp_path / "var" / "token_secret").exists()
