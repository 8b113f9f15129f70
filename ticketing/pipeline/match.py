"""Stage *match*: which incident a message belongs to, if any.

In order: a ref token whose HMAC verifies; In-Reply-To/References naming a
message recorded on an incident (ours or the producer's); for a bounce, the
outbound mail it returns.  A producer may only add to their own incident: a
token or header pointing at someone else's incident is ignored and audited.
(The matching issue adds the incident number in the subject and duplicate
escalations.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from mailer.parsing import ParsedMessage
from mailer.screening import Screening
from ticketing.models import AuditEvent, Incident, Message, OutboxMessage
from ticketing.pipeline.types import Identity
from ticketing.tokens import RefTokens

__all__ = ["MatchResult", "match_incident"]


@dataclass(frozen=True)
class MatchResult:
    incident: Incident | None
    reason: str


def match_incident(
    session: Session,
    message: ParsedMessage,
    screening: Screening,
    identity: Identity,
    tokens: RefTokens,
) -> MatchResult:
    candidates = (
        ("ref_token", _by_token(session, message, tokens)),
        ("thread_headers", _by_headers(session, (*message.in_reply_to, *message.references))),
        ("bounced_outbound", _by_headers(session, _bounced(screening))),
    )
    for reason, incident in candidates:
        if incident is None:
            continue
        incident = _follow_merges(session, incident)
        if screening.automatic or _may_write(session, identity, incident):
            return MatchResult(incident, reason)
        session.add(
            AuditEvent(
                incident_id=incident.id,
                kind="match_refused",
                detail={"via": reason, "reason": "sender may not write"},
            )
        )
    return MatchResult(None, "new")


def _bounced(screening: Screening) -> tuple[str, ...]:
    return (screening.original_message_id,) if screening.original_message_id else ()


def _by_token(session: Session, message: ParsedMessage, tokens: RefTokens) -> Incident | None:
    found = tokens.find(message.subject) + tokens.find(message.new_text) + tokens.find(message.text)
    for token in dict.fromkeys(found):
        number = tokens.verify(token)
        if number is None:
            session.add(AuditEvent(kind="forged_token", detail={"token_shape": "ref"}))
            continue
        incident = session.exec(select(Incident).where(Incident.number == number)).first()
        if incident is not None:
            return incident
    return None


def _by_headers(session: Session, ids: Iterable[str]) -> Incident | None:
    wanted = list(dict.fromkeys(ids))[-50:]
    if not wanted:
        return None
    outbound = session.exec(
        select(OutboxMessage.incident_id).where(col(OutboxMessage.message_id).in_(wanted))
    ).first()
    recorded = session.exec(
        select(Message.incident_id)
        .where(col(Message.message_id).in_(wanted), col(Message.incident_id).is_not(None))
        .order_by(col(Message.id).desc())
    ).first()
    incident_id = outbound or recorded
    return session.get(Incident, incident_id) if incident_id else None


def _follow_merges(session: Session, incident: Incident) -> Incident:
    seen: set[int | None] = set()
    while incident.merged_into_id and incident.merged_into_id not in seen:
        seen.add(incident.id)
        target = session.get(Incident, incident.merged_into_id)
        if target is None:
            break
        incident = target
    return incident


def _may_write(session: Session, identity: Identity, incident: Incident) -> bool:
    """The incident's producer may write; on an incident opened by an accepted
    unknown sender, that same address may."""
    if incident.producer_id is not None:
        return identity.producer_id == incident.producer_id
    opener = session.exec(
        select(Message.sender)
        .where(Message.incident_id == incident.id, Message.direction == "in")
        .order_by(col(Message.id))
    ).first()
    return identity.address is not None and opener == identity.address
