"""Creating and upgrading the database schema with Alembic.

The migration scripts live inside the package (``ticketing/store/migrations``) so an
installed ticketd can upgrade a database without the source tree.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ticketing.errors import SchemaOutOfDateError
from ticketing.store.db import transaction

__all__ = ["alembic_config", "current_revision", "head_revision", "require_current", "upgrade"]

_MIGRATION_LOCK = 0x7469636B6564  # "ticked": the advisory lock key of ``upgrade``


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "ticketing.store:migrations")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema's revision, read in a read-only transaction (never a writer's turn)."""
    with transaction(engine, readonly=True) as session:
        return MigrationContext.configure(session.connection()).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema to ``revision``; returns (before, after).

    Instances starting together on a new version may all run ``init``: they take
    turns (PostgreSQL: a transaction-scoped advisory lock; SQLite: the writers' turn
    of every write transaction), so the first migrates and the others find the
    schema current.
    """
    before = current_revision(engine)
    with transaction(engine) as session:
        conn = session.connection()
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        command.upgrade(alembic_config(conn), revision)
    return before, current_revision(engine) or ""


def require_current(engine: Engine) -> None:
    """Refuse to run on a database that ``ticketd init`` has not brought to head."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDateError(
            f"database schema is at {current or 'nothing'}, this ticketd needs {head}: "
            "run 'ticketd init'"
        )
