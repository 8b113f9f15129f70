"""The intake pipeline in-process, as a spool worker runs it: CPU per message.

No SMTP, no spool, no daemon: ``IntakePipeline.process_batch`` on the same ~2 KB
producer messages ``smtp_bench.py`` sends (a roster of 200, 5% with an SSN, PII
guard and auto-replies on, a fresh SQLite file), in batches as a worker takes
them.  Prints the CPU per message, and how much of it ran in the recording
transaction (the writers' turn, which SQLite writers take one at a time).

CPU time, not wall time, so two trees can run side by side on the two cores
and meet the same host noise:

    (cd ../old && ../main/.venv/bin/python ../main/bench/pipeline_bench.py) &
    .venv/bin/python bench/pipeline_bench.py; wait

The tree measured is the one in the current directory.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path[:0] = [os.getcwd(), str(Path(__file__).parent)]  # the tree in the current directory

import smtp_bench  # noqa: E402

from ticketing.config import load_config  # noqa: E402
from ticketing.intake.build import build_intake  # noqa: E402
from ticketing.pipeline.runner import IntakePipeline  # noqa: E402
from ticketing.pipeline.types import RawMessage  # noqa: E402
from ticketing.store.db import create_db_engine  # noqa: E402


class TurnClock:
    """CPU seconds spent in ``IntakePipeline._record_in`` (what the writers' turn holds)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        original: Callable[..., Any] = IntakePipeline._record_in

        def timed(pipeline: IntakePipeline, *args: Any) -> Any:
            started = time.process_time()
            try:
                return original(pipeline, *args)
            finally:
                self.seconds += time.process_time() - started

        IntakePipeline._record_in = timed  # type: ignore[method-assign,assignment]


def messages(count: int, rng: random.Random, boxes: tuple[str, str]) -> list[RawMessage]:
    roster = [smtp_bench.Producer(*smtp_bench.producer(i)) for i in range(200)]
    raws = []
    for _ in range(count):
        who = rng.choice(roster)
        raw = smtp_bench.compose(rng, who, 0.2, 0.05)
        box = boxes[1] if b"To: producer.operations@" in raw else boxes[0]
        raws.append(RawMessage(raw, "smtp", (box,), who.address, peer="127.0.0.1"))
    return raws


def run(pipeline: IntakePipeline, raws: list[RawMessage], batch: int) -> float:
    """CPU seconds per message."""
    started = time.process_time()
    for first in range(0, len(raws), batch):
        for result in pipeline.process_batch(raws[first : first + batch]):
            if isinstance(result, Exception):
                raise SystemExit(f"a message failed: {type(result).__name__}")
    return (time.process_time() - started) / len(raws)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16, help="messages a worker takes at once")
    args = parser.parse_args()
    os.environ.update(smtp_bench.SECRET)
    folder = Path(tempfile.mkdtemp(prefix="pipeline_bench_"))
    url = f"sqlite:///{folder / 'bench.db'}"
    config = load_config(smtp_bench.prepare(folder, url, 2525, 200)).config
    services = build_intake(config, create_db_engine(config.database), audit_templates=False)
    boxes = (config.mailboxes[0].name, config.mailboxes[1].name)
    rng = random.Random(7)
    run(services.pipeline, messages(args.warmup, rng, boxes), args.batch)
    clock = TurnClock()
    per_message = run(services.pipeline, messages(args.messages, rng, boxes), args.batch)
    turn = clock.seconds / args.messages
    print(
        f"{per_message * 1000:.2f} ms CPU a message, {turn * 1000:.2f} ms of it in the "
        f"recording transaction ({args.messages} messages, batches of {args.batch}, {os.getcwd()})"
    )


if __name__ == "__main__":
    main()
