"""IMAP through the worker processes (``[smtp] workers`` ≥ 1), on a real Dovecot, real
databases and real spawned workers: each batch recorded by the workers and moved after
its commit, a poison message set aside while the rest go on, and a worker killed while
it holds a batch — nothing lost, nothing recorded twice, and a message that kills its
worker every time ends in the quarantine folder."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from mailer.parsing import ParsedMessage
from mailer.spool import Spool
from tests.daemon import wait_until
from tests.dns_server import AuthDns
from tests.dovecot import PASSWORD, DovecotServer, folder_count, inbox_session, poll_round
from tests.mail import make_mail
from tests.test_poison import refusing  # noqa: F401 - the fixture: "poison" mail is refused
from ticketing import metrics
from ticketing.config import (
    AuthenticationConfig,
    Config,
    DatabaseConfig,
    ImapConfig,
    IntakeConfig,
    MailboxConfig,
)
from ticketing.config.desk_schema import StaffConfig
from ticketing.config.schema import SmtpConfig
from ticketing.incidents.parties import Identity
from ticketing.intake.build import build_pipeline
from ticketing.intake.handoff import WORKER_DIED, job_slices
from ticketing.intake.imap.leadership import FileLock
from ticketing.intake.imap.poller import MailboxPoller
from ticketing.intake.workers import WorkerPool
from ticketing.pipeline.guard import NoGuard, Policy
from ticketing.pipeline.types import GuardResult, RawMessage
from ticketing.store.db import is_sqlite, sqlite_file, transaction
from ticketing.store.models import Message

SECRET = "w" * 40
DIED = f"failed in intake ({WORKER_DIED})"


class CountingGuard(NoGuard):
    """The guard of the daemon's own pipeline: with workers it is never called."""

    def __init__(self) -> None:
        self.calls = 0

    def check(
        self,
        policy: Policy,
        message: ParsedMessage,
        identity: Identity,
        recipients: Sequence[str] = (),
    ) -> GuardResult:
        self.calls += 1
        return super().check(policy, message, identity, recipients)


@dataclass
class Desk:
    """A shared mailbox on Dovecot, the test's IMAP session, the database, the workers."""

    client: IMAPClient
    engine: Engine
    config: Config
    pool: WorkerPool
    dns: AuthDns
    lock: Path

    def deliver(self, raw: bytes) -> bytes:
        """``raw`` into the inbox, DKIM-signed as a producer's mail system sends it."""
        signed = self.dns.sign_as_author(raw)
        self.client.append("INBOX", signed)
        return signed

    def poller(self, guard: NoGuard | None = None) -> MailboxPoller:
        """A poller whose batches the workers record (``guard``: its own pipeline's)."""
        box = self.config.mailboxes[0]
        assert box.imap is not None
        pipeline = build_pipeline(self.config, self.engine, guard=guard, secret=SECRET.encode())
        return MailboxPoller(box, box.imap, pipeline, FileLock(self.lock), workers=self.pool)

    def holding(self) -> list[int]:
        """The batch each worker took last (the pool's shared memory)."""
        return list(self.pool._holding[: len(self.pool._procs)])

    def kill_holder(self, before: list[int]) -> None:
        """SIGKILL the first worker holding a batch it took since ``before``."""
        assert wait_until(lambda: self.holding() != before, 60), "no worker took the batch"
        now = self.holding()
        slot = next(i for i in range(len(now)) if now[i] != before[i])
        proc = self.pool._procs[slot]
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)


def _config(dovecot: DovecotServer, user: str, db_url: str, tmp: Path, dns: AuthDns) -> Config:
    imap = ImapConfig(
        host="127.0.0.1",
        port=dovecot.port,
        tls="none",
        username=user,
        password_env="TICKETD_TEST_IMAP_PASSWORD",
        poll_interval=1,
        batch_size=20,
    )
    box = MailboxConfig(
        name="escalations",
        address="escalations@exchange.example",
        team="escalated_cases",
        imap=imap,
    )
    return Config(
        # a worker waiting for the test's lock on the database waits, it does not give up
        database=DatabaseConfig(url=db_url, busy_timeout_ms=120_000),
        smtp=SmtpConfig(workers=2, spool_dir=str(tmp / "spool")),
        mailboxes=(box,),
        staff=StaffConfig(domains=("exchange.example",)),
        intake=IntakeConfig(unknown_senders="accept", defect_attempts=3),
        authentication=AuthenticationConfig(nameservers=(dns.nameserver,)),
    )


def _started(config: Config) -> WorkerPool:
    """The pool, each worker past its start (it answered a batch of an empty message)."""
    pool = WorkerPool(config, _spool(config), lambda: None)
    pool.start()
    empty = [RawMessage(b"", "imap", ("escalations",))] * 4
    verdicts = pool.record(empty, alone=range(4))
    assert {v.kind for v in verdicts} == {"permanent"}
    return pool


def _spool(config: Config) -> Spool:
    spool = Spool(config.smtp.spool_dir)
    spool.create()
    return spool


@pytest.fixture
def desk(
    dovecot: DovecotServer,
    imap_user: str,
    db_url: str,
    engine: Engine,
    tmp_path: Path,
    auth_dns: AuthDns,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Desk]:
    monkeypatch.setenv("TICKETD_TEST_IMAP_PASSWORD", PASSWORD)
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", SECRET)  # the workers inherit it at spawn
    config = _config(dovecot, imap_user, db_url, tmp_path, auth_dns)
    pool = _started(config)
    try:
        with inbox_session(dovecot, imap_user) as client:
            yield Desk(client, engine, config, pool, auth_dns, tmp_path / "lock")
    finally:
        pool.stop(10)


