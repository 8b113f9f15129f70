"""How many incidents one sender may open: ``[limits] new_incidents_per_sender_hour``.

Forged producers opening one incident each second would bury the desk's queue;
past the limit the record stage keeps the message (unattached, audited) and
opens nothing.  The count is by ``Incident.opened_by``, the address whose
message opened the incident, so it holds for strangers and producers alike.

On PostgreSQL the count runs under the sender address's transaction-scoped
advisory lock, the one the reply rules take (``outbound/policy.py``): a second
intake process opening an incident for the same sender waits until the first
commits, then counts its incident too.  SQLite's ``BEGIN IMMEDIATE`` already
serialises writers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import bindparam, func, select
from sqlmodel import Session, col

from ticketing import metrics
from ticketing.config import LimitsConfig
from ticketing.outbound.policy import lock_address
from ticketing.store.db import after_commit
from ticketing.store.models import Incident

__all__ = ["NEW_INCIDENTS", "count_held_back", "may_open_incident"]

NEW_INCIDENTS = "new_incidents_per_sender_hour"  # the limit's name in audit and metrics

_WINDOW = timedelta(hours=1)
_OPENED = select(func.count()).where(
    col(Incident.opened_by) == bindparam("address"),
    col(Incident.opened_at) > bindparam("since"),
)


def may_open_incident(session: Session, address: str, now: datetime, limits: LimitsConfig) -> bool:
    """Whether ``address`` may open one more incident: it opened fewer than
    ``new_incidents_per_sender_hour`` in the hour before ``now``.

    ``address`` is compared in lower case, as intake stores ``opened_by``.  The
    lock it takes lasts until the transaction ends: open the incident (or not) in
    the same transaction.
    """
    address = address.strip().lower()
    lock_address(session, address)
    params = {"address": address, "since": now - _WINDOW}
    with session.no_autoflush:  # an incident of this transaction is flushed when opened
        opened: int = session.execute(_OPENED, params).scalar_one()
    return opened < limits.new_incidents_per_sender_hour


def count_held_back(session: Session) -> None:
    """Count one incident held back in ``ticketd_rate_limited_total`` once ``session``'s
    transaction commits (a rolled-back transaction held nothing back)."""
    after_commit(session, partial(metrics.report_rate_limited, NEW_INCIDENTS))
