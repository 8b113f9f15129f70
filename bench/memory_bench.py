"""Peak memory of the serving daemon while it takes one very large message.

    .venv/bin/python bench/memory_bench.py                     # 25 MB text body, then attachment
    .venv/bin/python bench/memory_bench.py --kind text --size-mb 25
    .venv/bin/python bench/memory_bench.py --via ingest        # ``ticketd ingest`` instead
    .venv/bin/python bench/memory_bench.py --workers auto      # recorded by a worker, as shipped

``--via serve`` (the default) starts a real ``ticketd serve`` (fresh SQLite database,
embedded default mailboxes and PII policies), sends one small message to warm it up,
reads ``VmRSS`` from ``/proc/PID/status``, sends the big message over SMTP and reads
``VmHWM`` (the peak resident set of the process's whole life) once the reply came.
``--via ingest`` pipes the message to ``ticketd ingest`` and reads the peak from
``getrusage(RUSAGE_CHILDREN)``: the largest child so far, so with ``--kind both`` the
second figure holds only when it is above the first (run one kind per invocation to be
sure). Each kind of message gets its own daemon, so a ``serve`` peak belongs to one message.
With ``--workers N`` (or ``auto``, as shipped) a worker process records the message; the
peak is read once it has, for the daemon and each worker: ``peak_mib`` is the largest,
``total_peak_mib`` their sum (every process at its own peak: an upper bound of the whole).

Kinds: ``text`` is a plain-text body of producer sentences (what the PII guard scans);
``attachment`` is a short body and a base64 PDF-like attachment (stored or dropped, never
scanned); both are ``--size-mb`` million bytes on the wire.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from email.utils import make_msgid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from smtp_bench import (
    SECRET,
    SENTENCES,
    free_port,
    prepare,
    process_family,
    running,
    stored,
    ticketd,
    workers_option,
)

HEADERS = (
    'From: "Ana Alvarez" <ana.0@brokers.example>\r\n'
    "To: escalations@exchange.example\r\n"
    "Subject: Escalated Case: Enrollment.PID #:174097\r\n"
    "Date: Thu, 26 Nov 2026 15:00:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
)


def text_message(size: int) -> bytes:
    """Producer prose, line after line, up to ``size`` bytes on the wire."""
    rng = random.Random(25)
    head = f"{HEADERS}Message-ID: {make_msgid(domain='brokers.example')}\r\n"
    head += "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    lines, total = [head.encode()], len(head)
    while total < size:
        line = f"{' '.join(rng.sample(SENTENCES, 4))} Case {rng.randint(1, 10**6)}.\r\n".encode()
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size].rsplit(b"\r\n", 1)[0] + b"\r\n"


def attachment_message(size: int) -> bytes:
    """A short note and one binary attachment, base64 in 76-character lines."""
    boundary = "bench-boundary-25"
    payload = os.urandom(int(size * 0.74))
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    head = (
        f"{HEADERS}Message-ID: {make_msgid(domain='brokers.example')}\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "The client's documents are attached.\r\n\r\n"
        f"--{boundary}\r\nContent-Type: application/pdf; name=documents.pdf\r\n"
        "Content-Disposition: attachment; filename=documents.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    return head + encoded + f"\r\n--{boundary}--\r\n".encode()


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in MiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) // 1024
    return values


def smtp_send(port: int, raw: bytes, timeout: float) -> tuple[int, str, float]:
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as client:
        client.ehlo("mta.brokers.example")
        client.mail("ana.0@brokers.example", [f"SIZE={len(raw)}"])
        client.rcpt("escalations@exchange.example")
        code, reply = client.data(raw)
    return code, reply.decode(errors="replace")[:80], time.perf_counter() - start


def via_serve(folder: Path, raw: bytes, timeout: float, workers: int | str = 0) -> dict[str, Any]:
    port = free_port()
    url = f"sqlite:///{folder / 'memory.db'}"
    config = prepare(folder, url, port, 10, workers)
    with running(ticketd(config, "serve"), port, folder / "serve.log") as proc:
        smtp_send(port, text_message(2_000), timeout)
        if workers:
            _wait_recorded(url, 1, timeout)
        before = proc_status(proc.pid)
        started = time.perf_counter()
        code, reply, _ = smtp_send(port, raw, timeout)
        if workers:  # a worker recorded it (or records it now, with a spool)
            _wait_recorded(url, 2, timeout)
        seconds = time.perf_counter() - started
        peaks = {pid: proc_status(pid) for pid in process_family(proc.pid)}
    result: dict[str, Any] = {
        "rss_before_mib": before["VmRSS"],
        "peak_before_mib": before["VmHWM"],
        "peak_mib": max(p["VmHWM"] for p in peaks.values()),
        "rss_after_mib": peaks[proc.pid]["VmRSS"],
        "reply": f"{code} {reply}",
        "seconds": round(seconds, 1),
    }
    if workers:
        result["daemon_peak_mib"] = peaks[proc.pid]["VmHWM"]
        result["worker_peaks_mib"] = [p["VmHWM"] for pid, p in peaks.items() if pid != proc.pid]
        result["total_peak_mib"] = sum(p["VmHWM"] for p in peaks.values())
    return result


def _wait_recorded(url: str, messages: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while stored(url)["messages"] < messages:
        if time.monotonic() > deadline:
            raise TimeoutError("the workers did not record the message")
        time.sleep(0.2)


def via_ingest(folder: Path, raw: bytes, timeout: float) -> dict[str, Any]:
    config = prepare(folder, f"sqlite:///{folder / 'memory.db'}", free_port(), 10)
    env = {**os.environ, **SECRET}
    start = time.perf_counter()
    done = subprocess.run(  # noqa: S603 (our own interpreter)
        ticketd(config, "ingest", "--mailbox", "escalations"),
        input=raw,
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "peak_mib": peak_kib // 1024,
        "exit": done.returncode,
        "stderr": done.stderr.decode(errors="replace").strip()[-120:],
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("text", "attachment", "both"), default="both")
    parser.add_argument("--size-mb", type=float, default=25.0, help="million bytes on the wire")
    parser.add_argument("--via", choices=("serve", "ingest"), default="serve")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--workers",
        type=workers_option,
        default=0,
        help='[smtp] workers of the daemon (serve only): N or "auto"',
    )
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    size = int(args.size_mb * 1_000_000)
    kinds = ("text", "attachment") if args.kind == "both" else (args.kind,)
    for kind in kinds:
        raw = text_message(size) if kind == "text" else attachment_message(size)
        load = os.getloadavg()
        with tempfile.TemporaryDirectory(prefix="memory_bench_") as tmp:
            try:
                if args.via == "serve":
                    result = via_serve(Path(tmp), raw, args.timeout, args.workers)
                else:
                    result = via_ingest(Path(tmp), raw, args.timeout)
            except (TimeoutError, subprocess.TimeoutExpired, OSError) as exc:
                result = {"error": f"{type(exc).__name__}: {exc}"}
        result.update(
            kind=kind,
            via=args.via,
            workers=args.workers,
            bytes=len(raw),
            load_before=[round(x, 2) for x in load],
        )
        result["load_after"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
