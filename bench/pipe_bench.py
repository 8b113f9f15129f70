"""``ticketd ingest`` as an MTA's pipe runs it: one new process a message.

    .venv/bin/python bench/pipe_bench.py                  # SQLite, 40 sequential, 400 at 20
    .venv/bin/python bench/pipe_bench.py --concurrency 20 --messages 1000 --workers 2

Three phases on one fresh database and roster (``bench/smtp_bench.py``'s producers
and ~2 KB mail), each pipe started with the venv's ``ticketd`` console script,
``--recipient``, ``--client-address 127.0.0.1`` (the MTA) and ``--sender``, the
message on stdin, exactly as ``deploy/postfix/master.cf`` runs it:

1. *alone*: no daemon; the pipe loads everything and records the message itself
   (wall time of each, one after another: the slow path);
2. *handed off*: ``ticketd serve`` running (``--workers``), so the pipe hands the
   message to it over ``[lmtp] socket`` (wall time of each, one after another);
3. *throughput*: ``--concurrency`` pipes at once, as Postfix's
   ``ticketd_destination_concurrency_limit`` lets them, until ``--messages`` are
   recorded (messages over the time from the first start to the last commit).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.smtp_bench import (
    SECRET,
    Producer,
    compose,
    database,
    free_port,
    prepare,
    producer,
    recorded,
    running,
    ticketd,
    wait_recorded,
)


def pipe_command(config: Path, who: Producer, recipient: str) -> list[str]:
    script = Path(sys.executable).with_name("ticketd")
    return [
        *((str(script),) if script.exists() else (sys.executable, "-m", "ticketing")),
        *("--config", str(config), "ingest"),
        *("--recipient", recipient, "--client-address", "127.0.0.1", "--helo", "mx.example"),
        *("--sender", who.address),
    ]


def one_pipe(config: Path, who: Producer, raw: bytes) -> tuple[int, float]:
    """Exit status and wall seconds of one ``ticketd ingest``."""
    recipient = raw.split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0].decode()
    started = time.perf_counter()
    result = subprocess.run(  # noqa: S603
        pipe_command(config, who, recipient),
        input=raw,
        capture_output=True,
        env={**os.environ, **SECRET},
        timeout=600,
    )
    if result.returncode:
        print(f"exit {result.returncode}: {result.stderr.decode().strip()}", file=sys.stderr)
    return result.returncode, time.perf_counter() - started


def sequential(config: Path, roster: list[Producer], count: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    walls = []
    for _ in range(count):
        who = rng.choice(roster)
        status, wall = one_pipe(config, who, compose(rng, who, 0.0, 0.1))
        if status == 0:
            walls.append(wall)
    walls.sort()
    return {
        "pipes": count,
        "recorded": len(walls),
        "median_s": round(statistics.median(walls), 3) if walls else None,
        "p90_s": round(walls[int(len(walls) * 0.9) - 1], 3) if walls else None,
    }


def concurrent(
    config: Path, url: str, roster: list[Producer], count: int, width: int
) -> dict[str, Any]:
    rng = random.Random(7)
    jobs = [(who, compose(rng, who, 0.0, 0.1)) for who in rng.choices(roster, k=count)]
    lock, statuses = threading.Lock(), []
    before = recorded(url)

    def worker() -> None:
        while True:
            with lock:
                if not jobs:
                    return
                who, raw = jobs.pop()
            status, _ = one_pipe(config, who, raw)
            with lock:
                statuses.append(status)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(width)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ok = statuses.count(0)
    done = wait_recorded(url, before + ok)
    return {
        "pipes": count,
        "concurrency": width,
        "exit_0": ok,
        "msg_per_s": round(ok / (done - started), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL server URL")
    parser.add_argument("--sequential", type=int, default=40, help="pipes one after another")
    parser.add_argument("--messages", type=int, default=400, help="pipes in the throughput phase")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="the daemon's [smtp] workers")
    parser.add_argument("--producers", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    roster = [Producer(*producer(i)) for i in range(args.producers)]
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="pipe_bench_") as tmp,
        database(args.db, Path(tmp)) as url,
    ):
        folder, port = Path(tmp), free_port()
        config = prepare(folder, url, port, args.producers, workers=args.workers)
        results: dict[str, Any] = {"alone": sequential(config, roster, args.sequential, 1)}
        with running(ticketd(config, "serve"), port, folder / "serve.log"):
            results["handed_off"] = sequential(config, roster, args.sequential, 2)
            results["throughput"] = concurrent(config, url, roster, args.messages, args.concurrency)
    results["load"] = {"before": load_before, "after": os.getloadavg()}
    results["cpus"] = os.cpu_count()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, figures in results.items():
        print(f"{name:12} {figures}")


if __name__ == "__main__":
    main()
