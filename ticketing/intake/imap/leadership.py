"""One poller per mailbox at a time, whichever instance holds the lock.

On PostgreSQL the lock is a session advisory lock held on a connection of its
own: when the holder dies its connection closes, the server frees the lock,
and a standby's next attempt (every poll interval) takes over.  On SQLite,
where the instances share one machine, it is an ``flock`` on a file beside the
database, which the kernel frees the same way when the holder dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ticketing.store.db import is_sqlite, sqlite_file

__all__ = ["FileLock", "Leadership", "PostgresAdvisoryLock", "leadership_for"]

log = logging.getLogger(__name__)


class Leadership(Protocol):
    def acquire(self) -> bool:
        """Take the lock if it is free; ``True`` while this instance holds it."""
        ...

    def still_held(self) -> bool:
        """``False`` once the lock is lost (e.g. the database connection dropped)."""
        ...

    def release(self) -> None: ...


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    digest = hashlib.sha256(f"ticketd.imap:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresAdvisoryLock:
    def __init__(self, engine: Engine, name: str) -> None:
        self._engine, self._key = engine, lock_key(name)
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        if self._connection is not None:
            return self.still_held()
        try:
            connection = self._engine.connect()
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
            ).scalar()
            connection.commit()
        except SQLAlchemyError as exc:
            log.warning("IMAP poller lock unavailable: %s", type(exc).__name__)
            return False
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def still_held(self) -> bool:
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1")).scalar()
            self._connection.commit()
        except SQLAlchemyError:
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            self._connection.commit()
        except SQLAlchemyError:
            pass  # closing the connection frees the lock anyway
        self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()
                connection.close()
            except SQLAlchemyError:
                pass


class FileLock:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock


def leadership_for(engine: Engine, mailbox: str) -> Leadership:
    if not is_sqlite(engine):
        return PostgresAdvisoryLock(engine, mailbox)
    database = sqlite_file(engine.url)
    if database is None:
        raise ValueError("IMAP polling on SQLite needs a database file")
    return FileLock(Path(f"{database}.imap-{mailbox}.lock"))
