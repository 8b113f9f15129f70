"""Who hears about a warning or a breach: the team lead, then the supervisor."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from pii_guard import PiiGuard
from ticketing.config import Config
from ticketing.outbound.compose import ReplyComposer
from ticketing.outbound.orders import OrderBatch
from ticketing.outbound.request import ReplyRequest
from ticketing.outbound.sinks import compose_committed
from ticketing.store.audit import audit
from ticketing.store.models import Incident, Producer

__all__ = ["AuditOnlyNotices", "TemplatedNoticeBatch", "TemplatedNotices", "recipient_for"]

log = logging.getLogger(__name__)


def recipient_for(config: Config, incident: Incident, stage: str) -> str | None:
    """The team lead for a warning and a breach, the supervisor for level 2."""
    team = config.teams.get(incident.team)
    if team is None:
        return None
    return team.supervisor if stage == "level2" else team.lead


@dataclass(frozen=True)
class AuditOnlyNotices:
    """Records each notice as an audit event only (benchmarks; no mail)."""

    config: Config

    def batch(self) -> AuditOnlyNotices:
        return self

    def compose(self) -> None:
        return None

    def notify(self, session: Session, incident: Incident, stage: str, now: datetime) -> None:
        to = recipient_for(self.config, incident, stage)
        audit(
            session,
            "sla_notice",
            incident_id=incident.id,
            created_at=now,
            detail={"stage": stage, "to": to},
        )


@dataclass(frozen=True)
class TemplatedNotices:
    """``sla_warning`` / ``sla_breach`` mail to the team's lead or supervisor: ordered in
    the sweep's transaction and composed, scanned and queued after its commit, the one
    path every mail we write takes (``ticketing/outbound/orders.py``).  A team without
    that address gets an audit event instead."""

    config: Config
    composer: ReplyComposer
    engine: Engine
    guard: PiiGuard | None = None

    def batch(self) -> TemplatedNoticeBatch:
        return TemplatedNoticeBatch(self)


class TemplatedNoticeBatch(OrderBatch):
    """The notices one sweep transaction ordered."""

    def __init__(self, notices: TemplatedNotices) -> None:
        super().__init__(notices.composer, notices.engine, notices.guard)
        self._config = notices.config

    def notify(self, session: Session, incident: Incident, stage: str, now: datetime) -> None:
        to = recipient_for(self._config, incident, stage)
        if to is None:
            audit(
                session,
                "sla_notice_unaddressed",
                incident_id=incident.id,
                created_at=now,
                detail={"stage": stage, "team": incident.team},
            )
            return
        producer = session.get(Producer, incident.producer_id) if incident.producer_id else None
        request = ReplyRequest(
            kind="sla_warning" if stage == "warning" else "sla_breach",
            to=to,
            incident=incident,
            producer=producer,
            team=incident.team,
            language="en",
            extra={"due_at": incident.sla_due_at, "level": 2 if stage == "level2" else 1},
        )
        self.order(session, request, sender_name=None, now=now)

    def compose(self) -> None:
        # the sweep's stages stand whatever happens here: the daemon composes what is left
        compose_committed(super().compose)
