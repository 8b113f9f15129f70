"""The console's queue and search at scale: server time per request with 100,000 incidents.

    .venv/bin/python bench/console_bench.py [--incidents 100000] [--requests 200]
    .venv/bin/python bench/console_bench.py --postgres postgresql://postgres@127.0.0.1:5432/test

Seeds (bulk INSERTs, not timed) a fresh SQLite file — and with ``--postgres`` a fresh
database on that server, dropped at the end — with producers, incidents (most of them
resolved or closed, the open ones with running SLA clocks), their consumers' Person IDs
and one or two messages each of redacted producer mail (the guard's ``[REDACTED:...]``
markers in place of consumer data).  Then signs in through the console's form (Starlette's
TestClient, in-process) and times each kind of request: the queue (first page, a filtered
page, a far page) and search by incident number, number prefix, Person ID, NPN, producer
name, a rare word and a common word of the mail.  Server time is measured around the
app (middleware, session check, query, template), not the test client; the search page
with no query is the floor every page pays.  Prints p50, p95 and max milliseconds per
kind, and the load average.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import quantiles
from typing import Any

sys.path[:0] = [os.getcwd()]  # the tree in the current directory

import psycopg  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402
from starlette.types import ASGIApp, Receive, Scope, Send  # noqa: E402

from ticketing.config import Config, DatabaseConfig  # noqa: E402
from ticketing.config.desk_schema import StaffConfig, StaffPerson  # noqa: E402
from ticketing.console.app import build_console  # noqa: E402
from ticketing.console.context import console_desk  # noqa: E402
from ticketing.desk.accounts import add_account  # noqa: E402
from ticketing.store.db import create_db_engine, transaction  # noqa: E402
from ticketing.store.migrate import upgrade  # noqa: E402
from ticketing.store.models import (  # noqa: E402
    Incident,
    IncidentConsumer,
    Message,
    Producer,
    table_of,
)

NOW = datetime.now(UTC)
PASSWORD = "a long enough bench password"  # noqa: S105 (a throwaway database's account)
CASEWORKER = StaffPerson(
    name="Casey Caseworker", address="casey@exchange.example", team="escalated_cases"
)
TYPES = ("enrollment", "determination", "system_error", "termination", "form_1095a", "commission")
FIRST = (
    "Sam",
    "Ana",
    "Luis",
    "Maria",
    "James",
    "Linda",
    "Robert",
    "Patricia",
    "Kwame",
    "Mei",
    "Olga",
    "Tariq",
    "Priya",
    "Diego",
)
LAST = (
    "Amsung",
    "Smith",
    "Johnson",
    "Okafor",
    "Nguyen",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
)
CARRIERS = ("CareFirst", "Kaiser", "UnitedHealthcare", "Aetna")
# Rare words, each in about 2% of the messages (the "rare word" searches pick among them).
RARE = ("reinstatement", "retroactive", "appeal", "grace", "overpayment", "dental")
BODIES = (
    "Hi team,\n\nMy client [PERSON ID {pid}] enrolled with {carrier} on {day} but the "
    "enrollment still shows as pending in the portal. The premium was paid and the "
    "confirmation number is [REDACTED:US_BANK_NUMBER]. Could you check what is holding it?"
    " {rare}\n\nThanks,\n{name}\n{agency}",
    "Hello,\n\nFollowing up on incident {number}. The consumer received a 1095-A with the "
    "wrong months of coverage for {carrier}; their date of birth is [REDACTED:DATE_OF_BIRTH]"
    " and the premium amounts do not match what was paid. {rare}\n\nRegards,\n{name}",
    "Good morning,\n\nThe eligibility determination for Person ID {pid} came back with the "
    "wrong household size. The applicant [REDACTED:PERSON] called the hotline twice. "
    "Please review the premium tax credit. {rare}\n\n{name}, {agency}",
    "Hi,\n\nI have not received my commission for the enrollments of last quarter with "
    "{carrier}. The consumers are listed in the portal under my NPN. My SSN is "
    "[REDACTED:US_SSN] if you need it. {rare}\n\nBest,\n{name}",
)


def _producers(count: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        name = f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}"
        email = f"{name.lower().replace(' ', '.')}.{i}@brokers.example"
        rows.append(
            {"npn": str(10_000_000 + i * 7), "name": name, "email": email, "phones": []}
            | {"agency": f"Agency {i % 300}", "created_at": NOW, "updated_at": NOW}
        )
    return rows


def _incident(i: int, total: int, producers: int, rnd: random.Random) -> dict[str, Any]:
    opened = NOW - timedelta(minutes=(total - i) * 6)  # newest last: 100,000 over ~14 months
    kind = TYPES[i % len(TYPES)]
    active = rnd.random() < 0.12
    due = NOW + timedelta(hours=rnd.uniform(-48, 72)) if active else None
    return {
        "number": f"{opened:%y%m%d}-{i:07d}",
        "type": kind,
        "status": rnd.choice(("new", "open", "awaiting_producer")) if active else "closed",
        "priority": "high" if rnd.random() < 0.1 else "normal",
        "team": "producer_operations" if kind == "commission" else "escalated_cases",
        "mailbox": "escalations",
        "subject": f"Escalated Case: {kind.replace('_', ' ').title()}.PID #:{200_000 + i}",
        "producer_id": 1 + rnd.randrange(producers),
        "assignee": rnd.choice((None, CASEWORKER.address, "lee@exchange.example")),
        "opened_at": opened,
        "updated_at": opened,
        "sla_policy": "default" if active else None,
        "sla_clock": "first_response" if active else None,
        "sla_warn_at": due - timedelta(hours=8) if due else None,
        "sla_due_at": due,
        "sla_paused_at": NOW if active and rnd.random() < 0.1 else None,
    }


def _message(incident: dict[str, Any], row_id: int, pid: str, rnd: random.Random) -> dict[str, Any]:
    producer = f"Producer {incident['producer_id']}"
    text = rnd.choice(BODIES).format(
        pid=pid,
        carrier=rnd.choice(CARRIERS),
        day=f"{incident['opened_at']:%m/%d}",
        number=incident["number"],
        rare=rnd.choice(RARE) if rnd.random() < 0.12 else "",
        name=producer,
        agency="Agency",
    )
    key = f"{row_id:064x}"
    return {
        "incident_id": row_id // 2 + 1,
        "direction": "in",
        "mailbox": "escalations",
        "mailboxes": ["escalations"],
        "dedup_key": key,
        "raw_sha256": key,
        "sender": f"producer{incident['producer_id']}@brokers.example",
        "recipients": ["escalations@exchange.example"],
        "subject": incident["subject"],
        "text": text,
        "new_text": text,
        "pii_findings": {},
        "received_at": incident["opened_at"],
    }


def seed(engine: Engine, total: int, producers: int) -> dict[str, list[str]]:
    """Fill ``engine``'s database; returns sample values to search for."""
    rnd = random.Random(25)
    samples: dict[str, list[str]] = {"number": [], "person_id": [], "npn": [], "prefix": []}
    with engine.begin() as conn:
        rows = _producers(producers)
        conn.execute(insert(table_of(Producer)), rows)
        samples["npn"] = [row["npn"] for row in rows[:: producers // 200 or 1]]
        for start in range(0, total, 10_000):
            chunk = _chunk(rnd, start, min(total, start + 10_000), total, producers)
            tables = [table_of(model) for model in (Incident, IncidentConsumer, Message)]
            for table, values in zip(tables, chunk, strict=True):
                conn.execute(insert(table), values)
            incidents, consumers = chunk[0], chunk[1]
            samples["number"] += [row["number"] for row in incidents[::50]]
            samples["prefix"] += [row["number"][:7] for row in incidents[::500]]
            samples["person_id"] += [row["person_id"] for row in consumers[::50]]
    return samples


def _chunk(
    rnd: random.Random, start: int, end: int, total: int, producers: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Incidents ``start`` to ``end`` (ids start + 1 ...), their consumers and messages."""
    incidents, consumers, messages = [], [], []
    for i in range(start, end):
        incident = _incident(i, total, producers, rnd)
        pid = str(100_000 + rnd.randrange(900_000))
        incidents.append(incident)
        consumers.append({"incident_id": i + 1, "person_id": pid})
        for n in range(1 + (rnd.random() < 0.5)):
            messages.append(_message(incident, 2 * i + n, pid, rnd))
    return incidents, consumers, messages


class ServerTime:
    """The app wrapped: the time from a request's start to its last byte, per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        await self.app(scope, receive, send)
        self.last = time.perf_counter() - started


def _client(engine: Engine) -> tuple[TestClient, ServerTime]:
    config = Config(
        database=DatabaseConfig(url=engine.url.render_as_string(hide_password=False)),
        staff=StaffConfig(people=(CASEWORKER,)),
    )
    with transaction(engine) as session:
        add_account(session, config.staff, CASEWORKER.address, actor="bench", password=PASSWORD)
    timed = ServerTime(build_console(console_desk(config, engine, b"bench secret " * 4)))
    client = TestClient(timed, follow_redirects=False)
    token = client.get("/login").cookies.get("ticketd_login") or client.cookies.get("ticketd_login")
    form = {"address": CASEWORKER.address, "password": PASSWORD, "csrf": token or ""}
    assert client.post("/login", data=form).status_code == 303
    return client, timed


def _kinds(samples: dict[str, list[str]]) -> dict[str, Callable[[random.Random], str]]:
    def pick(name: str) -> Callable[[random.Random], str]:
        return lambda rnd: rnd.choice(samples[name])

    def query(make: Callable[[random.Random], str]) -> Callable[[random.Random], str]:
        return lambda rnd: f"/search?q={make(rnd)}"

    return {
        "search page, no query": lambda rnd: "/search",  # the floor: session, layout
        "queue, first page": lambda rnd: "/queue",
        "queue, filtered": lambda rnd: f"/queue?priority=high&assignee={CASEWORKER.address}",
        "queue, page 40": lambda rnd: "/queue?page=40",
        "search: number": query(pick("number")),
        "search: number prefix": query(pick("prefix")),
        "search: Person ID": query(pick("person_id")),
        "search: NPN": query(pick("npn")),
        "search: producer name": query(lambda rnd: rnd.choice(LAST)[:5].lower()),
        "search: rare word": query(lambda rnd: rnd.choice(RARE)),
        "search: common word": query(lambda rnd: rnd.choice(("premium", "carefirst", "portal"))),
    }


def measure(engine: Engine, samples: dict[str, list[str]], requests: int) -> None:
    client, timed = _client(engine)
    rnd = random.Random(7)
    print(f"{'kind':<24} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for kind, url_of in _kinds(samples).items():
        for _ in range(5):  # warm the caches and the template
            assert client.get(url_of(rnd)).status_code == 200
        times = []
        for _ in range(requests):
            answer = client.get(url_of(rnd))
            assert answer.status_code == 200, answer.text[:300]
            times.append(timed.last * 1000)
        cuts = quantiles(times, n=100)
        print(f"{kind:<24} {cuts[49]:8.1f} {cuts[94]:8.1f} {max(times):8.1f}")


def _database(postgres: str | None) -> Iterator[tuple[str, Engine]]:
    path = Path(tempfile.mkdtemp()) / "bench.db"
    yield "SQLite", create_db_engine(DatabaseConfig(url=f"sqlite:///{path}"))
    shutil.rmtree(path.parent, ignore_errors=True)
    if postgres:
        name = f"ticketd_bench_{uuid.uuid4().hex[:8]}"
        _admin(postgres, f'CREATE DATABASE "{name}"')
        url = make_url(postgres).set(database=name).render_as_string(hide_password=False)
        yield "PostgreSQL", create_db_engine(DatabaseConfig(url=url))
        _admin(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(target: str, sql: str) -> None:
    admin = make_url(target).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--producers", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--postgres", metavar="URL", help="also on a fresh PostgreSQL database")
    args = parser.parse_args()
    for label, engine in _database(args.postgres):
        upgrade(engine)
        started = time.perf_counter()
        samples = seed(engine, args.incidents, args.producers)
        with engine.begin() as conn:  # what autovacuum / a daily ANALYZE does in production
            conn.exec_driver_sql("ANALYZE")
        took = time.perf_counter() - started
        print(f"\n{label}: {args.incidents} incidents seeded in {took:.0f} s")
        measure(engine, samples, args.requests)
        engine.dispose()
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
