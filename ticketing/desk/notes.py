"""A caseworker's words on an incident: notes kept for the desk, replies sent to the producer.

A **note** is recorded as the mail-in notes are (``pipeline/record.py``, the ``note``
desk address): a ``Message`` row on the incident, direction ``out``, disposition
``internal_note``, and a ``note_added`` audit event; it is never mailed to anyone.
Like every stored copy, its text is kept with consumer data redacted by the guard
(unless the incident's mailbox has ``pii_policy = "off"``); the row's
``pii_findings`` and the audit detail hold the kinds found and their counts, never
the values.

A **reply** gets the same check as a caseworker's reply by mail
(``_record_desk_reply``): with consumer data in the text nothing is sent, nothing of
the text is stored, and the caseworker is told the kinds found (audited as
``desk_reply_withheld``, counts only); a clean reply is stored on the incident and
ordered to the producer from the team's mailbox with the ref token
(``order_desk_reply``, scanned again as composed, as all our mail is), the
first-response clock stops and the incident waits for the producer.  The mail is
composed after the commit (``compose_committed``).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pii_guard import PiiGuard, evaluate
from ticketing.config import Config
from ticketing.desk.actions import Desk
from ticketing.errors import InvalidTransitionError
from ticketing.incidents.lifecycle import transition
from ticketing.incidents.records import get_incident
from ticketing.outbound.desk_replies import order_desk_reply
from ticketing.outbound.resolution import correspondent
from ticketing.outbound.scan import personal_data_in, recipient_allow
from ticketing.outbound.sinks import compose_committed
from ticketing.privacy.allow import desk_allow, party_allow
from ticketing.store.audit import audit
from ticketing.store.db import insert_row, transaction
from ticketing.store.models import Incident, Message, Producer, table_of, utcnow
from ticketing.store.storable import fit_row

__all__ = ["MAX_TEXT", "Noted", "Replied", "add_note", "reply_to_producer", "text_problem"]

MAX_TEXT = 20_000  # characters of a note or a reply: a page of text, scanned in good time
_SOURCE = "console"  # Message.source of what staff wrote in the console
_MAX_SENDER = 254
_MESSAGES = table_of(Message)


@dataclass(frozen=True)
class Noted:
    """A note on incident ``number``, stored as row ``message_row_id``; ``finding_counts``:
    what the guard removed from it (kind -> count; empty: nothing)."""

    number: str
    message_row_id: int
    finding_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Replied:
    """A reply to incident ``number``'s producer: ``refused`` (consumer data found, the
    kinds in ``finding_counts``, nothing sent or stored), else stored as
    ``message_row_id`` and ``ordered`` (``False``: a rule of the outbox held it, audited)."""

    number: str
    finding_counts: dict[str, int] = field(default_factory=dict)
    message_row_id: int | None = None
    ordered: bool = False

    @property
    def refused(self) -> bool:
        return bool(self.finding_counts)


def text_problem(text: str) -> str | None:
    """What is wrong with a note's or reply's text, in words for the form; ``None``: fine."""
    if not text.strip():
        return "write something first"
    if len(text) > MAX_TEXT:
        return f"at most {MAX_TEXT:,} characters (this is {len(text):,})"
    return None


def add_note(desk: Desk, guard: PiiGuard, number: str, text: str, actor: str) -> Noted:
    """Record ``actor``'s note on incident ``number``, consumer data redacted; mailed to no
    one.  ``NotFoundError`` for an unknown incident; ``ValueError`` for a text
    ``text_problem`` refuses."""
    _check(text)
    with transaction(desk.engine) as session:
        incident = get_incident(session, number)
        kept, counts = _redacted(desk.config, guard, session, incident, text)
        when = utcnow()
        row_id = _store(session, incident, "internal_note", kept, _sender(actor), counts, when)
        detail: dict[str, object] = {"source": _SOURCE, "finding_counts": counts}
        _audit(session, "note_added", incident, row_id, actor, detail, when)
        return Noted(incident.number, row_id, counts)


def reply_to_producer(desk: Desk, guard: PiiGuard, number: str, text: str, actor: str) -> Replied:
    """Send ``actor``'s reply to incident ``number``'s producer, unless the text holds
    consumer data (then it is refused with the kinds found, and nothing is sent).
    ``InvalidTransitionError`` when the incident has nobody to write to."""
    _check(text)
    counts = _data_in_reply(desk, guard, number, text)
    if counts:
        return _refuse(desk, number, actor, counts)
    replies = desk.replies().batch()
    zone = ZoneInfo(desk.config.sla.timezone)
    with transaction(desk.engine) as session:
        incident, when = get_incident(session, number), utcnow()
        row_id = _store(session, incident, "desk_reply", text, _sender(actor), {}, when)
        ordered = order_desk_reply(session, replies, incident, text, zone=zone, when=when)
        _replied(desk, session, incident, actor, when)
        detail: dict[str, object] = {"source": _SOURCE, "ordered": ordered}
        _audit(session, "desk_reply", incident, row_id, actor, detail, when)
        replied = Replied(incident.number, message_row_id=row_id, ordered=ordered)
    compose_committed(replies.compose)
    return replied


def _check(text: str) -> None:
    problem = text_problem(text)
    if problem is not None:
        raise ValueError(problem)


def _data_in_reply(desk: Desk, guard: PiiGuard, number: str, text: str) -> dict[str, int]:
    """The consumer data in a reply's text, as the outbound scan of a mail to the incident's
    producer reads it (the desk's and the producer's own identities allowed).  Scanned
    outside the writing transaction: the guard takes time, the writers' turn should not."""
    with transaction(desk.engine, readonly=True) as session:
        incident = get_incident(session, number)
        to = correspondent(session, incident)
        if to is None or not to.address:
            raise InvalidTransitionError(f"incident {number} has no producer to reply to")
        allow = recipient_allow(desk.config, to.producer, to.address)
    return personal_data_in(guard, allow, text)


