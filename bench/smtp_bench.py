"""SMTP end to end: many real SMTP clients against a real ``ticketd serve``, and against a
do-nothing aiosmtpd sink in the same run (the floor: what the clients and the wire cost).

    .venv/bin/python bench/smtp_bench.py                       # SQLite
    .venv/bin/python bench/smtp_bench.py --db postgresql://postgres@127.0.0.1:5432/test

The daemon runs as a subprocess with its own temporary config, database (a fresh
SQLite file, or a fresh database created on the PostgreSQL server and dropped at the
end) and outbound maildir; embedded default mailboxes and PII policies (escalations:
redact, producer-operations: reject); a roster of producers imported with ``ticketd
producers import``. Each client (an MTA) keeps one SMTP session open and sends ~2 KB
mail, each from a producer drawn from the whole roster: mostly new escalations with
varied types and Person IDs, some replies to an incident the producer was told of in an
earlier 250, some carrying a consumer's SSN. Every message gets its auto-reply: no
producer comes near the loop ceiling (``stored`` counts the outbox rows).

Latency is measured from the moment the client has written the final ``CRLF.CRLF``
to the moment the DATA reply arrives. Two throughputs: SMTP (messages answered over the
wall time of the sending phase) and *end to end* (messages over the time from the first
send until the last one is recorded in the database: with ``--spool`` the 250 comes
once a message is spooled, and the workers may still be busy). A warm-up that is not
counted comes first. ``--workers auto`` (the default, as shipped) measures worker
processes recording each message before its 250, ``--workers 0`` the daemon itself.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ticketing.config import DatabaseConfig
from ticketing.store.db import create_db_engine, transaction

SECRET = {"TICKETD_TOKEN_SECRET": "bench-secret-" + "x" * 32}
MAILBOXES = ("escalations@exchange.example", "producer.operations@exchange.example")
TYPES = ("Enrollment", "Determination", "System Error", "Termination", "1095 A", "Commission")
INCIDENT = re.compile(r"incident (\d{6}-\d{7})")
FIRST = ("Ana", "Brian", "Carla", "Deepak", "Elena", "Frank", "Grace", "Hector", "Ines", "Jamal")
LAST = ("Alvarez", "Brooks", "Chen", "Diaz", "Evans", "Foster", "Garcia", "Hughes", "Ito", "Jones")
SENTENCES = (
    "My client applied during open enrollment but the application still shows as pending.",
    "The plan selection was submitted on the portal and the carrier has no record of it.",
    "We uploaded the income verification documents twice and the task is still open.",
    "The eligibility determination lists the wrong household size for the tax year.",
    "The premium tax credit amount changed after the last update without any reason given.",
    "The client received a termination notice although the binder payment was made on time.",
    "The 1095-A form shows coverage months that do not match the enrollment history.",
    "The broker of record change was requested last month and has not been applied.",
    "The system error page appears whenever we try to report a change in circumstances.",
    "Please advise what else is needed so the enrollment can be effectuated this month.",
    "I called the help desk and was told to escalate the case by email with the details.",
    "The commission statement does not list this enrollment although I am the agent of record.",
)


def producer(i: int) -> tuple[str, str, str]:
    """NPN, name and address of roster producer ``i`` (deterministic)."""
    name = f"{FIRST[i % 10]} {LAST[(i // 10) % 10]}"
    return f"{7_000_000 + i}", name, f"{name.split()[0].lower()}.{i}@brokers.example"


@dataclass
class Producer:
    """One client's identity and what it has been told: incident numbers to reply on."""

    npn: str
    name: str
    address: str
    incidents: list[tuple[str, str, str]] = field(default_factory=list)
    # new escalations answered "queued" (workers): (subject, Message-ID), number unknown yet
    queued: list[tuple[str, str]] = field(default_factory=list)


def _body(rng: random.Random, pid: int, with_ssn: bool, name: str) -> str:
    lines = [f"Hello, this is about Person ID {pid}.", ""]
    while sum(len(line) + 1 for line in lines) < 1700:
        lines.append(" ".join(rng.sample(SENTENCES, 3)))
    if with_ssn:
        lines.append(f"The consumer's SSN is {rng.randint(100, 665)}-{rng.randint(10, 99)}-4821.")
    return "\r\n".join([*lines, "", "Thank you,", name, "Licensed producer"]) + "\r\n"


