"""SLA sweep at scale: N incidents, a share of them due; time one sweep.

    .venv/bin/python bench/sla_sweep.py --db sqlite --incidents 1000000 --due-share 0.01
    .venv/bin/python bench/sla_sweep.py --db postgresql://postgres@127.0.0.1:5432/test

Rows are inserted in bulk (not timed); the timed part is ``sweep()`` from the
first claim to the last commit.  ``--sink none`` times the sweep itself (claim,
stage change, audit event); ``--sink audit`` adds one notice row per escalation.
Rendering the notices' mail is the templates' cost, measured separately.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import insert
from sqlalchemy.engine import Engine, make_url

from ticketing.config import Config, DatabaseConfig
from ticketing.outbound.notices import AuditOnlyNotices
from ticketing.sla.clocks import SlaClocks
from ticketing.sla.sweep import sweep
from ticketing.store.db import create_db_engine
from ticketing.store.migrate import upgrade
from ticketing.store.models import Incident

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York


class NullNotices:
    """Measures the sweep itself: claim, plan, stage change and audit events."""

    def batch(self) -> NullNotices:
        return self

    def notify(self, session: object, incident: object, stage: str, now: datetime) -> None:
        return None

    def compose(self) -> None:
        return None


def _engine(target: str) -> tuple[Engine, str]:
    if target == "sqlite":
        path = Path(tempfile.mkdtemp()) / "bench.db"
        return create_db_engine(DatabaseConfig(url=f"sqlite:///{path}")), str(path)
    name = f"ticketd_bench_{uuid.uuid4().hex[:8]}"
    _admin(target, f'CREATE DATABASE "{name}"')
    url = make_url(target).set(database=name).render_as_string(hide_password=False)
    return create_db_engine(DatabaseConfig(url=url)), name


def _admin(target: str, sql: str) -> None:
    admin = make_url(target).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql)


def _drop(target: str, where: str) -> None:
    """A million incidents is a few hundred MB: remove them once measured."""
    if target == "sqlite":
        shutil.rmtree(Path(where).parent, ignore_errors=True)
    else:
        _admin(target, f'DROP DATABASE IF EXISTS "{where}" WITH (FORCE)')


def _fill(engine: Engine, total: int, due_share: float) -> None:
    due_every = max(1, round(1 / due_share))
    table = Incident.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        for start in range(0, total, 50_000):
            rows = [_row(i, i % due_every == 0) for i in range(start, min(total, start + 50_000))]
            conn.execute(insert(table), rows)


def _row(i: int, due: bool) -> dict[str, object]:
    opened = NOW - timedelta(days=10 if due else 0, minutes=i % 600)
    due_at = NOW - timedelta(hours=1) if due else NOW + timedelta(days=3)
    return {
        "number": f"{261100 + i // 9_000_000:06d}-{i % 9_000_000:07d}",
        "type": "enrollment",
        "status": "open",
        "priority": "normal",
        "team": "escalated_cases",
        "mailbox": "escalations",
        "subject": "",
        "opened_at": opened,
        "updated_at": opened,
        "sla_policy": "default",
        "sla_clock": "first_response",
        "sla_stage": 1,
        "sla_warn_at": due_at - timedelta(hours=4),
        "sla_due_at": due_at,
        "sla_level2_at": due_at + timedelta(days=2),
        "sla_next_at": due_at,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", help="'sqlite' or a PostgreSQL URL")
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--due-share", type=float, default=0.01)
    parser.add_argument(
        "--sink",
        choices=("none", "audit"),
        default="none",
        help="none: the sweep itself; audit: plus one notice row per escalation",
    )
    args = parser.parse_args()
    engine, where = _engine(args.db)
    upgrade(engine)
    started = time.perf_counter()
    _fill(engine, args.incidents, args.due_share)
    with engine.begin() as conn:  # what autovacuum does to a table this size in production
        conn.exec_driver_sql("ANALYZE")
    print(f"filled {args.incidents} incidents in {time.perf_counter() - started:.1f} s ({where})")
    config = Config()
    sink = NullNotices() if args.sink == "none" else AuditOnlyNotices(config)
    started = time.perf_counter()
    fired = sweep(engine, SlaClocks.from_config(config.sla), sink, NOW)
    elapsed = time.perf_counter() - started
    print(f"sweep: {fired} breach notices in {elapsed:.2f} s ({fired / elapsed:.0f}/s)")
    started = time.perf_counter()
    again = sweep(engine, SlaClocks.from_config(config.sla), sink, NOW)
    print(f"second sweep (nothing due): {again} notices in {time.perf_counter() - started:.3f} s")
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    engine.dispose()
    _drop(args.db, where)


if __name__ == "__main__":
    main()
