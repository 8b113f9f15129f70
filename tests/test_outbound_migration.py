"""Migration 0003 on a database that already holds outbox rows."""

from __future__ import annotations

from sqlalchemy import text

from ticketing.config import DatabaseConfig
from ticketing.store.db import create_db_engine
from ticketing.store.migrate import upgrade


def test_0003_keeps_existing_outbox_rows(empty_db_url: str) -> None:
    engine = create_db_engine(DatabaseConfig(url=empty_db_url))
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO outbox (kind, to_address, message_id, mime, status, attempts,"
                " next_attempt_at, created_at) VALUES ('ack_new', 'a@x.example', '<1@x>', :mime,"
                " 'pending', 0, '2026-11-26 15:00:00', '2026-11-26 14:00:00')"
            ),
            {"mime": b"From: a\r\n\r\nx\r\n"},
        )
    upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT mail_from, trigger_fingerprint, reason, expires_at FROM outbox")
        ).one()
    assert (row.mail_from, row.trigger_fingerprint, row.reason) == ("", None, None)
    assert str(row.expires_at).startswith("2026-11-26 15:00:00")
    engine.dispose()