def compose(rng: random.Random, who: Producer, reply_share: float, pii_share: float) -> bytes:
    """A ~2 KB producer message: a new escalation, or a reply to an incident it was told of."""
    msgid = make_msgid(domain="brokers.example")
    headers = [f'From: "{who.name}" <{who.address}>', f"Message-ID: {msgid}"]
    if who.incidents and rng.random() < reply_share:
        number, subject, parent = rng.choice(who.incidents)
        headers += [f"Subject: RE: {subject} [#{number}]", f"In-Reply-To: {parent}"]
        pid, to = int(subject.rsplit(":", 1)[1]), MAILBOXES[0]
    else:
        kind, pid = rng.choice(TYPES), rng.randint(100_000, 999_999)
        headers.append(f"Subject: Escalated Case: {kind}.PID #:{pid}")
        to = MAILBOXES[1] if kind == "Commission" else MAILBOXES[0]
    headers += [
        f"To: {to}",
        f"Date: {format_datetime(datetime.now(UTC))}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    body = _body(rng, pid, rng.random() < pii_share, who.name)
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


# --- the SMTP clients ---------------------------------------------------------------------------


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    codes: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, code: int, latency: float | None) -> None:
        with self.lock:
            self.codes[code] += 1
            if latency is not None:
                self.latencies.append(latency)


def _data(client: smtplib.SMTP, raw: bytes) -> tuple[int, str, float]:
    """DATA by hand, to time from the final CRLF.CRLF to the reply."""
    code, _ = client.docmd("DATA")
    if code != 354:
        return code, "", 0.0
    payload = re.sub(rb"(?m)^\.", b"..", raw)
    client.send(payload + b".\r\n")
    start = time.perf_counter()
    code, reply = client.getreply()
    return code, reply.decode(errors="replace"), time.perf_counter() - start


def _one(client: smtplib.SMTP, who: Producer, raw: bytes, rcpt: str) -> tuple[int, float | None]:
    client.mail(who.address)
    code, _ = client.rcpt(rcpt)
    if code != 250:
        client.rset()
        return code, None
    code, reply, latency = _data(client, raw)
    found = INCIDENT.search(reply)
    subject = re.search(rb"Subject: (.*)\r\n", raw)
    parent = re.search(rb"Message-ID: (.*)\r\n", raw)
    if code == 250 and b"\r\nIn-Reply-To:" not in raw and subject and parent:
        sent = (subject.group(1).decode(), parent.group(1).decode())
        if found:
            who.incidents.append((found.group(1), *sent))
        else:
            who.queued.append(sent)
    return code, latency


def learn_incidents(url: str, roster: list[Producer]) -> None:
    """With workers the 250 names no incident: look up, by Message-ID, the incidents the
    warm-up's escalations opened, so that the measured phase sends replies too."""
    engine = create_db_engine(DatabaseConfig(url=url))
    query = text(
        "SELECT i.number FROM messages m JOIN incidents i ON i.id = m.incident_id "
        "WHERE m.message_id = :mid"
    )
    with engine.connect() as conn:
        for who in roster:
            for subject, message_id in who.queued:
                number = conn.execute(query, {"mid": message_id}).scalar()
                if number:
                    who.incidents.append((str(number), subject, message_id))
            who.queued.clear()
    engine.dispose()


def client_loop(
    port: int, roster: list[Producer], todo: Iterator[int], out: Results, seed: int
) -> None:
    """An MTA relaying the roster's mail: one session, messages until ``todo`` runs dry.

    Each message comes from a producer drawn from the whole roster, so that each sends
    a share of the load (3,300 messages over 200 producers: about 17 each), as a desk's
    producers do, and stays below the auto-reply ceiling (50 per address per hour):
    every message is answered, none gets its reply suppressed as a loop.
    """
    rng = random.Random(seed)
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
        client.ehlo("mta.brokers.example")
        for _ in todo:
            who = rng.choice(roster)
            raw = compose(rng, who, reply_share=0.2, pii_share=0.05)
            rcpt = re.search(rb"\r\nTo: (.*)\r\n", raw)
            assert rcpt is not None
            try:
                code, latency = _one(client, who, raw, rcpt.group(1).decode())
            except smtplib.SMTPException as exc:
                code, latency = getattr(exc, "smtp_code", 0), None
            out.add(code, latency)


