"""When not to send: the loop and rate rules of auto-replies.

Screening already keeps automatic, bounced and looping mail from being
answered; these rules catch what gets past it (an autoresponder that does
not mark its mail, a producer's client resending the same message) and keep
a reply storm bounded:

- never to an address our mail bounced from (``undeliverable_addresses``);
- never twice to the same sender's identical subject and body within the
  duplicate window (``trigger_fingerprint``);
- one ``ack_reply`` per incident per hour;
- one ``unknown_sender`` per address per day;
- at most ``auto_reply_ceiling`` auto-replies per address per hour.

Internal notices (SLA) obey only the first rule.  On PostgreSQL the checks of
one address run under a transaction-scoped advisory lock, so two intake
processes answering the same sender at once cannot both pass; SQLite's
``BEGIN IMMEDIATE`` already serialises writers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from ticketing.config import OutboundConfig
from ticketing.models import OutboxMessage, UndeliverableAddress
from ticketing.replies.kinds import KINDS, ReplyKind

__all__ = ["suppression_rule"]

_LOCK_CLASS = 0x7464  # "td": our namespace of advisory locks
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_REPLY_KINDS = [k.name for k in KINDS.values() if not k.internal]


def suppression_rule(
    session: Session,
    kind: ReplyKind,
    to: str,
    *,
    incident_id: int | None,
    fingerprint: str | None,
    now: datetime,
    config: OutboundConfig,
) -> str | None:
    """The name of the rule that forbids this mail, or ``None`` when it may go."""
    _lock_address(session, to)
    if _undeliverable(session, to):
        return "undeliverable"
    if kind.internal:
        return None
    window = timedelta(hours=config.duplicate_window_hours)
    if fingerprint and _exists(session, now - window, to=to, fingerprint=fingerprint):
        return "duplicate"
    if kind.name == "ack_reply" and _exists(
        session, now - _HOUR, kind="ack_reply", incident_id=incident_id
    ):
        return "ack_reply_hourly"
    if kind.name == "unknown_sender" and _exists(session, now - _DAY, kind=kind.name, to=to):
        return "unknown_sender_daily"
    if _recent_replies(session, to, now - _HOUR) >= config.auto_reply_ceiling:
        return "sender_ceiling"
    return None


def _lock_address(session: Session, to: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:cls, hashtext(:addr))"),
            {"cls": _LOCK_CLASS, "addr": to},
        )


def _undeliverable(session: Session, to: str) -> bool:
    query = select(UndeliverableAddress.address).where(
        func.lower(UndeliverableAddress.address) == to
    )
    return session.exec(query).first() is not None


def _exists(
    session: Session,
    since: datetime,
    *,
    to: str | None = None,
    kind: str | None = None,
    incident_id: int | None = None,
    fingerprint: str | None = None,
) -> bool:
    query = select(OutboxMessage.id).where(col(OutboxMessage.created_at) > since)
    if to is not None:
        query = query.where(OutboxMessage.to_address == to)
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    if incident_id is not None:
        query = query.where(OutboxMessage.incident_id == incident_id)
    if fingerprint is not None:
        query = query.where(OutboxMessage.trigger_fingerprint == fingerprint)
    return session.exec(query.limit(1)).first() is not None


def _recent_replies(session: Session, to: str, since: datetime) -> int:
    query = select(func.count()).where(
        OutboxMessage.to_address == to,
        col(OutboxMessage.created_at) > since,
        col(OutboxMessage.kind).in_(_REPLY_KINDS),
    )
    return int(session.exec(query).one())
