"""Database engines and transactions, the same code for SQLite and PostgreSQL.

SQLite is opened the way a daemon needs it: WAL (readers never wait for the
writer), foreign keys on, a busy timeout, ``synchronous=FULL`` (a committed
message survives a power cut: we acknowledge mail only after commit) and
``BEGIN IMMEDIATE`` so that two writers queue on the busy timeout instead of
failing with a lock upgrade deadlock.

Our own writers (threads, worker processes) also queue on a lock file beside
the database before ``BEGIN IMMEDIATE``: SQLite's busy handler sleeps 1, 2,
5, 10 … ms between tries, so with short transactions from several workers
most of the time went into sleeping after the lock was already free.

The database holds mail: its file is created 0600, whatever the umask, before
SQLite would create it 0644; SQLite gives its ``-wal`` and ``-shm`` files the
database file's mode.  A database, WAL or SHM file that others may read is
made private when the engine is created, with a warning.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, create_engine

from ticketing.config import DatabaseConfig
from ticketing.errors import StorageError, StorageFullError

__all__ = [
    "after_commit",
    "create_db_engine",
    "insert_row",
    "is_sqlite",
    "normalize_url",
    "sqlite_file",
    "transaction",
]

log = logging.getLogger(__name__)

_READONLY = "ticketd_readonly"
_AFTER_COMMIT = "ticketd.after_commit"
_SQLITE_FULL = 13  # SQLITE_FULL: a write failed with ENOSPC (or the file hit its size cap)
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite database URL; ``None`` for another backend or ``:memory:``."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database)


def normalize_url(url: str) -> URL:
    """Accept ``postgresql://`` and ``postgres://`` as psycopg 3 URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_db_engine(config: DatabaseConfig) -> Engine:
    """An engine for ``config.url``; the folder of a SQLite file is created."""
    url = normalize_url(config.url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, config.busy_timeout_ms)
    return create_engine(
        url,
        pool_pre_ping=True,
        hide_parameters=True,  # an error's text must not carry message values into logs
        connect_args={"connect_timeout": max(1, config.busy_timeout_ms // 1000)},
    )


class _WriterQueue:
    """Writers of one SQLite file take turns here: a ``flock`` on ``<db>.writer-lock``,
    tried every 0.1 … 1 ms (not SQLite's 1 … 100 ms), given up after the busy timeout."""

    def __init__(self, path: str, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._local = threading.local()  # one open file per thread: flock is per open file

    @contextmanager
    def turn(self) -> Iterator[None]:
        fd = self._fd()
        deadline = time.monotonic() + self._timeout
        delay = 0.0001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StorageError("database unavailable: busy (writer lock)") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.001)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _fd(self) -> int:
        fd: int | None = getattr(self._local, "fd", None)
        if fd is None:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._local.fd = fd
        return fd


def _enable_wal(cursor: Any, timeout: float) -> None:
    """Switch a new database file to WAL.  SQLite answers "locked" at once, without its
    busy handler, while another connection is switching the same new file (processes
    starting together on a fresh database): retried here until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


_WRITERS: weakref.WeakKeyDictionary[Engine, _WriterQueue] = weakref.WeakKeyDictionary()


def _private_database(database: Path) -> None:
    """Create ``database`` empty and 0600 (SQLite takes an empty file for an empty
    database); make an existing one, its WAL and SHM private to this user."""
    database.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            _make_private(path)
        return
    except OSError:  # a folder we may not write to: connecting says so, as it did
        return
    os.fchmod(fd, 0o600)  # the umask may have taken more
    os.close(fd)


def _make_private(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)
            log.warning("%s was open to other users (%03o): now %03o", path, mode, mode & 0o700)
    except FileNotFoundError:
        return
    except OSError as exc:  # not ours: the owner must fix it
        log.warning("%s is open to other users and cannot be changed: %s", path, exc.strerror)


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    database = sqlite_file(url)
    if database is not None:
        _private_database(database)
    engine = create_engine(
        url, hide_parameters=True, connect_args={"timeout": busy_timeout_ms / 1000}
    )
    if database is not None:
        _WRITERS[engine] = _WriterQueue(f"{database}.writer-lock", busy_timeout_ms / 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        _enable_wal(cursor, busy_timeout_ms / 1000)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get(_READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


@contextmanager
def transaction(engine: Engine, *, readonly: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error.

    ``readonly`` transactions do not take SQLite's write lock, so lookups never
    queue behind a writer.  Driver-level failures (server down, database locked
    past the timeout) become ``StorageError`` so callers answer "try again later";
    a full disk becomes ``StorageFullError``, which SMTP reports as 452 4.3.1.
    """
    bind = engine.execution_options(**{_READONLY: True}) if readonly else engine
    writers = None if readonly else _WRITERS.get(engine)
    try:
        with (
            writers.turn() if writers else nullcontext(),
            Session(bind, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session
    except OperationalError as exc:
        if _disk_full(exc.orig):
            raise StorageFullError("database storage is full") from exc
        raise StorageError(f"database unavailable: {type(exc.orig).__name__}") from exc


def after_commit(session: OrmSession, action: Callable[[], None]) -> None:
    """Run ``action`` once ``session``'s transaction has committed, never if it rolls back.

    For counters of what stands: a group commit that fails and is recorded again
    message by message must not count twice.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


@event.listens_for(OrmSession, "after_commit")
def _run_after_commit(session: OrmSession) -> None:
    for action in session.info.pop(_AFTER_COMMIT, ()):
        try:
            action()
        except Exception:  # the transaction stands: never report it as failed
            log.exception("an action after a commit failed")


@event.listens_for(OrmSession, "after_rollback")
def _drop_after_commit(session: OrmSession) -> None:
    session.info.pop(_AFTER_COMMIT, None)


def _disk_full(orig: BaseException | None) -> bool:
    """SQLite and PostgreSQL each say "disk full" their own way; both are told apart here."""
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int) and sqlite_code & 0xFF == _SQLITE_FULL:
        return True
    return getattr(orig, "sqlstate", None) == _PG_DISK_FULL


def insert_row(session: Session, table: Any, values: dict[str, Any]) -> int:
    """Insert one row as a plain INSERT in ``session``'s transaction; its id.

    For rows nothing changes later in the transaction: they need no place in
    the ORM's unit of work, which costs more than the INSERT itself.
    """
    inserted = session.connection().execute(insert(table), values).inserted_primary_key
    assert inserted is not None
    row_id: int = inserted[0]
    return row_id
