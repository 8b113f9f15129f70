"""Intake replies: ordered in the recording transaction, composed right after its commit.

Rendering a reply and scanning it for personal data take about 2 ms.  Inside
the recording transaction that time is spent in the writers' turn, which
SQLite writers take one at a time, so it bounded intake.  Instead the
transaction writes the reply as an *order*: an outbox row in status
``composing`` with what composing needs in ``reply_order``, and the loop and
rate rules applied as for any reply (they count orders too).  Right after the
commit the same process composes the orders, scans them and, in one short
transaction, makes each ``pending`` (or withholds it, audited).

Nothing is lost when the process dies in between: the order is committed, and
once its lease (``next_attempt_at``) has run out ``compose_orphans`` (run by
the daemon) composes it from ``reply_order``, with the Message-ID chosen when
it was ordered, so a twin attempt could only ever produce the same mail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import null, update
from sqlalchemy.engine import Engine, Result
from sqlmodel import Session, col, select

from pii_guard import AllowList, PiiGuard
from ticketing.errors import ReplyError
from ticketing.outbound.compose import ComposedMail, ReplyComposer
from ticketing.outbound.desk_copies import (
    DESK_COPY,
    OrderedDeskCopy,
    build_desk_copies,
    order_desk_copy,
    reordered_desk_copy,
    settle_desk_copies,
)
from ticketing.outbound.enqueue import audit_failures, permitted_recipient
from ticketing.outbound.person_ids import PersonIds
from ticketing.outbound.request import ReplyRequest
from ticketing.outbound.scan import note_withheld, personal_data_in, withheld_values
from ticketing.privacy.allow import desk_allow, party_allow
from ticketing.store.audit import audit
from ticketing.store.db import insert_row, transaction
from ticketing.store.models import (
    Incident,
    OutboxMessage,
    Producer,
    table_of,
    utcnow,
)
from ticketing.templating.context import plain_value
from ticketing.templating.kinds import reply_kind

__all__ = [
    "ORDER_LEASE",
    "OrderBatch",
    "OrderedReply",
    "compose_orders",
    "compose_orphans",
    "order_reply",
]

log = logging.getLogger(__name__)
_TABLE = table_of(OutboxMessage)

# How long the ordering process has to compose its orders before the daemon does.
ORDER_LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class OrderedReply:
    """A reply ordered in a transaction, to compose once that transaction has committed.

    ``received_at`` is the time of the message that caused it: the mail's Date
    and the start of its maximum age, as if it had been composed at once.
    """

    row_id: int
    request: ReplyRequest
    message_id: str
    sender_name: str | None
    received_at: datetime


def order_reply(
    session: Session,
    composer: ReplyComposer,
    request: ReplyRequest,
    *,
    sender_name: str | None,
    now: datetime,
) -> OrderedReply | None:
    """Insert the order for ``request`` (not committed), or ``None`` when a loop or rate
    rule suppressed the mail (an ``auto_reply_suppressed`` audit event).

    ``sender_name`` is the display name the producer wrote under: the outbound
    scan allows it, as the inbound scan did.
    """
    if permitted_recipient(session, composer, request, now=now) is None:
        return None
    message_id = composer.message_id_for(request)
    values = _order_row(composer, request, message_id, sender_name, now)
    row_id = insert_row(session, _TABLE, values)
    detail = {"reply_kind": request.kind, "outbox_id": row_id, "message_id": message_id}
    audit(session, "reply_queued", incident_id=values["incident_id"], detail=detail, created_at=now)
    return OrderedReply(row_id, request, message_id, sender_name, now)


def _order_row(
    composer: ReplyComposer,
    request: ReplyRequest,
    message_id: str,
    sender_name: str | None,
    now: datetime,
) -> dict[str, Any]:
    outbound = composer.config.outbound
    return {
        "incident_id": request.incident.id if request.incident else None,
        "kind": request.kind,
        "to_address": request.to.strip().lower(),
        "mail_from": outbound.from_address,
        "message_id": message_id,
        "mime": b"",
        "trigger_fingerprint": request.trigger_fingerprint,
        "status": "composing",
        "attempts": 0,
        "next_attempt_at": utcnow() + ORDER_LEASE,  # the lease of the process ordering it
        "expires_at": now + timedelta(hours=outbound.max_age_hours),
        "created_at": now,
        "reply_order": _order_data(request, sender_name),
    }


def _order_data(request: ReplyRequest, sender_name: str | None) -> dict[str, Any]:
    """What composing needs beyond the row's own columns; ids, never whole records."""
    return {
        "producer_id": request.producer.id if request.producer else None,
        "team": request.team,
        "language": request.language,
        "in_reply_to": request.in_reply_to,
        "references": list(request.references),
        # as the templates will see them: a time is already New York text, so the order
        # is plain JSON and composing it later gives the very same mail
        "extra": {key: plain_value(key, value) for key, value in request.extra.items()},
        "sender_name": sender_name,
        "reply_to": request.reply_to,
    }


