"""Mail through a real Postfix in front of ticketd: its ``pipe`` to ``ticketd ingest`` with
the lines of deploy/postfix/ as written, LMTP over ``[lmtp] socket``, and SMTP relay.

    .venv/bin/python bench/postfix_bench.py                     # all three, SQLite, 500 each
    .venv/bin/python bench/postfix_bench.py --transport pipe --messages 300 --json
    .venv/bin/python bench/postfix_bench.py --db postgresql://postgres@127.0.0.1:5432/test

Each transport gets a fresh database (a SQLite file, or a new PostgreSQL database dropped
at the end), roster and ``ticketd serve`` (``--workers``, "auto" as shipped), and a
private Postfix (tests/postfix.py) that routes the mailbox domain to it:

- ``pipe``: deploy/postfix/master.cf's ``ticketd`` service (``maxproc`` 4, flags, argv)
  and deploy/postfix/main.cf's ``ticketd_*`` limits, only the paths and the user put in,
  as tests/test_postfix.py does; each ``ingest`` hands its message to the daemon;
- ``lmtp``: deploy's ``ticketd-lmtp`` service to the daemon's socket (the daemon runs in
  Postfix's group, so that Postfix's lmtp client may connect, as in the tests);
- ``smtp``: Postfix's smtp client to the daemon's SMTP port.

XFORWARD is on for LMTP and SMTP (deploy/postfix/main.cf) and the pipe passes
``--client-address``: ticketd judges the producer's mail system (127.0.0.2), not
Postfix, so every message is authenticated by its DKIM signature against a private DNS
server (tests/dns_server.py), as the daemon would judge it in production.  The daemon
and the pipe run as an unprivileged user (``SERVICE_USER``, the Postfix tests' own)
with a ``ticketd`` that user can run (``other_users_venv``), and read the token secret
from ``[security] generated_secret_file`` as a deployed desk does.

``--clients`` SMTP sessions from 127.0.0.2 (a producer's mail system) submit
``bench/smtp_bench.py``'s ~2 KB producer mail to Postfix's port, both mailboxes, after a
warm-up that is not counted.  Throughput is the accepted messages over the time from
the first submission until the last is recorded in ticketd's database; then the
queue must drain with nothing deferred or bounced (counted from Postfix's log).  The
delivery time of each message is Postfix's own: the last of its ``delays=a/b/c/d``
(the pipe's run, or the LMTP/SMTP transaction).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import random
import re
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.smtp_bench import (
    Producer,
    compose,
    cpu_seconds,
    database,
    free_port,
    learn_incidents,
    prepare,
    producer,
    stored,
    wait_recorded,
    warnings,
    workers_option,
)
from tests.dns_server import PRODUCER_DOMAIN, AuthDns
from tests.postfix import (
    OUTSIDE_CLIENT,
    PostfixServer,
    deployed_pipe_entry,
    master_entry,
    other_users_venv,
    postfix_binary,
    service_user,
    serving_as,
    settings_named,
)
from ticketing.config import DatabaseConfig
from ticketing.store.db import create_db_engine

TRANSPORTS = ("pipe", "lmtp", "smtp")
TARGET_PER_SECOND = 20.0  # issue 24: through a real Postfix pipe on 2 cores
# The Postfix tests' user: a machine that ran them gets no second system user.
SERVICE_USER = "ticketd-mta-test"
DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "postfix"
# All that Postfix's pipe gives its command, and so all the daemon gets: no token secret
# in the environment (both read [security] generated_secret_file).
DELAYS = re.compile(r"delays=[\d.]+/[\d.]+/[\d.]+/([\d.]+)")


@dataclass(frozen=True)
class Host:
    """What every transport's run shares: the service user, a ``ticketd`` it can run,
    and the DNS server that vouches for the producers' signatures."""

    user: pwd.struct_passwd
    command: Path
    dns: AuthDns


@dataclass(frozen=True)
class Desk:
    """One transport's ticketd: its folder (the service user's), config, database, port."""

    folder: Path
    config: Path
    url: str
    port: int

    @property
    def socket(self) -> Path:
        return self.folder / "var" / "lmtp.sock"  # [lmtp] socket's default


@dataclass(frozen=True)
class Mail:
    sender: str
    recipient: str
    raw: bytes


