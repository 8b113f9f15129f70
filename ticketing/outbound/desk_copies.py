"""Desk copies: every producer message, as stored, in the owning team's shared mailbox.

Caseworkers work from shared mailboxes in ordinary mail programs.  They must
see every producer message, but never the consumer data the PII guard kept out
of our database, so what they get is a *desk copy* built from the stored row:
the redacted text, the attachments the guard let through, and a head block
saying what the incident is, who wrote, when it is due and what was removed.

    From:      "<producer> via <mailbox>" <mailbox address>   (never the producer's:
               the desk's own mail system would fail it on DMARC)
    Reply-To:  the incident's desk reply address (ticketing/signing/desk_addresses.py)
    Subject:   [#<number>] <type> — <the message's subject>
    threading: every copy of an incident answers the one before it (References,
               In-Reply-To), with Outlook's Thread-Topic and Thread-Index

A copy is ordered in the transaction that records the message (an outbox row
of kind ``desk_copy`` in status ``composing``), composed right after the
commit and delivered by the outbox dispatcher: exactly once per recorded
message, retried with the outbox's backoff, listed by ``outbox list``.  Where it
goes (``desk_destination``): into the desk folder of the team's mailbox when
ticketd reads that mailbox over IMAP (``imap:<mailbox>``, appended by
``outbound/desk_transport.py`` unless already there), else to the team's
``desk_address``, else — with the maildir transport of the embedded default —
into the outbound maildir.  The outbound PII scan does not read copies: they
carry nothing the guard did not already let into the database.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from pii_guard.labels import finding_labels
from ticketing.config import Config
from ticketing.config.case_types import CASE_TYPES
from ticketing.outbound.compose import ReplyComposer
from ticketing.outbound.desk_transport import IMAP_RECIPIENT_PREFIX, imap_recipient
from ticketing.outbound.mime import MailAttachment, MailParts, build_mime
from ticketing.outbound.person_ids import PersonIds
from ticketing.outbound.thread_index import conversation_guid, thread_index
from ticketing.signing.desk_addresses import desk_address
from ticketing.signing.message_ids import make_message_id
from ticketing.store.audit import audit
from ticketing.store.db import insert_row, transaction
from ticketing.store.models import (
    KEPT_ATTACHMENTS,
    Attachment,
    Incident,
    Message,
    OutboxMessage,
    Producer,
    table_of,
    utcnow,
)

__all__ = [
    "DESK_COPY",
    "POLLER_FIRST",
    "ComposedDeskCopy",
    "OrderedDeskCopy",
    "build_desk_copies",
    "compose_desk_copies",
    "desk_destination",
    "order_desk_copy",
    "reordered_desk_copy",
    "settle_desk_copies",
]

log = logging.getLogger(__name__)
DESK_COPY = "desk_copy"
_TABLE = table_of(OutboxMessage)
_LEASE = timedelta(seconds=60)  # as ``orders.ORDER_LEASE``: then the daemon composes it
_RULE = "─" * 60
# A copy of mail fetched from the very mailbox it goes to is delivered by that mailbox's
# poller, which then removes the original (intake/imap/desk.py); the dispatcher takes it
# only if the poller has not within this time.
POLLER_FIRST = timedelta(seconds=60)


@dataclass(frozen=True)
class OrderedDeskCopy:
    """A desk copy ordered in a transaction, to compose once it has committed."""

    row_id: int
    message_row_id: int
    team: str
    message_id: str
    to: str


def desk_destination(config: Config, team: str) -> str | None:
    """Where ``team``'s desk copies go: ``imap:<mailbox>`` when its mailbox is read over
    IMAP, else its ``desk_address``, else the maildir of the maildir transport (addressed
    to the mailbox); ``None`` when there is nowhere (an SMTP relay and no desk address)."""
    mailbox = config.team_mailbox(team)
    if mailbox is not None and mailbox.imap is not None:
        return imap_recipient(mailbox.name)
    desk = config.teams[team].desk_address if team in config.teams else None
    if desk:
        return desk
    if config.outbound.transport == "maildir":
        return mailbox.address if mailbox else config.outbound.from_address
    return None


def order_desk_copy(
    session: Session,
    composer: ReplyComposer,
    *,
    message_row_id: int,
    incident: Incident | None,
    team: str,
    now: datetime,
    to: str | None = None,
) -> OrderedDeskCopy | None:
    """Insert the order of a desk copy of the message ``message_row_id`` (not committed),
    for the team or for ``to`` (an assignee); ``None`` when the team's copies have nowhere
    to go."""
    config = composer.config
    to = to or desk_destination(config, team)
    if to is None:
        return None
    number = incident.number if incident else None
    message_id = make_message_id(number, composer.secret, config.outbound.id_domain)
    row_id = insert_row(
        session,
        _TABLE,
        {
            "incident_id": incident.id if incident else None,
            "kind": DESK_COPY,
            "to_address": to,
            "mail_from": config.outbound.from_address,
            "message_id": message_id,
            "mime": b"",
            "status": "composing",
            "attempts": 0,
            "next_attempt_at": utcnow() + _LEASE,
            "expires_at": now + timedelta(hours=config.outbound.max_age_hours),
            "created_at": now,
            "reply_order": {"desk_copy": message_row_id, "team": team},
        },
    )
    detail = {"outbox_id": row_id, "message_id": message_id}
    incident_id = incident.id if incident else None
    audit(
        session,
        "desk_copy_queued",
        incident_id=incident_id,
        message_row_id=message_row_id,
        detail=detail,
        created_at=now,
    )
    return OrderedDeskCopy(row_id, message_row_id, team, message_id, to)


def reordered_desk_copy(row: OutboxMessage) -> OrderedDeskCopy | None:
    """The order an orphaned ``composing`` row of kind ``desk_copy`` holds."""
    data = row.reply_order or {}
    if row.id is None or not isinstance(data.get("desk_copy"), int):
        return None
    team = str(data.get("team", ""))
    return OrderedDeskCopy(row.id, data["desk_copy"], team, row.message_id, row.to_address)


@dataclass(frozen=True)
class _Source:
    """What one desk copy is built from, read after the commit."""

    order: OrderedDeskCopy
    message: Message
    incident: Incident | None
    producer: Producer | None
    person_ids: list[str]
    attachments: list[Attachment]
    earlier: list[tuple[str, datetime]]  # the incident's earlier copies: Message-ID, when


@dataclass(frozen=True)
class ComposedDeskCopy:
    """A desk copy built (``mime``; ``None`` when its message is gone) and when it is due."""

    order: OrderedDeskCopy
    mime: bytes | None
    due: datetime


def compose_desk_copies(
    engine: Engine, composer: ReplyComposer, orders: Sequence[OrderedDeskCopy]
) -> None:
    """Compose ``orders`` (committed) and make each ``pending`` (``build_desk_copies``, then
    ``settle_desk_copies``); the pipeline does both beside its replies, with one commit."""
    if not orders:
        return
    with transaction(engine, readonly=True) as session:
        built = build_desk_copies(session, composer, orders)
    with transaction(engine) as session:
        settle_desk_copies(session, built)


def build_desk_copies(
    session: Session,
    composer: ReplyComposer,
    orders: Sequence[OrderedDeskCopy],
    people: PersonIds | None = None,
) -> list[ComposedDeskCopy]:
    """Read what each copy is made of (``session``, read-only) and build it; ``people``
    (of ``session``) when the caller reads the same incidents' Person IDs too."""
    sources = _read_sources(session, orders, people or PersonIds(session))
    return [
        ComposedDeskCopy(order, _build(composer, source) if source else None, _due(order, source))
        for order, source in zip(orders, sources, strict=True)
    ]


