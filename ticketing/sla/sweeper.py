"""Running the sweep: once (``ticketd sla check --apply``) or every interval in ``serve``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ticketing import metrics
from ticketing.config import Config
from ticketing.errors import StorageError
from ticketing.sla.clocks import SlaClocks
from ticketing.sla.sweep import NoticeSink, sweep
from ticketing.store.models import Incident, utcnow

__all__ = ["run_sweep", "start_sweeper"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _CountedNotices:
    """Passes each notice on and counts its stage for ``/metrics`` once the sweep's
    transaction commits: a batch that rolls back entered no stage."""

    sink: NoticeSink

    def notify(self, session: Session, incident: Incident, stage: str, now: datetime) -> None:
        self.sink.notify(session, incident, stage, now)
        stages = session.info.setdefault(_STAGES_KEY, [])
        if not stages:
            event.listen(session, "after_commit", _count_committed)
        stages.append(stage)


_STAGES_KEY = "ticketd_sla_stages"


def _count_committed(session: Session) -> None:
    for stage in session.info.pop(_STAGES_KEY, []):
        metrics.count_sla_notice(stage)


def run_sweep(config: Config, engine: Engine, now: datetime, sink: NoticeSink) -> int:
    fired = sweep(engine, SlaClocks.from_config(config.sla), _CountedNotices(sink), now)
    if fired:
        log.info("SLA sweep: %d notices queued", fired)
    return fired


def start_sweeper(config: Config, engine: Engine, sink: NoticeSink) -> BackgroundScheduler:
    """An APScheduler interval job; the first sweep runs at once (catch-up after downtime)."""
    scheduler = BackgroundScheduler(timezone="UTC")

    def job() -> None:
        try:
            run_sweep(config, engine, utcnow(), sink)
        except StorageError as exc:  # the next interval tries again; timers live in the DB
            log.warning("SLA sweep skipped: %s", exc)

    scheduler.add_job(
        job,
        "interval",
        seconds=config.sla.sweep_interval_seconds,
        next_run_time=utcnow(),
        max_instances=1,
        coalesce=True,
        id="sla_sweep",
    )
    scheduler.start()
    return scheduler