def _refuse(desk: Desk, number: str, actor: str, counts: dict[str, int]) -> Replied:
    """Audit a reply refused for consumer data (the kinds and counts, never the text)."""
    with transaction(desk.engine) as session:
        incident = get_incident(session, number)
        detail: dict[str, object] = {"source": _SOURCE, "finding_counts": counts}
        _audit(session, "desk_reply_withheld", incident, None, actor, detail, utcnow())
    return Replied(incident.number, finding_counts=counts)


def _replied(desk: Desk, session: Session, incident: Incident, actor: str, when: datetime) -> None:
    """A caseworker answered: the first-response clock stops, and an active incident now
    waits for the producer (a resolved or closed one stays as it is)."""
    desk.clocks.on_staff_reply(session, incident, when)
    if incident.status in ("new", "open"):
        transition(
            session,
            incident,
            "awaiting_producer",
            actor=actor,
            reason="caseworker replied",
            when=when,
            clocks=desk.clocks,
        )


def _redacted(
    config: Config, guard: PiiGuard, session: Session, incident: Incident, text: str
) -> tuple[str, dict[str, int]]:
    """``text`` as it may be stored on ``incident``, and what was found in it.  The
    mailbox's ``reject`` refuses mail from outside; a note is ours, kept redacted."""
    if _policy(config, incident.mailbox) == "off":
        return text, {}
    producer = session.get(Producer, incident.producer_id) if incident.producer_id else None
    address = producer.email if producer else None
    allow = party_allow(desk_allow(config), producer=producer, address=address)
    outcome = evaluate(guard, "redact", {"text": text}, allow)
    return outcome.fields["text"], dict(outcome.counts)


def _policy(config: Config, mailbox: str) -> str:
    """The incident's mailbox's PII policy (one no longer configured: redact)."""
    try:
        return config.mailbox(mailbox).pii_policy
    except KeyError:
        return "redact"


def _store(
    session: Session,
    incident: Incident,
    disposition: str,
    text: str,
    sender: str,
    counts: dict[str, int],
    when: datetime,
) -> int:
    """Insert the row of what a caseworker wrote on ``incident``; its id."""
    body = text.encode("utf-8", "surrogatepass")
    values = {
        "incident_id": incident.id,
        "direction": "out",
        "mailbox": incident.mailbox,
        "mailboxes": [incident.mailbox],
        "dedup_key": f"{_SOURCE}:{uuid.uuid4().hex}",  # written once: never a duplicate
        "kind": "normal",
        "disposition": disposition,
        "source": _SOURCE,
        "sender": sender,
        "recipients": [],
        "subject": incident.subject,
        "text": text,
        "new_text": text,
        "size": len(body),
        "raw_sha256": hashlib.sha256(body).hexdigest(),
        "pii_findings": counts,
        "received_at": when,
        "authentication": _SOURCE,  # a signed-in console user
        "authentication_results": "",
    }
    return insert_row(session, _MESSAGES, fit_row(_MESSAGES, values))


def _sender(actor: str) -> str:
    """The address an audit actor names (``Casey <casey@...>``), else the actor itself."""
    address = parseaddr(actor)[1]
    return (address if "@" in address else actor)[:_MAX_SENDER]


def _audit(
    session: Session,
    kind: str,
    incident: Incident,
    row_id: int | None,
    actor: str,
    detail: dict[str, object],
    when: datetime,
) -> None:
    audit(
        session,
        kind,
        incident_id=incident.id,
        message_row_id=row_id,
        actor=actor,
        detail=detail,
        created_at=when,
    )
