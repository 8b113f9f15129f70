"""What ``ticketd incidents list|show`` prints: one incident as a caseworker reads it.

Only what the database holds is shown, and the database holds redacted text and
the *types* of personal data found with their counts, never the values.  Every
time is in the desk's zone (``ticketing.cli.desk_time``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from ticketing.cli.desk_time import desk_iso, desk_text
from ticketing.incidents.records import IncidentDetail
from ticketing.store.models import (
    KEPT_ATTACHMENTS,
    Attachment,
    AuditEvent,
    Incident,
    Message,
    OutboxMessage,
    Producer,
)

__all__ = ["detail_dict", "detail_lines", "summary_dict", "waiting_dict"]

# Why an automatic reply was not sent (``auto_reply_suppressed``'s ``rule``), in words.
SUPPRESSION_RULES = {
    "duplicate": "the same mail was already sent for this message",
    "ack_reply_hourly": "one acknowledgement an hour per incident",
    "unknown_sender_daily": "one answer a day to an address not in the roster",
    "sender_ceiling": "this address already had the most automatic replies allowed in an hour",
    "replies_per_recipient_day": "this address had the most automatic replies allowed in a day",
    "unknown_sender_replies_day": "the desk sent the most answers to strangers allowed in a day",
    "undeliverable": "earlier mail to this address bounced",
    "invalid_address": "the sender's address cannot be written to",
}

# How a message's sender was authenticated (``Message.authentication``), in words.
_AUTHENTICATION = {
    "verified": "authenticated (DMARC-aligned SPF or DKIM, checked here)",
    "trusted_results": "authenticated (by a trusted Authentication-Results)",
    "mailbox_results": "authenticated (by the mailbox server's Authentication-Results)",
    "exchange_internal": "authenticated (mail inside the Microsoft 365 tenant)",
    "trusted_host": "believed (sent from a trusted host)",
    "mailbox": "believed (the shared mailbox's own sent mail)",
    "off": "not checked (authentication off, or recorded before it existed)",
    "hotline": "by telephone (a caseworker took the call)",
    "none": "NOT authenticated",
}

# Attachment dispositions: whether a caseworker can get the file, and why not.
ATTACHMENTS = {
    "stored": "kept",
    "stored_redacted": "kept as its text, with the personal data it held removed",
    "dropped_unscannable": (
        "dropped: it cannot be checked for personal data (image, encrypted or damaged"
        " document, too large)"
    ),
    "dropped_pii": "dropped: it holds personal data",
    "not_stored": "not kept: the message was refused, the file is only listed",
}

# Stored text comes from strangers' mail: control characters (a terminal's escape
# sequences among them) are shown as a replacement mark, never sent to the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_BODY_INDENT = " " * 6


def summary_dict(incident: Incident, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "number": incident.number,
        "type": incident.type,
        "status": incident.status,
        "priority": incident.priority,
        "team": incident.team,
        "mailbox": incident.mailbox,
        "subject": incident.subject,
        "opened_at": desk_iso(incident.opened_at, zone),
        "updated_at": desk_iso(incident.updated_at, zone),
    }


# --- JSON ---------------------------------------------------------------------------------------


def detail_dict(detail: IncidentDetail, zone: ZoneInfo) -> dict[str, Any]:
    events = detail.events
    return {
        **summary_dict(detail.incident, zone),
        "producer": _producer_dict(detail.producer),
        "person_ids": detail.person_ids,
        "messages": [_message_dict(m, _attachments(detail, m), zone) for m in detail.messages],
        "replies": [_reply_dict(r, zone) for r in detail.replies],
        "not_sent": [_not_sent_dict(e, zone) for e in _not_sent(events)],
        "state_changes": [_change_dict(e, zone) for e in events if e.kind == "status_changed"],
        "assignee": detail.incident.assignee,
        "linked_from": detail.linked_from,
        "merged_into": detail.merged_into,
        "events": [_event_dict(e, zone) for e in events],
    }


def _producer_dict(producer: Producer | None) -> dict[str, Any] | None:
    if producer is None:
        return None
    return {"npn": producer.npn, "name": producer.name, "email": producer.email}


def _change_dict(e: AuditEvent, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "from": e.detail.get("from"),
        "to": e.detail.get("to"),
        "at": desk_iso(e.created_at, zone),
        "actor": e.actor,
        "reason": e.detail.get("reason"),
    }


def _event_dict(e: AuditEvent, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "kind": e.kind,
        "actor": e.actor,
        "at": desk_iso(e.created_at, zone),
        "detail": e.detail,
    }


def _attachments(detail: IncidentDetail, message: Message) -> list[Attachment]:
    return detail.attachments.get(message.id, []) if message.id is not None else []


def _message_dict(m: Message, attachments: list[Attachment], zone: ZoneInfo) -> dict[str, Any]:
    return {
        "direction": m.direction,
        "sender": m.sender,
        "subject": m.subject,
        "message_id": m.message_id,
        "received_at": desk_iso(m.received_at, zone),
        "mailbox": m.mailbox,
        "kind": m.kind,
        "disposition": m.disposition,
        "authentication": m.authentication,
        "authentication_results": m.authentication_results,
        "pii_findings": m.pii_findings,
        "text": m.text,
        "new_text": m.new_text,
        "attachments": [_attachment_dict(a) for a in attachments],
    }


def waiting_dict(m: Message, zone: ZoneInfo) -> dict[str, Any]:
    """A message of the unverified queue (``ticketd incidents unverified --json``)."""
    return {
        "message": m.id,
        "received_at": desk_iso(m.received_at, zone),
        "sender": m.sender,
        "disposition": m.disposition,
        "authentication_results": m.authentication_results,
        "subject": m.subject,
        "mailbox": m.mailbox,
    }


def _attachment_dict(a: Attachment) -> dict[str, Any]:
    return {
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "disposition": a.disposition,
        "kept": a.disposition in KEPT_ATTACHMENTS,
    }


def _reply_dict(r: OutboxMessage, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "to": r.to_address,
        "status": r.status,
        "reason": r.reason,
        "created_at": desk_iso(r.created_at, zone),
        "sent_at": desk_iso(r.sent_at, zone),
        "pii_findings": r.pii_findings,
    }


def _not_sent(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    kinds = ("auto_reply_suppressed", "outbound_blocked_pii")
    return [e for e in events if e.kind in kinds]


def _not_sent_dict(e: AuditEvent, zone: ZoneInfo) -> dict[str, Any]:
    blocked = e.kind == "outbound_blocked_pii"
    return {
        "at": desk_iso(e.created_at, zone),
        "event": e.kind,
        "reply_kind": e.detail.get("kind" if blocked else "reply_kind"),
        "rule": "personal_data" if blocked else e.detail.get("rule"),
        "finding_counts": e.detail.get("finding_counts") if blocked else None,
        "why": why_not_sent(e),
    }


def why_not_sent(e: AuditEvent) -> str:
    """One sentence a caseworker understands, with the rule's code for whoever tunes it."""
    if e.kind == "outbound_blocked_pii":
        found = _counts(e.detail.get("finding_counts") or {})
        return f"{e.detail.get('kind')} withheld: the composed mail held personal data ({found})"
    rule = str(e.detail.get("rule"))
    words = SUPPRESSION_RULES.get(rule, "a rule of the outbox")
    return f"{e.detail.get('reply_kind')} not sent: {words} ({rule})"


