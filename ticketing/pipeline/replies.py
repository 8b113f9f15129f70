"""Auto-replies the pipeline asks for, ordered in the recording transaction.

The pipeline names *what* to send (kind, recipient, incident); the replies
package applies the loop rules and renders it.  These protocols keep the
pipeline independent of the templates: for each recording transaction it
takes a fresh ``ReplyBatch`` from its ``Replies``, hands it every order, and
calls ``compose`` once the transaction has committed, so that rendering can
happen outside the writers' turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from sqlmodel import Session

from mailer.parsing import ParsedMessage
from ticketing.models import Incident
from ticketing.pipeline.types import Identity

__all__ = ["Immediate", "NoReplies", "Replies", "ReplyBatch", "ReplyOrder", "ReplySink"]


@dataclass(frozen=True)
class ReplyOrder:
    kind: str
    identity: Identity
    message: ParsedMessage
    team: str
    incident: Incident | None = None
    extra: Mapping[str, object] = field(default_factory=dict)


class ReplySink(Protocol):
    def queue(self, session: Session, order: ReplyOrder, now: datetime) -> bool:
        """Write the reply's outbox row in ``session``; ``False`` when it is not sent
        (suppressed by a loop or rate rule, audited; or nothing to send)."""
        ...


class ReplyBatch(ReplySink, Protocol):
    def compose(self) -> None:
        """After the commit: compose what ``queue`` ordered (``StorageError`` when that
        cannot be written; the orders stay for the daemon)."""
        ...


@runtime_checkable
class Replies(Protocol):
    def batch(self) -> ReplyBatch:
        """A new batch for one recording transaction."""
        ...


@dataclass(frozen=True)
class Immediate:
    """``Replies`` from a sink that writes each reply in full inside the transaction
    (``NoReplies``, tests' recorders): nothing is left to do after the commit."""

    sink: ReplySink

    def batch(self) -> ReplyBatch:
        return self

    def queue(self, session: Session, order: ReplyOrder, now: datetime) -> bool:
        return self.sink.queue(session, order, now)

    def compose(self) -> None:
        return None


class NoReplies:
    """Sends nothing (tests of intake alone; a daemon always has real replies)."""

    def queue(self, session: Session, order: ReplyOrder, now: datetime) -> bool:
        return False
