"""``ticketd serve`` reading a shared mailbox on a real Dovecot: 500 messages once
each through SIGKILLs (judged in the poller's thread, or by worker processes), a
SIGTERM while the workers hold a batch, and a Dovecot restart in the middle of a run."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy import func
from sqlmodel import select

from tests.daemon import (
    SECRET_ENV,
    DaemonSetup,
    ForkedProcess,
    Ticketd,
    free_port,
    import_roster,
    start_ticketd,
    wait_for_port,
    wait_until,
)
from tests.dovecot import PASSWORD, DovecotServer, folder_count, inbox_session, shared_mailbox_toml
from tests.mail import make_mail
from ticketing.config import DatabaseConfig
from ticketing.outbound.desk_copies import DESK_COPY
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.models import Message, OutboxMessage, utcnow

ENV = {**os.environ, **SECRET_ENV, "TICKETD_TEST_IMAP_PASSWORD": PASSWORD}

pytestmark = pytest.mark.ticketd('[staff]\ndomains = ["exchange.example"]\n')


def _mailbox(dovecot: DovecotServer, user: str) -> str:
    """The shared mailbox: ``user``'s INBOX on ``dovecot``, read every second."""
    return shared_mailbox_toml(
        dovecot, user, "poll_interval = 1\nbatch_size = 25\nreconnect_max_seconds = 2\n"
    )


def _workers(count: int) -> str:
    """``[smtp] workers``: 0, the poller judges in its thread; N, N worker processes do."""
    return f'[smtp]\nworkers = {count}\nspool_dir = "spool"\n'


