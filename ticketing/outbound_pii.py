"""Outbound mail is scanned too: no template or quoted text may mail PII out.

A composed mail whose text the guard flags is withdrawn from the outbox in the
same transaction (it is never sent) and an ``outbound_blocked_pii`` audit
event names the kinds of data found — never the values.
"""

from __future__ import annotations

import logging
from collections import Counter
from email import message_from_bytes, policy

from sqlmodel import Session

from mailer.bodies import html_to_text
from pii_guard import AllowList, PiiGuard
from ticketing.models import AuditEvent, OutboxMessage

__all__ = ["withdraw_if_pii"]

log = logging.getLogger(__name__)


def _visible_text(mime: bytes) -> str:
    message = message_from_bytes(mime, policy=policy.default)
    parts = [p for p in message.walk() if p.get_content_maintype() == "text"]
    texts = []
    for part in parts:
        content = part.get_content()
        texts.append(html_to_text(content) if part.get_content_subtype() == "html" else content)
    return "\n".join([str(message.get("Subject", "")), *texts])


def _each_line_once(text: str) -> str:
    """``text`` without the lines it repeats: an HTML alternative says again what the
    text part said, and a line found clean once is clean again (half the scan)."""
    return "\n".join(dict.fromkeys(line.strip() for line in text.splitlines()))


def withdraw_if_pii(
    session: Session,
    row: OutboxMessage | None,
    guard: PiiGuard | None,
    allow: AllowList,
    visible_text: str | None = None,
) -> bool:
    """``True`` (and the row deleted) when the composed mail carries personal data.

    ``visible_text`` is the composer's own copy of what the recipient reads
    (``ComposedMail.visible_text``); without it, e.g. for a row loaded from
    the database, the row's MIME is parsed for the same text.
    """
    if row is None or guard is None:
        return False
    text = visible_text if visible_text is not None else _visible_text(row.mime)
    findings = guard.scan(_each_line_once(text), allow)
    if not findings:
        return False
    counts = dict(Counter(f.entity_type for f in findings))
    session.add(
        AuditEvent(
            incident_id=row.incident_id,
            kind="outbound_blocked_pii",
            detail={"kind": row.kind, "finding_counts": counts},
        )
    )
    session.delete(row)
    log.warning(
        "outbound %s for incident id %s withheld: personal data (%s)",
        row.kind,
        row.incident_id,
        ", ".join(sorted(counts)),
    )
    return True
