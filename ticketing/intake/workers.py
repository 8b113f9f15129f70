"""Worker processes that record spooled SMTP mail and the IMAP pollers' batches
(``[smtp] workers`` ≥ 1).

The daemon's SMTP front spools each message and tells the pool its name; one of
N worker processes (started with *spawn*: no thread or connection of the daemon
leaks into them) claims it and runs the whole intake pipeline with its own
database engine and PII guard.  Threads cannot do this: the GIL would keep the
CPU-heavy stages on one core.

The IMAP pollers stay in the daemon (one connection and lock per mailbox) but
hand each fetched batch to the same workers (``record``, ``intake/handoff.py``):
the raw bytes go over the queue, spread over the workers, and the poller waits
for every message's verdict before it moves anything.  Why the same pool: each
worker already holds an engine, a PII guard and the templates, and the cores
are shared fairly between SMTP and IMAP mail.

The daemon keeps the parts that must be single: the outbox dispatcher (woken
when a worker reports a commit), ``/metrics`` (workers send their intake
observations here), the SLA sweeper and the IMAP pollers.

A worker that dies is restarted in the same slot; what it had claimed goes back
to the spool (counted as an attempt, so a message that kills workers ends in
quarantine), and the IMAP batch it held is answered "died" (a defect of each of
its messages, which stay in the mailbox; the poller counts their attempts).
SIGTERM — from the daemon or from systemd, which signals the whole control group
— lets a worker finish the messages in hand (its batch) and exit 0.
"""

from __future__ import annotations

import ctypes
import logging
import math
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue

from mailer.spool import Spool
from ticketing import metrics
from ticketing.backoff import Backoff
from ticketing.config import Config
from ticketing.intake.build import build_intake
from ticketing.intake.handoff import (
    WORKER_DIED,
    Answers,
    JobResult,
    RecordJob,
    SentBatch,
    job_slices,
    record_jobs,
)
from ticketing.intake.spooled import batches_by_size, process_claimed_batch, recover_claims
from ticketing.logs import configure_logging, set_log_format
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import RawMessage
from ticketing.pipeline.verdict import Verdict
from ticketing.store.db import create_db_engine
from ticketing.templating.template_store import TemplateStore

__all__ = ["WorkerPool"]

log = logging.getLogger(__name__)

_IDLE_SCAN_SECONDS = 1.0  # an idle worker looks for files left in the spool this often
_LEFT_OVER_AGE = 5.0  # ... that nobody has been told about for this long
_FORCED_SCAN_SECONDS = 60.0  # and a busy one this often
_BATCH_MAX = 16  # messages a worker records with one commit when that many are waiting
_BATCH_BYTES = 1_000_000  # ... and that many bytes: a big message is parsed and recorded alone
_RESTART_PAUSE = 5.0  # seconds a worker must have lived before it is restarted at once
# How long a poller waits for its batch: the queue may hold an SMTP backlog, and each
# message may spend [pii] scan_budget_seconds in the guard (added per message).
_ANSWER_SECONDS = 120.0

_Task = str | RecordJob | None  # a spooled message's name, a poller's job, or "stop"


@dataclass(frozen=True)
class WorkerJob:
    slot: int
    config: Config
    daemon_pid: int  # a worker whose parent is no longer this process stops (daemon killed)


@dataclass(frozen=True)
class _Report:
    """What a worker tells the daemon after a batch: one message on the queue, not one
    per message and another per commit."""

    recorded: bool  # something was committed: the outbox dispatcher has work
    observations: tuple[metrics.IntakeObservation, ...]  # for the daemon's /metrics
    rate_limited: tuple[str, ...] = ()  # the limits that held something back, ditto
    answer: JobResult | None = None  # a poller's job, recorded: its verdicts


@dataclass
class _Flags:
    stop: bool = False
    reload: bool = False


