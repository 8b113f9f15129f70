"""Migrations: empty to head on both databases, and models and migrations agree."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from ticketing.config import DatabaseConfig
from ticketing.errors import SchemaOutOfDateError
from ticketing.store.db import create_db_engine
from ticketing.store.migrate import head_revision, require_current, upgrade

from .conftest import RunCli


def _modelled(name: str | None, type_: str, parent_names: object) -> bool:
    """Migration 0011's full text lives outside the models: SQLite's FTS5 tables, and
    PostgreSQL's generated column and its index (``ticketing/desk/search.py``)."""
    fts = (name or "").startswith("messages_fts") or name in ("fts_vector", "ix_messages_fts")
    return not fts


def test_empty_to_head_and_models_match(empty_db_url: str) -> None:
    engine = create_db_engine(DatabaseConfig(url=empty_db_url))
    with pytest.raises(SchemaOutOfDateError, match="run 'ticketd init'"):
        require_current(engine)
    before, after = upgrade(engine)
    assert (before, after) == (None, head_revision())
    require_current(engine)
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_name": _modelled}
        context = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []
    assert set(inspect(engine).get_table_names()) >= set(SQLModel.metadata.tables)
    engine.dispose()


def test_upgrade_is_idempotent_and_downgrade_works(empty_db_url: str) -> None:
    engine = create_db_engine(DatabaseConfig(url=empty_db_url))
    upgrade(engine)
    assert upgrade(engine) == (head_revision(), head_revision())
    from alembic import command

    from ticketing.store.migrate import alembic_config

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    require_current(engine)
    engine.dispose()


def test_init_command_on_both_databases(run_cli: RunCli, empty_db_url: str, tmp_path: Path) -> None:
    from .conftest import write_config

    config = write_config(tmp_path, empty_db_url)
    first = run_cli("--config", str(config), "init")
    assert first.code == 0, first
    assert first.out == f"database schema upgraded from empty to {head_revision()}\n"
    again = run_cli("--config", str(config), "init", "--json")
    assert '"changed": false' in again.out


def test_upgrade_keeps_existing_rows(empty_db_url: str) -> None:
    """Each migration runs on a database that already holds data, not only on an empty one."""
    from sqlalchemy import text

    engine = create_db_engine(DatabaseConfig(url=empty_db_url))
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO messages (direction, mailbox, sender, recipients, subject, text,"
                " raw_sha256, pii_findings, received_at) VALUES ('in', 'escalations', 's@x.org',"
                " '[]', 'subj', 'body', :h, '{}', CURRENT_TIMESTAMP)"
            ),
            {"h": "a" * 64},
        )
    upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT dedup_key, kind, mailboxes FROM messages")).one()
    assert row.dedup_key == "a" * 48 + "-1"
    assert row.kind == "normal"
    engine.dispose()


def test_instances_upgrading_at_once_take_turns(empty_db_url: str) -> None:
    """Containers that start together on a new version all run ``ticketd init``."""
    engines = [create_db_engine(DatabaseConfig(url=empty_db_url)) for _ in range(3)]
    results: list[object] = []

    def run(engine: Engine) -> None:
        try:
            results.append(upgrade(engine)[1])
        except Exception as exc:  # noqa: BLE001  # collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results == [head_revision()] * 3
    for engine in engines:
        engine.dispose()