@dataclass(frozen=True)
class Submitted:
    """What Postfix answered the producers' sessions, and how long submitting took."""

    codes: Counter[int]
    seconds: float


# --- the service user's ticketd -----------------------------------------------------------------


@contextmanager
def host() -> Iterator[Host]:
    folder = Path(tempfile.mkdtemp(prefix="postfix_bench_venv_"))
    dns = AuthDns.start()
    try:
        command = other_users_venv(folder)
        if command is None:
            raise SystemExit("no /usr/bin/python3 of this Python's version for the pipe's user")
        yield Host(service_user(SERVICE_USER), command, dns)
    finally:
        dns.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def desk(args: argparse.Namespace, where: Host) -> Iterator[Desk]:
    """A fresh database, config and roster, all handed over to the service user."""
    # not under a 0700 folder: the service user and Postfix's lmtp client reach into it
    folder = Path(tempfile.mkdtemp(prefix="postfix_bench_desk_"))
    folder.chmod(0o755)
    try:
        with database(args.db, folder) as url:
            port = free_port()
            config = prepare(folder, url, port, args.producers, workers=args.workers)
            with config.open("a", encoding="utf-8") as out:
                out.write(f'[authentication]\nnameservers = ["{where.dns.nameserver}"]\n')
            hand_over(folder, where.user)
            yield Desk(folder, config, url, port)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def hand_over(folder: Path, user: pwd.struct_passwd) -> None:
    for item in (folder, *folder.rglob("*")):
        os.chown(item, user.pw_uid, user.pw_gid, follow_symlinks=False)


@contextmanager
def serving(where: Host, setup: Desk, group: int) -> Iterator[subprocess.Popen[bytes]]:
    """``ticketd serve`` as the service user, in ``group``, its stderr in serve.log."""
    log = setup.folder / "serve.log"
    try:
        with serving_as(where.user, group, where.command, setup.config, setup.port, log) as proc:
            yield proc
    except AssertionError as exc:  # it never listened
        raise SystemExit(f"{exc}\n{tail(log)}") from None


def tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


# --- Postfix, routed to one transport ------------------------------------------------------------


def routing(transport: str, where: Host, setup: Desk) -> tuple[str, str, str]:
    """The transport (main.cf's ``transport_maps`` value), master.cf services and main.cf
    settings for ``transport``: deploy/postfix's lines, this run's paths and user put in."""
    master = (DEPLOY / "master.cf").read_text()
    main = (DEPLOY / "main.cf").read_text()
    if transport == "pipe":
        return "ticketd:", deployed_pipe(master, where, setup), settings_named(main, "ticketd_")
    if transport == "lmtp":
        lmtp = master_entry(master, "ticketd-lmtp")
        return f"ticketd-lmtp:unix:{setup.socket}", lmtp, settings_named(main, "lmtp_")
    return f"smtp:[127.0.0.1]:{setup.port}", "", settings_named(main, "smtp_")


def deployed_pipe(master: str, where: Host, setup: Desk) -> str:
    try:
        return deployed_pipe_entry(master, where.user.pw_name, str(where.command), setup.config)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


@contextmanager
def postfix(transport: str, where: Host, setup: Desk) -> Iterator[PostfixServer]:
    # a folder of its own, 0755: Postfix's users must reach the queue
    root = Path(tempfile.mkdtemp(prefix="postfix_bench_mta_"))
    route, services, settings = routing(transport, where, setup)
    server = PostfixServer(root, route, services=services, settings=settings)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def daemon_group(transport: str, where: Host) -> int:
    """LMTP: Postfix's group, for its lmtp client to reach the 0660 socket (deploy/ adds
    postfix to the ticketd group instead; no system group changes here)."""
    return pwd.getpwnam("postfix").pw_gid if transport == "lmtp" else where.user.pw_gid


# --- the producers' mail ------------------------------------------------------------------------


def producers_mail(
    rng: random.Random, roster: list[Producer], count: int, dns: AuthDns
) -> list[Mail]:
    """``count`` messages of ``smtp_bench.compose``, DKIM-signed by the producers' domain;
    new escalations noted in ``Producer.queued`` for ``learn_incidents``."""
    mail = []
    for _ in range(count):
        who = rng.choice(roster)
        raw = compose(rng, who, reply_share=0.2, pii_share=0.05)
        headers = dict(
            line.split(": ", 1) for line in raw.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
        )
        if "In-Reply-To" not in headers:
            who.queued.append((headers["Subject"], headers["Message-ID"]))
        mail.append(Mail(who.address, headers["To"], dns.sign(raw, PRODUCER_DOMAIN)))
    return mail


