"""Stage *identify*: who sent this — a caseworker, a producer in the roster, or a stranger."""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlmodel import Session, select

from mailer.parsing import ParsedMessage
from ticketing.config.desk_schema import StaffConfig
from ticketing.incidents.parties import Identity
from ticketing.store.models import Producer

__all__ = ["identify"]

# Built once: SQLAlchemy then skips building the statement and its cache key per message.
_BY_EMAIL = select(Producer).where(Producer.email == bindparam("address"))


def identify(session: Session, message: ParsedMessage, staff: StaffConfig) -> Identity:
    address = message.from_address
    if not address:
        return Identity(address=None)
    if staff.is_staff(address):
        return Identity(address=address, name=message.from_name, is_staff=True)
    producer = session.exec(_BY_EMAIL, params={"address": address}).first()
    if producer is None:
        return Identity(address=address, name=message.from_name)
    return Identity(address, producer.id, producer.name, producer.language, producer=producer)
