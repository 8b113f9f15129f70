"""SQLite writers take turns on a lock file beside the database: a writer that holds
its turn too long makes the others fail with a clear StorageError, not hang."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from ticketing.config import DatabaseConfig
from ticketing.errors import StorageError
from ticketing.store.db import create_db_engine, transaction


def test_writers_wait_their_turn_and_give_up_after_the_busy_timeout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = create_db_engine(DatabaseConfig(url=url, busy_timeout_ms=300))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    held, release = threading.Event(), threading.Event()

    def long_writer() -> None:
        with transaction(engine) as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            held.set()
            release.wait(10)

    holder = threading.Thread(target=long_writer)
    holder.start()
    assert held.wait(10)
    started = time.monotonic()
    with pytest.raises(StorageError, match="busy"), transaction(engine) as session:
        session.execute(text("INSERT INTO t VALUES (2)"))
    assert 0.25 < time.monotonic() - started < 5
    with transaction(engine, readonly=True) as session:  # readers never wait for a writer
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    release.set()
    holder.join()
    with transaction(engine) as session:  # the turn is free again
        session.execute(text("INSERT INTO t VALUES (3)"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM t ORDER BY n")).scalars().all() == [1, 3]
    assert (tmp_path / "w.db.writer-lock").exists()
    engine.dispose()