def compose_orders(
    engine: Engine,
    composer: ReplyComposer,
    guard: PiiGuard | None,
    orders: Sequence[OrderedReply],
    desk_copies: Sequence[OrderedDeskCopy] = (),
) -> None:
    """Compose and scan ``orders`` (committed), then make each ``pending`` or withhold it;
    build ``desk_copies`` (``outbound/desk_copies.py``) beside them.

    Rendering and scanning run outside any transaction; the results are written
    in one, for the replies and the desk copies together (one durable commit).
    A row no longer ``composing`` (composed meanwhile by the daemon) is left as
    it is.
    """
    if not orders and not desk_copies:
        return
    incident_ids = {o.request.incident.id for o in orders if o.request.incident}
    with transaction(engine, readonly=True) as session:
        # the desk copies are of the same incidents' messages: their Person IDs, read for
        # the copies first, are the replies' too (one read of the same rows)
        person_ids = PersonIds(session)
        copies = build_desk_copies(session, composer, desk_copies, person_ids)
        people = person_ids.of(incident_ids)
    # our mail greets its recipient: a consumer's name there must be found
    desk = replace(desk_allow(composer.config), greeting_names_the_desk=False)
    results = [_compose(composer, guard, desk, order, people) for order in orders]
    with transaction(engine) as session:
        for order, result in zip(orders, results, strict=True):
            _settle(session, order, result)
        settle_desk_copies(session, copies)


@dataclass(frozen=True)
class _Result:
    mail: ComposedMail | None = None
    withheld: dict[str, int] | None = None  # finding counts of a mail carrying personal data
    error: str | None = None


def _compose(
    composer: ReplyComposer,
    guard: PiiGuard | None,
    desk: AllowList,
    order: OrderedReply,
    people: dict[int, list[str]],
) -> _Result:
    request = order.request
    incident_id = request.incident.id if request.incident else None
    try:
        mail = composer.compose(
            request,
            person_ids=people.get(incident_id, []) if incident_id else [],
            now=order.received_at,
            message_id=order.message_id,
        )
    except ReplyError as exc:  # even the shipped template failed: never blocks the others
        return _Result(error=str(exc))  # names files, lines and kinds, never data
    except Exception as exc:  # noqa: BLE001  a bug must not leave the order failing forever
        return _Result(error=f"{type(exc).__name__} while composing")  # its text may hold data
    # A caseworker's desk reply was judged on intake, with the caseworker and the producer
    # allowed (pipeline/runner.py); around it are our template and the producer's stored words.
    if guard is not None and not reply_kind(request.kind).personal:
        allow = party_allow(
            desk, producer=request.producer, address=request.to, names=(order.sender_name,)
        )
        counts = personal_data_in(guard, allow, mail.visible_text)
        if counts:
            return _Result(withheld=counts)
    return _Result(mail=mail)


def _settle(session: Session, order: OrderedReply, result: _Result) -> None:
    """Write what composing ``order`` gave, if its row is still waiting for it."""
    composing = (_TABLE.c.id == order.row_id) & (_TABLE.c.status == "composing")
    incident_id = order.request.incident.id if order.request.incident else None
    if result.withheld is not None:
        if _mark(session, composing, **withheld_values(result.withheld)):
            note_withheld(session, incident_id, order.request.kind, result.withheld)
        return
    if result.error is not None:
        failed = {"status": "failed", "reason": "unrenderable", "last_error": result.error}
        if _mark(session, composing, **failed):
            _audit_unrenderable(session, order, incident_id, result.error)
        return
    assert result.mail is not None
    due = order.received_at  # as if composed at once
    if _mark(session, composing, status="pending", mime=result.mail.mime, next_attempt_at=due):
        audit_failures(session, result.mail, incident_id, order.received_at)


