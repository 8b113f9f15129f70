"""Stage *record*: everything about one message in ONE transaction.

Message row, attachments, incident (new or existing), audit events and the
outbox rows of the auto-replies commit together or not at all; only after
that commit does an intake adapter acknowledge the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam
from sqlmodel import Session, select

from mailer.addresses import MAX_ADDRESS
from mailer.parsing import ParsedMessage
from mailer.screening import Screening
from mailer.sender_auth import SenderAuth
from pii_guard import UNSCANNED
from ticketing.config import Config, MailboxConfig
from ticketing.incidents.classify import detect_type, person_ids, priority_of
from ticketing.incidents.lifecycle import may_reopen, transition
from ticketing.incidents.parties import Identity
from ticketing.incidents.records import open_incident
from ticketing.outbound.desk_copies import DESK_COPY
from ticketing.outbound.desk_replies import order_desk_reply, order_refusal
from ticketing.outbound.resolution import order_resolution_mail
from ticketing.outbound.sinks import ReplyOrder, ReplySink
from ticketing.pipeline.match import MatchResult, follow_merges
from ticketing.pipeline.own_bounces import note_bounce
from ticketing.pipeline.rates import NEW_INCIDENTS, count_held_back, may_open_incident
from ticketing.pipeline.types import Action, GuardResult, Outcome, RawMessage
from ticketing.signing.desk_addresses import DeskRoute, desk_address
from ticketing.sla.clocks import SlaClocks
from ticketing.store.audit import audit
from ticketing.store.db import insert_row
from ticketing.store.models import Attachment, Incident, Message, table_of
from ticketing.store.storable import fit_row, fit_text

__all__ = ["Prepared", "find_duplicate", "recipients_of", "record"]


@dataclass(frozen=True)
class Prepared:
    """All a message's stages decided before the recording transaction."""

    raw: RawMessage
    parsed: ParsedMessage
    dedup_key: str
    mailbox: MailboxConfig
    screening: Screening
    identity: Identity
    guard: GuardResult
    auth: SenderAuth
    # written to one of our desk reply or note addresses (signed: ``signing/desk_addresses``)
    desk: DeskRoute | None = None


# Built once: SQLAlchemy then skips building the statement and its cache key per message.
_BY_DEDUP_KEY = select(Message).where(Message.dedup_key == bindparam("key"))
_MESSAGES = table_of(Message)


def find_duplicate(session: Session, dedup_key: str) -> Message | None:
    # No autoflush: messages are flushed as they are stored (``_store``); what is still
    # pending (audit events) cannot make a duplicate, and flushes cost more than the query.
    with session.no_autoflush:
        return session.exec(_BY_DEDUP_KEY, params={"key": dedup_key}).first()


def note_duplicate(session: Session, existing: Message, raw: RawMessage) -> Outcome:
    """A message seen again: nothing changes, except a mailbox it had not reached yet."""
    added = [box for box in raw.mailboxes if box not in existing.mailboxes]
    if added:
        existing.mailboxes = [*existing.mailboxes, *added]
        session.add(existing)
        audit(
            session,
            "also_sent_to",
            incident_id=existing.incident_id,
            message_row_id=existing.id,
            detail={"mailboxes": added},
        )
    number = _number(session, existing.incident_id)
    return Outcome("duplicate", existing.id, number, kind=existing.kind)


