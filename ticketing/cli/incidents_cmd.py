"""``ticketd incidents list|show|assign|resolve|reopen|close|merge|unverified|attach``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ticketing.cli.context import Context, pass_context
from ticketing.cli.desk_time import desk_text, desk_zone
from ticketing.cli.incident_view import detail_dict, detail_lines, summary_dict, waiting_dict
from ticketing.cli.operator import by_option, operator_actor
from ticketing.cli.output import emit_json, emit_table
from ticketing.config.desk_schema import StaffConfig, StaffPerson
from ticketing.errors import NotFoundError
from ticketing.incidents.records import (
    assign_incident,
    incident_detail,
    list_incidents,
    merge_incidents,
    move_incident,
)
from ticketing.incidents.unverified import attach_message, unverified_messages
from ticketing.sla.clocks import SlaClocks
from ticketing.store.db import transaction
from ticketing.store.migrate import require_current
from ticketing.store.models import utcnow

if TYPE_CHECKING:
    from ticketing.outbound.sinks import Replies

__all__ = ["incidents_group"]


@click.group("incidents")
def incidents_group() -> None:
    """Look at incidents."""


@incidents_group.command("list")
@click.option("--status", default=None, help="Only incidents in this status.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def list_command(ctx: Context, status: str | None, limit: int, as_json: bool) -> None:
    """The most recently opened incidents."""
    require_current(ctx.engine)
    zone = desk_zone(ctx.loaded.config)
    with transaction(ctx.engine) as session:
        incidents = list_incidents(session, status=status, limit=limit)
    if as_json:
        emit_json([summary_dict(i, zone) for i in incidents])
        return
    emit_table(
        ("NUMBER", "TYPE", "STATUS", "TEAM", "OPENED", "SUBJECT"),
        [
            (i.number, i.type, i.status, i.team, desk_text(i.opened_at, zone), i.subject[:60])
            for i in incidents
        ],
    )


@incidents_group.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def show_command(ctx: Context, number: str, as_json: bool) -> None:
    """One incident: its consumers, every message's stored (redacted) text and
    attachments, the replies and why any was not sent, and its history."""
    require_current(ctx.engine)
    zone = desk_zone(ctx.loaded.config)
    with transaction(ctx.engine, readonly=True) as session:
        detail = incident_detail(session, number)
    if as_json:
        emit_json(detail_dict(detail, zone))
        return
    click.echo("\n".join(detail_lines(detail, zone)))


def _clocks(ctx: Context) -> SlaClocks:
    return SlaClocks.from_config(ctx.loaded.config.sla)


def _state_command(name: str, to: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("number")
    @click.option("--reason", default=f"{name} by operator", show_default=True)
    @by_option
    @pass_context
    def command(ctx: Context, number: str, reason: str, by: str | None) -> None:
        require_current(ctx.engine)
        with transaction(ctx.engine) as session:
            incident = move_incident(session, number, to, operator_actor(by), reason, _clocks(ctx))
        click.echo(f"{incident.number}: {incident.status}")

    return command


@incidents_group.command("resolve")
@click.argument("number")
@click.option("--reason", default="resolve by operator", show_default=True)
@by_option
@pass_context
def resolve_command(ctx: Context, number: str, reason: str, by: str | None) -> None:
    """Mark an incident resolved and mail its producer that it is."""
    # The pipeline's and the guard's modules only for the command that mails.
    from ticketing.outbound.resolution import order_resolution_mail
    from ticketing.outbound.sinks import compose_committed

    require_current(ctx.engine)
    replies = _replies(ctx).batch()
    with transaction(ctx.engine) as session:
        incident = move_incident(
            session, number, "resolved", operator_actor(by), reason, _clocks(ctx)
        )
        told = order_resolution_mail(session, replies, incident, utcnow())
    compose_committed(replies.compose)
    news = "the producer is mailed" if told else "no mail to the producer (incidents show says why)"
    click.echo(f"{incident.number}: {incident.status}; {news}")


def _replies(ctx: Context) -> Replies:
    """The daemon's replies, composed and scanned here: the resolved mail goes out as the
    daemon's own would (the daemon's dispatcher delivers it)."""
    from ticketing.intake.build import build_composer
    from ticketing.outbound.templated import TemplatedReplies
    from ticketing.privacy.settings import build_guard

    config = ctx.loaded.config
    composer, _store = build_composer(config, ctx.engine)
    return TemplatedReplies(composer, ctx.engine, build_guard(config.pii))


incidents_group.add_command(
    _state_command("reopen", "open", "Reopen a resolved or closed incident.")
)
incidents_group.add_command(_state_command("close", "closed", "Close an incident."))


@incidents_group.command("assign")
@click.argument("number")
@click.argument("assignee")
@click.option("--why", default="", help="Said to the assignee in the notice.")
@by_option
@pass_context
def assign_command(ctx: Context, number: str, assignee: str, why: str, by: str | None) -> None:
    """Assign an incident to a caseworker: a staff address, or the name of a person of
    ``[staff] people``, who is mailed what, why and when it is due."""
    from ticketing.outbound.assignment import order_assignment_notice
    from ticketing.outbound.sinks import compose_committed

    require_current(ctx.engine)
    person = _staff_person(ctx.loaded.config.staff, assignee)
    replies = _replies(ctx).batch()
    with transaction(ctx.engine) as session:
        incident = assign_incident(
            session, number, person.address, operator_actor(by), _clocks(ctx)
        )
        told = order_assignment_notice(session, replies, incident, person, why, utcnow())
    compose_committed(replies.compose)
    news = f"{person.name} is mailed" if told else "no mail (incidents show says why)"
    click.echo(f"{incident.number}: assigned to {incident.assignee} ({incident.status}); {news}")


def _staff_person(staff: StaffConfig, who: str) -> StaffPerson:
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


@incidents_group.command("merge")
@click.argument("number")
@click.option("--into", "into", required=True, help="The incident that lives on.")
@by_option
@pass_context
def merge_command(ctx: Context, number: str, into: str, by: str | None) -> None:
    """Merge NUMBER into another incident; mail to NUMBER then lands on that one."""
    require_current(ctx.engine)
    with transaction(ctx.engine) as session:
        target = merge_incidents(session, number, into, operator_actor(by), _clocks(ctx))
    click.echo(f"{number}: merged into {target.number}")


@incidents_group.command("unverified")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def unverified_command(ctx: Context, limit: int, as_json: bool) -> None:
    """Mail waiting for staff: senders that could not be authenticated, and new
    incidents held back by the hourly limit.  Attach one with ``incidents attach``."""
    require_current(ctx.engine)
    zone = desk_zone(ctx.loaded.config)
    with transaction(ctx.engine, readonly=True) as session:
        messages = unverified_messages(session, limit)
    if as_json:
        emit_json([waiting_dict(m, zone) for m in messages])
        return
    emit_table(
        ("MESSAGE", "RECEIVED", "FROM", "WHY", "SUBJECT"),
        [
            (m.id, desk_text(m.received_at, zone), m.sender, m.disposition, m.subject[:50])
            for m in messages
        ],
    )


@incidents_group.command("attach")
@click.argument("message", type=int)
@click.argument("number")
@by_option
@pass_context
def attach_command(ctx: Context, message: int, number: str, by: str | None) -> None:
    """Attach waiting MESSAGE (from ``incidents unverified``) to incident NUMBER.
    Nothing is mailed; the incident's state and SLA clock do not change."""
    require_current(ctx.engine)
    with transaction(ctx.engine) as session:
        incident = attach_message(session, message, number, operator_actor(by))
    click.echo(f"message {message}: attached to {incident.number}")
