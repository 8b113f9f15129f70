"""Batches handed to the worker processes by a caller in the daemon that waits for them:
the IMAP pollers, when ``[smtp] workers`` ≥ 1 (``intake/imap/poller.py``).

    poller thread (daemon)                          worker process (intake/workers.py)
    WorkerPool.record(raws) --- RecordJob -->  queue --> record_job: one commit per job
              waits (Answers)  <-- JobResult --- reports -- a verdict per message

The raw bytes travel over the pool's queue, never through the spool: IMAP mail
is not written to disk unscreened.  A verdict comes back without its exception
(it may not pickle, and its text may quote the message; the worker logged it as
``IntakePipeline.judge`` would), so the poller maps it as if it had judged the
message itself.

A caller never waits for ever.  A worker writes the number of the job it takes
into shared memory before it starts it, so when it dies the daemon answers that
job ``WORKER_DIED`` (a defect of each of its messages: they stay in the mailbox,
and one that keeps killing workers is set aside after its attempts).  A job not
answered by its deadline is ``temporary`` for each message (the round stops and
backs off), and a worker does not start a job past its deadline: its caller has
gone, and the messages wait in the mailbox for the next round.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from ticketing.intake.spooled import record_batch
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import Outcome, RawMessage
from ticketing.pipeline.verdict import Verdict, VerdictKind, log_defect, verdict_of

__all__ = [
    "WORKER_DIED",
    "Answers",
    "BatchRecorder",
    "JobResult",
    "Pending",
    "RecordJob",
    "SentBatch",
    "job_slices",
    "record_job",
    "record_jobs",
]

log = logging.getLogger(__name__)

WORKER_DIED = "the intake worker recording it died"


class BatchRecorder(Protocol):
    """What records a poller's batch elsewhere (``WorkerPool``): every message's verdict,
    in order; ``alone``, the indices of messages to record apart from the others.
    ``send`` hands the batch over and returns at once, so that the caller can fetch the
    next while this one is recorded; ``record`` is ``send`` and its verdicts."""

    def record(self, raws: Sequence[RawMessage], alone: Collection[int] = ()) -> list[Verdict]: ...

    def send(self, raws: Sequence[RawMessage], alone: Collection[int] = ()) -> SentBatch: ...


@dataclass(frozen=True)
class RecordJob:
    """Messages one worker records with one commit, for a caller that waits."""

    number: int  # from 1: 0 in the pool's shared memory means "no job"
    raws: tuple[RawMessage, ...]
    # time.monotonic() (CLOCK_MONOTONIC: one clock for every process of the host)
    deadline: float


@dataclass(frozen=True)
class JobResult:
    number: int
    verdicts: tuple[Verdict, ...]  # without their exceptions


@dataclass
class Pending:
    """A job handed out, and its verdicts once answered (``done`` set)."""

    job: RecordJob
    done: threading.Event = field(default_factory=threading.Event)
    verdicts: tuple[Verdict, ...] = ()


@dataclass(frozen=True)
class SentBatch:
    """A caller's batch, handed out as jobs of the messages at ``slices``' indices."""

    answers: Answers
    slices: list[list[int]]
    pending: list[Pending]

    def verdicts(self) -> list[Verdict]:
        """Every message's verdict, in the batch's order, once each job is answered."""
        found: dict[int, Verdict] = {}
        for part, answered in zip(self.slices, self.answers.wait(self.pending), strict=True):
            found.update(zip(part, answered, strict=True))
        return [found[index] for index in range(len(found))]


class Answers:
    """The jobs handed out whose callers wait, by number; safe to share between threads.
    Each job is answered once: by its worker, by the watcher that saw the worker die, by
    its deadline, or by ``close`` — whichever comes first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._open: dict[int, Pending] = {}
        self._closed = ""  # why no job is taken any more ("": jobs are taken)

    def open(self, raws: Sequence[RawMessage], deadline: float) -> Pending:
        """A job of ``raws`` to hand out (already answered when the pool is closed)."""
        with self._lock:
            pending = Pending(RecordJob(next(self._numbers), tuple(raws), deadline))
            if not self._closed:
                self._open[pending.job.number] = pending
                return pending
        _set(pending, _each(len(raws), "temporary", self._closed))
        return pending

    def answer(self, result: JobResult) -> None:
        pending = self._pop(result.number)
        if pending is not None:
            _set(pending, result.verdicts)

    def fail(self, number: int, kind: VerdictKind, reason: str) -> None:
        """Answer job ``number`` (if still open) with ``kind`` for each of its messages."""
        pending = self._pop(number)
        if pending is not None:
            _set(pending, _each(len(pending.job.raws), kind, reason))

    def close(self, reason: str) -> None:
        """Answer every open job ``temporary``, and every later one at once (the pool stops)."""
        with self._lock:
            self._closed = reason
            numbers = list(self._open)
        for number in numbers:
            self.fail(number, "temporary", reason)

    def wait(self, pending: Sequence[Pending]) -> list[tuple[Verdict, ...]]:
        """Each job's verdicts, waiting for each until its deadline at most."""
        for each in pending:
            if not each.done.wait(max(each.job.deadline - time.monotonic(), 0.0)):
                self.fail(each.job.number, "temporary", "the intake workers did not answer in time")
                each.done.wait()  # set by whoever answered it: this thread, or one just before
        return [each.verdicts for each in pending]

    def _pop(self, number: int) -> Pending | None:
        with self._lock:
            return self._open.pop(number, None)


def _set(pending: Pending, verdicts: tuple[Verdict, ...]) -> None:
    pending.verdicts = verdicts
    pending.done.set()


def _each(count: int, kind: VerdictKind, reason: str) -> tuple[Verdict, ...]:
    return (Verdict(kind, reason=reason),) * count


def job_slices(
    sizes: Sequence[int], alone: Collection[int], per_job: int, max_bytes: int
) -> list[list[int]]:
    """The indices of messages of ``sizes`` bytes, in order, in jobs of at most ``per_job``
    messages and ``max_bytes`` (a bigger message alone); those in ``alone`` each apart."""
    apart = frozenset(alone)
    jobs: list[list[int]] = []
    job: list[int] = []
    size = 0
    for index, length in enumerate(sizes):
        if job and (index in apart or len(job) >= per_job or size + length > max_bytes):
            jobs.append(job)
            job, size = [], 0
        job.append(index)
        size += length
        if index in apart:
            jobs.append(job)
            job, size = [], 0
    if job:
        jobs.append(job)
    return jobs


def record_job(pipeline: IntakePipeline, job: RecordJob) -> JobResult:
    """In a worker: ``job``'s messages recorded (one commit when it can), a verdict each."""
    return record_jobs(pipeline, [job])[0]


def record_jobs(pipeline: IntakePipeline, jobs: Sequence[RecordJob]) -> list[JobResult]:
    """In a worker: the messages of several jobs recorded together (one commit when they
    can: the SMTP sessions' single messages waiting at once), each job answered apart."""
    raws = [raw for job in jobs for raw in job.raws]
    results = iter(record_batch(pipeline, raws))
    answers = []
    for job in jobs:
        verdicts = tuple(_verdict(raw, next(results)) for raw in job.raws)
        answers.append(JobResult(job.number, verdicts))
    return answers


def _verdict(raw: RawMessage, result: Outcome | Exception) -> Verdict:
    """The verdict the caller gets: the defect logged here (where its traceback is), the
    exception kept here."""
    verdict = verdict_of(result)
    if verdict.kind == "defect" and verdict.error is not None:
        log_defect(log, "intake of a %s message failed", raw.source, error=verdict.error)
    return replace(verdict, error=None)
