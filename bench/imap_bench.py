"""IMAP ingest: messages/s through the poller, next to the floor measured in the same run.

    .venv/bin/python bench/imap_bench.py --messages 1000
    .venv/bin/python bench/imap_bench.py --messages 1000 --workers 2 --rounds 5
    .venv/bin/python bench/imap_bench.py --messages 1000 --db postgresql://postgres@127.0.0.1:5432/test

A private Dovecot (as in the tests: tests/dovecot.py) holds the mailboxes.  The
same N producer messages (about 2 KB) are APPENDed to two fresh users' INBOX:

* **floor**: fetch in batches, parse, INSERT one bare row per message, commit
  per message — what any IMAP-to-database reader must do;
* **ticketd**: ``MailboxPoller.poll_once`` — the whole pipeline (screening, PII
  guard, threading, incident, audit, acknowledgement in the outbox) and the MOVE
  to the processed folder after each batch's commits.  ``--workers 0`` (the
  default) judges in the poller's thread with a pipeline without templated
  replies (the figures of issue 24); ``--workers N`` hands each batch to N worker
  processes (``intake/workers.py``) as ``serve`` does with ``[smtp] workers = N``:
  their pipeline is the daemon's (``build_intake``), which also composes and scans
  each acknowledgement after its commit.  ``--full`` gives the in-thread poller
  that pipeline too, the same work as the workers'.

APPEND time and the workers' start are not measured.  The ratio ticketd/floor is
the figure to watch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from imapclient import IMAPClient
from sqlalchemy import insert
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sla_sweep import _drop, _engine
from mailer.imap_client import ImapMailbox
from mailer.parsing import parse_message
from mailer.spool import Spool
from tests.dovecot import PASSWORD, DovecotServer
from tests.mail import make_mail
from ticketing.config import Config, DatabaseConfig, ImapConfig, MailboxConfig
from ticketing.config.schema import SmtpConfig
from ticketing.intake.build import build_intake, build_pipeline
from ticketing.intake.imap.leadership import FileLock
from ticketing.intake.imap.poller import MailboxPoller, imap_settings
from ticketing.intake.workers import WorkerPool
from ticketing.pipeline.guard import PiiGuardStage
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import RawMessage
from ticketing.privacy.settings import build_guard
from ticketing.store.db import transaction
from ticketing.store.migrate import upgrade
from ticketing.store.models import Message, Producer

SECRET_ENV = "TICKETD_TOKEN_SECRET"  # noqa: S105 - the default [security] token_secret_env
BODY = (
    "Hello team,\n\nMy client's enrollment in the Silver plan did not go through after the "
    "premium was paid on 11/02/2026. The carrier shows no record of the effectuation and the "
    "1095-A for tax year 2025 lists the wrong coverage months. Could you check the "
    "determination and let me know what documents you need?\n\n" * 4
) + "Thanks,\nSam Amsung\nAmsung Insurance Agency\n"


def _append(server: DovecotServer, user: str, count: int) -> None:
    client = IMAPClient("127.0.0.1", server.port, ssl=False)
    client.login(user, PASSWORD)
    client.select_folder("INBOX")
    for i in range(count):
        subject = f"Escalated Case: Enrollment.PID #:{200000 + i}"
        client.append("INBOX", make_mail(subject=subject, body=BODY))
    client.logout()


def _imap(server: DovecotServer, user: str, batch: int) -> ImapConfig:
    return ImapConfig(
        host="127.0.0.1",
        port=server.port,
        tls="none",
        username=user,
        password_env="BENCH_IMAP_PASSWORD",  # noqa: S106 - the variable's name
        batch_size=batch,
    )


def floor(server: DovecotServer, user: str, db: str, batch: int) -> tuple[int, float]:
    engine, where = _engine(db)
    upgrade(engine)
    conn = ImapMailbox.connect(imap_settings(_imap(server, user, batch)))
    start = time.perf_counter()
    conn.select("INBOX")
    uids = conn.undeleted_uids()
    for first in range(0, len(uids), batch):
        for fetched in conn.fetch(uids[first : first + batch]):
            parsed = parse_message(fetched.raw)
            with transaction(engine) as session:
                session.execute(
                    insert(Message).values(
                        direction="in",
                        mailbox="bench",
                        mailboxes=["bench"],
                        recipients=[],
                        pii_findings={},
                        dedup_key=uuid.uuid4().hex,
                        subject=parsed.subject,
                        text=parsed.text,
                        raw_sha256=parsed.content_sha256,
                        received_at=fetched.internaldate,
                    )
                )
    elapsed = time.perf_counter() - start
    conn.close()
    engine.dispose()
    _drop(db, where)
    return len(uids), elapsed


def ticketd(
    server: DovecotServer, user: str, db: str, batch: int, root: Path, workers: int, full: bool
) -> tuple[int, float]:
    engine, where = _engine(db)
    upgrade(engine)
    with transaction(engine) as session:
        session.add(Producer(npn="1234567", name="sam amsung", email="sam@brokers.example"))
    imap = _imap(server, user, batch)
    box = MailboxConfig(
        name="escalations", address="escalations@exchange.example", team="escalated_cases"
    )
    config = Config(
        mailboxes=(box.model_copy(update={"imap": imap}),),
        database=DatabaseConfig(url=engine.url.render_as_string(hide_password=False)),
        smtp=SmtpConfig(workers=workers, spool_dir=str(root / "spool")),
    )
    pool = _pool(config) if workers else None
    pipeline = build_intake(config, engine).pipeline if full or workers else _bare(config, engine)
    lock = FileLock(root / "lock")
    poller = MailboxPoller(config.mailboxes[0], imap, pipeline, lock, workers=pool)
    conn = ImapMailbox.connect(imap_settings(imap))
    poller.prepare(conn)
    start = time.perf_counter()
    handled = poller.poll_once(conn)
    elapsed = time.perf_counter() - start
    conn.close()
    if pool is not None:
        pool.stop(30)
    engine.dispose()
    _drop(db, where)
    return handled, elapsed


def _bare(config: Config, engine: Engine) -> IntakePipeline:
    """The pipeline with the PII guard and no templated replies (issue 24's figures)."""
    guard = PiiGuardStage(build_guard(config.pii))
    return build_pipeline(config, engine, guard=guard, secret=os.environ[SECRET_ENV].encode())


def _pool(config: Config) -> WorkerPool:
    """The worker processes, started and each past its start-up (not measured): every
    worker answers a batch of empty messages (refused before any database work)."""
    spool = Spool(config.smtp.spool_dir)
    spool.create()
    pool = WorkerPool(config, spool, lambda: None)
    pool.start()
    empty = [RawMessage(b"", "imap", ("escalations",))] * (4 * config.smtp.worker_count)
    pool.record(empty, alone=range(len(empty)))
    time.sleep(1)
    return pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--db", default="sqlite", help="sqlite or a PostgreSQL URL")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: none)")
    parser.add_argument(
        "--full", action="store_true", help="without workers: the daemon's whole pipeline"
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds, each floor then ticketd")
    args = parser.parse_args()
    os.environ["BENCH_IMAP_PASSWORD"] = PASSWORD
    os.environ.setdefault(SECRET_ENV, "b" * 40)  # the signing secret, for the workers too
    database = "sqlite" if args.db == "sqlite" else "postgresql"
    pipeline = "the daemon's" if args.full or args.workers else "without templated replies"
    print(f"database: {database}; messages: {args.messages}; batch: {args.batch}")
    print(f"workers: {args.workers}; pipeline: {pipeline}")
    ratios = [_round(args, number) for number in range(1, args.rounds + 1)]
    if len(ratios) > 1:
        print(f"median ratio over {len(ratios)} rounds: {statistics.median(ratios):.2f}")


def _round(args: argparse.Namespace, number: int) -> float:
    """One round on a fresh Dovecot: the floor, then ticketd; their ratio."""
    root = Path(tempfile.mkdtemp(prefix="ticketd-imap-bench-"))
    root.chmod(0o755)
    server = DovecotServer(root)
    server.start()
    try:
        for user in ("floor", "ticketd"):
            _append(server, user, args.messages)
        n_floor, t_floor = floor(server, "floor", args.db, args.batch)
        n_ticketd, t_ticketd = ticketd(
            server, "ticketd", args.db, args.batch, root, args.workers, args.full
        )
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    floor_rate, ticketd_rate = n_floor / t_floor, n_ticketd / t_ticketd
    ratio = ticketd_rate / floor_rate
    print(f"round {number}:")
    print(f"  floor   (fetch + parse + insert): {floor_rate:8.1f} messages/s ({t_floor:.2f} s)")
    print(f"  ticketd (whole pipeline + move):  {ticketd_rate:8.1f} messages/s ({t_ticketd:.2f} s)")
    print(f"  ratio ticketd/floor: {ratio:.2f}; load: {os.getloadavg()[0]:.2f}")
    return ratio


if __name__ == "__main__":
    main()