def submit(port: int, mail: list[Mail], clients: int) -> Submitted:
    """``mail`` through ``clients`` concurrent SMTP sessions from a producer's system."""
    todo, codes, lock = iter(mail), Counter[int](), threading.Lock()

    def session() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120, source_address=OUTSIDE_CLIENT) as mta:
            mta.ehlo("mail.brokers.example")
            while True:
                with lock:
                    item = next(todo, None)
                if item is None:
                    return
                code = send_one(mta, item)
                with lock:
                    codes[code] += 1

    threads = [threading.Thread(target=session) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Submitted(codes, time.perf_counter() - started)


def send_one(mta: smtplib.SMTP, item: Mail) -> int:
    try:
        mta.sendmail(item.sender, [item.recipient], item.raw)
    except smtplib.SMTPRecipientsRefused as exc:
        return int(next(iter(exc.recipients.values()))[0])
    except smtplib.SMTPResponseException as exc:
        return int(exc.smtp_code)
    return 250


# --- one transport ------------------------------------------------------------------------------


def bench_transport(args: argparse.Namespace, where: Host, transport: str) -> dict[str, Any]:
    rng = random.Random(args.seed)  # the same mail for every transport
    roster = [Producer(*producer(i)) for i in range(args.producers)]
    load_before = os.getloadavg()
    with ExitStack() as stack:
        setup = stack.enter_context(desk(args, where))
        mta = stack.enter_context(postfix(transport, where, setup))
        daemon = stack.enter_context(serving(where, setup, daemon_group(transport, where)))
        warm = submit(mta.port, producers_mail(rng, roster, args.warmup, where.dns), args.clients)
        delivered(mta, setup, warm.codes[250], args.timeout)
        learn_incidents(setup.url, roster)
        mail = producers_mail(rng, roster, args.messages, where.dns)
        result = measure(args, mta, setup, daemon.pid, mail, warm.codes[250])
        result["stored"] = stored(setup.url)
        result["authenticated_by"] = authenticated_by(setup.url)
        result["daemon_warnings"] = warnings(setup.folder)
    result["load_before"] = [round(x, 2) for x in load_before]
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return {"transport": transport, **result}


def measure(
    args: argparse.Namespace,
    mta: PostfixServer,
    setup: Desk,
    daemon: int,
    mail: list[Mail],
    before: int,
) -> dict[str, Any]:
    """``mail`` submitted and recorded: the figures of the counted phase."""
    logged = len(mta.log(lines=0).splitlines())
    cpu, busy = cpu_seconds([daemon]), host_busy()
    started = time.perf_counter()
    sent = submit(mta.port, mail, args.clients)
    accepted = sent.codes[250]
    done = delivered(mta, setup, before + accepted, args.timeout) - started
    cpu, busy = cpu_seconds([daemon]) - cpu, host_busy() - busy
    drained = drain(mta, args.timeout) - started
    log = mta.log(lines=0).splitlines()
    return {
        "messages": len(mail),
        "codes": dict(sent.codes),
        "submitted_seconds": round(sent.seconds, 2),
        "recorded_seconds": round(done, 2),
        "msg_per_s": round(accepted / done, 1),
        "queue_empty_seconds": round(drained, 2),
        "delivery_seconds": delivery_times(log[logged:]),
        "deferred": sum("status=deferred" in line for line in log),
        "bounced": len(mta.bounces()),
        "daemon_cpu_ms_per_message": round(cpu.total * 1000 / max(accepted, 1), 1),
        "host_busy_cores": round(busy / done, 2),
    }


def authenticated_by(url: str) -> dict[str, int]:
    """How the messages' senders were vouched for: "verified" (SPF, DKIM, DMARC checked)
    when ticketd judged the producer's mail system (XFORWARD, the pipe's
    --client-address); "trusted_host" had it believed Postfix on 127.0.0.1."""
    engine = create_db_engine(DatabaseConfig(url=url))
    query = text("SELECT authentication, count(*) FROM messages GROUP BY authentication")
    try:
        with engine.connect() as conn:
            return {str(row[0]): int(row[1]) for row in conn.execute(query)}
    finally:
        engine.dispose()


def delivered(mta: PostfixServer, setup: Desk, count: int, timeout: float) -> float:
    """The moment the ``count``-th message was recorded; a clear stop when they do not come."""
    try:
        return wait_recorded(setup.url, count, timeout)
    except SystemExit as exc:
        raise SystemExit(stalled(mta, setup, str(exc))) from None


def drain(mta: PostfixServer, timeout: float) -> float:
    """The moment Postfix's queue was empty; a clear stop on a bounce or a stuck queue."""
    if not mta.wait_empty(timeout):
        raise SystemExit(stalled(mta, None, "Postfix's queue did not drain"))
    return time.perf_counter()


def stalled(mta: PostfixServer, setup: Desk | None, why: str) -> str:
    waiting = mta.queue()
    deferred = [m for m in waiting if m.deferred]
    reasons = Counter(reason for m in deferred for reason in m.reasons)
    lines = [
        f"{why}: {len(waiting)} in Postfix's queue, {len(deferred)} deferred "
        f"(Postfix retries them after minimal_backoff_time, 300 s), bounces: {mta.bounces()[:3]}",
        *(f"  {n} x {reason}" for reason, n in reasons.most_common(3)),
        "--- Postfix log (tail)",
        mta.log(lines=30),
    ]
    if setup is not None:
        lines += ["--- ticketd serve (tail)", tail(setup.folder / "serve.log")]
    return "\n".join(lines)


def delivery_times(log: list[str]) -> dict[str, float | None]:
    """Median and 90th percentile of the transmission part of Postfix's ``delays``: how
    long each pipe ran, or each LMTP/SMTP delivery took."""
    times = sorted(
        float(found.group(1))
        for line in log
        if "status=sent" in line and (found := DELAYS.search(line))
    )
    if not times:
        return {"p50": None, "p90": None}
    return {
        "p50": round(statistics.median(times), 3),
        "p90": round(times[min(len(times) - 1, int(len(times) * 0.9))], 3),
    }


def host_busy() -> float:
    """Seconds of CPU the whole host has been busy (every core, from /proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# --- the run ------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--transport",
        action="append",
        choices=TRANSPORTS,
        help="pipe, lmtp or smtp (repeatable; default: all three, one after another)",
    )
    parser.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL server URL")
    parser.add_argument(
        "--workers",
        type=workers_option,
        default="auto",
        help='[smtp] workers of the daemon: "auto" (as shipped), N, or 0',
    )
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8, help="concurrent SMTP sessions")
    parser.add_argument("--warmup", type=int, default=20, help="messages first, not counted")
    parser.add_argument("--producers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds to wait for the mail to arrive"
    )
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if postfix_binary() is None or os.geteuid() != 0:
        raise SystemExit("needs Postfix installed (make services) and root (postfix start)")
    load_before = os.getloadavg()
    with host() as where:
        results = [bench_transport(args, where, t) for t in args.transport or TRANSPORTS]
    report(
        {
            "results": results,
            "cpus": os.cpu_count(),
            "workers": args.workers,
            "db": args.db.split(":")[0],
            "target_msg_per_s": TARGET_PER_SECOND,
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
        args.json,
    )


def report(run: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(run, indent=2))
        return
    for r in run["results"]:
        print(
            f"{r['transport']:<5} {r['messages']} msgs: {r['msg_per_s']} msg/s until recorded "
            f"({r['recorded_seconds']} s; submitted in {r['submitted_seconds']} s, queue empty "
            f"after {r['queue_empty_seconds']} s); codes {r['codes']}"
        )
        print(
            f"{'':<5} delivery s {r['delivery_seconds']}; deferred {r['deferred']}, bounced "
            f"{r['bounced']}; daemon CPU {r['daemon_cpu_ms_per_message']} ms/msg; host busy "
            f"{r['host_busy_cores']} cores; load {r['load_before']} -> {r['load_after']}"
        )
        print(
            f"{'':<5} stored {r['stored']}; authenticated by {r['authenticated_by']}; "
            f"daemon warnings {r['daemon_warnings']}"
        )
    summary = {k: v for k, v in run.items() if k != "results"}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
