"""Prometheus counters: what happened in this process.

Counters and the latency histogram count events in *this* process (Prometheus
sums them over instances).  Every layer counts here, so this module depends on
nothing of ticketd; the backlog gauges read from the database at scrape time
live with the server (``ticketing/server/backlog.py``).

Labels are closed sets — intake source, outcome action, a short reason code,
PII entity type, SLA stage, delivery result, the name of a limit — never addresses, subjects or
error text, so a metric can neither carry personal data nor explode in size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram, disable_created_metrics

__all__ = [
    "IntakeObservation",
    "count_delivery",
    "count_intake",
    "count_rate_limited",
    "count_sla_notice",
    "count_smtp_refused",
    "count_smtp_timed_out",
    "forward_intake",
    "forward_rate_limited",
    "report_intake",
    "report_rate_limited",
]

disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series: noise

RECEIVED = Counter("ticketd_messages_received", "Messages handed to intake, by source.", ["source"])
OUTCOMES = Counter(
    "ticketd_messages_outcome",
    "Messages intake finished with, by source and outcome action.",
    ["source", "action"],
)
REJECTED = Counter(
    "ticketd_messages_rejected",
    "Messages refused or not taken onto an incident, by reason code.",
    ["source", "reason"],
)
PII_FINDINGS = Counter(
    "ticketd_pii_findings", "PII findings in inbound mail, by entity type.", ["entity"]
)
LATENCY = Histogram(
    "ticketd_intake_duration_seconds",
    "Time from handing a message to intake to its commit (or refusal).",
    ["source"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DELIVERIES = Counter(
    "ticketd_outbox_deliveries",
    "Outbound delivery attempts recorded, by result (sent, deferred, rejected, expired, "
    "undeliverable).",
    ["result"],
)
SLA_NOTICES = Counter(
    "ticketd_sla_notices", "SLA stages entered by the sweep (committed), by stage.", ["stage"]
)

RATE_LIMITED = Counter(
    "ticketd_rate_limited",
    "Incidents and auto-replies held back by an abuse or rate limit (committed), by limit.",
    ["limit"],
)


@dataclass(frozen=True)
class IntakeObservation:
    """One ``IntakePipeline.process`` as the counters see it (picklable: worker processes
    send theirs to the daemon, whose ``/metrics`` is the one scraped)."""

    source: str
    action: str  # the outcome action, or "refused" / "failed"
    reason: str | None  # the ``ticketd_messages_rejected`` reason code, if any
    findings: dict[str, int]
    seconds: float


_forward: Callable[[IntakeObservation], None] | None = None


def forward_intake(target: Callable[[IntakeObservation], None] | None) -> None:
    """Send this process's intake observations to ``target`` instead of counting them."""
    global _forward  # one setting per process, made at worker start
    _forward = target


def count_intake(observed: IntakeObservation) -> None:
    """Apply one observation to the counters (this process's, or a worker's)."""
    source = observed.source
    RECEIVED.labels(source).inc()
    OUTCOMES.labels(source, observed.action).inc()
    if observed.reason is not None:
        REJECTED.labels(source, observed.reason).inc()
    for entity, count in observed.findings.items():
        PII_FINDINGS.labels(entity).inc(count)
    LATENCY.labels(source).observe(observed.seconds)


def report_intake(observed: IntakeObservation) -> None:
    """Count one message's intake here, or send it to the daemon (in a worker process)."""
    (_forward or count_intake)(observed)


def count_delivery(values: dict[str, Any]) -> None:
    """One recorded outbox outcome: the row's new ``status`` (and ``reason`` when failed)."""
    status = values.get("status")
    if status == "failed":
        result = str(values.get("reason") or "failed")
    else:
        result = "sent" if status == "sent" else "deferred"
    DELIVERIES.labels(result).inc()


def count_sla_notice(stage: str) -> None:
    SLA_NOTICES.labels(stage).inc()


_forward_limited: Callable[[str], None] | None = None


def forward_rate_limited(target: Callable[[str], None] | None) -> None:
    """Send this process's held-back counts to ``target`` instead of counting them (a
    worker process, whose own counters nobody scrapes)."""
    global _forward_limited  # one setting per process, made at worker start
    _forward_limited = target


def count_rate_limited(limit: str) -> None:
    RATE_LIMITED.labels(limit).inc()


def report_rate_limited(limit: str) -> None:
    """One incident or reply held back by ``limit`` (a rule's name, a closed set), counted
    here or sent to the daemon.  Call it once the hold-back is committed
    (``store.db.after_commit``): a rolled-back transaction held nothing back."""
    (_forward_limited or count_rate_limited)(limit)


SMTP_REFUSED = Counter(
    "ticketd_smtp_sessions_refused",
    "SMTP connections greeted 421 and closed at once, by the cap they were over "
    "(max_sessions, max_sessions_per_client).",
    ["reason"],
)
SMTP_TIMED_OUT = Counter(
    "ticketd_smtp_sessions_timed_out",
    "SMTP sessions told 421 and closed by a time limit (idle_timeout, session_max).",
    ["reason"],
)


IMAP_QUARANTINED = Counter(
    "ticketd_imap_quarantined",
    "Messages an IMAP poller moved to its mailbox's quarantine folder (ticketd quarantine "
    "list), by why (defect, refused, pii-rejected).  The spool's: ticketd_spool_quarantined.",
    ["reason"],
)


def count_imap_quarantined(reason: str, count: int) -> None:
    IMAP_QUARANTINED.labels(reason).inc(count)


def count_smtp_refused(reason: str) -> None:
    SMTP_REFUSED.labels(reason).inc()


def count_smtp_timed_out(reason: str) -> None:
    SMTP_TIMED_OUT.labels(reason).inc()