def record(
    session: Session,
    prep: Prepared,
    match: MatchResult,
    config: Config,
    replies: ReplySink,
    clocks: SlaClocks,
    *,
    secret: bytes,
) -> Outcome:
    """Record ``prep`` as the rules say; ``secret`` signs our Message-IDs and return paths
    (a bounce is believed only when it carries one of them)."""
    if prep.screening.automatic:
        return _record_automatic(session, prep, match, secret)
    if prep.guard.action == "reject":
        return _record_rejected(session, prep, replies)
    if not prep.identity.authenticated:
        return _record_unverified(session, prep, replies)
    if prep.desk is not None:
        return _record_desk_mail(session, prep, config, clocks, replies, secret)
    if match.refused:
        row_id = _store(session, prep, None, "not_authorized")
        _reply(session, replies, prep, "not_authorized", None)
        return Outcome("not_authorized", row_id, reason="sender may not write to that incident")
    if prep.identity.is_staff:
        return _record_staff(session, prep, match, config, clocks, replies)
    unknown = not prep.identity.is_producer and match.incident is None
    if unknown and config.intake.unknown_senders == "reply":
        row_id = _store(session, prep, None, "unknown_sender")
        _reply(session, replies, prep, "unknown_sender", None)
        return Outcome("unknown_sender", row_id, kind="normal", reason="sender not in roster")
    if _opens_incident(prep, match.incident, config) and not may_open_incident(
        session, prep.identity.address or "", prep.raw.received_at, config.limits
    ):
        count_held_back(session)  # in ticketd_rate_limited_total once this commits
        return _record_held(session, prep, "rate_limited", NEW_INCIDENTS)
    return _record_for_incident(session, prep, match, config, replies, clocks)


def _record_unverified(session: Session, prep: Prepared, replies: ReplySink) -> Outcome:
    """Mail whose sender could not be authenticated: kept, attached to nothing, answered
    by nothing, until staff attach it by hand (``ticketd incidents attach``); the desk
    gets a copy marked unverified, with that command."""
    outcome = _record_held(session, prep, "unverified", prep.auth.reason)
    assert outcome.message_row_id is not None
    _copy_to_desk(session, replies, prep, None, outcome.message_row_id)
    return outcome


def _record_held(session: Session, prep: Prepared, disposition: str, why: str) -> Outcome:
    """Record a message in the queue staff review (``ticketd incidents unverified``):
    unattached, audited, unanswered."""
    row_id = _store(session, prep, None, disposition)
    audit(
        session,
        disposition,
        message_row_id=row_id,
        actor=prep.identity.address or "",
        detail={"reason": why, "authentication": prep.auth.method},
    )
    action: Action = "rate_limited" if disposition == "rate_limited" else "unverified"
    return Outcome(action, row_id, reason=f"{disposition}: {why}")


def _record_automatic(
    session: Session, prep: Prepared, match: MatchResult, secret: bytes
) -> Outcome:
    incident = match.incident
    row_id = _store(session, prep, incident, f"screened_{prep.screening.kind}")
    if prep.screening.kind == "bounce":
        note_bounce(session, prep.raw, prep.parsed, prep.screening, row_id, secret=secret)
    number = incident.number if incident else None
    return Outcome(
        "screened", row_id, number, kind=prep.screening.kind, reason=prep.screening.reason
    )


def _opens_incident(prep: Prepared, incident: Incident | None, config: Config) -> bool:
    """Whether a producer's message opens a new incident: it matched none, or one closed
    (or resolved longer ago than the reopening window)."""
    if incident is None or incident.status == "closed":
        return True
    when = prep.raw.received_at
    return incident.status == "resolved" and not may_reopen(
        incident, when, config.lifecycle.reopen_days
    )


def _record_rejected(session: Session, prep: Prepared, replies: ReplySink) -> Outcome:
    row_id = _store(session, prep, None, "pii_rejected", content=False)
    audit(
        session, "pii_rejected", message_row_id=row_id, detail={"finding_counts": prep.guard.counts}
    )
    _reply(
        session, replies, prep, "pii_rejected", None, {"finding_types": sorted(prep.guard.counts)}
    )
    return Outcome("pii_rejected", row_id, reason=_rejected_because(prep.guard.counts))


def _rejected_because(counts: dict[str, int]) -> str:
    found = ", ".join(sorted(set(counts) - {UNSCANNED}))
    if UNSCANNED not in counts:
        return f"personal data found: {found}"
    unread = "too long to check for personal data in time"
    return f"{unread}; personal data found: {found}" if found else unread


