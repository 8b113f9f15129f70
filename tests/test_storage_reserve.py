"""The storage reserve: which folders it watches, and what it says when it refuses.

A real ``ticketd serve`` refusing mail on a nearly full disk, then taking it again,
is in ``test_faults.py``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from mailer.storage import StorageReserve
from ticketing.config import load_config
from ticketing.intake.smtp import storage_reserve

from .conftest import write_config

_TIB = 1 << 40


def _reserve(tmp_path: Path, url: str, smtp: str) -> StorageReserve:
    config = load_config(write_config(tmp_path, url, f"[smtp]\n{smtp}")).config
    return storage_reserve(config)


def test_the_reserve_watches_the_spool_with_workers_and_a_sqlite_database(
    tmp_path: Path,
) -> None:
    sqlite = f"sqlite:///{tmp_path / 'db' / 'ticketd.db'}"
    postgres = "postgresql+psycopg://ticketd@db.example/ticketd"
    spooling = f'workers = 2\nspool = true\nspool_dir = "{tmp_path / "spool"}"\n'
    assert _reserve(tmp_path, sqlite, spooling).paths == (tmp_path / "spool", tmp_path / "db")
    assert _reserve(tmp_path, sqlite, "workers = 0\n").paths == (tmp_path / "db",)
    assert _reserve(tmp_path, postgres, "workers = 0\n").paths == ()
    assert _reserve(tmp_path, sqlite, "").minimum == 100 * (1 << 20)


def test_a_reserve_above_the_free_space_refuses_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    free = shutil.disk_usage(tmp_path).free
    reserve = StorageReserve([tmp_path / "not" / "made" / "yet"], free + _TIB)
    with caplog.at_level(logging.WARNING, logger="mailer.storage"):
        assert not reserve.admits()
        assert not reserve.admits(10)
        reserve.minimum = 1
        assert reserve.admits(1000)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert "storage reserve reached" in messages[0]
    assert "[smtp] min_free_space" in messages[0]
    assert str(tmp_path / "not" / "made" / "yet") in messages[0]
    assert messages[1].startswith("storage reserve free again")


def test_a_message_larger_than_the_space_above_the_reserve_is_refused(tmp_path: Path) -> None:
    beyond = shutil.disk_usage(tmp_path).total + 1
    assert not StorageReserve([tmp_path], 1).admits(beyond)
    assert StorageReserve([tmp_path], 0).admits(2 * _TIB)  # 0: no reserve
