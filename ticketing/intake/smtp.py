"""SMTP (and LMTP) intake's deliveries: recorded in the daemon (``workers = 0``), by a
worker process before the answer (``smtp_delivery``, ``worker_delivery``), or spooled
for the workers (``spool = true``).  Each speaks the pipeline's verdict
(``pipeline/verdict.py``) back as an SMTP reply.

Recorded before the answer, a message that fails with a defect is answered 451 (the
sender retries) until it has failed ``[intake] defect_attempts`` times, counted
by its bytes; then 554 5.6.0, and the sender's queue moves on.  Only while other
mail is getting through, though: a defect every message meets is an outage."""

from __future__ import annotations

import errno
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from mailer.smtp_server import Delivery, InboundEnvelope
from mailer.spool import Spool, SpooledEnvelope
from mailer.storage import INSUFFICIENT_STORAGE, StorageReserve
from ticketing.config import Config
from ticketing.errors import PermanentRejection
from ticketing.intake.attempts import DefectCounts
from ticketing.intake.handoff import BatchRecorder
from ticketing.pipeline.limits import check_header_fields, check_size
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import RawMessage
from ticketing.pipeline.verdict import Verdict, observe, verdict_of
from ticketing.store.db import sqlite_file

__all__ = [
    "smtp_answer",
    "smtp_delivery",
    "spool_delivery",
    "storage_reserve",
    "worker_delivery",
]

log = logging.getLogger(__name__)

_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})

_RECORDED = "250 2.0.0 Ok: recorded"
_TRY_LATER = "451 4.3.0 Temporary failure, please try again later"


def smtp_answer(verdict: Verdict) -> str:
    """The SMTP reply that says ``verdict``: 250 after commit, 5xx for the hopeless, 452 on
    a full disk (the sender should retry, the operator should look), 451 otherwise."""
    if verdict.outcome is not None:
        number = verdict.outcome.incident_number
        return (
            f"250 2.0.0 Ok: recorded on incident {number}" if number else "250 2.0.0 Ok: recorded"
        )
    if verdict.kind == "permanent":
        return f"{verdict.smtp_status} {verdict.reason}"
    if verdict.kind == "storage_full":
        log.warning("intake failed, database storage full: answering 452")
        return INSUFFICIENT_STORAGE
    log.warning("intake failed, answering 451: %s", verdict.reason)
    return _TRY_LATER


def smtp_delivery(
    pipeline: IntakePipeline, after_commit: Callable[[], None] | None = None
) -> Delivery:
    """The SMTP handler's delivery when the daemon records mail itself (``workers = 0``).
    ``after_commit`` runs once a message is recorded (it wakes the outbox dispatcher)."""
    return _judged_delivery(pipeline.judge, pipeline.config, after_commit)


def worker_delivery(
    recorder: BatchRecorder, config: Config, after_commit: Callable[[], None] | None = None
) -> Delivery:
    """The SMTP handler's delivery with worker processes and no spool: each message is
    handed to a worker in memory and answered once the worker has committed it (or
    refused it), so the 250 still means *recorded* and unscreened mail never touches the
    disk, while the CPU stages of many sessions run on every core."""

    def judge(raw: RawMessage) -> Verdict:
        return recorder.record([raw])[0]

    return _judged_delivery(judge, config, after_commit)


def _judged_delivery(
    judge: Callable[[RawMessage], Verdict],
    config: Config,
    after_commit: Callable[[], None] | None,
) -> Delivery:
    defects = DefectCounts(config.intake.defect_attempts, others_first=True)

    def deliver(envelope: InboundEnvelope) -> str:
        raw = RawMessage(
            envelope.raw,
            "smtp",
            envelope.mailboxes,
            envelope.mail_from,
            envelope.recipients,
            peer=envelope.peer or None,
            helo=envelope.helo or None,
        )
        verdict = judge(raw)
        if verdict.outcome is not None:
            defects.recorded(_key(envelope) if defects else None)
            if after_commit is not None:
                after_commit()
        elif verdict.kind == "defect" and defects.failed(_key(envelope)).give_up:
            return _set_aside(verdict, defects.limit)
        return smtp_answer(verdict)

    return deliver


def _key(envelope: InboundEnvelope) -> bytes:
    """A message as the sender retries it: the same bytes."""
    return hashlib.sha256(envelope.raw).digest()


def _set_aside(verdict: Verdict, attempts: int) -> str:
    log.warning("intake failed %d times (%s): answering 554", attempts, verdict.reason)
    return f"554 5.6.0 Message cannot be processed ({verdict.reason}), failed {attempts} times"


def spool_delivery(config: Config, spool: Spool, submit: Callable[[str], None]) -> Delivery:
    """The SMTP handler's delivery with worker processes: 250 once the message is durable
    in the spool (``submit`` then tells a worker its name).  What the pipeline would refuse
    outright for its size or header count is refused here, while the client still listens;
    a full disk is 452, any other write failure 451."""

    def deliver(envelope: InboundEnvelope) -> str:
        try:
            check_size(envelope.raw, config.smtp)
            check_header_fields(envelope.raw, config.smtp)
        except PermanentRejection as exc:
            observe("smtp", exc, {}, 0.0)
            return smtp_answer(verdict_of(exc))
        try:
            name = spool.put(SpooledEnvelope(envelope, time.time()))
        except OSError as exc:
            log.warning("spool write failed, answering 4xx: %s", exc.strerror)
            return INSUFFICIENT_STORAGE if exc.errno in _DISK_FULL else _TRY_LATER
        submit(name)
        return f"250 2.0.0 Ok: queued as {name}"

    return deliver


def storage_reserve(config: Config) -> StorageReserve:
    """The space SMTP intake keeps free: under the spool it writes (``spool = true``) and
    under a SQLite database, so that queued mail can still be recorded."""
    paths = [Path(config.smtp.spool_dir)] if config.smtp.spooled else []
    database = sqlite_file(config.database.url)
    if database is not None:
        paths.append(database.parent)
    return StorageReserve(paths, config.smtp.min_free_space)