def settle_desk_copies(session: Session, built: Sequence[ComposedDeskCopy]) -> None:
    """Make each copy ``pending``; a row composed meanwhile by another process is left
    alone, one whose message is gone is failed."""
    for copy in built:
        _settle(session, copy.order, copy.mime, copy.due)


def _due(order: OrderedDeskCopy, source: _Source | None) -> datetime:
    """When the dispatcher may deliver the copy: at once, unless the poller of the
    mailbox it came from will (``POLLER_FIRST``)."""
    fetched = source is not None and source.message.source == "imap"
    if fetched and order.to.startswith(IMAP_RECIPIENT_PREFIX):
        return utcnow() + POLLER_FIRST
    return utcnow()


def _settle(session: Session, order: OrderedDeskCopy, mime: bytes | None, due: datetime) -> None:
    composing = (_TABLE.c.id == order.row_id) & (_TABLE.c.status == "composing")
    if mime is None:
        values: dict[str, Any] = {
            "status": "failed",
            "reason": "unrenderable",
            "last_error": "the recorded message is gone",
        }
    else:
        values = {"status": "pending", "mime": mime, "next_attempt_at": due}
    stmt = _TABLE.update().where(composing).values(reply_order=None, **values)
    session.execute(stmt)


def _read_sources(
    session: Session, orders: Sequence[OrderedDeskCopy], people_of: PersonIds
) -> list[_Source | None]:
    """What each copy is made of, read for all of them together: a query per table, not per
    copy (a worker composes up to 16 at once)."""
    messages = _by_id(session, Message, {o.message_row_id for o in orders})
    incidents = _by_id(session, Incident, {m.incident_id for m in messages.values()})
    producers = _by_id(session, Producer, {i.producer_id for i in incidents.values()})
    people = people_of.of(incidents)
    files = _stored_attachments(session, set(messages))
    copies = _copies_of(session, set(incidents))
    sources: list[_Source | None] = []
    for order in orders:
        message = messages.get(order.message_row_id)
        if message is None:
            sources.append(None)
            continue
        incident = incidents.get(message.incident_id or 0)
        incident_id = incident.id if incident else None
        sources.append(
            _Source(
                order=order,
                message=message,
                incident=incident,
                producer=producers.get(incident.producer_id or 0) if incident else None,
                person_ids=people.get(incident_id or 0, []),
                attachments=files.get(order.message_row_id, []),
                earlier=[
                    (m, w) for i, m, w in copies.get(incident_id or 0, []) if i < order.row_id
                ],
            )
        )
    return sources


