"""The SLA clocks of an incident, kept in its row (the database is the source of truth).

- The first-response clock starts when the incident opens (a message outside
  business hours counts from the next opening) and stops at the first
  caseworker reply.
- The resolution clock (when the policy has ``resolution_days``) then runs
  from the opening, pauses while ``awaiting_producer`` and resumes — its
  deadlines moved by the business time spent waiting — on the producer's reply.
- Resolved and closed stop every clock.  Every change is an audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from ticketing.config.sla_schema import SlaConfig, SlaPolicyConfig
from ticketing.sla.calendar import BusinessCalendar
from ticketing.sla.policy import calendar_from_config, deadlines
from ticketing.store.audit import audit
from ticketing.store.models import Incident

__all__ = ["SlaClocks"]


@dataclass(frozen=True)
class SlaClocks:
    config: SlaConfig
    calendar: BusinessCalendar

    @classmethod
    def from_config(cls, config: SlaConfig) -> SlaClocks:
        return cls(config, calendar_from_config(config))

    def policy_of(self, incident: Incident) -> SlaPolicyConfig:
        return self.config.policy_of(incident.team, incident.type, incident.sla_policy)

    def start(self, session: Session, incident: Incident, when: datetime) -> None:
        policy = self.config.select(incident.team, incident.type)
        incident.sla_policy = policy.name
        self._arm(session, incident, "first_response", when, policy.first_response_days)

    def on_staff_reply(self, session: Session, incident: Incident, when: datetime) -> None:
        if incident.sla_clock != "first_response":
            return
        incident.first_response_at = when
        self._stop(session, incident, when, "first response given")
        days = self.policy_of(incident).resolution_days
        if days:
            self._arm(session, incident, "resolution", incident.opened_at, days)

    def on_transition(
        self, session: Session, incident: Incident, old: str, new: str, when: datetime
    ) -> None:
        if new in ("resolved", "closed"):
            self._stop(session, incident, when, f"incident {new}")
        elif new == "awaiting_producer" and incident.sla_clock == "resolution":
            self._pause(session, incident, when)
        elif new == "open" and incident.sla_paused_at is not None:
            self._resume(session, incident, when)
        elif new == "open" and old in ("resolved", "closed"):
            days = self.policy_of(incident).resolution_days
            if days:
                self._arm(session, incident, "resolution", when, days)

    def _arm(
        self, session: Session, incident: Incident, clock: str, start: datetime, days: float
    ) -> None:
        found = deadlines(self.calendar, self.policy_of(incident), start, days)
        incident.sla_clock, incident.sla_stage, incident.sla_paused_at = clock, 0, None
        incident.sla_warn_at, incident.sla_due_at = found.warn_at, found.due_at
        incident.sla_level2_at, incident.sla_next_at = found.level2_at, found.warn_at
        _audit(
            session,
            incident,
            "sla_clock_started",
            start,
            {"clock": clock, "due_at": found.due_at.isoformat()},
        )

    def _stop(self, session: Session, incident: Incident, when: datetime, reason: str) -> None:
        if incident.sla_clock is None:
            return
        _audit(
            session,
            incident,
            "sla_clock_stopped",
            when,
            {"clock": incident.sla_clock, "reason": reason},
        )
        incident.sla_clock, incident.sla_next_at, incident.sla_paused_at = None, None, None

    def _pause(self, session: Session, incident: Incident, when: datetime) -> None:
        incident.sla_paused_at, incident.sla_next_at = when, None
        _audit(session, incident, "sla_clock_paused", when, {"clock": incident.sla_clock})

    def _resume(self, session: Session, incident: Incident, when: datetime) -> None:
        paused_at = incident.sla_paused_at
        assert paused_at is not None
        waited = self.calendar.between(paused_at, when)

        def shift(moment: datetime | None) -> datetime | None:
            return self.calendar.add(moment, waited) if moment else None

        incident.sla_warn_at = shift(incident.sla_warn_at)
        incident.sla_due_at = shift(incident.sla_due_at)
        incident.sla_level2_at = shift(incident.sla_level2_at)
        incident.sla_paused_at = None
        incident.sla_next_at = _next_deadline(incident)
        _audit(
            session,
            incident,
            "sla_clock_resumed",
            when,
            {"clock": incident.sla_clock, "waited_seconds": int(waited.total_seconds())},
        )


def _next_deadline(incident: Incident) -> datetime | None:
    stages = (incident.sla_warn_at, incident.sla_due_at, incident.sla_level2_at)
    return stages[incident.sla_stage] if incident.sla_stage < len(stages) else None


def _audit(
    session: Session, incident: Incident, kind: str, when: datetime, detail: dict[str, object]
) -> None:
    audit(session, kind, incident_id=incident.id, created_at=when, detail=detail)
