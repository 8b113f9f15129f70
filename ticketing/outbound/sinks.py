"""Where the pipeline hands the mail it wants sent: a ``ReplyOrder`` into a sink.

The pipeline names *what* to send (kind, recipient, incident); the outbound
package applies the loop rules, orders it in the recording transaction and
renders it after the commit (``outbound/orders.py``).  These protocols keep the
pipeline independent of the templates: for each recording transaction it
takes a fresh ``ReplyBatch`` from its ``Replies``, hands it every order, and
calls ``compose`` once the transaction has committed, so that rendering can
happen outside the writers' turn.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from sqlmodel import Session

from mailer.parsing import ParsedMessage
from ticketing.incidents.parties import Identity
from ticketing.store.models import Incident

__all__ = [
    "Immediate",
    "NoReplies",
    "Replies",
    "ReplyBatch",
    "ReplyOrder",
    "ReplySink",
    "compose_committed",
    "trigger_fingerprint",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplyOrder:
    """One mail to order: its kind, to whom (``identity``), for which team and incident,
    and what it answers (threading ids, and the fingerprint the duplicate rule compares)."""

    kind: str
    identity: Identity
    team: str
    incident: Incident | None = None
    extra: Mapping[str, object] = field(default_factory=dict)
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    fingerprint: str | None = None
    reply_to: str | None = None  # unset: the team's mailbox

    @classmethod
    def answering(
        cls,
        message: ParsedMessage,
        kind: str,
        identity: Identity,
        team: str,
        incident: Incident | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> ReplyOrder:
        """An auto-reply to ``message``: threaded under it, and fingerprinted by it."""
        own = (message.message_id,) if message.message_id else ()
        return cls(
            kind,
            identity,
            team,
            incident,
            dict(extra or {}),
            message.message_id,
            tuple(dict.fromkeys((*message.references, *own))),
            trigger_fingerprint(identity.address or "", message),
        )


def trigger_fingerprint(sender: str, message: ParsedMessage) -> str:
    """Sender, subject and body, whitespace-folded: the same mail twice is answered once."""
    basis = "\0".join((sender, " ".join(message.subject.split()), " ".join(message.text.split())))
    return hashlib.sha256(basis.encode("utf-8", "surrogateescape")).hexdigest()


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


def compose_committed(compose: Callable[[], None]) -> None:
    """Compose the mail a committed transaction ordered (``ReplyBatch.compose``).  What
    that transaction recorded stands whatever happens here: a failure leaves the orders
    for the daemon's timed job to compose (``compose_orphans``)."""
    try:
        compose()
    except Exception as exc:  # noqa: BLE001  the orders are committed; the daemon takes them
        log.warning("replies left for the daemon to compose (%s)", type(exc).__name__)