def _mark(session: Session, composing: Any, **values: object) -> bool:
    """Update the order's row unless another process composed it first."""
    stmt = update(_TABLE).where(composing).values(reply_order=null())
    return _changed(session.execute(stmt.values(**values)))


def _changed(result: Result[Any]) -> bool:
    """Whether a guarded UPDATE or DELETE found its row."""
    return bool(getattr(result, "rowcount", 0))


def _audit_unrenderable(
    session: Session, order: OrderedReply, incident_id: int | None, error: str
) -> None:
    log.error(
        "reply %s for incident id %s cannot be composed: %s", order.request.kind, incident_id, error
    )
    detail = {"reply_kind": order.request.kind, "outbox_id": order.row_id, "error": str(error)}
    audit(session, "reply_unrenderable", incident_id=incident_id, detail=detail)


def compose_orphans(
    engine: Engine,
    composer: ReplyComposer,
    guard: PiiGuard | None,
    *,
    now: datetime | None = None,
    limit: int = 100,
) -> int:
    """Compose orders whose process died before composing them (their lease ran out);
    how many were taken.  Several daemons may run this at once: each order is claimed
    by one of them for a new lease first."""
    now = now or utcnow()
    with transaction(engine) as session:
        rows = _claim_orphans(session, now, limit)
        orders = [_reorder(session, row) for row in rows if row.kind != DESK_COPY]
        copies = [reordered_desk_copy(row) for row in rows if row.kind == DESK_COPY]
    compose_orders(engine, composer, guard, orders, [c for c in copies if c is not None])
    if rows:
        log.warning("composed %d mails a stopped process had ordered", len(rows))
    return len(rows)


def _claim_orphans(session: Session, now: datetime, limit: int) -> list[OutboxMessage]:
    query = (
        select(OutboxMessage)
        .where(col(OutboxMessage.status) == "composing", col(OutboxMessage.next_attempt_at) <= now)
        .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.exec(query))
    for row in rows:
        row.next_attempt_at = now + ORDER_LEASE
        session.add(row)
    return rows


def _reorder(session: Session, row: OutboxMessage) -> OrderedReply:
    """The order a row holds, with its incident and producer read again."""
    assert row.id is not None
    data = row.reply_order or {}
    incident = session.get(Incident, row.incident_id) if row.incident_id else None
    producer_id = data.get("producer_id")
    request = ReplyRequest(
        kind=row.kind,
        to=row.to_address,
        incident=incident,
        producer=session.get(Producer, producer_id) if producer_id else None,
        team=data.get("team"),
        language=data.get("language"),
        in_reply_to=data.get("in_reply_to"),
        references=tuple(data.get("references") or ()),
        trigger_fingerprint=row.trigger_fingerprint,
        extra=data.get("extra") or {},
        reply_to=data.get("reply_to"),
    )
    return OrderedReply(row.id, request, row.message_id, data.get("sender_name"), row.created_at)


class OrderBatch:
    """The mail one transaction orders (``order``), composed once it has committed
    (``compose``): the batch behind the pipeline's replies and the sweep's notices."""

    def __init__(self, composer: ReplyComposer, engine: Engine, guard: PiiGuard | None) -> None:
        self._composer = composer
        self._engine = engine
        self._guard = guard
        self._ordered: list[OrderedReply] = []
        self._desk_copies: list[OrderedDeskCopy] = []

    def order(
        self, session: Session, request: ReplyRequest, *, sender_name: str | None, now: datetime
    ) -> bool:
        """Order ``request`` in ``session``; ``False`` when a rule suppressed it (audited)."""
        ordered = order_reply(session, self._composer, request, sender_name=sender_name, now=now)
        if ordered is not None:
            self._ordered.append(ordered)
        return ordered is not None

    def order_desk_copy(
        self,
        session: Session,
        *,
        message_row_id: int,
        incident: Incident | None,
        team: str,
        now: datetime,
        to: str | None = None,
    ) -> bool:
        """Order the desk copy of a recorded message (``outbound/desk_copies.py``), for the
        team or ``to``; ``False`` when the team's copies have nowhere to go."""
        ordered = order_desk_copy(
            session,
            self._composer,
            message_row_id=message_row_id,
            incident=incident,
            team=team,
            now=now,
            to=to,
        )
        if ordered is not None:
            self._desk_copies.append(ordered)
        return ordered is not None

    def compose(self) -> None:
        compose_orders(self._engine, self._composer, self._guard, self._ordered, self._desk_copies)