def _by_id(session: Session, model: Any, ids: set[int | None]) -> dict[int, Any]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return {row.id: row for row in session.exec(select(model).where(col(model.id).in_(wanted)))}


def _stored_attachments(session: Session, message_ids: set[int]) -> dict[int, list[Attachment]]:
    if not message_ids:
        return {}
    query = (
        select(Attachment)
        .where(
            col(Attachment.message_row_id).in_(message_ids),
            col(Attachment.disposition).in_(KEPT_ATTACHMENTS),
        )
        .order_by(col(Attachment.id))
    )
    files: dict[int, list[Attachment]] = {}
    for attachment in session.exec(query):
        if attachment.content is not None:
            files.setdefault(attachment.message_row_id, []).append(attachment)
    return files


def _copies_of(
    session: Session, incident_ids: set[int]
) -> dict[int, list[tuple[int, str, datetime]]]:
    """The desk copies of each incident, oldest first: row id, Message-ID, when."""
    if not incident_ids:
        return {}
    query = (
        select(
            OutboxMessage.incident_id,
            OutboxMessage.id,
            OutboxMessage.message_id,
            OutboxMessage.created_at,
        )
        .where(col(OutboxMessage.incident_id).in_(incident_ids), OutboxMessage.kind == DESK_COPY)
        .order_by(col(OutboxMessage.id))
    )
    copies: dict[int, list[tuple[int, str, datetime]]] = {}
    for incident_id, row_id, message_id, when in session.exec(query):
        if incident_id is not None and row_id is not None:  # both are, by the query
            copies.setdefault(incident_id, []).append((row_id, message_id, when))
    return copies


