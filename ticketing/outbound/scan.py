"""Outbound mail is scanned too: no template or quoted text may mail PII out.

A composed mail whose text the guard flags is *withheld* in the same
transaction: its outbox row stays, so operators see it (``ticketd outbox
list``, ``status``, ``/metrics``), with status ``withheld``, the kinds of data
found and their counts, and without its content (which is what must not
travel); it is never sent.  An ``outbound_blocked_pii`` audit event names the
kinds too — never the values.
"""

from __future__ import annotations

import logging
from collections import Counter
from email import message_from_bytes, policy

from sqlalchemy import update
from sqlmodel import Session

from mailer.bodies import html_to_text
from pii_guard import AllowList, PiiGuard
from ticketing.config import Config
from ticketing.privacy.allow import desk_allow, party_allow
from ticketing.store.audit import audit
from ticketing.store.models import OutboxMessage, Producer, table_of

__all__ = [
    "WITHHELD",
    "note_withheld",
    "personal_data_in",
    "recipient_allow",
    "withdraw_if_pii",
    "withheld_values",
]

WITHHELD = "withheld"

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
    """``True`` (and the row withheld) when the composed mail carries personal data.

    ``visible_text`` is the composer's own copy of what the recipient reads
    (``ComposedMail.visible_text``); without it, e.g. for a row loaded from
    the database, the row's MIME is parsed for the same text.
    """
    if row is None or guard is None:
        return False
    text = visible_text if visible_text is not None else _visible_text(row.mime)
    counts = personal_data_in(guard, allow, text)
    if not counts:
        return False
    note_withheld(session, row.incident_id, row.kind, counts)
    session.flush()  # the row is written; the update below must find it
    session.execute(
        update(table_of(OutboxMessage))
        .where(table_of(OutboxMessage).c.id == row.id)
        .values(**withheld_values(counts))
    )
    session.expire(row)
    return True


def withheld_values(counts: dict[str, int]) -> dict[str, object]:
    """The columns of a withheld row: never sent, its content dropped, the kinds kept."""
    return {
        "status": WITHHELD,
        "reason": "personal_data",
        "pii_findings": dict(counts),
        "mime": b"",
    }


def recipient_allow(config: Config, producer: Producer | None, to: str) -> AllowList:
    """What the outbound scan of a mail to ``producer`` at ``to`` allows: the desk's own
    identity and the producer's (the daemon's replies use the same rule)."""
    return party_allow(desk_allow(config), producer=producer, address=to)


def personal_data_in(guard: PiiGuard, allow: AllowList, visible_text: str) -> dict[str, int]:
    """How many findings of each entity type the mail's visible text holds (none: ``{}``)."""
    findings = guard.scan(_each_line_once(visible_text), allow)
    return dict(Counter(f.entity_type for f in findings))


def note_withheld(
    session: Session, incident_id: int | None, kind: str, counts: dict[str, int]
) -> None:
    """The ``outbound_blocked_pii`` audit event and warning of a mail that is not sent."""
    audit(
        session,
        "outbound_blocked_pii",
        incident_id=incident_id,
        detail={"kind": kind, "finding_counts": counts},
    )
    log.warning(
        "outbound %s for incident id %s withheld: personal data (%s)",
        kind,
        incident_id,
        ", ".join(sorted(counts)),
    )
