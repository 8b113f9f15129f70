"""When not to send: the loop and rate rules of auto-replies.

Screening already keeps automatic, bounced and looping mail from being
answered; these rules catch what gets past it (an autoresponder that does
not mark its mail, a producer's client resending the same message) and keep
a reply storm bounded:

- never to an address our mail bounced from (``undeliverable_addresses``);
- never twice the same kind about the same incident to the same sender's
  identical subject and body within the duplicate window
  (``trigger_fingerprint``): a client resending one message is answered once,
  but a mail of another kind (the ``ack_new`` after an ``unknown_sender``, once
  the sender is in the roster) or about another incident always goes;
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
from typing import Any

from sqlalchemy import BindParameter, Row, bindparam, exists, func, select, text
from sqlmodel import Session, col

from ticketing.config import OutboundConfig
from ticketing.store.models import OutboxMessage, UndeliverableAddress
from ticketing.templating.kinds import KINDS, ReplyKind

__all__ = ["suppression_rule"]

_LOCK_CLASS = 0x7464  # "td": our namespace of advisory locks
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_REPLY_KINDS = [k.name for k in KINDS.values() if not k.internal]


def _recent(since: str, *conditions: Any) -> Any:
    return exists().where(col(OutboxMessage.created_at) > bindparam(since), *conditions)


_TO: BindParameter[str] = bindparam("to")
_UNDELIVERABLE = exists().where(func.lower(UndeliverableAddress.address) == _TO)
# Every rule's facts in one statement, built once (each rule a query of its own cost
# more in building and running statements than the lookups themselves).
_FACTS = select(
    _UNDELIVERABLE.label("undeliverable"),
    _recent(
        "window",
        col(OutboxMessage.to_address) == _TO,
        col(OutboxMessage.trigger_fingerprint) == bindparam("fingerprint"),
        col(OutboxMessage.kind) == bindparam("kind"),
        col(OutboxMessage.incident_id).is_not_distinct_from(bindparam("incident_id")),
    ).label("duplicate"),
    _recent(
        "hour",
        col(OutboxMessage.kind) == "ack_reply",
        col(OutboxMessage.incident_id) == bindparam("incident_id"),
    ).label("ack_reply_hourly"),
    _recent(
        "day",
        col(OutboxMessage.kind) == "unknown_sender",
        col(OutboxMessage.to_address) == _TO,
    ).label("unknown_sender_daily"),
    select(func.count())
    .where(
        col(OutboxMessage.to_address) == _TO,
        col(OutboxMessage.created_at) > bindparam("hour"),
        col(OutboxMessage.kind).in_(_REPLY_KINDS),
    )
    .scalar_subquery()
    .label("recent_replies"),
)
_ONLY_UNDELIVERABLE = select(_UNDELIVERABLE.label("undeliverable"))


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
    """The name of the rule that forbids this mail, or ``None`` when it may go.

    Outbox rows are flushed as they are written, so the rules need no autoflush of
    whatever else is pending (audit events, incident updates): it would cost more
    than the rules themselves.
    """
    with session.no_autoflush:
        _lock_address(session, to)
        if kind.internal:
            undeliverable: bool = session.execute(_ONLY_UNDELIVERABLE, {"to": to}).scalar_one()
            return "undeliverable" if undeliverable else None
        params = {
            "to": to,
            "kind": kind.name,
            "fingerprint": fingerprint,
            "incident_id": incident_id,
            "window": now - timedelta(hours=config.duplicate_window_hours),
            "hour": now - _HOUR,
            "day": now - _DAY,
        }
        facts = session.execute(_FACTS, params).one()
    return _first_rule(kind, facts, fingerprint, incident_id, config.auto_reply_ceiling)


def _first_rule(
    kind: ReplyKind, facts: Row[Any], fingerprint: str | None, incident_id: int | None, ceiling: int
) -> str | None:
    """The rules in order, on the facts ``_FACTS`` read."""
    if facts.undeliverable:
        return "undeliverable"
    if fingerprint and facts.duplicate:
        return "duplicate"
    if kind.name == "ack_reply" and incident_id is not None and facts.ack_reply_hourly:
        return "ack_reply_hourly"
    if kind.name == "unknown_sender" and facts.unknown_sender_daily:
        return "unknown_sender_daily"
    if facts.recent_replies >= ceiling:
        return "sender_ceiling"
    return None


def _lock_address(session: Session, to: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:cls, hashtext(:addr))"),
            {"cls": _LOCK_CLASS, "addr": to},
        )