def _counts(counts: Mapping[str, Any]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items())) or "none"


# --- text ---------------------------------------------------------------------------------------


def detail_lines(detail: IncidentDetail, zone: ZoneInfo) -> list[str]:
    return [
        *_head_lines(detail, zone),
        f"\nmessages ({len(detail.messages)}):",
        *[line for m in detail.messages for line in _message_lines(detail, m, zone)],
        f"\nreplies ({len(detail.replies)}):",
        *[_reply_line(r, zone) for r in detail.replies],
        *_not_sent_lines(detail, zone),
        f"\nhistory ({len(detail.events)}):",
        *[f"  {desk_text(e.created_at, zone)}  {e.kind}  {e.actor}" for e in detail.events],
    ]


def _head_lines(detail: IncidentDetail, zone: ZoneInfo) -> list[str]:
    i, producer = detail.incident, detail.producer
    fields = (
        ("number", i.number),
        ("type", i.type),
        ("status", i.status),
        ("priority", i.priority),
        ("team", i.team),
        ("mailbox", i.mailbox),
        ("subject", _printable(i.subject)),
        ("opened_at", desk_text(i.opened_at, zone)),
        ("producer", f"{producer.name} <{producer.email}> NPN {producer.npn}" if producer else ""),
        ("person ids", ", ".join(detail.person_ids)),
    )
    return [f"{label + ':':11} {value or '(none)'}" for label, value in fields]


def _message_lines(detail: IncidentDetail, m: Message, zone: ZoneInfo) -> list[str]:
    head = f"  {desk_text(m.received_at, zone)}  {m.direction:3}  {m.sender}  {m.subject}"
    notes = [_BODY_INDENT + note for note in _notes(detail, m)]
    return [_printable(head), *_body_lines(m.text), *notes]


def _notes(detail: IncidentDetail, m: Message) -> list[str]:
    """Under the text: what screening made of the message, what the PII guard found, the
    attachments."""
    notes = []
    if (m.kind, m.disposition) != ("normal", "recorded"):
        notes.append(f"({m.kind}, {m.disposition})")
    if m.direction == "in":
        notes.append(f"sender: {_AUTHENTICATION.get(m.authentication, m.authentication)}")
    if m.pii_findings:
        notes.append(f"personal data found, redacted or dropped: {_counts(m.pii_findings)}")
    return notes + [_attachment_line(a) for a in _attachments(detail, m)]


def _body_lines(text: str) -> list[str]:
    # splitlines: stored text keeps the mail's CRLFs, and a bare CR would move the cursor
    if not text.strip():
        return [_BODY_INDENT + "(no text stored)"]
    return [(_BODY_INDENT + _printable(line)).rstrip() for line in text.strip("\r\n").splitlines()]


def _attachment_line(a: Attachment) -> str:
    what = ATTACHMENTS.get(a.disposition, a.disposition)
    name = _printable(a.filename) or "(no name)"
    return f"attachment {name} ({a.content_type}, {_size(a.size)}): {what}"


def _reply_line(r: OutboxMessage, zone: ZoneInfo) -> str:
    outcome = r.status
    if r.status == "sent":
        outcome = f"sent {desk_text(r.sent_at, zone)}"
    elif r.status == "withheld":
        found = r.pii_findings
        outcome = "withheld: personal data found" + (f" ({_counts(found)})" if found else "")
    elif r.reason:
        outcome = f"{r.status} ({r.reason})"
    return f"  {desk_text(r.created_at, zone)}  {r.kind}  to {r.to_address}  {outcome}"


def _not_sent_lines(detail: IncidentDetail, zone: ZoneInfo) -> list[str]:
    events = _not_sent(detail.events)
    if not events:
        return []
    lines = [f"  {desk_text(e.created_at, zone)}  {why_not_sent(e)}" for e in events]
    return [f"\nnot sent ({len(events)}):", *lines]


def _printable(value: str) -> str:
    return _CONTROL.sub("\ufffd", value)


def _size(count: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
