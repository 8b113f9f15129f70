"""``ticketd incidents list|show|assign|resolve|reopen|close|merge|unverified|attach``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ticketing.cli.context import Context, pass_context
from ticketing.cli.desk_time import desk_text, desk_zone
from ticketing.cli.incident_view import detail_dict, detail_lines, summary_dict, waiting_dict
from ticketing.cli.operator import by_option, operator_actor
from ticketing.cli.output import emit_json, emit_table
from ticketing.desk import actions
from ticketing.desk.actions import Desk
from ticketing.incidents.records import incident_detail, list_incidents
from ticketing.incidents.unverified import unverified_messages
from ticketing.store.db import transaction
from ticketing.store.migrate import require_current

if TYPE_CHECKING:
    from ticketing.outbound.sinks import Replies

__all__ = ["incidents_group"]

_NO_MAIL_TO_PRODUCER = "no mail to the producer (incidents show says why)"


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


def _desk(ctx: Context) -> Desk:
    """The desk's actions on this command's configuration and database (which must be
    at the current schema); the replies are built only by an action that mails."""
    require_current(ctx.engine)
    return Desk.of(ctx.engine, ctx.loaded.config, lambda: _replies(ctx))


def _replies(ctx: Context) -> Replies:
    """The daemon's replies, composed and scanned here: the mail an action orders goes out
    as the daemon's own would (the daemon's dispatcher delivers it)."""
    # The pipeline's and the guard's modules only for the commands that mail.
    from ticketing.intake.build import build_composer
    from ticketing.outbound.templated import TemplatedReplies
    from ticketing.privacy.settings import build_guard

    config = ctx.loaded.config
    composer, _store = build_composer(config, ctx.engine)
    return TemplatedReplies(composer, ctx.engine, build_guard(config.pii))


def _state_command(name: str, to: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("number")
    @click.option("--reason", default=f"{name} by operator", show_default=True)
    @by_option
    @pass_context
    def command(ctx: Context, number: str, reason: str, by: str | None) -> None:
        moved = actions.move(_desk(ctx), number, to, operator_actor(by), reason)
        click.echo(f"{moved.number}: {moved.status}")

    return command


@incidents_group.command("resolve")
@click.argument("number")
@click.option("--reason", default="resolve by operator", show_default=True)
@by_option
@pass_context
def resolve_command(ctx: Context, number: str, reason: str, by: str | None) -> None:
    """Mark an incident resolved and mail its producer that it is."""
    moved = actions.resolve(_desk(ctx), number, operator_actor(by), reason)
    news = "the producer is mailed" if moved.told else _NO_MAIL_TO_PRODUCER
    click.echo(f"{moved.number}: {moved.status}; {news}")


incidents_group.add_command(
    _state_command("reopen", actions.MOVES["reopen"], "Reopen a resolved or closed incident.")
)
incidents_group.add_command(_state_command("close", actions.MOVES["close"], "Close an incident."))


@incidents_group.command("assign")
@click.argument("number")
@click.argument("assignee")
@click.option("--why", default="", help="Said to the assignee in the notice.")
@by_option
@pass_context
def assign_command(ctx: Context, number: str, assignee: str, why: str, by: str | None) -> None:
    """Assign an incident to a caseworker: a staff address, or the name of a person of
    ``[staff] people``, who is mailed what, why and when it is due."""
    desk = _desk(ctx)
    done = actions.assign(desk, number, assignee, operator_actor(by), why)
    news = f"{done.assignee.name} is mailed" if done.told else "no mail (incidents show says why)"
    click.echo(f"{done.number}: assigned to {done.assignee.address} ({done.status}); {news}")


@incidents_group.command("merge")
@click.argument("number")
@click.option("--into", "into", required=True, help="The incident that lives on.")
@by_option
@pass_context
def merge_command(ctx: Context, number: str, into: str, by: str | None) -> None:
    """Merge NUMBER into another incident; mail to NUMBER then lands on that one."""
    target = actions.merge(_desk(ctx), number, into, operator_actor(by))
    click.echo(f"{number}: merged into {target}")


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
    attached_to = actions.attach(_desk(ctx), message, number, operator_actor(by))
    click.echo(f"message {message}: attached to {attached_to}")
