"""The backlog gauges of ``/metrics``, read from the database at each scrape.

The outbox backlog and incidents by status are read at scrape time, so every
instance reports the same, right value: aggregate them with ``max``, not
``sum``.  The spool gauges count this host's intake spool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from mailer.spool import Spool
from ticketing.errors import TicketdError
from ticketing.server.status import incident_counts, outbox_backlog
from ticketing.store.db import transaction
from ticketing.store.models import utcnow

__all__ = ["BacklogCollector", "SpoolCollector", "register_backlog"]

log = logging.getLogger(__name__)


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