class Round(threading.Thread):
    """One ``poll_once`` in a thread of its own (the test holds the database meanwhile)."""

    def __init__(self, poller: MailboxPoller) -> None:
        super().__init__(daemon=True)
        self.poller = poller
        self.handled: int | None = None

    def run(self) -> None:
        self.handled = poll_round(self.poller)

    def result(self) -> int | None:
        self.join(120)
        return self.handled


@contextmanager
def writers_wait(engine: Engine) -> Iterator[None]:
    """Every writer waits, as behind a long transaction: SQLite's write lock taken, or on
    PostgreSQL the messages table locked against inserts (reads go on)."""
    if is_sqlite(engine):
        path = sqlite_file(engine.url)
        assert path is not None
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.rollback()
            conn.close()
        return
    with engine.connect() as pg:
        pg.exec_driver_sql("LOCK TABLE messages IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            pg.rollback()


def _good(n: int) -> bytes:
    return make_mail(
        message_id=f"<good-{n}@brokers.example>",
        subject=f"Escalated Case: Enrollment.PID #:{180000 + n}",
    )


def _recorded(engine: Engine) -> list[str]:
    with transaction(engine, readonly=True) as session:
        ids = session.exec(select(Message.message_id).where(col(Message.source) == "imap")).all()
    return sorted(str(i) for i in ids)


def test_a_batch_is_cut_into_even_jobs_and_a_message_that_failed_goes_alone() -> None:
    assert [len(job) for job in job_slices([2_000] * 50, (), 13, 1_000_000)] == [13, 13, 13, 11]
    assert job_slices([10] * 5, [2], 2, 1_000_000) == [[0, 1], [2], [3, 4]]
    assert job_slices([600_000, 600_000, 10], (), 16, 1_000_000) == [[0], [1, 2]]


def test_a_batch_is_recorded_by_the_workers_once_and_moved_after_its_commit(desk: Desk) -> None:
    sent = [desk.deliver(_good(n)) for n in range(30)]
    guard = CountingGuard()
    poller = desk.poller(guard)
    received = metrics.RECEIVED.labels("imap")
    before = received._value.get()
    assert poll_round(poller) == 30
    assert folder_count(desk.client, "INBOX") == 0
    assert folder_count(desk.client, "ticketd.processed") == 30
    assert _recorded(desk.engine) == sorted(f"<good-{n}@brokers.example>" for n in range(30))
    assert guard.calls == 0  # the poller's thread judged nothing: the workers did
    assert received._value.get() == before + 30  # the workers' observations, counted here
    desk.client.append("INBOX", sent[0])  # again: a duplicate, moved, not recorded twice
    assert poll_round(poller) == 1
    assert folder_count(desk.client, "ticketd.processed") == 31
    assert len(_recorded(desk.engine)) == 30


def test_a_poison_message_is_quarantined_after_its_attempts_while_the_rest_go_on(
    desk: Desk,
    refusing: Engine,  # noqa: F811 - the fixture imported above
    caplog: pytest.LogCaptureFixture,
) -> None:
    poison = make_mail(message_id="<poison-1@brokers.example>", subject="poisoned")
    for raw in (_good(1), poison, _good(2)):
        desk.deliver(raw)
    poller = desk.poller()
    assert poll_round(poller) == 3
    assert folder_count(desk.client, "ticketd.processed") == 2  # the others at once
    assert folder_count(desk.client, "INBOX") == 1
    for _ in range(2):
        poll_round(poller)
    assert folder_count(desk.client, "INBOX") == 0
    assert folder_count(desk.client, "ticketd.quarantine") == 1
    assert _recorded(refusing) == ["<good-1@brokers.example>", "<good-2@brokers.example>"]
    assert "attempt 2 of 3" in caplog.text and "failed in intake 3 times" in caplog.text


def test_a_worker_killed_holding_a_batch_loses_nothing_and_records_nothing_twice(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    """20 messages, two jobs of 10, each worker blocked in its commit; one is killed."""
    for n in range(20):
        desk.deliver(_good(n))
    poller = desk.poller()
    with writers_wait(desk.engine):
        before = desk.holding()
        round_ = Round(poller)
        round_.start()
        assert wait_until(lambda: all(map(int.__ne__, before, desk.holding())), 60)
        desk.kill_holder(before)
    assert round_.result() == 20  # every message settled: 10 recorded, 10 tried again
    assert folder_count(desk.client, "ticketd.processed") == 10
    assert folder_count(desk.client, "INBOX") == 10
    assert caplog.text.count(DIED) == 10 and "attempt 1 of 3" in caplog.text
    assert poll_round(poller) == 10  # the next round: each alone, recorded
    assert folder_count(desk.client, "INBOX") == 0
    assert folder_count(desk.client, "ticketd.processed") == 20
    assert folder_count(desk.client, "ticketd.quarantine") == 0
    assert _recorded(desk.engine) == sorted(f"<good-{n}@brokers.example>" for n in range(20))


def test_a_message_that_kills_its_worker_each_time_is_quarantined(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    desk.deliver(_good(1))
    poller = desk.poller()
    for _ in range(3):
        with writers_wait(desk.engine):
            before = desk.holding()
            round_ = Round(poller)
            round_.start()
            desk.kill_holder(before)
        assert round_.result() == 1
    assert folder_count(desk.client, "INBOX") == 0
    assert folder_count(desk.client, "ticketd.quarantine") == 1
    assert caplog.text.count(WORKER_DIED) == 3 and "failed in intake 3 times" in caplog.text
    assert _recorded(desk.engine) == []
    # the pool restarted each killed worker
    assert wait_until(lambda: all(p.is_alive() for p in desk.pool._procs.values()), 30)
