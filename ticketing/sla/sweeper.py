"""Running the sweep: once (``ticketd sla check --apply``), or as the daemon's timed job
(``ticketing/server/daemon.py``), with its notices counted for ``/metrics``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ticketing import metrics
from ticketing.config import Config
from ticketing.sla.clocks import SlaClocks
from ticketing.sla.sweep import NoticeBatch, NoticeSink, sweep
from ticketing.store.models import Incident

__all__ = ["run_sweep"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _CountedNotices:
    """Passes each notice on and counts its stage for ``/metrics`` once the sweep's
    transaction has committed: a batch that rolls back entered no stage."""

    sink: NoticeSink

    def batch(self) -> _CountedBatch:
        return _CountedBatch(self.sink.batch())


@dataclass
class _CountedBatch:
    inner: NoticeBatch
    stages: list[str] = field(default_factory=list)

    def notify(self, session: Session, incident: Incident, stage: str, now: datetime) -> None:
        self.inner.notify(session, incident, stage, now)
        self.stages.append(stage)

    def compose(self) -> None:  # called only after the commit
        for stage in self.stages:
            metrics.count_sla_notice(stage)
        self.inner.compose()


def run_sweep(config: Config, engine: Engine, now: datetime, sink: NoticeSink) -> int:
    fired = sweep(engine, SlaClocks.from_config(config.sla), _CountedNotices(sink), now)
    if fired:
        log.info("SLA sweep: %d notices queued", fired)
    return fired