def _record_staff(
    session: Session,
    prep: Prepared,
    match: MatchResult,
    config: Config,
    clocks: SlaClocks,
    replies: ReplySink,
) -> Outcome:
    """A caseworker's mail: outbound correspondence on its incident, which now waits
    for the producer (or is resolved, when the caseworker wrote the marker: the
    producer is then mailed that it is)."""
    incident = match.incident
    row_id = _store(
        session, prep, incident, "staff_reply" if incident else "staff_unmatched", direction="out"
    )
    if incident is None:
        return Outcome("recorded", row_id, reason="staff mail matched no incident")
    _staff_replied(session, prep, incident, config, clocks, replies)
    _note(session, prep, incident, row_id, "staff_reply")
    if prep.guard.counts:
        _tell_of_data_sent(session, replies, prep, incident, config)
    return Outcome("recorded", row_id, incident.number)


def _tell_of_data_sent(
    session: Session, replies: ReplySink, prep: Prepared, incident: Incident, config: Config
) -> None:
    """A caseworker's mail that went to the producer without us (the sent folder, a Cc to
    the mailbox) carried consumer data: it is stored redacted, and the caseworker and the
    team lead are told which kinds (``staff_sent_pii``), so it does not happen again."""
    caseworker = prep.identity.address or "a caseworker"
    extra = {"finding_types": sorted(prep.guard.counts), "caseworker": caseworker}
    lead = config.teams[incident.team].lead if incident.team in config.teams else None
    for address in dict.fromkeys(a for a in (prep.identity.address, lead) if a):
        told = Identity(address, is_staff=True, authenticated=True)
        order = ReplyOrder("staff_sent_pii", told, incident.team, incident, extra)
        replies.queue(session, order, prep.raw.received_at)


def _staff_replied(
    session: Session,
    prep: Prepared,
    incident: Incident,
    config: Config,
    clocks: SlaClocks,
    replies: ReplySink,
) -> None:
    """A caseworker answered: the first-response clock stops, and the incident waits for
    the producer (or is resolved, when they wrote the marker: the producer is told)."""
    marker = config.lifecycle.resolution_marker.lower()
    resolves = marker in prep.guard.subject.lower() or marker in prep.guard.new_text.lower()
    clocks.on_staff_reply(session, incident, prep.raw.received_at)
    moved = transition(
        session,
        incident,
        "resolved" if resolves else "awaiting_producer",
        actor=prep.identity.address or "staff",
        reason="caseworker replied",
        when=prep.raw.received_at,
        clocks=clocks,
    )
    if moved and resolves:
        order_resolution_mail(session, replies, incident, prep.raw.received_at)


def _record_for_incident(
    session: Session,
    prep: Prepared,
    match: MatchResult,
    config: Config,
    replies: ReplySink,
    clocks: SlaClocks,
) -> Outcome:
    """A producer's (or accepted stranger's) message on its incident, acknowledged
    here, where the incident is at hand, rather than looked up again by number."""
    incident = _current_incident(session, prep, match.incident, config, clocks)
    new = incident is None or incident.id != (match.incident.id if match.incident else None)
    if incident is None:
        incident = _open(session, prep, config, clocks, linked_from=None)
    row_id = _store(session, prep, incident, "recorded")
    _note(
        session,
        prep,
        incident,
        row_id,
        "message_received",
        {"matched_by": match.reason, "source": prep.raw.source},
    )
    if match.reason == "duplicate_escalation" and not new:
        _note(session, prep, incident, row_id, "duplicate_attached")
    incident.updated_at = prep.raw.received_at
    session.add(incident)
    _acknowledge(session, replies, prep, incident, new=new)
    _copy_to_desk(session, replies, prep, incident, row_id)
    if not new and incident.assignee and _team_notifies(config, incident.team):
        _copy_to_desk(session, replies, prep, incident, row_id, to=incident.assignee)
    return Outcome("recorded", row_id, incident.number, new_incident=new)


