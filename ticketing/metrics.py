"""Prometheus metrics: what happened in this process, and the backlog in the database.

Counters and the latency histogram count events in *this* process (Prometheus
sums them over instances).  The backlog gauges (outbox, incidents) are read
from the database at scrape time by ``BacklogCollector``, so every instance
reports the same, right value: aggregate them with ``max``, not ``sum``.

Labels are closed sets — intake source, outcome action, a short reason code,
PII entity type, SLA stage, delivery result — never addresses, subjects or
error text, so a metric can neither carry personal data nor explode in size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from mailer.spool import Spool
from ticketing.db import transaction
from ticketing.errors import TicketdError
from ticketing.models import utcnow
from ticketing.pipeline.types import Outcome, PermanentRejection
from ticketing.status import incident_counts, outbox_backlog

__all__ = [
    "BacklogCollector",
    "IntakeObservation",
    "SpoolCollector",
    "count_delivery",
    "count_intake",
    "count_refusal",
    "count_sla_notice",
    "forward_intake",
    "register_backlog",
    "report_intake",
]

log = logging.getLogger(__name__)

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

_REFUSED_ACTIONS = frozenset({"pii_rejected", "unknown_sender", "not_authorized"})
_REFUSAL_CODES = {"552": "over_limit"}  # size or header count


def _refusal_code(exc: PermanentRejection) -> str:
    """A closed code from the SMTP status; the exception text may name a mailbox."""
    return _REFUSAL_CODES.get(exc.smtp_status[:3], "not_acceptable")


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


def count_refusal(source: str, exc: PermanentRejection) -> None:
    """A message refused before it reached the pipeline (the spooling SMTP front)."""
    report_intake(source, exc, {}, 0.0)


def _from_outcome(
    outcome: Outcome, findings: dict[str, int]
) -> tuple[str, str | None, dict[str, int]]:
    reason = outcome.action if outcome.action in _REFUSED_ACTIONS else None
    # a duplicate's findings were counted the first time
    return outcome.action, reason, findings if outcome.action != "duplicate" else {}


def report_intake(
    source: str, result: Outcome | Exception, findings: dict[str, int], seconds: float
) -> None:
    """Count one message's intake: its outcome, or the exception that refused or failed it."""
    if isinstance(result, Outcome):
        action, reason, counted = _from_outcome(result, findings)
    elif isinstance(result, PermanentRejection):
        action, reason, counted = "refused", _refusal_code(result), {}
    else:
        action, reason, counted = "failed", "temporary_failure", {}
    (_forward or count_intake)(IntakeObservation(source, action, reason, counted, seconds))


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


class BacklogCollector(Collector):
    """Outbox backlog and incidents by status, read from the database at each scrape.

    A database that does not answer makes ``ticketd_backlog_up`` 0 instead of
    failing the scrape: the process counters are still worth having then.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []  # read at scrape time only: never query the database on registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("ticketd_backlog_up", "1 when the backlog could be read.")
        try:
            families = self._read()
        except TicketdError as exc:
            log.warning("metrics: backlog not read: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[GaugeMetricFamily]:
        with transaction(self._engine, readonly=True) as session:
            backlog = outbox_backlog(session)
            incidents = incident_counts(session)
        age = backlog.oldest_pending_age(utcnow())
        return [
            _gauge(
                "ticketd_outbox_pending", "Outbound mail waiting or being sent.", backlog.pending
            ),
            _gauge("ticketd_outbox_failed", "Outbound mail given up (failed).", backlog.failed),
            _gauge(
                "ticketd_outbox_withheld",
                "Outbound mail kept back: the outbound scan found personal data in it.",
                backlog.withheld,
            ),
            _gauge(
                "ticketd_outbox_oldest_pending_age_seconds",
                "Age of the oldest outbound mail not yet delivered (0 when none waits).",
                age or 0.0,
            ),
            _by_status(incidents),
        ]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _by_status(counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily("ticketd_incidents", "Incidents by status.", labels=["status"])
    for status, count in counts.items():
        family.add_metric([status], count)
    return family


class SpoolCollector(Collector):
    """This host's intake spool (``[smtp] workers``), counted at each scrape: a growing
    ``waiting`` means the workers fall behind, any ``quarantined`` wants an operator."""

    def __init__(self, path: str) -> None:
        self._spool = Spool(path)

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not (self._spool.path / "new").is_dir():
            return
        try:
            counts = self._spool.counts()
        except OSError as exc:
            log.warning("metrics: spool not read: %s", exc.strerror)
            return
        yield _gauge("ticketd_spool_waiting", "Spooled messages not yet taken.", counts.waiting)
        yield _gauge(
            "ticketd_spool_in_progress", "Spooled messages a worker holds.", counts.in_progress
        )
        yield _gauge(
            "ticketd_spool_quarantined",
            "Spooled messages set aside after too many failed attempts.",
            counts.quarantined,
        )


def register_backlog(
    engine: Engine, spool_dir: str, registry: CollectorRegistry = REGISTRY
) -> Callable[[], None]:
    """Add the backlog and spool collectors; returns the function that removes them again."""
    collectors: list[Collector] = [BacklogCollector(engine), SpoolCollector(spool_dir)]
    for collector in collectors:
        registry.register(collector)

    def remove() -> None:
        for collector in collectors:
            registry.unregister(collector)

    return remove