def load(
    ports: list[int], producers: list[Producer], clients: int, messages: int
) -> tuple[Results, float]:
    """``messages`` sent by ``clients`` concurrent sessions, spread over ``ports``."""
    counter = iter(range(messages))
    lock = threading.Lock()

    def shared() -> Iterator[int]:
        while True:
            with lock:
                item = next(counter, None)
            if item is None:
                return
            yield item

    out = Results()
    threads = [
        threading.Thread(
            target=client_loop,
            args=(ports[i % len(ports)], producers, shared(), out, i),
        )
        for i in range(clients)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out, time.perf_counter() - start


# --- the servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with {proc.returncode}")
        with suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.1)
    raise SystemExit("server did not start listening")


@contextmanager
def running(args: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with (
        log.open("ab") as sink,
        subprocess.Popen(args, stderr=sink, env={**os.environ, **SECRET}) as proc,  # noqa: S603
    ):
        try:
            wait_for_port(port, proc)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def ticketd(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ticketing", "--config", str(config), *args]


def serve_sink(port: int) -> None:
    """The floor: aiosmtpd that accepts everything and does nothing (run as a subprocess)."""
    from aiosmtpd.controller import Controller

    class Nothing:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 2.0.0 Ok"

    controller = Controller(Nothing(), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


# --- the database -------------------------------------------------------------------------------


@contextmanager
def database(target: str, folder: Path) -> Iterator[str]:
    """A fresh database URL: a SQLite file in ``folder`` or a new PostgreSQL database."""
    if target == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    name = f"ticketd_bench_{uuid.uuid4().hex[:8]}"
    admin = make_url(target).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(target).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


def write_config(
    folder: Path,
    url: str,
    port: int,
    name: str = "config.toml",
    workers: int | str = 0,
    spool: bool = False,
) -> Path:
    config = folder / name
    # all the clients connect from 127.0.0.1: more than max_sessions_per_client lets in;
    # and each producer escalates more often in a run than the hourly abuse limit allows
    config.write_text(
        f'[database]\nurl = "{url}"\n[smtp]\nport = {port}\nworkers = {_toml(workers)}\n'
        f"spool = {'true' if spool else 'false'}\n"
        f'spool_dir = "{folder / ("spool-" + name)}"\nmax_sessions_per_client = 1000\n'
        f'[outbound]\nmaildir = "{folder / "sent"}"\n'
        "[limits]\nnew_incidents_per_sender_hour = 1000000\n",
        encoding="utf-8",
    )
    return config


def _toml(workers: int | str) -> str:
    return f'"{workers}"' if isinstance(workers, str) else str(workers)


def prepare(folder: Path, url: str, port: int, producers: int, workers: int | str = 0) -> Path:
    """Config, schema and roster, through the real command line."""
    config = write_config(folder, url, port, workers=workers)
    roster = folder / "roster.csv"
    rows = [",".join(producer(i)) for i in range(producers)]
    roster.write_text("npn,name,email\n" + "\n".join(rows) + "\n", encoding="utf-8")
    env = {**os.environ, **SECRET}
    subprocess.run(ticketd(config, "init"), check=True, capture_output=True, env=env)  # noqa: S603
    subprocess.run(  # noqa: S603
        ticketd(config, "producers", "import", str(roster)),
        check=True,
        capture_output=True,
        env=env,
    )
    return config


def stored(url: str) -> dict[str, int]:
    engine = create_db_engine(DatabaseConfig(url=url))
    with engine.connect() as conn:
        counts = {
            table: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608
            for table in ("messages", "incidents", "outbox")
        }
    engine.dispose()
    return counts


# --- the run ------------------------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float | None:
    """The ``q`` quantile of ``ordered`` seconds, in milliseconds (nearest rank)."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def summary(name: str, out: Results, seconds: float) -> dict[str, Any]:
    lat = sorted(out.latencies)
    pick = partial(percentile, lat)
    sent = sum(out.codes.values())
    return {
        "target": name,
        "messages": sent,
        "seconds": round(seconds, 2),
        "per_second": round(sent / seconds, 1),
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "max_ms": round(lat[-1] * 1000, 1) if lat else None,
        "codes": dict(out.codes),
    }


@contextmanager
def daemons(
    folder: Path, url: str, ports: list[int], workers: int | str, spool: bool = False
) -> Iterator[list[int]]:
    """One ``ticketd serve`` per port, all on the same database."""
    with ExitStack() as stack:
        pids = []
        for i, port in enumerate(ports):
            config = write_config(folder, url, port, f"config{i}.toml", workers, spool)
            log = folder / f"serve{i}.log"
            pids.append(stack.enter_context(running(ticketd(config, "serve"), port, log)).pid)
        yield pids


def process_family(pid: int) -> list[int]:
    """``pid`` and its children (the worker processes)."""
    tasks = Path(f"/proc/{pid}/task").glob("*/children")  # a thread's children are its own
    return [pid, *(int(c) for task in tasks for c in task.read_text().split())]


@dataclass(frozen=True)
class CpuSeconds:
    """CPU the daemons (their own process) and their workers have used so far."""

    daemon_user: float = 0.0
    daemon_system: float = 0.0
    workers_user: float = 0.0
    workers_system: float = 0.0

    @property
    def total(self) -> float:
        return self.daemon_user + self.daemon_system + self.workers_user + self.workers_system

    def __sub__(self, other: CpuSeconds) -> CpuSeconds:
        return CpuSeconds(
            self.daemon_user - other.daemon_user,
            self.daemon_system - other.daemon_system,
            self.workers_user - other.workers_user,
            self.workers_system - other.workers_system,
        )


def cpu_seconds(pids: list[int]) -> CpuSeconds:
    """User and system CPU of the daemons and of their workers (``/proc/PID/stat``)."""
    ticks = [0, 0, 0, 0]
    for parent in pids:
        for pid in process_family(parent):
            with suppress(FileNotFoundError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                worker = 2 if pid != parent else 0
                ticks[worker] += int(fields[11])
                ticks[worker + 1] += int(fields[12])
    return CpuSeconds(*(t / os.sysconf("SC_CLK_TCK") for t in ticks))


def recorded(url: str) -> int:
    """Messages recorded so far (a read-only transaction: it never waits for the writers)."""
    engine = create_db_engine(DatabaseConfig(url=url))
    try:
        with transaction(engine, readonly=True) as session:
            return int(session.execute(text("SELECT count(*) FROM messages")).scalar_one())
    finally:
        engine.dispose()


def wait_recorded(url: str, count: int, timeout: float = 600) -> float:
    """Block until ``count`` messages are recorded; the moment it happened (perf_counter)."""
    deadline = time.monotonic() + timeout
    while recorded(url) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {recorded(url)} of {count} messages recorded")
        time.sleep(0.05)
    return time.perf_counter()


def bench_daemon(args: argparse.Namespace, folder: Path, roster: list[Producer]) -> dict[str, Any]:
    ports = [free_port() for _ in range(args.instances)]
    with database(args.db, folder) as url:
        prepare(folder, url, ports[0], len(roster))
        with daemons(folder, url, ports, args.workers, args.spool) as pids:
            load(ports, roster, args.clients, args.warmup)
            wait_recorded(url, args.warmup)
            learn_incidents(url, roster)
            cpu = cpu_seconds(pids)
            started = time.perf_counter()
            out, seconds = load(ports, roster, args.clients, args.messages)
            done = wait_recorded(url, args.warmup + out.codes[250]) - started
            cpu = cpu_seconds(pids) - cpu
            time.sleep(2)  # let the outbox dispatcher catch up before counting
        kind = args.db.split(":")[0]
        spooled = ", spooled" if args.spool else ""
        mode = f"{args.workers} workers{spooled}" if args.workers else "in-process"
        result = summary(f"ticketd ({kind}, {args.instances} daemon, {mode})", out, seconds)
        result["recorded_seconds"] = round(done, 2)
        result["recorded_per_second"] = round(out.codes[250] / done, 1)
        per_message = partial(_ms_per, args.messages)
        result["daemon_cpu_ms_per_message"] = per_message(cpu.total)
        result["daemon_cores_used"] = round(cpu.total / done, 2)
        result["cpu_split_ms_per_message"] = {
            "daemon_user": per_message(cpu.daemon_user),
            "daemon_system": per_message(cpu.daemon_system),
            "workers_user": per_message(cpu.workers_user),
            "workers_system": per_message(cpu.workers_system),
        }
        result["stored"] = stored(url)
        result["warnings"] = warnings(folder)
    return result


def _ms_per(messages: int, seconds: float) -> float:
    return round(seconds * 1000 / messages, 2)


def warnings(folder: Path) -> dict[str, int]:
    """Why the daemons refused or failed: their WARNING/ERROR lines, counted by reason."""
    found: Counter[str] = Counter()
    for log in folder.glob("serve*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if " WARNING " in line or " ERROR " in line:
                found[re.sub(r"\d+", "N", line.split(" ", 3)[-1])[:100]] += 1
    return dict(found.most_common(5))


def bench_sink(args: argparse.Namespace, folder: Path, roster: list[Producer]) -> dict[str, Any]:
    port = free_port()
    with running([sys.executable, __file__, "--serve-sink", str(port)], port, folder / "sink.log"):
        load([port], roster, args.clients, args.warmup)
        out, seconds = load([port], roster, args.clients, args.messages)
    return summary("aiosmtpd sink (floor)", out, seconds)


def workers_option(value: str) -> int | str:
    return value if value == "auto" else int(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL server URL")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--producers", type=int, default=200)
    parser.add_argument(
        "--instances", type=int, default=1, help="daemons on one database, clients spread over them"
    )
    parser.add_argument(
        "--workers",
        type=workers_option,
        default="auto",
        help='[smtp] workers: "auto" (the shipped default), N, or 0 (the daemon itself)',
    )
    parser.add_argument(
        "--spool", action="store_true", help="[smtp] spool = true: 250 once spooled"
    )
    parser.add_argument("--no-sink", action="store_true", help="skip the aiosmtpd floor")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sink:
        serve_sink(args.serve_sink)
        return
    roster = [Producer(*producer(i)) for i in range(args.producers)]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="smtp_bench_") as tmp:
        results = [bench_daemon(args, Path(tmp), roster)]
        if not args.no_sink:
            results.append(bench_sink(args, Path(tmp), roster))
    report(results, load_before, os.getloadavg(), args.json)


def report(
    results: list[dict[str, Any]],
    before: tuple[float, ...],
    after: tuple[float, ...],
    as_json: bool,
) -> None:
    loads = {
        "load_before": [round(x, 2) for x in before],
        "load_after": [round(x, 2) for x in after],
    }
    if len(results) == 2:
        loads["ratio_to_floor"] = round(results[0]["per_second"] / results[1]["per_second"], 3)
    if as_json:
        print(json.dumps({"results": results, **loads}, indent=2))
        return
    for r in results:
        print(
            f"{r['target']:<38} {r['messages']:>6} msgs {r['seconds']:>7.2f} s "
            f"{r['per_second']:>8.1f} msg/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
            f"max {r['max_ms']} ms  codes {r['codes']}"
        )
        if "stored" in r:
            print(
                f"{'':<38} all recorded after {r['recorded_seconds']} s: "
                f"{r['recorded_per_second']} msg/s end to end"
            )
            print(
                f"{'':<38} daemon CPU {r['daemon_cpu_ms_per_message']} ms/msg, "
                f"{r['daemon_cores_used']} cores; stored: {r['stored']}; warnings: {r['warnings']}"
            )
            split = ", ".join(f"{k} {v}" for k, v in r["cpu_split_ms_per_message"].items())
            print(f"{'':<38} CPU ms/msg: {split}")
    print(json.dumps(loads))


if __name__ == "__main__":
    main()
