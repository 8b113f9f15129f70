"""The addresses our mail bounced from for good (``undeliverable_addresses``).

No mail goes to a listed address (``policy.py`` when ordering, ``outbox.py``
again when delivering) until an operator clears it: a mailbox that was full or
renamed may take mail again.  Only a bounce intake believes to be of our own
mail (``ticketing/pipeline/own_bounces.py``) adds an address; addresses are
kept and compared lower-case.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from ticketing.errors import NotFoundError
from ticketing.store.audit import audit
from ticketing.store.models import UndeliverableAddress

__all__ = [
    "clear_undeliverable",
    "count_soft_bounce",
    "list_undeliverable",
    "mark_undeliverable",
]


def list_undeliverable(session: Session) -> list[UndeliverableAddress]:
    """Every undeliverable address, the most recently bounced first."""
    query = select(UndeliverableAddress).order_by(
        col(UndeliverableAddress.last_seen).desc(), col(UndeliverableAddress.address)
    )
    return list(session.exec(query))


def mark_undeliverable(
    session: Session, address: str, reason: str, now: datetime
) -> UndeliverableAddress:
    """List ``address`` (a permanent failure), or count one more bounce of a listed one."""
    known = _find(session, address)
    if known is None:
        known = UndeliverableAddress(
            address=address.strip().lower(), reason=reason[:255], first_seen=now, last_seen=now
        )
    else:
        known.bounces += 1
        known.reason, known.last_seen = reason[:255], now
    session.add(known)
    return known


def count_soft_bounce(session: Session, address: str, now: datetime) -> bool:
    """Count a transient failure (4.x.x) on ``address``'s row when it is listed; a transient
    failure never lists an address.  Whether there was a row to count on."""
    known = _find(session, address)
    if known is None:
        return False
    known.bounces += 1
    known.last_seen = now
    session.add(known)
    return True


def clear_undeliverable(
    session: Session, address: str, *, actor: str, now: datetime
) -> UndeliverableAddress:
    """Take ``address`` off the list, so mail goes to it again; audited.  ``NotFoundError``
    when it is not listed."""
    known = _find(session, address)
    if known is None:
        raise NotFoundError(f"{address.strip()} is not an undeliverable address")
    detail = {"address": known.address, "reason": known.reason, "bounces": known.bounces}
    session.delete(known)
    audit(session, "undeliverable_cleared", actor=actor, detail=detail, created_at=now)
    return known


def _find(session: Session, address: str) -> UndeliverableAddress | None:
    lowered = address.strip().lower()
    query = select(UndeliverableAddress).where(func.lower(UndeliverableAddress.address) == lowered)
    return session.exec(query).first()
