"""A caseworker's reply to a desk copy, sent on to the producer as the team's mail.

The pipeline decides whether it may go (an authenticated caseworker, no consumer
data in what they wrote: ``pipeline/record.py``); this module orders the mail:
kind ``desk_reply``, to the incident's producer, from the team's mailbox, in the
producer's thread (under their latest message, which it quotes), with the ref
token.  It is a person's mail, so it carries no ``Auto-Submitted`` and the
auto-reply limits do not hold it back; the outbound PII scan reads it like every
other mail we send.  When the caseworker's words held consumer data, nothing goes
to the producer and the caseworker gets ``desk_reply_refused`` (the kinds found,
never the values), whose Reply-To is the same desk reply address, so answering
it with a clean text is the way to resend.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from ticketing.incidents.parties import Identity
from ticketing.outbound.resolution import correspondent
from ticketing.outbound.sinks import ReplyOrder, ReplySink
from ticketing.store.models import Incident, Message

__all__ = ["order_desk_reply", "order_refusal"]

_QUOTE_LINES = 60  # enough of the producer's message to say what is answered
_LATEST_FROM_PRODUCER = (
    select(Message)
    .where(
        Message.incident_id == bindparam("incident"),
        Message.direction == "in",
        col(Message.kind) == "normal",
    )
    .order_by(col(Message.received_at).desc(), col(Message.id).desc())
    .limit(1)
)


def order_desk_reply(
    session: Session,
    replies: ReplySink,
    incident: Incident,
    text: str,
    *,
    zone: ZoneInfo,
    when: datetime,
) -> bool:
    """Order the caseworker's ``text`` to the incident's producer; ``False`` when there is
    nobody to send it to or a rule held it back (audited)."""
    identity = correspondent(session, incident)
    if identity is None:
        return False
    latest = session.exec(_LATEST_FROM_PRODUCER, params={"incident": incident.id}).first()
    extra = {
        "reply_text": text.strip("\n"),
        "subject": _reply_subject(latest.subject if latest else incident.subject),
        "quoted_text": _quoted(latest.new_text or latest.text) if latest else "",
        "quoted_on": latest.received_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        if latest
        else "",
    }
    parent = latest.message_id if latest else None
    chain = (*((latest.references or "").split() if latest else ()), *([parent] if parent else []))
    order = ReplyOrder(
        "desk_reply",
        identity,
        incident.team,
        incident,
        extra,
        in_reply_to=parent,
        references=tuple(chain),
    )
    return replies.queue(session, order, when)


def order_refusal(
    session: Session,
    replies: ReplySink,
    incident: Incident,
    caseworker: Identity,
    found: list[str],
    *,
    reply_to: str | None,
    when: datetime,
) -> bool:
    """Tell the caseworker their reply was not sent, and which kinds of data were found."""
    order = ReplyOrder(
        "desk_reply_refused",
        caseworker,
        incident.team,
        incident,
        {"finding_types": found},
        reply_to=reply_to,
    )
    return replies.queue(session, order, when)


def _reply_subject(subject: str) -> str:
    subject = " ".join(subject.split())
    return subject if subject.lower().startswith(("re:", "aw:", "rv:")) else f"Re: {subject}"


def _quoted(text: str) -> str:
    lines = text.strip("\n").splitlines()[:_QUOTE_LINES]
    return "\n".join(f"> {line}" if line else ">" for line in lines)
