"""Stage *identify*: who sent this — a caseworker, a producer in the roster, or a stranger.

A ``From:`` that did not pass sender authentication (``pipeline/authenticate.py``)
is a stranger whatever address it names: a forger never acts as staff or producer.
"""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlmodel import Session, select

from mailer.parsing import ParsedMessage
from ticketing.config.desk_schema import StaffConfig
from ticketing.incidents.parties import Identity
from ticketing.store.models import Producer

__all__ = ["addressed_producer", "identify"]

# Built once: SQLAlchemy then skips building the statement and its cache key per message.
_BY_EMAIL = select(Producer).where(Producer.email == bindparam("address"))


def identify(
    session: Session, message: ParsedMessage, staff: StaffConfig, *, authenticated: bool
) -> Identity:
    """The party the ``From:`` names; a stranger, whatever it names, unless authenticated."""
    address = message.from_address
    if not address:  # nobody to believe or answer; a trusted host's mail is still recorded
        return Identity(address=None, authenticated=authenticated)
    if not authenticated:
        return Identity(address=address, name=message.from_name)
    if staff.is_staff(address):
        return Identity(address, name=message.from_name, is_staff=True, authenticated=True)
    producer = session.exec(_BY_EMAIL, params={"address": address}).first()
    if producer is None:
        return Identity(address=address, name=message.from_name, authenticated=True)
    return Identity.of_producer(address, producer)


def addressed_producer(session: Session, message: ParsedMessage) -> Producer | None:
    """The first roster producer among a message's To and Cc: the other side of a
    caseworker's mail, whose own name and address in it are no consumer's data."""
    for address in (*message.to, *message.cc):
        producer = session.exec(_BY_EMAIL, params={"address": address.lower()}).first()
        if producer is not None:
            return producer
    return None
