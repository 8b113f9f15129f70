"""What ordering an outbound mail decides, and the audit of what composing it failed at.

``permitted_recipient`` applies the loop and rate rules (and refuses an
invalid address) before a mail is ordered, recording a refusal as an
``auto_reply_suppressed`` audit event in the caller's transaction (and, for a
rate rule, in ``ticketd_rate_limited_total`` once that transaction commits);
``audit_failures`` records the templates that failed while a mail was
composed (the shipped one answered instead).  Both are used by
``ticketing.outbound.orders``, the one writer of the outbox.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlmodel import Session

from mailer.addresses import normalize_address
from mailer.errors import InvalidAddressError
from ticketing import metrics
from ticketing.errors import TemplateSecurityError
from ticketing.outbound.compose import ComposedMail, ReplyComposer
from ticketing.outbound.policy import RATE_RULES, suppression_rule
from ticketing.outbound.request import ReplyRequest
from ticketing.store.audit import audit
from ticketing.store.db import after_commit
from ticketing.templating.kinds import reply_kind

__all__ = ["audit_failures", "permitted_recipient"]


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
        limits=composer.config.limits,
    )
    if rule is not None:
        _suppressed(session, kind.name, incident_id, rule, now)
        return None
    return to


def _suppressed(
    session: Session, reply_kind_name: str, incident_id: int | None, rule: str, now: datetime
) -> None:
    detail = {"reply_kind": reply_kind_name, "rule": rule}
    audit(session, "auto_reply_suppressed", incident_id=incident_id, detail=detail, created_at=now)
    if rule in RATE_RULES:
        after_commit(session, partial(metrics.report_rate_limited, rule))


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