def _team_notifies(config: Config, team: str) -> bool:
    """Whether the team wants a follow-up on an assigned incident sent to the assignee too."""
    return team in config.teams and config.teams[team].notify_assignee


def _copy_to_desk(
    session: Session,
    replies: ReplySink,
    prep: Prepared,
    incident: Incident | None,
    row_id: int,
    *,
    to: str | None = None,
) -> None:
    """Order the desk copy of a stored message for the team that owns it
    (``outbound/desk_copies.py``), or for ``to`` (an assignee)."""
    team = incident.team if incident else prep.mailbox.team
    extra: dict[str, object] = {"message_row_id": row_id, **({"to": to} if to else {})}
    replies.queue(
        session, ReplyOrder(DESK_COPY, prep.identity, team, incident, extra), prep.raw.received_at
    )


def _record_desk_mail(
    session: Session,
    prep: Prepared,
    config: Config,
    clocks: SlaClocks,
    replies: ReplySink,
    secret: bytes,
) -> Outcome:
    """Mail to a desk reply or note address.  Only an authenticated caseworker acts
    through it (the unauthenticated were held before): anyone else's is recorded
    unattached, audited and unanswered, and never reaches a producer."""
    assert prep.desk is not None
    incident = _desk_incident(session, prep.desk)
    if not prep.identity.is_staff or incident is None:
        row_id = _store(session, prep, None, "desk_address_refused")
        why = "sender is not staff" if not prep.identity.is_staff else "no such incident"
        detail = {"reason": why, "use": prep.desk.use}
        audit(
            session,
            "desk_address_refused",
            message_row_id=row_id,
            actor=prep.identity.address or "",
            detail=detail,
        )
        return Outcome("not_authorized", row_id, reason=f"desk address refused: {why}")
    if prep.desk.use == "note":
        row_id = _store(session, prep, incident, "internal_note", direction="out")
        _note(session, prep, incident, row_id, "note_added")
        return Outcome("recorded", row_id, incident.number, reason="internal note")
    return _record_desk_reply(session, prep, incident, config, clocks, replies, secret)


def _desk_incident(session: Session, route: DeskRoute) -> Incident | None:
    """The incident a desk address names, or the one it was merged into since."""
    incident = session.get(Incident, route.incident_id)
    return follow_merges(session, incident) if incident is not None else None


def _record_desk_reply(
    session: Session,
    prep: Prepared,
    incident: Incident,
    config: Config,
    clocks: SlaClocks,
    replies: ReplySink,
    secret: bytes,
) -> Outcome:
    """A caseworker's reply to a desk copy: sent on to the producer when the guard found
    no consumer data in what they wrote; else nothing goes, and they are told the kinds."""
    when = prep.raw.received_at
    found = sorted(prep.guard.counts)
    if found:
        row_id = _store(session, prep, incident, "desk_reply_withheld", direction="out")
        _note(
            session,
            prep,
            incident,
            row_id,
            "desk_reply_withheld",
            {"finding_counts": dict(prep.guard.counts)},
        )
        assert prep.desk is not None
        again = desk_address(prep.desk.mailbox_address, "reply", incident.id or 0, secret)
        order_refusal(session, replies, incident, prep.identity, found, reply_to=again, when=when)
        return Outcome("recorded", row_id, incident.number, reason=_withheld_because(found))
    if not prep.guard.new_text.strip():
        row_id = _store(session, prep, incident, "desk_reply_empty", direction="out")
        _note(session, prep, incident, row_id, "desk_reply_empty")
        return Outcome(
            "recorded", row_id, incident.number, reason="desk reply with no text of its own"
        )
    row_id = _store(session, prep, incident, "desk_reply", direction="out")
    zone = ZoneInfo(config.sla.timezone)
    order_desk_reply(session, replies, incident, prep.guard.new_text, zone=zone, when=when)
    _staff_replied(session, prep, incident, config, clocks, replies)
    _note(session, prep, incident, row_id, "desk_reply")
    return Outcome("recorded", row_id, incident.number)


