"""When not to send: the loop and rate rules of auto-replies.

Screening already keeps automatic, bounced and looping mail from being
answered; these rules catch what gets past it (an autoresponder that does
not mark its mail, a producer's client resending the same message) and keep
a reply storm bounded, also one that forged senders set off on purpose
(backscatter: mail "from" a third party draws our reply to that party):

- never to an address our mail bounced from (``undeliverable_addresses``);
- never twice the same kind about the same incident to the same sender's
  identical subject and body within the duplicate window
  (``trigger_fingerprint``): a client resending one message is answered once,
  but a mail of another kind (the ``ack_new`` after an ``unknown_sender``, once
  the sender is in the roster) or about another incident always goes;
- one ``ack_reply`` per incident per hour;
- one ``unknown_sender`` per address per day;
- at most ``[outbound] auto_reply_ceiling`` auto-replies per address per hour;
- at most ``[limits] replies_per_recipient_day`` auto-replies per address per day;
- at most ``[limits] unknown_sender_replies_day`` ``unknown_sender`` replies per day
  over all addresses (0: none at all).

Internal notices (SLA) obey only the first rule.  A refusal is audited by the
caller (``outbound/enqueue.py``) with the rule's name; the rules in
``RATE_RULES`` are also counted in ``ticketd_rate_limited_total``.  Every rule
counts the outbox rows of its window whatever became of them (an order, a mail
sent, withheld or failed): each was drawn from us.

On PostgreSQL the checks of one address run under a transaction-scoped
advisory lock (``lock_address``), so two intake processes answering the same
sender at once cannot both pass; ``unknown_sender`` replies, whose daily limit
is over all addresses, also take one lock of their own.  SQLite's
``BEGIN IMMEDIATE`` already serialises writers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, Boolean, Row, bindparam, case, exists, func, select, text
from sqlmodel import Session, col

from ticketing.config import LimitsConfig, OutboundConfig
from ticketing.store.models import OutboxMessage, UndeliverableAddress
from ticketing.templating.kinds import KINDS, ReplyKind

__all__ = ["RATE_RULES", "lock_address", "suppression_rule"]

# The rules that bound how much mail one address, or everyone, may draw from us (counted
# in ``ticketd_rate_limited_total``).  Not the loop rules (``undeliverable``,
# ``duplicate``) nor ``ack_reply_hourly``: those hold back the mail a normal
# conversation would otherwise get twice, every day, and would drown the signal.
RATE_RULES = frozenset(
    {
        "unknown_sender_daily",
        "sender_ceiling",
        "replies_per_recipient_day",
        "unknown_sender_replies_day",
    }
)

_LOCK_CLASS = 0x7464  # "td": our namespace of advisory locks
_UNKNOWN_SENDER_LOCK = "unknown_sender"  # no address: it has no "@"
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_REPLY_KINDS = [k.name for k in KINDS.values() if not (k.internal or k.personal)]


def _recent(since: str, *conditions: Any) -> Any:
    return exists().where(col(OutboxMessage.created_at) > bindparam(since), *conditions)


def _count(since: str, *conditions: Any) -> Any:
    return (
        select(func.count())
        .where(col(OutboxMessage.created_at) > bindparam(since), *conditions)
        .scalar_subquery()
    )


_TO: BindParameter[str] = bindparam("to")
_UNDELIVERABLE = exists().where(func.lower(UndeliverableAddress.address) == _TO)
_REPLIES_TO = (col(OutboxMessage.to_address) == _TO, col(OutboxMessage.kind).in_(_REPLY_KINDS))
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
    _count("hour", *_REPLIES_TO).label("replies_hour"),
    _count("day", *_REPLIES_TO).label("replies_day"),
    # read only for an unknown_sender reply: it counts over every address
    case(
        (
            bindparam("unknown_sender", type_=Boolean),
            _count("day", col(OutboxMessage.kind) == "unknown_sender"),
        ),
        else_=0,
    ).label("unknown_sender_day"),
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
    limits: LimitsConfig,
) -> str | None:
    """The name of the rule that forbids this mail, or ``None`` when it may go.

    Outbox rows are flushed as they are written, so the rules need no autoflush of
    whatever else is pending (audit events, incident updates): it would cost more
    than the rules themselves.
    """
    with session.no_autoflush:
        lock_address(session, to)
        if kind.internal or kind.personal:
            undeliverable: bool = session.execute(_ONLY_UNDELIVERABLE, {"to": to}).scalar_one()
            return "undeliverable" if undeliverable else None
        unknown_sender = kind.name == "unknown_sender"
        if unknown_sender:
            _xact_lock(session, _UNKNOWN_SENDER_LOCK)
        params = {
            "to": to,
            "kind": kind.name,
            "fingerprint": fingerprint,
            "incident_id": incident_id,
            "unknown_sender": unknown_sender,
            "window": now - timedelta(hours=config.duplicate_window_hours),
            "hour": now - _HOUR,
            "day": now - _DAY,
        }
        facts = session.execute(_FACTS, params).one()
    return _first_rule(kind, facts, fingerprint, incident_id, config, limits)


def _first_rule(
    kind: ReplyKind,
    facts: Row[Any],
    fingerprint: str | None,
    incident_id: int | None,
    config: OutboundConfig,
    limits: LimitsConfig,
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
    if facts.replies_hour >= config.auto_reply_ceiling:
        return "sender_ceiling"
    if facts.replies_day >= limits.replies_per_recipient_day:
        return "replies_per_recipient_day"
    unknown_sender = kind.name == "unknown_sender"
    if unknown_sender and facts.unknown_sender_day >= limits.unknown_sender_replies_day:
        return "unknown_sender_replies_day"
    return None


def lock_address(session: Session, address: str) -> None:
    """Hold ``address``'s lock until ``session``'s transaction ends (PostgreSQL).

    The reply rules above and the new-incident limit (``pipeline/rates.py``) count
    what one address drew under it, so two processes cannot both pass a limit that
    only one more may.  SQLite's ``BEGIN IMMEDIATE`` already serialises writers.
    """
    _xact_lock(session, address)


def _xact_lock(session: Session, name: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:cls, hashtext(:addr))"),
            {"cls": _LOCK_CLASS, "addr": name},
        )
