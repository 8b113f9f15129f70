"""SIGTERM drains the SMTP intake; SIGHUP reloads templates and the roster file.

Real ``ticketd serve`` processes, real SMTP sessions held open across the signal.
"""

from __future__ import annotations

import shutil
import signal
import smtplib
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from email import message_from_bytes
from pathlib import Path

import pytest
from sqlalchemy import text

from ticketing.config import DatabaseConfig
from ticketing.store.db import create_db_engine

from .conftest import REPO, write_config
from .daemon import free_port, run_ticketd, send, serve_refused, serving_process
from .mail import make_mail

SAM, PAT = "sam@brokers.example", "pat@brokers.example"


@pytest.fixture
def db_file(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'ticketd.db'}"
    run_ticketd("--config", str(write_config(tmp_path, url)), "init", check=True)
    (tmp_path / "var").mkdir()
    yield url


def count(db_url: str, table: str) -> int:
    engine = create_db_engine(DatabaseConfig(url=db_url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def wait_until(check: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return sock.recv(200)


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def start_data(port: int) -> tuple[smtplib.SMTP, bytes]:
    """A session inside DATA, half the message sent; returns the client and the rest."""
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    client.ehlo("producer.example")
    assert client.mail(SAM)[0] == 250
    assert client.rcpt("escalations@exchange.example")[0] == 250
    client.putcmd("data")
    assert client.getreply()[0] == 354
    raw = make_mail()
    half = len(raw) // 2
    client.send(raw[:half])
    return client, raw[half:] + b".\r\n"


def test_sigterm_refuses_new_sessions_and_lets_a_message_finish(
    db_file: str, tmp_path: Path
) -> None:
    smtp, http = free_port(), free_port()
    config = write_config(
        tmp_path, db_file, f"[smtp]\nport = {smtp}\n[observability]\nhttp_port = {http}\n"
    )
    with serving_process(config, smtp, tmp_path / "serve.log") as proc:
        idle = smtplib.SMTP("127.0.0.1", smtp, timeout=30)
        idle.ehlo("producer.example")
        busy, rest = start_data(smtp)
        assert readyz(http) == 200
        proc.send_signal(signal.SIGTERM)
        assert wait_until(lambda: greeting(smtp).startswith(b"421 4.3.2"))
        assert readyz(http) == 503  # load balancers stop sending here
        assert idle.getreply()[0] == 421  # told, unasked, then closed
        busy.send(rest)
        code, reply = busy.getreply()
        assert code == 250, reply
        assert busy.docmd("QUIT")[0] == 221
        idle.close()
        busy.close()
        assert proc.wait(timeout=30) == 0
    assert count(db_file, "messages") == 1


def test_a_session_reused_after_sigterm_is_told_421_at_its_next_mail(
    db_file: str, tmp_path: Path
) -> None:
    """An MTA with a queue of mail for us sends message after message on one session: the
    message in hand finishes, the next MAIL is told 421, and the daemon stops well inside
    its grace period instead of taking mail until the deadline."""
    smtp = free_port()
    config = write_config(
        tmp_path, db_file, f"[smtp]\nport = {smtp}\nshutdown_grace_seconds = 60\n"
    )
    with serving_process(config, smtp, tmp_path / "serve.log") as proc:
        busy, rest = start_data(smtp)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert wait_until(lambda: greeting(smtp).startswith(b"421 4.3.2"))
        busy.send(rest)
        code, reply = busy.getreply()
        assert code == 250, reply
        code, reply = busy.mail(PAT)
        assert code == 421 and reply.startswith(b"4.3.2"), reply
        busy.close()
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - started < 20
    assert count(db_file, "messages") == 1


def test_a_message_still_arriving_after_the_grace_period_is_cut_off(
    db_file: str, tmp_path: Path
) -> None:
    smtp = free_port()
    config = write_config(tmp_path, db_file, f"[smtp]\nport = {smtp}\nshutdown_grace_seconds = 1\n")
    log = tmp_path / "serve.log"
    with serving_process(config, smtp, log) as proc:
        busy, _ = start_data(smtp)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - started < 15
        assert busy.getreply()[0] == 421  # never acknowledged: the client keeps it
        busy.close()
    assert count(db_file, "messages") == 0
    assert "SMTP drain: 1 session(s) cut off after 1s" in log.read_text()


def _roster(path: Path, *people: tuple[str, str, str]) -> None:
    rows = "".join(f"{npn},{name},{email}\n" for npn, name, email in people)
    path.write_text("npn,name,email\n" + rows, encoding="utf-8")


def _sent_subjects(maildir: Path) -> list[str]:
    new = maildir / "new"
    files = sorted(new.iterdir()) if new.is_dir() else []
    return [str(message_from_bytes(f.read_bytes())["Subject"]) for f in files]


def test_sighup_reloads_templates_and_the_roster(db_file: str, tmp_path: Path) -> None:
    smtp = free_port()
    overrides = tmp_path / "overrides"
    overrides.mkdir()
    roster = tmp_path / "roster.csv"
    _roster(roster, ("1234567", "Sam Amsung", SAM))
    config = write_config(
        tmp_path,
        db_file,
        f"[smtp]\nport = {smtp}\n"
        '[roster]\nfile = "roster.csv"\n'
        f'[templates]\noverride_dir = "overrides"\nreload_interval_seconds = 3600\n',
    )
    log = tmp_path / "serve.log"
    with serving_process(config, smtp, log) as proc:
        assert count(db_file, "producers") == 1  # imported at start
        _roster(roster, ("1234567", "Sam Amsung", SAM), ("7654321", "Pat Doe", PAT))
        shutil.copytree(REPO / "templates" / "ack_new", overrides / "ack_new")
        (overrides / "ack_new" / "subject.txt").write_text("Reloaded {{ incident.number }}")
        proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: count(db_file, "producers") == 2)
        assert wait_until(lambda: "SIGHUP: templates: " in log.read_text())
        assert send(smtp, make_mail(sender=PAT), sender=PAT)[0] == 250
        assert count(db_file, "incidents") == 1  # Pat is a producer now
        assert wait_until(lambda: bool(_sent_subjects(tmp_path / "var" / "sent")))
        assert _sent_subjects(tmp_path / "var" / "sent")[0].startswith("Reloaded ")
        roster.write_text("name\nnobody\n", encoding="utf-8")  # a broken export
        proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "roster not reloaded" in log.read_text())
        assert proc.poll() is None
        assert count(db_file, "producers") == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    text_ = log.read_text()
    assert "missing column(s): npn, email" in text_
    assert PAT not in text_ and SAM not in text_


def test_an_unreadable_roster_file_stops_the_start(db_file: str, tmp_path: Path) -> None:
    config = write_config(
        tmp_path, db_file, f'[smtp]\nport = {free_port()}\n[roster]\nfile = "missing.csv"\n'
    )
    code, last = serve_refused(config)
    assert code == 1
    assert last == f"ticketd: {tmp_path / 'missing.csv'}: cannot read: No such file or directory"
