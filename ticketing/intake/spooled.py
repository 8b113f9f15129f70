"""Recording spooled SMTP messages: one claimed file through the intake pipeline.

Used by the worker processes (``[smtp] workers`` ≥ 1) and by the daemon itself
when it starts with messages left in the spool, whatever the mode, so that
switching ``workers`` back to 0 never strands accepted mail.

The sender already has its 250, so nothing here may lose the message: a
temporary failure (the database is down, the disk is full) puts it back
untouched; an unexpected error or a crash counts as an attempt, and after
``max_attempts`` the message is quarantined for an operator instead of looping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from mailer.spool import ClaimedMessage, Spool
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import Outcome, RawMessage
from ticketing.pipeline.verdict import log_defect, verdict_of

__all__ = [
    "SpoolResult",
    "batches_by_size",
    "drain_spool",
    "process_claimed",
    "process_claimed_batch",
    "quarantine_exhausted",
    "record_batch",
    "recover_claims",
]

log = logging.getLogger(__name__)

Result = Literal["recorded", "retry", "quarantined"]


@dataclass(frozen=True)
class SpoolResult:
    result: Result
    outcome: Outcome | None = None


def quarantine_exhausted(spool: Spool, claimed: ClaimedMessage, max_attempts: int) -> bool:
    """Quarantine ``claimed`` when it has used up its attempts (``True`` then)."""
    if claimed.attempts <= max_attempts:
        return False
    reason = f"gave up after {max_attempts} attempts"
    spool.quarantine(claimed, reason)
    log.error("spooled message %s quarantined: %s", claimed.name, reason)
    return True


def batches_by_size(
    claimed: list[ClaimedMessage], max_bytes: int
) -> Iterator[list[ClaimedMessage]]:
    """``claimed`` in order, in batches of at most ``max_bytes`` of spool files (a bigger
    message alone): a batch is held in memory whole, parsed, while it is recorded."""
    batch: list[ClaimedMessage] = []
    size = 0
    for message in claimed:
        try:
            length = message.path.stat().st_size
        except OSError:
            length = 0  # reading it will fail and quarantine it
        if batch and size + length > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += length
    if batch:
        yield batch


def process_claimed(
    spool: Spool, claimed: ClaimedMessage, pipeline: IntakePipeline, max_attempts: int
) -> SpoolResult:
    """Record ``claimed`` and drop it from the spool, or put it back, or quarantine it."""
    return process_claimed_batch(spool, [claimed], pipeline, max_attempts)[0]


def process_claimed_batch(
    spool: Spool, claimed: list[ClaimedMessage], pipeline: IntakePipeline, max_attempts: int
) -> list[SpoolResult]:
    """``process_claimed`` for several messages, recorded with one commit when they can be
    (``IntakePipeline.process_batch``); each is settled on its own."""
    results: dict[int, SpoolResult] = {}
    raws: dict[int, RawMessage] = {}
    for index, message in enumerate(claimed):
        read = _read(spool, message, max_attempts)
        if isinstance(read, SpoolResult):
            results[index] = read
        else:
            raws[index] = read
    recorded = record_batch(pipeline, list(raws.values()))
    for position, index in enumerate(raws):
        results[index] = _settle(spool, claimed[index], recorded[position], max_attempts)
    return [results[index] for index in range(len(claimed))]


def record_batch(pipeline: IntakePipeline, raws: Sequence[RawMessage]) -> list[Outcome | Exception]:
    """Each of ``raws`` recorded, with one commit when there are several
    (``IntakePipeline.process_batch``): per message its outcome or its exception.  The
    spool's batches and the IMAP pollers' (``intake/handoff.py``) are recorded here."""
    if len(raws) > 1:
        return pipeline.process_batch(raws)
    return [_process(pipeline, raw) for raw in raws]


def _process(pipeline: IntakePipeline, raw: RawMessage) -> Outcome | Exception:
    try:
        return pipeline.process(raw)
    except Exception as exc:  # noqa: BLE001  settled (and logged) by _settle
        return exc


def _read(spool: Spool, claimed: ClaimedMessage, max_attempts: int) -> RawMessage | SpoolResult:
    """The spooled message as the pipeline takes it, or why it was quarantined."""
    if quarantine_exhausted(spool, claimed, max_attempts):
        return SpoolResult("quarantined")
    try:
        spooled = spool.read(claimed)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return _quarantine(spool, claimed, f"unreadable spool file ({type(exc).__name__})")
    envelope = spooled.envelope
    return RawMessage(
        envelope.raw,
        "smtp",
        envelope.mailboxes,
        envelope.mail_from,
        envelope.recipients,
        received_at=datetime.fromtimestamp(spooled.received_at, UTC),
        peer=envelope.peer or None,
        helo=envelope.helo or None,
    )


def _settle(
    spool: Spool, claimed: ClaimedMessage, result: Outcome | Exception, max_attempts: int
) -> SpoolResult:
    """Drop a recorded message from the spool; put back or quarantine one that was not."""
    verdict = verdict_of(result)
    if verdict.outcome is not None:
        spool.finish(claimed)
        return SpoolResult("recorded", verdict.outcome)
    if verdict.kind == "permanent":  # the front checks the same limits: rare
        return _quarantine(spool, claimed, f"refused: {verdict.smtp_status} {verdict.reason}")
    if verdict.kind != "defect":
        log.warning("spooled message %s kept for a later try: %s", claimed.name, verdict.reason)
        spool.release(claimed, count_attempt=False)
        return SpoolResult("retry")
    # a bug must not lose accepted mail nor stop the worker
    if verdict.error is not None:
        log_defect(
            log,
            "spooled message %s failed (attempt %d)",
            claimed.name,
            claimed.attempts,
            error=verdict.error,
        )
    if claimed.attempts >= max_attempts:
        return _quarantine(spool, claimed, f"failed {claimed.attempts} times: {verdict.reason}")
    spool.release(claimed)
    return SpoolResult("retry")


def _quarantine(spool: Spool, claimed: ClaimedMessage, reason: str) -> SpoolResult:
    spool.quarantine(claimed, reason)
    log.error("spooled message %s quarantined: %s", claimed.name, reason)
    return SpoolResult("quarantined")


def recover_claims(spool: Spool, slot: int, max_attempts: int) -> list[str]:
    """Put back what worker ``slot`` held when it died (quarantining the exhausted);
    the names now waiting in the spool."""
    released = []
    for claimed in spool.recover(slot):
        if not quarantine_exhausted(spool, claimed, max_attempts):
            released.append(spool.release(claimed))
    return released


def drain_spool(
    spool: Spool, pipeline: IntakePipeline, max_attempts: int, on_recorded: Callable[[], None]
) -> int:
    """Record everything waiting in ``spool`` with this process's pipeline (the daemon
    without workers, at start-up); the number recorded.  What fails waits for the next run."""
    for slot in spool.slots():
        recover_claims(spool, slot, max_attempts)
    recorded = 0
    for name in spool.waiting():
        claimed = spool.claim(name, 0)
        if claimed and process_claimed(spool, claimed, pipeline, max_attempts).outcome:
            recorded += 1
            on_recorded()
    return recorded