class Daemon:
    """``ticketd serve`` that can be killed and started again."""

    def __init__(self, setup: DaemonSetup) -> None:
        self.setup = setup
        self.proc: ForkedProcess | None = None

    def start(self) -> None:
        config = str(self.setup.config)
        self.proc = start_ticketd("--config", config, "serve", stderr=self.setup.log, env=ENV)
        wait_for_port(self.setup.port, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(30) == 0


def _recorded(db_url: str) -> tuple[int, int]:
    engine = create_db_engine(DatabaseConfig(url=db_url))
    try:
        with transaction(engine, readonly=True) as session:
            rows = session.exec(select(func.count(), func.count(func.distinct(Message.message_id))))
            total, distinct = rows.one()
            return int(total), int(distinct)
    finally:
        engine.dispose()


def _desk_copies(db_url: str) -> str:
    """The desk copies' states, to say why originals stayed in the inbox."""
    engine = create_db_engine(DatabaseConfig(url=db_url))
    try:
        with transaction(engine, readonly=True) as session:
            query = (
                select(OutboxMessage.status, func.count(), func.max(OutboxMessage.next_attempt_at))
                .where(OutboxMessage.kind == DESK_COPY)
                .group_by(OutboxMessage.status)
            )
            states = list(session.exec(query))
            return f"desk copies by status (count, latest due) at {utcnow()}: {states}"
    finally:
        engine.dispose()


def _wait_settled(client: IMAPClient, db_url: str, expected: int, timeout: float = 180) -> None:
    """Until every message is recorded and replaced by its desk copy (a redact mailbox:
    the original leaves the inbox only once its copy is in the desk folder)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            _recorded(db_url)[0] >= expected
            and folder_count(client, "Desk") >= expected
            and folder_count(client, "INBOX") == 0
        ):
            return
        time.sleep(0.5)


def _append_all(dovecot: DovecotServer, user: str, count: int, pause: float) -> None:
    with inbox_session(dovecot, user) as client:
        for i in range(count):
            client.append(
                "INBOX", make_mail(subject=f"Escalated Case: Enrollment.PID #:{100000 + i}")
            )
            time.sleep(pause)


@pytest.mark.parametrize(
    "workers",
    [pytest.param(0, id="in-thread"), pytest.param(2, id="workers", marks=pytest.mark.slow)],
)
def test_500_messages_recorded_once_each_through_five_sigkills(
    dovecot: DovecotServer,
    imap_user: str,
    db_url: str,
    tmp_path: Path,
    ticketd: Ticketd,
    workers: int,
) -> None:
    setup = ticketd(_mailbox(dovecot, imap_user), _workers(workers))
    import_roster(setup.config, tmp_path)
    daemon = Daemon(setup)
    daemon.start()
    producer = threading.Thread(target=_append_all, args=(dovecot, imap_user, 500, 0.03))
    producer.start()
    rng = random.Random(8)
    try:
        for _ in range(5):
            time.sleep(rng.uniform(0.5, 3.0))
            daemon.kill()
            daemon.start()
        producer.join()
        with inbox_session(dovecot, imap_user) as client:
            _wait_settled(client, db_url, 500)
            assert folder_count(client, "INBOX") == 0, _desk_copies(db_url)
            # a redact mailbox: each original replaced by its desk copy, once
            assert folder_count(client, "Desk") == 500
            assert folder_count(client, "ticketd.processed") == 0
            assert folder_count(client, "ticketd.quarantine") == 0
    finally:
        producer.join()
        daemon.stop()
    assert _recorded(db_url) == (500, 500)


def _received_imap(http_port: int) -> str:
    body = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics").read().decode()
    return next((line for line in body.splitlines() if line.startswith(_RECEIVED_IMAP)), "none")


_RECEIVED_IMAP = 'ticketd_messages_received_total{source="imap"}'


def test_workers_record_the_mailbox_and_sigterm_waits_for_the_batch_in_their_hands(
    dovecot: DovecotServer, imap_user: str, db_url: str, tmp_path: Path, ticketd: Ticketd
) -> None:
    """With workers, /metrics counts IMAP mail they recorded; a SIGTERM while they hold a
    poller's batch stops the daemon at once (exit 0): the poller finishes or abandons its
    batch before the pool stops, and what stayed in the inbox is recorded after the start."""
    http = free_port()
    setup = ticketd(
        _mailbox(dovecot, imap_user), _workers(2), f"[observability]\nhttp_port = {http}\n"
    )
    import_roster(setup.config, tmp_path)
    daemon = Daemon(setup)
    daemon.start()
    try:
        _append_all(dovecot, imap_user, 40, 0)
        with inbox_session(dovecot, imap_user) as client:
            _wait_settled(client, db_url, 40)
        assert _received_imap(http) == f"{_RECEIVED_IMAP} 40.0"
        _append_all(dovecot, imap_user, 200, 0)
        assert wait_until(lambda: _recorded(db_url)[0] > 60, 60)  # the workers are busy
        stopping = time.monotonic()
        daemon.stop()  # exit 0 within 30 s, or it fails here
        assert time.monotonic() - stopping < 15
        daemon.start()
        with inbox_session(dovecot, imap_user) as client:
            _wait_settled(client, db_url, 240)
            assert folder_count(client, "Desk") == 240
            assert folder_count(client, "ticketd.quarantine") == 0
    finally:
        daemon.stop()
    assert _recorded(db_url) == (240, 240)


def test_the_poller_carries_on_after_dovecot_restarts(
    dovecot: DovecotServer, imap_user: str, db_url: str, tmp_path: Path, ticketd: Ticketd
) -> None:
    setup = ticketd(_mailbox(dovecot, imap_user))
    import_roster(setup.config, tmp_path)
    log = setup.log
    daemon = Daemon(setup)
    daemon.start()
    try:
        _append_all(dovecot, imap_user, 30, 0)
        with inbox_session(dovecot, imap_user) as client:
            _wait_settled(client, db_url, 30)
        dovecot.restart()
        _append_all(dovecot, imap_user, 30, 0)
        with inbox_session(dovecot, imap_user) as client:
            _wait_settled(client, db_url, 60)
            assert folder_count(client, "Desk") == 60  # the originals replaced by desk copies
    finally:
        daemon.stop()
    assert _recorded(db_url) == (60, 60)
    assert "retrying in" in log.read_text()


def test_a_standby_instance_takes_the_mailbox_over_when_the_holder_dies(
    dovecot: DovecotServer, imap_user: str, pg_db_url: str, tmp_path: Path, ticketd: Ticketd
) -> None:
    """Two daemons on one PostgreSQL: one polls; kill either and the other carries on."""
    mailbox = _mailbox(dovecot, imap_user)
    daemons = [
        Daemon(ticketd(mailbox, db_url=pg_db_url, folder=tmp_path / name)) for name in ("a", "b")
    ]
    import_roster(daemons[0].setup.config, tmp_path)
    for daemon in daemons:
        daemon.start()
    try:
        with inbox_session(dovecot, imap_user) as client:
            _append_all(dovecot, imap_user, 20, 0)
            _wait_settled(client, pg_db_url, 20)
            for round_, (victim, survivor) in enumerate(((0, 1), (1, 0)), start=2):
                daemons[victim].kill()  # whichever held the lock, only the survivor is left
                _append_all(dovecot, imap_user, 20, 0)
                _wait_settled(client, pg_db_url, 20 * round_, timeout=60)
                assert folder_count(client, "INBOX") == 0, f"survivor {survivor} did not take over"
                daemons[victim].start()
            assert folder_count(client, "Desk") == 60  # the originals replaced by desk copies
    finally:
        for daemon in daemons:
            daemon.stop()
    assert _recorded(pg_db_url) == (60, 60)
