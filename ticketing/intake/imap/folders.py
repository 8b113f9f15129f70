"""What the poller does with a message after intake, and what folders mean.

A message leaves the inbox for the processed folder once recorded, for the
quarantine folder (or is expunged) when refused; a message found in a state
folder (``folder_states``, e.g. ``Resolved = "resolved"``) moves its incident
to that state, as a caseworker dragging a conversation there intends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ticketing.errors import InvalidTransitionError, NotFoundError
from ticketing.incidents.lifecycle import transition
from ticketing.incidents.records import get_incident
from ticketing.outbound.resolution import order_resolution_mail
from ticketing.outbound.sinks import ReplySink, compose_committed
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import Outcome
from ticketing.store.db import transaction
from ticketing.store.models import Message, utcnow

__all__ = ["Disposition", "apply_folder_state", "known_message_ids"]

log = logging.getLogger(__name__)

# "replaced": by its desk copy (intake/imap/desk.py), then expunged
Disposition = Literal["processed", "quarantine", "expunge", "replaced"]
_LOOKUP_CHUNK = 500


def apply_folder_state(pipeline: IntakePipeline, outcome: Outcome, state: str, where: str) -> bool:
    """Move the incident ``outcome`` recorded onto to ``state``; ``True`` if it changed.
    A move into ``resolved`` tells the producer, as any resolution does."""
    if outcome.incident_number is None:
        return False
    replies = pipeline.replies.batch()
    try:
        with transaction(pipeline.engine) as session:
            moved = _move(session, pipeline, outcome.incident_number, state, where, replies)
    except (InvalidTransitionError, NotFoundError) as exc:
        log.info("folder %s: incident %s left as is: %s", where, outcome.incident_number, exc)
        return False
    compose_committed(replies.compose)
    return moved


def _move(
    session: Session,
    pipeline: IntakePipeline,
    number: str,
    state: str,
    where: str,
    replies: ReplySink,
) -> bool:
    incident, when = get_incident(session, number), utcnow()
    moved = transition(
        session,
        incident,
        state,
        actor=f"imap:{where}",
        reason=f"moved to folder {where}",
        when=when,
        clocks=pipeline.clocks,
    )
    if moved and state == "resolved":
        order_resolution_mail(session, replies, incident, when)
    return moved


def known_message_ids(engine: Engine, ids: Iterable[str]) -> set[str]:
    """Which of these Message-IDs are already recorded."""
    wanted = sorted(set(ids))
    known: set[str] = set()
    with transaction(engine, readonly=True) as session:
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            chunk = wanted[start : start + _LOOKUP_CHUNK]
            rows = session.exec(
                select(Message.message_id).where(col(Message.message_id).in_(chunk))
            )
            known.update(row for row in rows if row)
    return known