def _build(composer: ReplyComposer, source: _Source) -> bytes:
    """The copy as MIME, with the compat32 builder of every other mail we write
    (``outbound/mime.py``): the modern email API cost three times as much."""
    config = composer.config
    head = _head(config, composer, source)
    text, token = source.message.text, _token(composer, source)
    mailbox = config.team_mailbox(source.order.team) if source.order.team in config.teams else None
    speaker = mailbox.address if mailbox else config.outbound.from_address
    via = mailbox.name if mailbox else config.outbound.from_address
    parent, chain = _thread(source)
    parts = MailParts(
        from_name=_one_line(f"{_writer_name(source)} via {via}"),
        from_address=speaker,
        reply_to=_reply_address(composer, source, speaker),
        to=speaker if source.order.to.startswith(IMAP_RECIPIENT_PREFIX) else source.order.to,
        subject=_subject(source),
        text=_text_body(head, text, token),
        html=_html_body(head, text, token),
        message_id=source.order.message_id,
        in_reply_to=parent,
        references=chain,
        date=source.message.received_at,
        auto_submitted="auto-generated",
        extra_headers=_outlook_headers(composer, source),
        attachments=[_mail_attachment(a) for a in source.attachments],
    )
    return build_mime(parts)


def _mail_attachment(a: Attachment) -> MailAttachment:
    """A file as it came, or the guard's redacted text of one (UTF-8, said so)."""
    charset = "utf-8" if a.disposition == "stored_redacted" else None
    return MailAttachment(a.filename, a.content_type, a.content or b"", charset)


def _token(composer: ReplyComposer, source: _Source) -> str | None:
    return composer.tokens.make(source.incident.number) if source.incident else None


def _reply_address(composer: ReplyComposer, source: _Source, speaker: str) -> str | None:
    """The incident's desk reply address at the mailbox (none for unverified mail)."""
    if source.incident is None or source.incident.id is None:
        return None
    return desk_address(speaker, "reply", source.incident.id, composer.secret)


def _writer_name(source: _Source) -> str:
    if source.producer is not None:
        return source.producer.name
    sender = source.message.sender or "unknown sender"
    return sender


def _subject(source: _Source) -> str:
    subject = _one_line(source.message.subject) or "(no subject)"
    if source.incident is None:
        return f"[unverified] {subject}"
    return f"[#{source.incident.number}] {_type_label(source.incident)} — {subject}"


def _thread_topic(incident: Incident) -> str:
    return f"[#{incident.number}] {_type_label(incident)} — {_one_line(incident.subject)}"


def _type_label(incident: Incident) -> str:
    case_type = CASE_TYPES.get(incident.type)
    return case_type.label if case_type else incident.type


def _thread(source: _Source) -> tuple[str | None, list[str]]:
    """One conversation per incident: each copy answers the copy before it."""
    ids = [mid for mid, _ in source.earlier]
    return (ids[-1], ids) if ids else (None, [])


def _outlook_headers(composer: ReplyComposer, source: _Source) -> list[tuple[str, str]]:
    """Outlook's conversation: the incident's Thread-Topic, and a Thread-Index one level
    below the copy before it (``outbound/thread_index.py``)."""
    incident = source.incident
    if incident is None:
        return []
    guid = conversation_guid(incident.number, composer.secret)
    replies = [when for _, when in source.earlier[1:]]
    if source.earlier:
        replies.append(source.message.received_at)
    index = thread_index(guid, incident.opened_at, replies)
    return [("Thread-Topic", _thread_topic(incident)), ("Thread-Index", index)]


@dataclass(frozen=True)
class _Head:
    """The head block: label and value lines, the same in the text and the HTML part."""

    banner: str | None
    lines: list[tuple[str, str]]
    help: list[str]