def _withheld_because(found: list[str]) -> str:
    return "desk reply not sent: personal data found: " + ", ".join(found)


def _note(
    session: Session,
    prep: Prepared,
    incident: Incident,
    row_id: int,
    kind: str,
    detail: dict[str, object] | None = None,
) -> None:
    """An audit event about this message on its incident, by its sender."""
    audit(
        session,
        kind,
        incident_id=incident.id,
        message_row_id=row_id,
        actor=prep.identity.address or "",
        detail=detail or {},
    )


def _current_incident(
    session: Session,
    prep: Prepared,
    incident: Incident | None,
    config: Config,
    clocks: SlaClocks,
) -> Incident | None:
    """The incident a producer's message goes on, after the lifecycle rules: a resolved
    one reopens within the window; past it, or once closed, a linked new one opens."""
    if incident is None:
        return None
    when, actor = prep.raw.received_at, prep.identity.address or ""
    if _opens_incident(prep, incident, config):
        return _open(session, prep, config, clocks, linked_from=incident)
    if incident.status in ("resolved", "awaiting_producer"):
        transition(
            session,
            incident,
            "open",
            actor=actor,
            reason="producer replied",
            when=when,
            clocks=clocks,
        )
    return incident


def _open(
    session: Session,
    prep: Prepared,
    config: Config,
    clocks: SlaClocks,
    *,
    linked_from: Incident | None,
) -> Incident:
    subject, text = prep.guard.subject, prep.guard.text
    case_type = detect_type(subject, text) or prep.mailbox.default_type
    incident = open_incident(
        session,
        type=case_type,
        team=config.routing.teams.get(case_type, prep.mailbox.team),
        mailbox=prep.mailbox.name,
        subject=subject,
        producer_id=prep.identity.producer_id,
        person_ids=person_ids(subject, text),
        when=prep.raw.received_at,
        priority=priority_of(subject, prep.guard.new_text, config.routing.high_priority_keywords),
        opened_by=fit_text(prep.identity.address, MAX_ADDRESS) if prep.identity.address else None,
    )
    clocks.start(session, incident, prep.raw.received_at)
    if linked_from is not None:
        incident.linked_from_id = linked_from.id
        audit(
            session, "linked_from", incident_id=incident.id, detail={"incident": linked_from.number}
        )
    return incident


def _store(
    session: Session,
    prep: Prepared,
    incident: Incident | None,
    disposition: str,
    *,
    content: bool = True,
    direction: str = "in",
) -> int:
    """Insert the message's row (a plain INSERT: nothing changes it later in the
    transaction, so it needs no place in the unit of work); its id.  Its values are
    fitted to their columns first (``fit_row``): a NUL, an over-long header must not
    make the message fail on every try."""
    parsed, guard = prep.parsed, prep.guard
    values = {
        "incident_id": incident.id if incident else None,
        "direction": direction,
        "mailbox": prep.mailbox.name,
        "mailboxes": list(prep.raw.mailboxes),
        "dedup_key": prep.dedup_key,
        "kind": prep.screening.kind,
        "disposition": disposition,
        "source": prep.raw.source,
        "message_id": parsed.message_id,
        "in_reply_to": " ".join(parsed.in_reply_to) or None,
        "references": " ".join(parsed.references) or None,
        "sender": parsed.from_address or prep.raw.envelope_from or "",
        "recipients": list(_stored_recipients(prep.raw, parsed, guard)),
        "subject": guard.subject if content else "",
        "text": guard.text if content else "",
        "new_text": guard.new_text if content else "",
        "size": parsed.size,
        "raw_sha256": parsed.raw_sha256,
        "pii_findings": dict(guard.counts),
        "received_at": prep.raw.received_at,
        "authentication": prep.auth.method if prep.auth.authenticated else "none",
        "authentication_results": prep.auth.results,
    }
    row_id = insert_row(session, _MESSAGES, fit_row(_MESSAGES, values))
    if parsed.truncated_headers:  # the parser kept only the start of these (a subject)
        _note_truncated(session, row_id, incident, parsed.truncated_headers)
    _store_attachments(session, row_id, prep, keep_content=content)
    return row_id


