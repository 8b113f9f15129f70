"""``ticketd serve`` with worker processes (``[smtp] workers``): 250 once spooled, every
acknowledged message recorded exactly once — through a SIGKILL of the daemon or of a
worker, and a full spool disk answers 452."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from mailer.spool import Spool
from ticketing.config import DatabaseConfig
from ticketing.store.db import create_db_engine
from ticketing.store.migrate import upgrade

from .daemon import UNLIMITED_INCIDENTS, Ticketd, free_port, send, wait_until
from .disks import fill, tmpfs
from .mail import make_mail

# paths relative to the config, in tmp_path: the spool is tmp_path/spool, the maildir tmp_path/sent
pytestmark = pytest.mark.ticketd(
    '[intake]\nunknown_senders = "accept"\n',
    UNLIMITED_INCIDENTS,
    '[smtp]\nworkers = 2\nspool = true\nspool_dir = "spool"\n',
    '[outbound]\nmaildir = "sent"\npoll_interval_seconds = 1\n',
)


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(DatabaseConfig(url=db_url))
    yield engine
    engine.dispose()


def _recorded_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows: list[str] = list(conn.execute(text("SELECT message_id FROM messages")).scalars())
        return rows


def _workers(pid: int) -> list[int]:
    """The daemon's worker processes (not multiprocessing's resource tracker)."""
    tasks = Path(f"/proc/{pid}/task").glob("*/children")  # a thread's children are its own
    children = [c for task in tasks for c in task.read_text().split()]
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _mails(count: int, tag: str) -> list[tuple[str, bytes]]:
    """``count`` new escalations: (Message-ID, bytes)."""
    mails = []
    for n in range(count):
        message_id = f"<{tag}-{n}@brokers.example>"
        subject = f"Escalated Case: Enrollment.PID #:{100000 + n}"
        mails.append((message_id, make_mail(message_id=message_id, subject=subject)))
    return mails


class Senders:
    """MTAs: each thread sends its share and retries a message until it gets a 250."""

    def __init__(self, port: int, mails: list[tuple[str, bytes]], threads: int = 6) -> None:
        self.acked: list[str] = []
        self.replies: list[str] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(port, mails[i::threads]), daemon=True)
            for i in range(threads)
        ]

    def start(self) -> Senders:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.1))

    def _run(self, port: int, mails: list[tuple[str, bytes]]) -> None:
        for message_id, raw in mails:
            while True:
                code, reply = send(port, raw)
                if code == 250:
                    with self._lock:
                        self.acked.append(message_id)
                        self.replies.append(reply)
                    break
                time.sleep(0.2)  # the daemon is down or refusing: retry like an MTA


def _assert_each_recorded_once(
    senders: Senders, db: Engine, mails: list[tuple[str, bytes]]
) -> None:
    """Every sender got its 250 (retrying as MTAs do), and each message is recorded once."""
    senders.join(120)
    assert len(senders.acked) == len(mails)
    assert wait_until(lambda: len(_recorded_ids(db)) >= len(mails), 90)
    time.sleep(1)  # a late duplicate would show now
    assert sorted(_recorded_ids(db)) == sorted(i for i, _ in mails)


def _assert_spool_empty(path: Path) -> None:
    counts = Spool(path).counts()
    assert (counts.waiting, counts.in_progress, counts.quarantined) == (0, 0, 0)


def test_workers_record_every_message_count_it_and_answer_it(
    tmp_path: Path, db_url: str, db: Engine, ticketd: Ticketd
) -> None:
    http = free_port()
    daemon = ticketd(f"[observability]\nhttp_port = {http}\n")
    mails = _mails(40, "m")
    with daemon.serve_process() as proc:
        assert len(_workers(proc.pid)) == 2
        senders = Senders(daemon.port, mails).start()
        senders.join(60)
        assert all(r.startswith("2.0.0 Ok: queued as ") for r in senders.replies)
        assert wait_until(lambda: len(_recorded_ids(db)) == 40, 60)
        assert sorted(_recorded_ids(db)) == sorted(i for i, _ in mails)
        # an acknowledgement and a desk copy each
        assert wait_until(lambda: len(list((tmp_path / "sent" / "new").iterdir())) == 80)
        body = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics").read().decode()
        assert 'ticketd_messages_received_total{source="smtp"} 40.0' in body
        assert "ticketd_spool_waiting 0.0" in body and "ticketd_spool_quarantined 0.0" in body
    _assert_spool_empty(tmp_path / "spool")


def test_sigkill_under_load_loses_nothing_and_records_nothing_twice(
    tmp_path: Path, db_url: str, db: Engine, ticketd: Ticketd
) -> None:
    daemon = ticketd()
    mails = _mails(240, "k")
    log = daemon.log
    with daemon.serve_process() as proc:
        workers = _workers(proc.pid)
        senders = Senders(daemon.port, mails).start()
        assert wait_until(lambda: len(senders.acked) >= 60, 60)
        proc.kill()  # the daemon dies; its orphaned workers notice and stop on their own
        proc.wait()
        assert wait_until(lambda: not any(Path(f"/proc/{w}").exists() for w in workers), 15)
    with daemon.serve_process() as proc:
        assert wait_until(lambda: len(senders.acked) >= 150, 60)
        os.kill(_workers(proc.pid)[0], signal.SIGKILL)  # one worker dies: it is replaced
        assert wait_until(lambda: "exited with -9; restarting it" in log.read_text(), 15)
        assert wait_until(lambda: len(_workers(proc.pid)) == 2)
        _assert_each_recorded_once(senders, db, mails)
    _assert_spool_empty(tmp_path / "spool")


def test_a_message_without_header_fields_is_refused_before_it_is_spooled(
    tmp_path: Path, db_url: str, ticketd: Ticketd
) -> None:
    http = free_port()
    daemon = ticketd(f"[observability]\nhttp_port = {http}\n")
    # a process of its own: the counters of /metrics are the process's
    with daemon.serve_process():
        code, reply = daemon.send(b"just some words\r\nand more\r\n")
        body = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics").read().decode()
    assert (code, reply) == (554, "5.6.0 not an email message: no header fields")
    assert Spool(tmp_path / "spool").waiting() == []
    assert 'ticketd_messages_rejected_total{reason="not_acceptable",source="smtp"} 1.0' in body


def test_a_full_spool_disk_answers_452_then_accepts_again(tmp_path: Path, ticketd: Ticketd) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    (tmp_path / "spool").mkdir()
    daemon = ticketd("[smtp]\nmin_free_space = 0\n", db_url=url)  # to the last byte
    engine = create_db_engine(DatabaseConfig(url=url))
    upgrade(engine)
    with tmpfs(tmp_path / "spool", "size=2m"), daemon.serve():
        filler = fill(tmp_path / "spool")
        code, reply = daemon.send(make_mail(message_id="<full@brokers.example>"))
        assert (code, reply[:5]) == (452, "4.3.1")
        filler.unlink()
        assert daemon.send(make_mail(message_id="<full@brokers.example>"))[0] == 250
        assert wait_until(lambda: _recorded_ids(engine) == ["<full@brokers.example>"])
    engine.dispose()


def test_sigterm_stops_promptly_and_the_next_start_records_the_backlog(
    tmp_path: Path, db_url: str, db: Engine, ticketd: Ticketd
) -> None:
    daemon = ticketd()
    mails = _mails(300, "t")
    log = daemon.log
    with daemon.serve_process() as proc:
        senders = Senders(daemon.port, mails).start()
        assert wait_until(lambda: len(senders.acked) >= 150, 60)
        for pid in _workers(proc.pid):  # systemd signals the whole control group
            os.kill(pid, signal.SIGTERM)
        assert wait_until(lambda: log.read_text().count("not restarting it") == 2, 15)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0  # the workers do not work through the backlog first
    assert "; restarting it" not in log.read_text()
    left = Spool(tmp_path / "spool").counts()
    assert left.in_progress == 0 and left.quarantined == 0
    with daemon.serve():
        _assert_each_recorded_once(senders, db, mails)
