"""What a message's intake came to, in one word every adapter understands.

    accepted       recorded (or already recorded, or set aside on purpose): ack it
    permanent      can never be accepted: refuse it, with the reason
    storage_full   the database's disk is full: retry later, an operator must act
    temporary      the database is down or locked, a secret is missing: retry later
    defect         a bug met this message: retry, then set it aside, never wedge

Each adapter maps the verdict to its own words and nothing else: the SMTP
front to a reply code (``intake/smtp.py``), the pipe to a sysexits status
(``intake/pipe.py``), the spool to finish / put back / quarantine
(``intake/spooled.py``), the IMAP poller to a folder (``intake/imap/poller.py``).
The counters of ``/metrics`` read the same verdict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from mailer.errors import MailerError
from ticketing import metrics
from ticketing.errors import PermanentRejection, StorageFullError, TicketdError
from ticketing.pipeline.types import Outcome

__all__ = ["Verdict", "VerdictKind", "observe", "verdict_of"]

VerdictKind = Literal["accepted", "permanent", "storage_full", "temporary", "defect"]

_REFUSED_ACTIONS = frozenset(
    {"pii_rejected", "unknown_sender", "not_authorized", "unverified", "rate_limited"}
)
_REFUSAL_CODES = {"552": "over_limit"}  # size or header count


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    outcome: Outcome | None = None
    # one line, no message content: the exception's text or the refusal's reason
    reason: str = ""
    smtp_status: str = ""  # a permanent refusal's SMTP status ("554 5.6.0")
    error: Exception | None = field(default=None, compare=False, repr=False)


def verdict_of(result: Outcome | Exception) -> Verdict:
    """The one translation of an outcome or an exception into a verdict."""
    if isinstance(result, Outcome):
        return Verdict("accepted", result)
    lines = (" ".join(line.split()) for line in str(result).splitlines())
    reason = "; ".join(line for line in lines if line) or type(result).__name__
    if isinstance(result, PermanentRejection):
        return Verdict("permanent", reason=reason, smtp_status=result.smtp_status, error=result)
    if isinstance(result, StorageFullError):
        return Verdict("storage_full", reason=reason, error=result)
    if isinstance(result, TicketdError | MailerError):
        return Verdict("temporary", reason=reason, error=result)
    return Verdict("defect", reason=type(result).__name__, error=result)


def observe(
    source: str, result: Outcome | Exception, findings: dict[str, int], started: float
) -> None:
    """Count one message's intake for ``/metrics`` from its verdict."""
    verdict = verdict_of(result)
    seconds = time.perf_counter() - started if started else 0.0
    action: str
    reason: str | None
    if verdict.outcome is not None:
        action = verdict.outcome.action
        reason = action if action in _REFUSED_ACTIONS else None
        # a duplicate's findings were counted the first time
        counted = findings if action != "duplicate" else {}
    elif verdict.kind == "permanent":
        action, counted = "refused", {}
        reason = _REFUSAL_CODES.get(verdict.smtp_status[:3], "not_acceptable")
    else:
        action, reason, counted = "failed", "temporary_failure", {}
    metrics.report_intake(metrics.IntakeObservation(source, action, reason, counted, seconds))
