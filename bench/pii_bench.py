"""Latency of the PII guard on 2 KB producer messages, and engine start-up.

    .venv/bin/python bench/pii_bench.py [--messages 2000] [--spacy-model NAME] [--json]
                                        [--huge MB]

Messages are generated reproducibly (fixed seed, Faker's en_US data): a
greeting, escalation sentences with and without PII, a quoted earlier
message and a signature, cut to 2,048 characters.  Start-up is measured in a
fresh interpreter: importing ``pii_guard`` plus ``PiiGuard.build()``.
``--huge MB`` also scans and redacts one body of that many megabytes (the
messages above, repeated) in a fresh interpreter and reports its time and the
growth of peak RSS over the interpreter with the guard built.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

from faker import Faker

from pii_guard import GuardSettings, PiiGuard

SIZE = 2048
BUSINESS = [
    "Following up on incident {incident}; the consumer still shows as pending.",
    "Coverage effective {date} was cancelled on {date2}; APTC of ${amount} is missing.",
    "Person ID {pid} was terminated for non-payment although the binder was paid on {date}.",
    "The 1095-A for tax year 2025 lists the wrong SLCSP amount (${amount}).",
    "I called the hotline at 1-844-224-6761 and was told to email this address.",
    "Getting 'Error 500 - unable to load household' when I open the application.",
    "My NPN is {npn} and my authorization renewal is still pending.",
    "Can you please re-run the eligibility determination? The income changed in March.",
]
PERSONAL = [
    "My client {name} (DOB {dob}) was auto-terminated. Her SSN is {ssn}.",
    "Client moved to {street}, {city}, MD {zip} and her new number is {phone}.",
    "He was found eligible for Medicaid, MA ID {ma}, but the QHP was never ended.",
    "Please email the client directly at {email} if you need documents.",
    "Household: {name} (primary), {name2} (spouse).",
    "The premium was drafted from account {account}, routing 052001633.",
    "the consumer, {lower}, says he never asked to cancel.",
    "Medicare MBI 1EG4-TE5-MK73 is active so the QHP should end {date}.",
]


def message(fake: Faker, rng: random.Random) -> str:
    lines = ["Hi team,\n"]
    while sum(len(x) for x in lines) < SIZE:
        template = rng.choice(PERSONAL if rng.random() < 0.3 else BUSINESS)
        lines.append(template.format(**_values(fake, rng)) + " ")
        if rng.random() < 0.15:
            lines.append("\n\n> On Mon, an earlier message said:\n> ")
    lines.append(f"\n\nThanks,\n{fake.name()}\nNPN {rng.randint(10**6, 10**8)}\n")
    return "".join(lines)[:SIZE]


def _values(fake: Faker, rng: random.Random) -> dict[str, object]:
    return {
        "incident": f"{rng.randint(250101, 261231)}-{rng.randint(0, 9999999):07d}",
        "date": fake.date_between("-1y", "+1y").strftime("%m/%d/%Y"),
        "date2": fake.date_between("-1y", "+1y").strftime("%m/%d/%Y"),
        "amount": f"{rng.uniform(10, 900):.2f}",
        "pid": rng.randint(100000, 999999),
        "npn": rng.randint(10**6, 10**9),
        "name": fake.name(),
        "name2": fake.name(),
        "lower": f"{fake.first_name()} {fake.last_name()}".lower(),
        "dob": fake.date_of_birth(minimum_age=18, maximum_age=80).strftime("%m/%d/%Y"),
        "ssn": fake.ssn(),
        "street": fake.street_address(),
        "city": fake.city(),
        "zip": fake.zipcode(),
        "phone": fake.numerify("(###) 555-####"),
        "ma": fake.numerify("###########"),
        "email": fake.free_email(),
        "account": fake.numerify("############"),
    }


def latencies(guard: PiiGuard, texts: list[str]) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per scan (CPU time is what a busy host cannot inflate)."""
    for text in texts[:20]:
        guard.scan(text)  # warm caches
    wall, cpu = [], []
    for text in texts:
        started, started_cpu = time.perf_counter(), time.thread_time()
        guard.scan(text)
        cpu.append((time.thread_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return sorted(wall), sorted(cpu)


def _percentile(values: list[float], fraction: float) -> float:
    return round(values[min(len(values) - 1, int(len(values) * fraction))], 2)


def startup(model: str | None) -> float:
    code = (
        "import time; t = time.perf_counter()\n"
        "from pii_guard import GuardSettings, PiiGuard\n"
        f"PiiGuard.build(GuardSettings(spacy_model={model!r}))\n"
        "print(time.perf_counter() - t)\n"
    )
    command = [sys.executable, "-c", code]  # our own interpreter and code
    runs = [float(subprocess.check_output(command)) for _ in range(3)]  # noqa: S603
    return statistics.median(runs)


def huge(megabytes: float, model: str | None) -> dict[str, float]:
    """Seconds and peak-RSS growth (MB) to scan and redact one body of ``megabytes``."""
    code = (
        "import json, resource, sys, time\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
        "import random; from faker import Faker; import pii_bench\n"
        "from pii_guard import GuardSettings, PiiGuard\n"
        f"guard = PiiGuard.build(GuardSettings(spacy_model={model!r}))\n"
        "fake, rng = Faker('en_US'), random.Random(6); Faker.seed(6)\n"
        "base = ''.join(pii_bench.message(fake, rng) for _ in range(50))\n"
        f"size = int({megabytes} * 1_000_000)\n"
        "text = (base * (size // len(base) + 1))[:size]\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "started = time.perf_counter()\n"
        "guard.redact(text, guard.scan(text))\n"
        "seconds = time.perf_counter() - started\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'huge_mb': size / 1e6, 'huge_s': round(seconds, 1),"
        " 'huge_rss_growth_mb': round((after - before) / 1024), 'huge_rss_mb': after // 1024}))\n"
    )
    output = subprocess.check_output([sys.executable, "-c", code])  # noqa: S603
    return dict(json.loads(output))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--spacy-model", default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--huge", type=float, default=0.0, help="also scan one body of MB")
    args = parser.parse_args()
    fake, rng = Faker("en_US"), random.Random(6)
    Faker.seed(6)
    texts = [message(fake, rng) for _ in range(args.messages)]
    guard = PiiGuard.build(GuardSettings(spacy_model=args.spacy_model))
    wall, cpu = latencies(guard, texts)
    result = {
        "messages": len(texts),
        "chars_mean": round(statistics.mean(len(t) for t in texts)),
        "p50_ms": _percentile(wall, 0.5),
        "p99_ms": _percentile(wall, 0.99),
        "cpu_p50_ms": _percentile(cpu, 0.5),
        "cpu_p99_ms": _percentile(cpu, 0.99),
        "max_ms": round(wall[-1], 2),
        "startup_s": round(startup(args.spacy_model), 2),
        "load_average": round(os.getloadavg()[0], 2),
    }
    if args.huge:
        result.update(huge(args.huge, args.spacy_model))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:12} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
