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

A value the database refuses (too long, a NUL byte, a broken constraint) is the
message's defect, never "temporary": retrying cannot change the message.  A
defect is logged by ``log_defect``: where it happened and what kind of error,
never the error's text, which may quote the message (SQLAlchemy's quotes the
statement's parameters: addresses, subjects).
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from mailer.errors import MailerError
from ticketing import metrics
from ticketing.errors import PermanentRejection, StorageFullError, TicketdError
from ticketing.pipeline.types import Outcome

__all__ = ["Verdict", "VerdictKind", "describe_defect", "log_defect", "observe", "verdict_of"]

VerdictKind = Literal["accepted", "permanent", "storage_full", "temporary", "defect"]

_REFUSED_ACTIONS = frozenset(
    {"pii_rejected", "unknown_sender", "not_authorized", "unverified", "rate_limited"}
)
_REFUSAL_CODES = {"552": "over_limit"}  # size or header count
# The kind and table of a statement: "INSERT INTO messages", "SELECT … FROM producers".
_STATEMENT = re.compile(
    r"^\s*(?:(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([\w\".]+)|(SELECT)\b.*?\bFROM\s+([\w\".]+))",
    re.IGNORECASE | re.DOTALL,
)
_CHAIN_DEPTH = 8


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
    if _refused_value(result):
        return Verdict("defect", reason=type(result).__name__, error=result)
    if isinstance(result, TicketdError | MailerError) or _disconnected(result):
        return Verdict("temporary", reason=reason, error=result)
    return Verdict("defect", reason=type(result).__name__, error=result)


def _chain(error: BaseException, *, handling: bool = True) -> Iterator[BaseException]:
    """``error`` and what it was raised from (and, with ``handling``, what it was raised
    while handling), innermost last."""
    current: BaseException | None = error
    for _ in range(_CHAIN_DEPTH):
        if current is None:
            return
        yield current
        current = current.__cause__ or (current.__context__ if handling else None)


def _refused_value(error: BaseException) -> bool:
    """The database refused one of the message's values (over-long, a NUL byte, a
    constraint), whatever it was translated into (not: an outage met while handling it)."""
    for current in _chain(error, handling=False):
        if isinstance(current, DataError | IntegrityError):
            return True
        if isinstance(current, ValueError) and "nul" in str(current).lower():
            return True  # psycopg2's "cannot contain NUL", Python's "embedded null character"
    return False


def _disconnected(error: Exception) -> bool:
    """The connection to the database was lost under a statement: an outage."""
    return isinstance(error, DBAPIError) and error.connection_invalidated


def describe_defect(error: BaseException) -> str:
    """One line naming a defect without quoting it: its type, the types it was raised
    from, and for a database statement its kind and table."""
    kinds = list(dict.fromkeys(type(e).__name__ for e in _chain(error)))
    text = kinds[0] + (f" (from {', '.join(kinds[1:])})" if kinds[1:] else "")
    statement = next((e.statement for e in _chain(error) if isinstance(e, StatementError)), None)
    found = _STATEMENT.match(statement) if statement else None
    if found:
        verb, table, select, source = found.groups()
        where = f"{' '.join(verb.split()).upper()} {table}" if verb else f"{select} … FROM {source}"
        text += f" in {where}"
    return text


def log_defect(logger: logging.Logger, what: str, *args: object, error: BaseException) -> None:
    """Log a defect at ERROR: ``what`` (a %-format with ``args``), ``describe_defect`` and
    the frames it went through.  Not ``exc_info``: a traceback ends with the error's text."""
    frames = traceback.StackSummary.extract(traceback.walk_tb(error.__traceback__))
    where = "".join(frames.format()).rstrip()
    logger.error(f"{what}: %s\n%s", *args, describe_defect(error), where)


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
