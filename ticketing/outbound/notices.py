"""Who hears about a warning or a breach: the team lead, then the supervisor."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from pii_guard import AllowList, PiiGuard
from ticketing.config import Config
from ticketing.outbound.compose import ReplyComposer
from ticketing.outbound.enqueue import queue_composed
from ticketing.outbound.request import ReplyRequest
from ticketing.outbound.scan import withdraw_if_pii
from ticketing.privacy.allow import desk_allow, party_allow
from ticketing.store.audit import audit
from ticketing.store.models import Incident, Producer

__all__ = ["AuditOnlyNotices", "TemplatedNotices", "recipient_for"]

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
    """``sla_warning`` / ``sla_breach`` mail to the team's lead or supervisor, in the
    sweep's transaction.  A team without that address gets an audit event instead."""

    config: Config
    composer: ReplyComposer
    guard: PiiGuard | None = None

    @functools.cached_property
    def desk(self) -> AllowList:
        """The desk's own identity, for the outbound scan: built once, not per notice."""
        return desk_allow(self.config)

    def notify(self, session: Session, incident: Incident, stage: str, now: datetime) -> None:
        to = recipient_for(self.config, incident, stage)
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
        queued = queue_composed(session, self.composer, request, now=now)
        if queued is not None:
            allow = party_allow(self.desk, producer=producer, address=None)
            withdraw_if_pii(session, queued.row, self.guard, allow, queued.visible_text)
