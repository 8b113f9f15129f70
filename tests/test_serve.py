"""``ticketd serve`` as a real process, spoken to by a real SMTP client."""

from __future__ import annotations

import signal
import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import write_config
from .daemon import ForkedProcess, Ticketd, free_port, run_ticketd, serve_refused


@pytest.fixture
def served(db_url: str, ticketd: Ticketd) -> Iterator[tuple[int, ForkedProcess]]:
    daemon = ticketd("[smtp]\nmax_message_size = 100000\n")
    with daemon.serve_process() as proc:
        yield daemon.port, proc


def test_serve_answers_smtp_and_refuses_strangers(
    served: tuple[int, ForkedProcess],
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


def test_oversized_message_is_refused(served: tuple[int, ForkedProcess]) -> None:
    port, _ = served
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("producer.example")
        code, _ = client.mail("sam@brokers.example", options=["SIZE=200000"])
        assert code == 552


def test_serve_refuses_an_uninitialised_database(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, f"sqlite:///{tmp_path / 'fresh.db'}", f"[smtp]\nport = {free_port()}\n"
    )
    result = run_ticketd("--config", str(config), "serve", timeout=60)
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert stderr.strip().splitlines()[-1].startswith("ticketd: database schema is at nothing")
    assert "Traceback" not in stderr


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


def test_a_taken_smtp_port_stops_the_start(tmp_path: Path, ticketd: Ticketd) -> None:
    db_url = f"sqlite:///{tmp_path / 'ticketd.db'}"
    run_ticketd("--config", str(write_config(tmp_path, db_url)), "init", check=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        daemon = ticketd(port=port, db_url=db_url)
        code, last = serve_refused(daemon.config)
    assert code == 1
    assert last == f"ticketd: cannot receive SMTP on 127.0.0.1:{port}: Address already in use"