def _head(config: Config, composer: ReplyComposer, source: _Source) -> _Head:
    incident, message = source.incident, source.message
    removed = _removed(message.pii_findings)
    if incident is None:
        return _unverified_head(source, removed)
    zone = ZoneInfo(config.sla.timezone)
    lines = [
        ("Incident", f"{incident.number} · {_type_label(incident)} · {incident.status}"),
        ("Priority", incident.priority),
        ("Producer", _producer_line(source)),
        ("Person IDs", ", ".join(source.person_ids) or "none found"),
        ("Assigned to", incident.assignee or "nobody yet"),
        ("Due", _sla_due(incident, zone)),
        ("Removed by the PII guard", removed),
    ]
    note = _note_address(config, composer, source)
    help_lines = [
        "Reply to this mail to answer the producer: ticketd sends your reply on only "
        "if it holds no consumer data, and tells you what it found otherwise.",
    ]
    if note:
        help_lines.append(f"Internal note (never sent to the producer): write to {note}")
    return _Head(None, lines, help_lines)


def _unverified_head(source: _Source, removed: str) -> _Head:
    message = source.message
    why = message.disposition.replace("_", " ")
    lines = [
        ("From", message.sender or "unknown"),
        ("Held because", _unverified_reason(message) or why),
        ("Removed by the PII guard", removed),
    ]
    help_lines = [
        "This mail is attached to no incident and was not answered: its sender could not "
        "be authenticated. If it is a producer's, attach it to an incident with",
        f"    ticketd incidents attach {message.id} <incident number>",
    ]
    return _Head("UNVERIFIED SENDER", lines, help_lines)


def _unverified_reason(message: Message) -> str:
    return message.authentication if message.authentication != "none" else "not authenticated"


def _producer_line(source: _Source) -> str:
    producer = source.producer
    if producer is None:
        return f"not in the roster ({source.message.sender})"
    agency = f", {producer.agency}" if producer.agency else ""
    return f"{producer.name} (NPN {producer.npn}{agency}) <{producer.email}>"


def _sla_due(incident: Incident, zone: ZoneInfo) -> str:
    if incident.sla_due_at is None:
        return "no clock running"
    what = "first response" if incident.first_response_at is None else "resolution"
    when = incident.sla_due_at.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")
    return f"{what} by {when}"


def _removed(counts: dict[str, int]) -> str:
    if not counts:
        return "nothing"
    kinds = sorted(counts)
    labels = finding_labels(kinds, "en")
    return ", ".join(f"{label} ({counts[kind]})" for kind, label in zip(kinds, labels, strict=True))


def _note_address(config: Config, composer: ReplyComposer, source: _Source) -> str | None:
    incident = source.incident
    mailbox = config.team_mailbox(source.order.team) if source.order.team in config.teams else None
    if incident is None or incident.id is None or mailbox is None:
        return None
    return desk_address(mailbox.address, "note", incident.id, composer.secret)


def _text_body(head: _Head, text: str, token: str | None) -> str:
    lines = [head.banner] if head.banner else []
    width = max(len(label) for label, _ in head.lines)
    lines += [f"{label + ':':<{width + 1}} {value}" for label, value in head.lines]
    lines += ["", *head.help, _RULE, "", text.rstrip()]
    if token:
        lines += ["", token]
    return "\n".join(lines) + "\n"


def _html_body(head: _Head, text: str, token: str | None) -> str:
    esc = html.escape
    rows = "".join(
        f'<tr><th style="text-align:left;padding-right:1em">{esc(label)}</th>'
        f"<td>{esc(value)}</td></tr>"
        for label, value in head.lines
    )
    banner = f'<p style="color:#a00;font-weight:bold">{esc(head.banner)}</p>' if head.banner else ""
    help_text = "".join(f'<p style="color:#555">{esc(line)}</p>' for line in head.help)
    body = f'<pre style="white-space:pre-wrap;font-family:inherit">{esc(text.rstrip())}</pre>'
    ref = f'<p style="color:#777">{esc(token)}</p>' if token else ""
    table = f'<table style="border-collapse:collapse;background:#f3f5f8">{rows}</table>'
    return f"<html><body>{banner}{table}{help_text}<hr>{body}{ref}</body></html>\n"


def _one_line(value: str) -> str:
    """Header text on one line: a stored subject or name never breaks a header."""
    return " ".join(value.split())
