"""Changing an incident: assign, resolve, reopen, close, merge, attach.

The one way staff change an incident, for ``ticketd incidents ...`` and the
console alike.  Each action runs in ONE transaction, audited with the actor
(``operator:casey`` from the command line, ``Casey Caseworker <casey@...>`` from
the console); the mail it orders (the assignee's notice, the producer's
``resolved`` mail) is written in that transaction and composed after the commit
(``compose_committed``), exactly as intake's replies are: a failure to compose
leaves the orders for the daemon, never undoes the change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from ticketing.config import Config
from ticketing.config.desk_schema import StaffConfig, StaffPerson
from ticketing.errors import NotFoundError
from ticketing.incidents.records import assign_incident, merge_incidents, move_incident
from ticketing.incidents.unverified import attach_message
from ticketing.outbound.assignment import order_assignment_notice
from ticketing.outbound.resolution import order_resolution_mail
from ticketing.outbound.sinks import Replies, compose_committed
from ticketing.sla.clocks import SlaClocks
from ticketing.store.db import transaction
from ticketing.store.models import utcnow

__all__ = [
    "MOVES",
    "Assigned",
    "Desk",
    "Moved",
    "assign",
    "attach",
    "merge",
    "move",
    "resolve",
    "staff_person",
]

# The state changes staff make by name (besides ``resolve``, which mails): verb -> status.
MOVES = {"reopen": "open", "close": "closed"}


@dataclass(frozen=True)
class Desk:
    """What the desk's actions need, passed explicitly: the database, the configuration,
    the SLA clocks and a factory of the replies (called only by an action that mails:
    building one loads the templates)."""

    engine: Engine
    config: Config
    clocks: SlaClocks
    replies: Callable[[], Replies]

    @classmethod
    def of(cls, engine: Engine, config: Config, replies: Callable[[], Replies]) -> Desk:
        """The desk of ``config``, its clocks built from ``[sla]``."""
        return cls(engine, config, SlaClocks.from_config(config.sla), replies)


@dataclass(frozen=True)
class Moved:
    """An incident after a state change; ``told``: whether its producer is mailed."""

    number: str
    status: str
    told: bool = False


@dataclass(frozen=True)
class Assigned:
    """An incident after its assignment; ``told``: whether the assignee is mailed."""

    number: str
    status: str
    assignee: StaffPerson
    told: bool


def staff_person(staff: StaffConfig, who: str) -> StaffPerson:
    """The person ``who`` names: one of ``[staff] people`` (by address or name), else an
    address ``[staff]`` lists, named by itself; anyone else is refused."""
    person = staff.person(who)
    if person is not None:
        return person
    if "@" in who and staff.is_staff(who.strip()):
        address = who.strip().lower()
        return StaffPerson(name=address, address=address)
    raise NotFoundError(
        f"{who!r} is not staff: name a person of [staff] people, or an address that "
        "[staff] addresses or domains list"
    )


def assign(desk: Desk, number: str, who: str, actor: str, why: str = "") -> Assigned:
    """Give incident ``number`` to the caseworker ``who`` names (``staff_person``), who is
    mailed what it is, ``why`` and when it is due; a new incident becomes open."""
    person = staff_person(desk.config.staff, who)
    replies = desk.replies().batch()
    with transaction(desk.engine) as session:
        incident = assign_incident(session, number, person.address, actor, desk.clocks)
        told = order_assignment_notice(session, replies, incident, person, why, utcnow())
        assigned = Assigned(incident.number, incident.status, person, told)
    compose_committed(replies.compose)
    return assigned


def resolve(desk: Desk, number: str, actor: str, reason: str) -> Moved:
    """Mark incident ``number`` resolved and mail its producer that it is."""
    replies = desk.replies().batch()
    with transaction(desk.engine) as session:
        incident = move_incident(session, number, "resolved", actor, reason, desk.clocks)
        told = order_resolution_mail(session, replies, incident, utcnow())
        moved = Moved(incident.number, incident.status, told)
    compose_committed(replies.compose)
    return moved


def move(desk: Desk, number: str, to: str, actor: str, reason: str) -> Moved:
    """Move incident ``number`` to status ``to`` (reopen: ``open``; close: ``closed``);
    nothing is mailed.  ``InvalidTransitionError`` when it is there already or may not go."""
    with transaction(desk.engine) as session:
        incident = move_incident(session, number, to, actor, reason, desk.clocks)
        return Moved(incident.number, incident.status)


def merge(desk: Desk, number: str, into: str, actor: str) -> str:
    """Close ``number`` as merged into ``into`` (whose number is returned); mail to
    ``number`` then lands on ``into``."""
    with transaction(desk.engine) as session:
        return merge_incidents(session, number, into, actor, desk.clocks).number


def attach(desk: Desk, message_id: int, number: str, actor: str) -> str:
    """Attach a waiting message (the unverified queue) to incident ``number``, whose number
    is returned; nothing is mailed, the incident's state and clock do not change."""
    with transaction(desk.engine) as session:
        return attach_message(session, message_id, number, actor).number
