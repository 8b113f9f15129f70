"""The pipeline's replies, rendered from the admin templates into the outbox."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from mailer.parsing import ParsedMessage
from pii_guard import AllowList, PiiGuard
from ticketing.models import Producer
from ticketing.outbound_pii import withdraw_if_pii
from ticketing.pipeline.replies import ReplyOrder
from ticketing.replies import ReplyComposer, ReplyRequest
from ticketing.replies.enqueue import queue_composed

__all__ = ["TemplatedReplies", "trigger_fingerprint"]


def trigger_fingerprint(sender: str, message: ParsedMessage) -> str:
    """Sender, subject and body, whitespace-folded: the same mail twice is answered once."""
    basis = "\0".join((sender, " ".join(message.subject.split()), " ".join(message.text.split())))
    return hashlib.sha256(basis.encode("utf-8", "surrogateescape")).hexdigest()


def _producer(session: Session, producer_id: int | None) -> Producer | None:
    return session.get(Producer, producer_id) if producer_id else None


@dataclass(frozen=True)
class TemplatedReplies:
    composer: ReplyComposer
    guard: PiiGuard | None = None  # scans what we send, too

    def queue(self, session: Session, order: ReplyOrder, now: datetime) -> None:
        address = order.identity.address
        if not address:
            return
        message = order.message
        own = (message.message_id,) if message.message_id else ()
        producer_id = order.identity.producer_id
        request = ReplyRequest(
            kind=order.kind,
            to=address,
            incident=order.incident,
            producer=order.identity.producer or _producer(session, producer_id),
            team=order.team,
            language=order.identity.language,
            in_reply_to=message.message_id,
            references=tuple(dict.fromkeys((*message.references, *own))),
            trigger_fingerprint=trigger_fingerprint(address, message),
            extra=dict(order.extra),
        )
        queued = queue_composed(session, self.composer, request, now=now)
        if queued is None:
            return
        allow = AllowList(sender_name=order.identity.name or None, sender_email=address)
        withdraw_if_pii(session, queued.row, self.guard, allow, queued.visible_text)
