"""Stage *match*: which incident a message belongs to, if any.

In order, the first that finds one decides:
  a. In-Reply-To/References naming a Message-ID we sent (signed, so trusted)
     or a message already recorded on an incident;
  b. a ref token whose HMAC verifies — one outside the quoted text first;
  c. an incident number ``YYMMDD-NNNNNNN`` in the subject;
  d. for a bounce, the outbound mail it returns;
  e. a duplicate escalation: same producer, Person ID and type, still open.
Only the incident's producer or staff may add to an incident: a sender who
points at someone else's incident is *refused* (nothing attached, audited),
whatever the route.  Automatic mail (an out-of-office, a bounce) obeys the same
check, or proves by a signed route (our Message-ID, a ref token) that it
answers our mail about that incident.  A forged token is ignored and audited.
Mail whose sender could not be authenticated is matched to nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from mailer.parsing import ParsedMessage
from mailer.screening import Screening
from ticketing.incidents.classify import detect_type, person_ids
from ticketing.incidents.lifecycle import ACTIVE
from ticketing.incidents.numbering import INCIDENT_NUMBER
from ticketing.incidents.parties import Identity
from ticketing.signing.message_ids import verify_message_id
from ticketing.signing.tokens import RefTokens
from ticketing.store.audit import audit
from ticketing.store.models import Incident, IncidentConsumer, Message, OutboxMessage

__all__ = ["MatchContext", "MatchResult", "follow_merges", "match_incident"]


@dataclass(frozen=True)
class MatchContext:
    tokens: RefTokens
    secret: bytes


@dataclass(frozen=True)
class MatchResult:
    incident: Incident | None
    reason: str
    refused: bool = False


@dataclass(frozen=True)
class _Found:
    incident: Incident
    signed: bool  # found through our signature (Message-ID or ref token), not a guess


@dataclass(frozen=True)
class _Given:
    session: Session
    message: ParsedMessage
    screening: Screening
    context: MatchContext


Finder = Callable[[_Given], _Found | None]


def match_incident(
    session: Session,
    message: ParsedMessage,
    screening: Screening,
    identity: Identity,
    context: MatchContext,
) -> MatchResult:
    if not identity.authenticated and not screening.automatic:
        return MatchResult(None, "unverified")
    given = _Given(session, message, screening, context)
    for reason, finder in _FINDERS:
        found = finder(given)
        if found is None:
            continue
        incident = follow_merges(session, found.incident)
        answers_us = screening.automatic and found.signed
        if answers_us or identity.is_staff or _may_write(session, identity, incident):
            return MatchResult(incident, reason)
        audit(
            session,
            "match_refused",
            incident_id=incident.id,
            detail={"via": reason, "reason": "sender may not write"},
        )
        return MatchResult(None, reason, refused=True)
    duplicate = _open_duplicate(session, message, identity)
    if duplicate is not None:
        return MatchResult(duplicate, "duplicate_escalation")
    return MatchResult(None, "new")


def _by_headers(given: _Given) -> _Found | None:
    ids = list(dict.fromkeys((*given.message.in_reply_to, *given.message.references)))[-50:]
    for value in reversed(ids):
        number = verify_message_id(value, given.context.secret)
        if number is not None:
            return _found(_incident_numbered(given.session, number), signed=True)
    return _found(_by_message_ids(given.session, ids), signed=False)


def _by_token(given: _Given) -> _Found | None:
    tokens, message = given.context.tokens, given.message
    found = [
        *tokens.find(message.new_text),
        *tokens.find(message.subject),
        *tokens.find(message.text),
        *tokens.find(message.html),
    ]
    for token in dict.fromkeys(found):
        number = tokens.verify(token)
        if number is None:
            audit(given.session, "forged_token", detail={"shape": "ref token"})
            continue
        incident = _incident_numbered(given.session, number)
        if incident is not None:
            return _Found(incident, signed=True)
    return None


def _by_subject_number(given: _Given) -> _Found | None:
    for match in INCIDENT_NUMBER.finditer(given.message.subject):
        incident = _incident_numbered(given.session, match.group(0))
        if incident is not None:
            return _Found(incident, signed=False)
    return None


def _by_bounced_outbound(given: _Given) -> _Found | None:
    """The incident of the mail a bounce returns, when the DSN quotes its Message-ID
    (signed: ours, so the bounce answers our mail)."""
    original = given.screening.original_message_id
    if not original:
        return None
    signed = verify_message_id(original, given.context.secret) is not None
    return _found(_by_message_ids(given.session, [original]), signed=signed)


def _found(incident: Incident | None, *, signed: bool) -> _Found | None:
    return _Found(incident, signed) if incident is not None else None


_FINDERS: tuple[tuple[str, Finder], ...] = (
    ("thread_headers", _by_headers),
    ("ref_token", _by_token),
    ("incident_number", _by_subject_number),
    ("bounced_outbound", _by_bounced_outbound),
)


# The statements run for every message, built once: SQLAlchemy then skips building
# them and their cache keys each time.
_BY_NUMBER = select(Incident).where(Incident.number == bindparam("number"))
_OUTBOUND = select(OutboxMessage.incident_id).where(
    col(OutboxMessage.message_id).in_(bindparam("ids", expanding=True))
)
_RECORDED = (
    select(Message.incident_id)
    .where(
        col(Message.message_id).in_(bindparam("ids", expanding=True)),
        col(Message.incident_id).is_not(None),
    )
    .order_by(col(Message.id).desc())
)
_OPEN_DUPLICATE = (
    select(Incident)
    .join(IncidentConsumer, col(IncidentConsumer.incident_id) == col(Incident.id))
    .where(
        Incident.producer_id == bindparam("producer"),
        Incident.type == bindparam("type"),
        col(Incident.status).in_(ACTIVE),
        col(Incident.merged_into_id).is_(None),
        col(IncidentConsumer.person_id).in_(bindparam("consumers", expanding=True)),
    )
    .order_by(col(Incident.opened_at))
)


def _incident_numbered(session: Session, number: str) -> Incident | None:
    return session.exec(_BY_NUMBER, params={"number": number}).first()


def _by_message_ids(session: Session, ids: Iterable[str]) -> Incident | None:
    wanted = [i for i in ids if i]
    if not wanted:
        return None
    outbound = session.exec(_OUTBOUND, params={"ids": wanted}).first()
    incident_id = outbound or _recorded_incident_id(session, wanted)
    return session.get(Incident, incident_id) if incident_id else None


def _recorded_incident_id(session: Session, wanted: list[str]) -> int | None:
    """The incident of the latest recorded message among ``wanted``; asked only when
    none of them is a mail we sent, which would have decided."""
    return session.exec(_RECORDED, params={"ids": wanted}).first()


def _open_duplicate(
    session: Session, message: ParsedMessage, identity: Identity
) -> Incident | None:
    """The producer's open incident about the same consumer and type, if there is one."""
    case_type = detect_type(message.subject, message.text)
    consumers = person_ids(message.subject, message.text)
    if identity.producer_id is None or case_type is None or not consumers:
        return None
    params = {"producer": identity.producer_id, "type": case_type, "consumers": consumers}
    return session.exec(_OPEN_DUPLICATE, params=params).first()


def follow_merges(session: Session, incident: Incident) -> Incident:
    """The incident ``incident`` was merged into, through every merge (itself if none)."""
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
