"""Auto-replies the pipeline asks for, written into the recording transaction.

The pipeline names *what* to send (kind, recipient, incident); the replies
package renders it and applies the loop rules.  This protocol keeps the
pipeline independent of the templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from mailer.parsing import ParsedMessage
from ticketing.models import Incident
from ticketing.pipeline.types import Identity

__all__ = ["NoReplies", "ReplyOrder", "ReplySink"]


@dataclass(frozen=True)
class ReplyOrder:
    kind: str
    identity: Identity
    message: ParsedMessage
    team: str
    incident: Incident | None = None
    extra: Mapping[str, object] = field(default_factory=dict)


class ReplySink(Protocol):
    def queue(self, session: Session, order: ReplyOrder, now: datetime) -> None:
        """Write the reply's outbox row in ``session`` (or suppress it, audited)."""
        ...


class NoReplies:
    """Sends nothing (tests of intake alone; a daemon always has real replies)."""

    def queue(self, session: Session, order: ReplyOrder, now: datetime) -> None:
        return None
