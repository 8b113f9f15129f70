"""search: the desk queue's index, and full text over messages' stored subject and text

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 10:00:00.000000

SQLite: an external-content FTS5 table (``messages_fts``, the rows' ids as its rowids)
kept by triggers on ``messages``, filled from the rows already there.  A later batch
migration that rebuilds ``messages`` (copy, drop, rename) drops these triggers with the
old table: it must create them again (``create_sqlite_triggers``) and rebuild the index.

PostgreSQL (12 or later): ``messages.fts_vector``, a stored generated column of
``to_tsvector('simple', subject || ' ' || text)``, under a GIN index.  Stored, not an
index on the expression: a search takes the newest matches (walking the primary key
backwards) and tokenizing each message again cost 30 us a row, 1.5 s for a word in 2% of
100,000 messages.  The models do not declare the column (SQLite has none), so the
check that models and migrations agree leaves it out, as it does ``messages_fts``.
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUE_COLUMNS = [
    'team', 'status', 'sla_clock', 'sla_due_at', 'sla_warn_at', 'sla_paused_at', 'opened_at',
    'type', 'priority', 'assignee',
]
PG_TEXT_VECTOR = "to_tsvector('simple', subject || ' ' || text)"

_SQLITE_TRIGGERS = (
    """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, subject, text) VALUES (new.id, new.subject, new.text);
    END""",
    """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, subject, text)
        VALUES ('delete', old.id, old.subject, old.text);
    END""",
    """CREATE TRIGGER messages_fts_update AFTER UPDATE OF subject, text ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, subject, text)
        VALUES ('delete', old.id, old.subject, old.text);
        INSERT INTO messages_fts (rowid, subject, text) VALUES (new.id, new.subject, new.text);
    END""",
)


def create_sqlite_triggers() -> None:
    for trigger in _SQLITE_TRIGGERS:
        op.execute(trigger)


def upgrade() -> None:

    # The queue (ticketing/desk/queue.py): a team's incidents by status, with every column
    # its filters and its order read, so sorting them never reads the table.
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index('ix_incidents_queue', QUEUE_COLUMNS, unique=False)
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(
            "CREATE VIRTUAL TABLE messages_fts USING fts5(subject, text,"
            " content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
        )
        create_sqlite_triggers()
        op.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
    else:
        op.execute(
            f"ALTER TABLE messages ADD COLUMN fts_vector tsvector"
            f" GENERATED ALWAYS AS ({PG_TEXT_VECTOR}) STORED"
        )
        op.execute("CREATE INDEX ix_messages_fts ON messages USING gin (fts_vector)")


def downgrade() -> None:

    if op.get_bind().dialect.name == 'sqlite':
        for name in ('insert', 'delete', 'update'):
            op.execute(f"DROP TRIGGER IF EXISTS messages_fts_{name}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_messages_fts")
        op.execute("ALTER TABLE messages DROP COLUMN IF EXISTS fts_vector")
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_queue')
