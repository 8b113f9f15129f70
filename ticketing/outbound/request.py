"""What the pipeline (or the SLA sweeper) asks for: one mail of one kind to one address."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ticketing.store.models import Incident, Producer

__all__ = ["ReplyRequest"]


@dataclass(frozen=True)
class ReplyRequest:
    """One auto-reply or notice to write.

    ``team`` defaults to the incident's team, ``language`` to the producer's
    (then English).  ``in_reply_to``/``references`` are the producer's
    message's Message-ID and References, so the reply threads in their
    client.  ``trigger_fingerprint`` is a hash of the inbound sender, subject
    and body: the same mail is never answered twice within the window.
    ``extra`` holds the kind's extra variables (``finding_types`` for the PII
    kinds, ``due_at`` and ``level`` for the SLA notices).
    """

    kind: str
    to: str
    incident: Incident | None = None
    producer: Producer | None = None
    team: str | None = None
    language: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    trigger_fingerprint: str | None = None
    extra: Mapping[str, object] = field(default_factory=dict)
    reply_to: str | None = None  # unset: the team's mailbox (``ReplyComposer._speaker``)
