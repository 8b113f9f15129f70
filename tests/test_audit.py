"""Audit events are written with their transaction's commit, together, or not at all."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from ticketing.store.audit import audit
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent


def events(engine: Engine) -> list[tuple[str, dict[str, Any]]]:
    with transaction(engine, readonly=True) as session:
        rows = session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))
        return [(row.kind, row.detail) for row in rows]


def test_events_are_inserted_in_order_with_one_statement(engine: Engine) -> None:
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "audit_events" in statement:
            statements.append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with transaction(engine) as session:
            for n in range(3):
                audit(session, f"step_{n}", detail={"n": n})
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert statements == ["INSERT"]
    assert events(engine) == [("step_0", {"n": 0}), ("step_1", {"n": 1}), ("step_2", {"n": 2})]


def test_a_rolled_back_transaction_writes_no_events(engine: Engine) -> None:
    with pytest.raises(RuntimeError), transaction(engine) as session:
        audit(session, "never")
        raise RuntimeError("the unit of work failed")
    with transaction(engine) as session:
        audit(session, "kept", actor="admin")
    assert events(engine) == [("kept", {})]