def _stored_recipients(
    raw: RawMessage, parsed: ParsedMessage, guard: GuardResult
) -> tuple[str, ...]:
    """The recipients kept with a message: the envelope's, else its To and Cc; as the
    guard redacted them when it looked (``recipients_of`` is what it was given)."""
    return guard.recipients if guard.recipients is not None else recipients_of(raw, parsed)


def recipients_of(raw: RawMessage, parsed: ParsedMessage) -> tuple[str, ...]:
    """The addresses a message's row lists: the envelope's, else its To and Cc."""
    return tuple(raw.recipients or (*parsed.to, *parsed.cc))


def _note_truncated(
    session: Session, row_id: int, incident: Incident | None, names: tuple[str, ...]
) -> None:
    """Audit that the stored row holds the start of these headers only (names, no values)."""
    incident_id = incident.id if incident else None
    detail = {"headers": list(names)}
    audit(
        session, "headers_truncated", incident_id=incident_id, message_row_id=row_id, detail=detail
    )


def _store_attachments(
    session: Session, row_id: int, prep: Prepared, *, keep_content: bool
) -> None:
    """What the guard keeps of each attachment (``GuardResult.attachments``: a name
    redacted, the file, its redacted text or nothing); only the list of them when the
    message's content is not kept."""
    columns = table_of(Attachment).c  # names and types as the columns hold them
    for kept in prep.guard.attachments:
        disposition = kept.disposition if keep_content else "not_stored"
        session.add(
            Attachment(
                message_row_id=row_id,
                filename=fit_text(kept.filename, columns.filename.type.length),
                content_type=fit_text(kept.content_type, columns.content_type.type.length),
                size=kept.size,
                sha256=kept.sha256,
                disposition=disposition,
                content=kept.content if keep_content else None,
            )
        )


def _reply(
    session: Session,
    replies: ReplySink,
    prep: Prepared,
    kind: str,
    incident: Incident | None,
    extra: dict[str, object] | None = None,
) -> bool:
    """Order a reply to the sender; ``False`` when none goes (no address, a sender that
    could not be authenticated, a message that asked for none, or a loop or rate rule)."""
    if prep.screening.no_reply or not prep.identity.address or not prep.identity.authenticated:
        return False
    # Mail about an incident speaks for the team that owns it, which routing may have
    # chosen over the team of the mailbox the message came to.
    team = incident.team if incident else prep.mailbox.team
    order = ReplyOrder.answering(prep.parsed, kind, prep.identity, team, incident, extra)
    return replies.queue(session, order, prep.raw.received_at)


def _acknowledge(
    session: Session, replies: ReplySink, prep: Prepared, incident: Incident, *, new: bool
) -> None:
    """ack_new for a new incident, ack_reply for a follow-up; either says what the guard
    removed.  When the acknowledgement is held back (one ack_reply an hour), a producer
    whose mail was redacted is still told, by pii_redacted alone."""
    found = sorted(prep.guard.counts) if prep.guard.action == "redact" else []
    removed: dict[str, object] = {"finding_types": found}
    acknowledged = _reply(
        session, replies, prep, "ack_new" if new else "ack_reply", incident, removed
    )
    if found and not acknowledged:
        _reply(session, replies, prep, "pii_redacted", incident, removed)


def _number(session: Session, incident_id: int | None) -> str | None:
    incident = session.get(Incident, incident_id) if incident_id else None
    return incident.number if incident else None
