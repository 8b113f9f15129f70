"""The daemon's timed jobs on one APScheduler: run, log, back off, never die.

Each job is a plain function run in the scheduler's thread pool (never on the
event loop).  A failure is logged — a ``StorageError`` as a warning, anything
else as an error naming only the exception type, whose text may quote mail —
and the job sits out its next runs for a doubling pause (``Backoff``) instead
of hammering a database that is down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from apscheduler.schedulers.background import BackgroundScheduler

from ticketing.backoff import Backoff
from ticketing.errors import StorageError
from ticketing.store.models import utcnow

__all__ = ["TimedJob", "timed_jobs"]

log = logging.getLogger(__name__)

_MAX_PAUSE_SECONDS = 300.0


@dataclass
class TimedJob:
    name: str
    work: Callable[[], object]
    interval: float
    backoff: Backoff = field(default_factory=lambda: Backoff(cap=_MAX_PAUSE_SECONDS))
    resume_at: float = 0.0  # monotonic: sitting out runs until then after a failure

    def __call__(self) -> None:
        if time.monotonic() < self.resume_at:
            return
        try:
            self.work()
        except StorageError as exc:
            self._pause(f"skipped: {exc}")
        except Exception as exc:  # noqa: BLE001  a job outlives any one bad run
            self._pause(f"failed ({type(exc).__name__})", error=True)
        else:
            self.backoff.succeeded()

    def _pause(self, why: str, *, error: bool = False) -> None:
        pause = max(self.backoff.failed(), self.interval) - self.interval
        self.resume_at = time.monotonic() + pause
        log.log(logging.ERROR if error else logging.WARNING, "%s %s", self.name, why)


def timed_jobs(jobs: list[TimedJob]) -> BackgroundScheduler:
    """A scheduler (not started) running each job every ``interval``, the first run at once
    (catching up after downtime); a run still going when the next is due is not doubled."""
    scheduler = BackgroundScheduler(timezone="UTC")
    for job in jobs:
        scheduler.add_job(
            job,
            "interval",
            seconds=job.interval,
            next_run_time=utcnow(),
            max_instances=1,
            coalesce=True,
            id=job.name,
            name=job.name,
        )
    return scheduler
