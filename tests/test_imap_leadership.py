"""One poller per mailbox: the lock is exclusive, and a dead holder's lock passes to a
standby (PostgreSQL advisory lock; a file lock on SQLite)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy import create_engine

from ticketing.intake.imap.leadership import FileLock, PostgresAdvisoryLock, lock_key


def test_the_advisory_lock_passes_to_a_standby_when_its_holder_dies(pg_db_url: str) -> None:
    holder_engine, standby_engine = create_engine(pg_db_url), create_engine(pg_db_url)
    holder = PostgresAdvisoryLock(holder_engine, "escalations")
    standby = PostgresAdvisoryLock(standby_engine, "escalations")
    other_mailbox = PostgresAdvisoryLock(standby_engine, "producer-operations")
    try:
        assert holder.acquire() and holder.still_held()
        assert not standby.acquire()
        assert other_mailbox.acquire()  # one lock per mailbox, not one for all
        _terminate_lock_holder(pg_db_url, lock_key("escalations"))  # the holder's host dies
        assert not holder.still_held()
        assert standby.acquire()
    finally:
        for lock in (holder, standby, other_mailbox):
            lock.release()
        holder_engine.dispose()
        standby_engine.dispose()


def _terminate_lock_holder(url: str, key: int) -> None:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND ((classid::bigint << 32) | objid::bigint) = %s",
            (key & 0xFFFFFFFFFFFFFFFF,),
        )


def test_the_file_lock_is_exclusive_and_freed_when_its_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "ticketd.db.imap-escalations.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from ticketing.intake.imap.leadership import FileLock; "
            f"assert FileLock(Path({str(path)!r})).acquire(); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        standby = FileLock(path)
        assert not standby.acquire()
        holder.kill()
        holder.wait()
        deadline = time.monotonic() + 5
        while not standby.acquire() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert standby.still_held()
        standby.release()
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()
