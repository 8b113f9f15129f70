"""SMTP intake end to end: a real ``ticketd serve``, real SMTP clients, real databases."""

from __future__ import annotations

import signal
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine, make_url
from sqlmodel import select

from ticketing.store.db import transaction
from ticketing.store.models import Incident, Message

from .daemon import UNLIMITED_INCIDENTS, TcpProxy, Ticketd
from .mail import make_mail

pytestmark = pytest.mark.ticketd('[intake]\nunknown_senders = "accept"\n', UNLIMITED_INCIDENTS)


def _messages(n: int, tag: str) -> list[bytes]:
    return [
        make_mail(message_id=f"<{tag}-{i}@brokers.example>", body=f"Case {tag} {i}")
        for i in range(n)
    ]


def _count(engine: Engine, model: type) -> int:
    with transaction(engine, readonly=True) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def test_200_messages_at_once_then_again(engine: Engine, db_url: str, ticketd: Ticketd) -> None:
    daemon = ticketd()
    batch = _messages(200, "bulk")
    with daemon.serve(), ThreadPoolExecutor(max_workers=10) as pool:
        first = list(pool.map(daemon.send, batch))
        assert [code for code, _ in first] == [250] * 200
        assert (_count(engine, Message), _count(engine, Incident)) == (200, 200)
        again = list(pool.map(daemon.send, batch))
        assert [code for code, _ in again] == [250] * 200
    assert (_count(engine, Message), _count(engine, Incident)) == (200, 200)


def test_sigkill_under_load_loses_nothing_and_doubles_nothing(
    engine: Engine, db_url: str, ticketd: Ticketd
) -> None:
    daemon = ticketd()
    batch = _messages(120, "kill")
    with daemon.serve_process() as proc, ThreadPoolExecutor(max_workers=8) as pool:
        pending = [pool.submit(daemon.send, raw) for raw in batch]
        while sum(f.done() for f in pending) < 30:
            pending[0].result(timeout=60)
        proc.send_signal(signal.SIGKILL)
        results = [f.result(timeout=60)[0] for f in pending]
    acknowledged = {i for i, code in enumerate(results) if code == 250}
    assert 30 <= len(acknowledged) < 120, "the kill should land mid-stream"
    with transaction(engine, readonly=True) as session:
        stored = set(session.exec(select(Message.message_id)).all())
    assert {f"<kill-{i}@brokers.example>" for i in acknowledged} <= stored
    with daemon.serve():  # the senders' MTAs retry
        retried = [daemon.send(raw)[0] for i, raw in enumerate(batch) if i not in acknowledged]
    assert set(retried) == {250}
    with transaction(engine, readonly=True) as session:
        ids = session.exec(select(Message.message_id)).all()
    assert sorted(ids, key=str) == sorted(f"<kill-{i}@brokers.example>" for i in range(120))


def test_sqlite_locked_past_the_timeout_answers_451_then_records_once(
    tmp_path: Path, ticketd: Ticketd
) -> None:
    from ticketing.config import DatabaseConfig
    from ticketing.store.db import create_db_engine
    from ticketing.store.migrate import upgrade

    db = tmp_path / "locked.db"
    engine = create_db_engine(DatabaseConfig(url=f"sqlite:///{db}"))
    upgrade(engine)
    daemon = ticketd("[database]\nbusy_timeout_ms = 300\n", db_url=f"sqlite:///{db}")
    raw = make_mail(message_id="<locked-1@brokers.example>")
    with daemon.serve():
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        code, text = daemon.send(raw)
        holder.execute("ROLLBACK")
        holder.close()
        assert (code, text.split()[0]) == (451, "4.3.0")
        assert daemon.send(raw)[0] == 250
        assert daemon.send(raw)[0] == 250
    assert _count(engine, Message) == 1
    engine.dispose()


@pytest.mark.postgres
def test_postgres_outage_answers_451_then_records_once(pg_db_url: str, ticketd: Ticketd) -> None:
    from ticketing.config import DatabaseConfig
    from ticketing.store.db import create_db_engine

    url = make_url(pg_db_url)
    proxy = TcpProxy(url.port or 5432)
    proxy.start()
    proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
    daemon = ticketd(db_url=proxied)
    raw = make_mail(message_id="<outage-1@brokers.example>")
    with daemon.serve():
        assert daemon.send(make_mail())[0] == 250
        proxy.stop()
        assert daemon.send(raw)[0] == 451
        proxy.start()
        assert daemon.send(raw)[0] == 250
        assert daemon.send(raw)[0] == 250
    proxy.stop()
    engine = create_db_engine(DatabaseConfig(url=pg_db_url))
    with transaction(engine, readonly=True) as session:
        ids = session.exec(select(Message.message_id)).all()
    engine.dispose()
    assert ids.count("<outage-1@brokers.example>") == 1
