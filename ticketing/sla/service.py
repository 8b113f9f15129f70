"""Running the sweep: once (``ticketd sla check --apply``) or every interval in ``serve``."""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Engine

from ticketing.config import Config
from ticketing.errors import StorageError
from ticketing.models import utcnow
from ticketing.sla.clocks import SlaClocks
from ticketing.sla.sweep import NoticeSink, sweep

__all__ = ["run_sweep", "start_sweeper"]

log = logging.getLogger(__name__)


def run_sweep(config: Config, engine: Engine, now: datetime, sink: NoticeSink) -> int:
    fired = sweep(engine, SlaClocks.from_config(config.sla), sink, now)
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
