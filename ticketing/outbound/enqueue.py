"""``queue_reply``: decide, compose and write one outbox row in the caller's transaction.

The row is part of the transaction that records the event causing it (the
transactional outbox): if that transaction rolls back, no mail goes out, and
once it commits the dispatcher will deliver it however often it restarts.
Suppressions and template failures are audit events in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from mailer.addresses import normalize_address
from mailer.errors import InvalidAddressError
from ticketing.errors import TemplateSecurityError
from ticketing.outbound.compose import ComposedMail, ReplyComposer
from ticketing.outbound.policy import suppression_rule
from ticketing.outbound.request import ReplyRequest
from ticketing.store.audit import audit
from ticketing.store.models import IncidentConsumer, OutboxMessage
from ticketing.templating.kinds import reply_kind

__all__ = [
    "QueuedReply",
    "audit_failures",
    "permitted_recipient",
    "person_ids_of",
    "queue_composed",
    "queue_reply",
]


@dataclass(frozen=True)
class QueuedReply:
    """The outbox row and the text its recipient will read (for the outbound PII scan)."""

    row: OutboxMessage
    visible_text: str


def queue_reply(
    session: Session, composer: ReplyComposer, request: ReplyRequest, *, now: datetime
) -> OutboxMessage | None:
    """The outbox row for ``request`` (added and flushed, not committed), or ``None``.

    ``None`` means a loop or rate rule suppressed the mail; the reason is an
    ``auto_reply_suppressed`` audit event.
    """
    queued = queue_composed(session, composer, request, now=now)
    return queued.row if queued is not None else None


def queue_composed(
    session: Session, composer: ReplyComposer, request: ReplyRequest, *, now: datetime
) -> QueuedReply | None:
    """``queue_reply`` that also returns the composed mail's visible text, so a caller
    scanning it for PII does not parse the MIME it was just built from."""
    if permitted_recipient(session, composer, request, now=now) is None:
        return None
    incident_id = request.incident.id if request.incident else None
    mail = composer.compose(request, person_ids=person_ids_of(session, incident_id), now=now)
    audit_failures(session, mail, incident_id, now)
    max_age = timedelta(hours=composer.config.outbound.max_age_hours)
    row = _write_row(session, mail, request, incident_id, now, now + max_age)
    return QueuedReply(row, mail.visible_text)


def permitted_recipient(
    session: Session, composer: ReplyComposer, request: ReplyRequest, *, now: datetime
) -> str | None:
    """The normalised recipient of ``request``, or ``None`` when the address is invalid or
    a loop or rate rule forbids the mail (then recorded as an ``auto_reply_suppressed``
    audit event)."""
    kind = reply_kind(request.kind)
    incident_id = request.incident.id if request.incident else None
    try:
        to = normalize_address(request.to)
    except InvalidAddressError:
        _suppressed(session, kind.name, incident_id, "invalid_address", now)
        return None
    rule = suppression_rule(
        session,
        kind,
        to,
        incident_id=incident_id,
        fingerprint=request.trigger_fingerprint,
        now=now,
        config=composer.config.outbound,
    )
    if rule is not None:
        _suppressed(session, kind.name, incident_id, rule, now)
        return None
    return to


def person_ids_of(session: Session, incident_id: int | None) -> list[str]:
    """The Person IDs on the incident, in the order they were added (for the templates)."""
    if incident_id is None:
        return []
    query = (
        select(IncidentConsumer.person_id)
        .where(IncidentConsumer.incident_id == incident_id)
        .order_by(col(IncidentConsumer.id))
    )
    with session.no_autoflush:  # an incident's consumers are flushed with its first message
        return list(session.exec(query))


def _write_row(
    session: Session,
    mail: ComposedMail,
    request: ReplyRequest,
    incident_id: int | None,
    now: datetime,
    expires_at: datetime,
) -> OutboxMessage:
    row = OutboxMessage(
        incident_id=incident_id,
        kind=mail.kind,
        to_address=mail.to,
        mail_from=mail.mail_from,
        message_id=mail.message_id,
        mime=mail.mime,
        trigger_fingerprint=request.trigger_fingerprint,
        next_attempt_at=now,
        expires_at=expires_at,
        created_at=now,
    )
    session.add(row)
    session.flush()
    detail = {"reply_kind": mail.kind, "outbox_id": row.id, "message_id": mail.message_id}
    audit(session, "reply_queued", incident_id=incident_id, detail=detail, created_at=now)
    return row


def _suppressed(
    session: Session, reply_kind_name: str, incident_id: int | None, rule: str, now: datetime
) -> None:
    detail = {"reply_kind": reply_kind_name, "rule": rule}
    audit(session, "auto_reply_suppressed", incident_id=incident_id, detail=detail, created_at=now)


def audit_failures(
    session: Session, mail: ComposedMail, incident_id: int | None, now: datetime
) -> None:
    """A template that failed at send time (the shipped one answered instead), for admins."""
    for failure in mail.failures:
        kind = (
            "template_security_violation"
            if isinstance(failure, TemplateSecurityError)
            else "template_failed"
        )
        detail = {
            "reply_kind": mail.kind,
            "file": failure.file,
            "line": failure.line,
            "error": failure.message,
            "used_instead": list(mail.files),
        }
        audit(session, kind, incident_id=incident_id, detail=detail, created_at=now)