class WorkerPool:
    """N worker processes draining one spool (``submit`` names each new message) and
    recording the IMAP pollers' batches (``record``)."""

    def __init__(self, config: Config, spool: Spool, on_recorded: Callable[[], None]) -> None:
        self._config = config
        self._spool = spool
        self._on_recorded = on_recorded
        self._context = multiprocessing.get_context("spawn")
        self._tasks: Queue[_Task] = self._context.Queue()
        self._reports: Queue[_Report | None] = self._context.Queue()
        # the numbers of the jobs each worker took last (0: none): slot s's k-th job at
        # k * slots + s, so the first of each slot's come first (see _SpoolWorker._held)
        slots = max(config.smtp.worker_count, 1)
        self._holding = self._context.RawArray(ctypes.c_int64, slots * _BATCH_MAX)
        self._answers = Answers()
        self._procs: dict[int, SpawnProcess] = {}
        self._started: dict[int, float] = {}
        self._stopped: set[int] = set()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Recover what a previous run left claimed, then start the workers."""
        for slot in self._spool.slots():
            recover_claims(self._spool, slot, self._config.smtp.spool_max_attempts)
        for slot in range(self._config.smtp.worker_count):
            self._spawn(slot)
        for name in self._spool.waiting():
            self.submit(name)
        for target in (self._watch, self._read_reports):
            thread = threading.Thread(target=target, name=f"workers-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("%d intake worker processes started", len(self._procs))

    def submit(self, name: str) -> None:
        self._tasks.put(name)

    def record(self, raws: Sequence[RawMessage], alone: Collection[int] = ()) -> list[Verdict]:
        """Record an IMAP poller's batch in the workers and wait for each message's verdict
        (in order): ``send``, then its verdicts."""
        return self.send(raws, alone).verdicts()

    def send(self, raws: Sequence[RawMessage], alone: Collection[int] = ()) -> SentBatch:
        """Hand a batch to the workers; its verdicts come when asked for.  The batch is
        cut into jobs spread evenly over the workers, each recorded with one commit;
        ``alone``: the indices of messages that failed before, each a job of its own
        (should one kill its worker, it takes no other with it)."""
        if not raws:
            return SentBatch(self._answers, [], [])
        budget = self._config.pii.scan_budget_seconds
        deadline = time.monotonic() + _ANSWER_SECONDS + budget * len(raws)
        sizes = [len(raw.raw) for raw in raws]
        slices = job_slices(sizes, alone, self._per_job(len(raws)), _BATCH_BYTES)
        pending = [self._answers.open([raws[i] for i in part], deadline) for part in slices]
        for each in pending:
            if not each.done.is_set():
                self._tasks.put(each.job)
        return SentBatch(self._answers, slices, pending)

    def _per_job(self, count: int) -> int:
        """Messages per job: the fewest jobs of at most ``_BATCH_MAX`` that keep every
        worker busy (50 on 2 workers: 4 jobs of 13 or 12, not 16, 16, 16, 2)."""
        workers = max(len(self._procs), 1)
        jobs = workers * math.ceil(count / (workers * _BATCH_MAX))
        return math.ceil(count / jobs)

    def hangup(self) -> None:
        """Pass SIGHUP on: each worker reloads its templates before its next message."""
        for proc in self._procs.values():
            if proc.pid is not None and proc.exitcode is None:
                os.kill(proc.pid, signal.SIGHUP)

    def stop(self, timeout: float) -> None:
        """Let each worker finish its batch and exit; what is still spooled stays there
        for the next start (SIGTERM: a worker does not work through the queue first)."""
        self._stopping.set()
        # a poller still waiting gives up now (its batch stays in the mailbox): the daemon
        # lets the pollers finish their batches before it stops the pool
        self._answers.close("the intake workers are stopping")
        for proc in self._procs.values():
            if proc.pid is not None and proc.exitcode is None:
                os.kill(proc.pid, signal.SIGTERM)
            self._tasks.put(None)  # wakes a worker waiting for work
        deadline = time.monotonic() + timeout
        for slot, proc in self._procs.items():
            proc.join(max(deadline - time.monotonic(), 0.1))
            if proc.is_alive():
                log.warning("worker %d did not finish in time; its message stays spooled", slot)
                proc.kill()
                proc.join()
        self._reports.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._tasks.close()
        self._reports.close()

    def _spawn(self, slot: int) -> None:
        job = WorkerJob(slot, self._config, os.getpid())
        proc = self._context.Process(
            target=worker_main,
            args=(job, self._tasks, self._reports, self._holding),
            name=f"ticketd-worker-{slot}",
            daemon=True,
        )
        proc.start()
        self._procs[slot] = proc
        self._started[slot] = time.monotonic()

    def _watch(self) -> None:
        """Restart a worker that died; its claimed messages go back to the spool first.
        One that dies soon after its start waits ``_RESTART_PAUSE`` (no restart storm).
        One that exited 0 (or of SIGTERM, before its handler was set) was told to stop —
        systemd signals the whole control group at once, before the daemon's own stop
        reaches the pool — and stays stopped."""
        while not self._stopping.wait(0.5):
            for slot, proc in list(self._procs.items()):
                if proc.exitcode is None or self._stopping.is_set() or slot in self._stopped:
                    continue
                if proc.exitcode in (0, -signal.SIGTERM):  # -SIGTERM: told while starting
                    log.warning("worker %d stopped (SIGTERM); not restarting it", slot)
                    self._stopped.add(slot)
                    if len(self._stopped) == len(self._procs):  # nobody takes a job now
                        self._answers.close("the intake workers have stopped")
                    continue
                self._release_job(slot)
                if time.monotonic() - self._started[slot] < _RESTART_PAUSE:
                    continue
                log.error("worker %d exited with %s; restarting it", slot, proc.exitcode)
                released = recover_claims(self._spool, slot, self._config.smtp.spool_max_attempts)
                self._spawn(slot)
                for name in released:
                    self.submit(name)

    def _release_job(self, slot: int) -> None:
        """The poller's job a dead worker held is answered: each message a defect (a worker
        that stopped cleanly answered its job first; an older number is answered already)."""
        slots = len(self._holding) // _BATCH_MAX
        for index in range(slot, len(self._holding), slots):
            number, self._holding[index] = self._holding[index], 0
            if number:
                self._answers.fail(number, "defect", WORKER_DIED)

    def _read_reports(self) -> None:
        while True:
            report = self._reports.get()
            if report is None:
                return
            for observed in report.observations:
                metrics.count_intake(observed)
            for limit in report.rate_limited:
                metrics.count_rate_limited(limit)
            if report.recorded:
                self._on_recorded()
            if report.answer is not None:  # last: /metrics counts a job before it moves
                self._answers.answer(report.answer)


def _batches_with(first: _Task, last: _Task) -> bool:
    """Whether more tasks may join a batch that began with ``first`` and ends with ``last``."""
    if isinstance(first, str):
        return isinstance(last, str)
    return _single(first) and _single(last)


def _single(task: _Task) -> bool:
    return isinstance(task, RecordJob) and len(task.raws) == 1


def worker_main(
    job: WorkerJob,
    tasks: Queue[_Task],
    reports: Queue[_Report | None],
    holding: ctypes.Array[ctypes.c_int64],
) -> None:
    """The body of one worker process: its own engine, guard and templates, then the loop."""
    flags = _Flags()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the daemon, which stops us
    signal.signal(signal.SIGTERM, lambda *_: setattr(flags, "stop", True))
    signal.signal(signal.SIGHUP, lambda *_: setattr(flags, "reload", True))
    configure_logging()
    set_log_format(job.config.logging.format)
    engine = create_db_engine(job.config.database)
    try:
        services = build_intake(job.config, engine, audit_templates=False)
        spool = Spool(job.config.smtp.spool_dir)
        worker = _SpoolWorker(
            job, spool, services.pipeline, services.store, tasks, reports, holding, flags
        )
        metrics.forward_intake(worker.observed.append)
        metrics.forward_rate_limited(worker.rate_limited.append)
        worker.run()
    finally:
        engine.dispose()


@dataclass
class _SpoolWorker:
    job: WorkerJob
    spool: Spool
    pipeline: IntakePipeline
    store: TemplateStore
    tasks: Queue[_Task]
    reports: Queue[_Report | None]
    holding: ctypes.Array[ctypes.c_int64]  # shared with the daemon: see WorkerPool._holding
    flags: _Flags
    # temporary failures in a row: the pause before the next message grows
    backoff: Backoff = field(default_factory=lambda: Backoff(first=2.0, cap=30.0))
    observed: list[metrics.IntakeObservation] = field(default_factory=list)  # for /metrics
    rate_limited: list[str] = field(default_factory=list)  # for /metrics
    scanned_at: float = field(default_factory=time.monotonic)
    reloaded_at: float = field(default_factory=time.monotonic)

    def run(self) -> None:
        parent = self.job.daemon_pid
        while not self.flags.stop and os.getppid() == parent:
            self._maybe_reload()
            if time.monotonic() - self.scanned_at > _FORCED_SCAN_SECONDS:
                self._left_overs()  # even while busy: released messages must not starve
            try:
                task = self._held(self.tasks.get(timeout=_IDLE_SCAN_SECONDS))
            except queue.Empty:
                self._left_overs()
                continue
            tasks = self._more([task])
            jobs = [job for job in tasks if isinstance(job, RecordJob)]
            if jobs:  # first: a poller or an SMTP session waits for them
                self._answer(jobs)
            self._handle([name for name in tasks if isinstance(name, str)])
            if None in tasks:
                return
        if os.getppid() != parent:  # nobody reads our reports: do not wait to flush them
            self.reports.cancel_join_thread()

    def _more(self, tasks: list[_Task]) -> list[_Task]:
        """``tasks`` and what else of the same kind is already waiting, up to a batch (group
        commit): spooled names, or single messages handed over by SMTP sessions.  A
        poller's job is a batch of its own (the other workers take the next), and the first
        task of another kind ends the batch."""
        while len(tasks) < _BATCH_MAX and _batches_with(tasks[0], tasks[-1]):
            try:
                tasks.append(self._held(self.tasks.get_nowait(), len(tasks)))
            except queue.Empty:
                break
        return tasks

    def _held(self, task: _Task, position: int = 0) -> _Task:
        """A job is noted in shared memory as soon as it is taken: should this process die,
        the daemon answers it at once instead of letting its caller wait."""
        if isinstance(task, RecordJob):
            slots = len(self.holding) // _BATCH_MAX
            self.holding[position * slots + self.job.slot] = task.number
        return task

    def _answer(self, jobs: list[RecordJob]) -> None:
        """Record the jobs' messages together and send each job its verdicts; past its
        deadline nobody waits for a job (its messages are still with their sender)."""
        live = [job for job in jobs if time.monotonic() <= job.deadline]
        if not live:
            return
        answers = record_jobs(self.pipeline, live)
        for answer in answers[:-1]:
            self.reports.put(_Report(any(v.outcome for v in answer.verdicts), (), (), answer))
        last = answers[-1]
        self._report(any(v.outcome is not None for v in last.verdicts), last)

    def _report(self, recorded: bool, answer: JobResult | None = None) -> None:
        self.reports.put(_Report(recorded, tuple(self.observed), tuple(self.rate_limited), answer))
        self.observed.clear()
        self.rate_limited.clear()

    def _handle(self, names: list[str]) -> None:
        claims = [self.spool.claim(name, self.job.slot) for name in names]
        claimed = [c for c in claims if c is not None]  # None: another worker was first
        if not claimed:
            return
        limit = self.job.config.smtp.spool_max_attempts
        results = {
            settled.result
            for batch in batches_by_size(claimed, _BATCH_BYTES)
            for settled in process_claimed_batch(self.spool, batch, self.pipeline, limit)
        }
        self._report("recorded" in results)
        if "retry" in results:
            self._pause(self.backoff.failed())
            return
        self.backoff.succeeded()

    def _left_overs(self) -> None:
        """Messages nobody was told about: released after a failure, or from a past run."""
        self.scanned_at = time.monotonic()
        for name in self.spool.waiting(older_than=_LEFT_OVER_AGE):
            if self.flags.stop:
                return
            self._handle([name])

    def _maybe_reload(self) -> None:
        interval = self.job.config.templates.reload_interval_seconds
        if self.flags.reload or time.monotonic() - self.reloaded_at >= interval:
            self.flags.reload = False
            self.reloaded_at = time.monotonic()
            self.store.reload()  # refusals are logged; the daemon audits them once

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.flags.stop and time.monotonic() < deadline:
            time.sleep(0.2)
