"""Picking up template edits while ``ticketd serve`` runs, with a trail for admins.

A refused edit is logged by the store; here it also becomes an audit event
(``template_refused``, or ``template_security_violation`` when the sandbox
stopped it), so an admin who reaches for ``__class__`` leaves a record.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ticketing.errors import StorageError
from ticketing.store.audit import audit
from ticketing.store.db import transaction
from ticketing.templating.template_store import ReloadResult, TemplateStore

__all__ = ["audit_refused", "reload_templates"]

log = logging.getLogger(__name__)


def audit_refused(session: Session, result: ReloadResult, now: datetime) -> None:
    """One audit event per refused template problem (file, line, reason)."""
    for problem in result.refused:
        kind = "template_security_violation" if problem.security else "template_refused"
        detail = {"file": problem.file, "line": problem.line, "error": problem.message}
        audit(session, kind, detail=detail, created_at=now)


def reload_templates(store: TemplateStore, engine: Engine, now: datetime) -> ReloadResult:
    """Reload the store once; audit what was refused (a database outage only loses the audit)."""
    result = store.reload()
    if result.changed or result.removed:
        log.info(
            "templates reloaded: %d changed, %d removed", len(result.changed), len(result.removed)
        )
    if result.refused:
        try:
            with transaction(engine) as session:
                audit_refused(session, result, now)
        except StorageError as exc:
            log.warning("could not audit refused templates: %s", exc)
    return result
