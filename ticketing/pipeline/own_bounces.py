"""What a bounce of our own mail changes: the outbox row and the address.

Anyone can write a DSN naming any address, and a listed address gets no more
mail (acknowledgements, SLA notices) until an operator clears it.  So a bounce
is believed only when it proves to be about a mail we sent, and only for the
address that mail went to:

a. it was delivered to that mail's return path (``mailer/address_tags.py``:
   the outbox row in a tag whose MAC verifies), by the envelope (SMTP) or, where
   there is none (IMAP, the pipe), by ``Delivered-To``, ``X-Original-To`` or ``To``;
b. or it quotes that mail's Message-ID, which is signed (``signing/message_ids.py``).

Each believed failure counts by its status: 5.x.x lists the address as
undeliverable and the row becomes ``bounced``; 4.x.x (a delay, or a mail the
remote gave up on for a transient reason) is audited and counted on the
address's row if it is listed, and stops nothing.  Any other bounce is
recorded (by the caller) and audited ``bounce_not_ours`` with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import getaddresses

from sqlmodel import Session, select

from mailer.address_tags import returned_number, untag
from mailer.bounces import Failure
from mailer.parsing import ParsedMessage
from mailer.screening import Screening
from ticketing.outbound.undeliverable import count_soft_bounce, mark_undeliverable
from ticketing.pipeline.types import RawMessage
from ticketing.signing.message_ids import is_our_message_id
from ticketing.store.audit import audit
from ticketing.store.models import OutboxMessage

__all__ = ["note_bounce"]

_DELIVERED_HEADERS = ("delivered-to", "x-original-to", "to")
_MAX_CANDIDATES = 50  # addresses tried as return paths; a real bounce has one or two


@dataclass(frozen=True)
class _Returned:
    """An outbox row a bounce proves it returns, and how it proves it."""

    row: OutboxMessage
    via: str  # "return_path" | "message_id"


def note_bounce(
    session: Session,
    raw: RawMessage,
    parsed: ParsedMessage,
    screening: Screening,
    row_id: int,
    *,
    secret: bytes,
) -> None:
    """Apply the failures a bounce of our own mail reports (see the module docstring);
    audit ``bounce_not_ours`` for the rest.  ``row_id`` is the bounce's message row."""
    returned = _returned_mail(session, raw, parsed, screening, secret)
    if not returned:
        _not_ours(session, row_id, None, "no return path or signed Message-ID of ours")
        return
    incident_id = returned[0].row.incident_id
    if not screening.failures:
        _not_ours(session, row_id, incident_id, "no failed recipient found")
        return
    for mail in returned:
        address = mail.row.to_address.lower()
        failure = _worst(f for f in screening.failures if address in f.addresses)
        if failure is not None:
            _apply(session, mail, failure, row_id, screening.reason, raw.received_at)
    ours = {mail.row.to_address.lower() for mail in returned}
    others = [f for f in screening.failures if not f.addresses & ours]
    if others:
        why = "a failed recipient is not the address that mail went to"
        _not_ours(session, row_id, incident_id, why, len(others))


def _returned_mail(
    session: Session,
    raw: RawMessage,
    parsed: ParsedMessage,
    screening: Screening,
    secret: bytes,
) -> list[_Returned]:
    """The outbox rows the bounce proves it returns, each once (the return path first)."""
    if not secret:  # an empty key would let anyone sign
        return []
    found: dict[int, _Returned] = {}
    for outbox_id in _return_path_ids(raw, parsed, secret):
        row = session.get(OutboxMessage, outbox_id)
        if row is not None and row.id is not None:
            found.setdefault(row.id, _Returned(row, "return_path"))
    original = screening.original_message_id
    if original and is_our_message_id(original, secret):
        query = select(OutboxMessage).where(OutboxMessage.message_id == original)
        row = session.exec(query).first()
        if row is not None and row.id is not None:
            found.setdefault(row.id, _Returned(row, "message_id"))
    return list(found.values())


def _return_path_ids(raw: RawMessage, parsed: ParsedMessage, secret: bytes) -> Iterator[int]:
    for address in _delivered_to(raw, parsed):
        tagged = untag(address, secret)
        number = returned_number(tagged) if tagged is not None else None
        if number is not None:
            yield number


def _delivered_to(raw: RawMessage, parsed: ParsedMessage) -> list[str]:
    """The addresses the bounce was delivered to: the envelope's, then those an MTA leaves in
    the headers (a tag is as hard to forge there, and IMAP and the pipe have no envelope)."""
    values = [v for name in _DELIVERED_HEADERS for v in parsed.headers.get(name, ())]
    headed = (address for _, address in getaddresses(values))
    tagged = (a for a in (*raw.recipients, *headed) if "+" in a)
    return list(dict.fromkeys(tagged))[:_MAX_CANDIDATES]


def _worst(candidates: Iterable[Failure]) -> Failure | None:
    """Of one address's failures in a bounce, the one that says most: permanent first,
    then a mail given up."""
    ranked = sorted(candidates, key=lambda f: (f.permanent, f.given_up), reverse=True)
    return ranked[0] if ranked else None


def _apply(
    session: Session,
    mail: _Returned,
    failure: Failure,
    row_id: int,
    reason: str,
    now: datetime,
) -> None:
    row = mail.row
    detail: dict[str, object] = {"outbox_id": row.id, "status": failure.status, "via": mail.via}
    if failure.permanent:
        mark_undeliverable(session, row.to_address, f"{failure.status} {reason}", now)
    else:
        detail["counted"] = count_soft_bounce(session, row.to_address, now)
    if failure.given_up:
        row.status = "bounced"
        row.last_error = f"bounced: {failure.status} {reason}"[:500]
        session.add(row)
    kind = "outbound_bounced" if failure.given_up else "outbound_delayed"
    detail["undeliverable"] = failure.permanent
    audit(session, kind, incident_id=row.incident_id, message_row_id=row_id, detail=detail)


def _not_ours(
    session: Session, row_id: int, incident_id: int | None, reason: str, recipients: int = 0
) -> None:
    """Audit a bounce (or the part of one) that changes nothing; never the addresses it names."""
    detail: dict[str, object] = {"reason": reason}
    if recipients:
        detail["recipients"] = recipients
    audit(
        session,
        "bounce_not_ours",
        incident_id=incident_id,
        message_row_id=row_id,
        detail=detail,
    )
