"""The pipeline's replies, rendered from the admin templates into the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from pii_guard import PiiGuard
from ticketing.outbound.compose import ReplyComposer
from ticketing.outbound.desk_copies import DESK_COPY
from ticketing.outbound.orders import OrderBatch
from ticketing.outbound.request import ReplyRequest
from ticketing.outbound.sinks import ReplyOrder
from ticketing.store.models import Producer

__all__ = ["TemplatedBatch", "TemplatedReplies"]


def _producer(session: Session, producer_id: int | None) -> Producer | None:
    return session.get(Producer, producer_id) if producer_id else None


@dataclass(frozen=True)
class TemplatedReplies:
    """The pipeline's ``Replies``: each batch orders replies in the recording
    transaction and composes them after its commit (``ticketing.outbound.orders``)."""

    composer: ReplyComposer
    engine: Engine
    guard: PiiGuard | None = None  # scans what we send, too

    def batch(self) -> TemplatedBatch:
        return TemplatedBatch(self.composer, self.engine, self.guard)


class TemplatedBatch(OrderBatch):
    """The replies one recording transaction ordered."""

    def queue(self, session: Session, order: ReplyOrder, now: datetime) -> bool:
        if order.kind == DESK_COPY:
            row_id = order.extra.get("message_row_id")
            assert isinstance(row_id, int)
            to = order.extra.get("to")
            return self.order_desk_copy(
                session,
                message_row_id=row_id,
                incident=order.incident,
                team=order.team,
                now=now,
                to=to if isinstance(to, str) else None,
            )
        address = order.identity.address
        if not address:
            return False
        producer_id = order.identity.producer_id
        request = ReplyRequest(
            kind=order.kind,
            to=address,
            incident=order.incident,
            producer=order.identity.producer or _producer(session, producer_id),
            team=order.team,
            language=order.identity.language,
            in_reply_to=order.in_reply_to,
            references=order.references,
            trigger_fingerprint=order.fingerprint,
            extra=dict(order.extra),
            reply_to=order.reply_to,
        )
        return self.order(session, request, sender_name=order.identity.name or None, now=now)
