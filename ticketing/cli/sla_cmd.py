"""``ticketd sla due|check``: the business calendar and what is due, for admins."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click

from ticketing.cli.context import Context, pass_context
from ticketing.cli.desk_time import desk_iso, desk_text
from ticketing.cli.output import emit_json, emit_table
from ticketing.errors import TicketdError
from ticketing.outbound.notices import TemplatedNotices
from ticketing.privacy.settings import build_guard
from ticketing.sla.clocks import SlaClocks
from ticketing.sla.policy import deadlines
from ticketing.sla.sweep import DueAction, due_actions
from ticketing.sla.sweeper import run_sweep
from ticketing.store.db import transaction
from ticketing.store.migrate import require_current
from ticketing.store.models import utcnow

__all__ = ["sla_group"]


@click.group("sla")
def sla_group() -> None:
    """Service levels: business-time deadlines and escalations."""


def _moment(value: str, clocks: SlaClocks) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise TicketdError(f"'{value}' is not an ISO-8601 date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=clocks.calendar.timezone)


def _notices(ctx: Context) -> TemplatedNotices:
    from ticketing.intake.build import build_composer

    config = ctx.loaded.config
    composer = build_composer(config, ctx.engine)[0]
    return TemplatedNotices(config, composer, ctx.engine, build_guard(config.pii))


@sla_group.command("due")
@click.argument("start")
@click.option("--policy", "policy_name", default=None, help="Policy name (default: default).")
@pass_context
def due_command(ctx: Context, start: str, policy_name: str | None) -> None:
    """When a first-response clock started at START falls due (one ISO-8601 line)."""
    clocks = SlaClocks.from_config(ctx.loaded.config.sla)
    try:
        policy = ctx.loaded.config.sla.select("", "", policy_name or "default")
    except KeyError:
        raise TicketdError(f"no SLA policy named '{policy_name}'") from None
    found = deadlines(clocks.calendar, policy, _moment(start, clocks), policy.first_response_days)
    click.echo(found.due_at.astimezone(clocks.calendar.timezone).isoformat())


@sla_group.command("check")
@click.option("--at", "at", default=None, help="ISO-8601 moment (default: now).")
@click.option("--apply", is_flag=True, help="Run the sweep: send what is due.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def check_command(ctx: Context, at: str | None, apply: bool, as_json: bool) -> None:
    """What is due for warning or escalation at a moment; changes nothing unless --apply."""
    clocks = SlaClocks.from_config(ctx.loaded.config.sla)
    zone = clocks.calendar.timezone
    moment = _moment(at, clocks) if at else utcnow()
    require_current(ctx.engine)
    with transaction(ctx.engine, readonly=True) as session:
        actions = due_actions(session, moment)
    if apply:
        run_sweep(ctx.loaded.config, ctx.engine, moment, _notices(ctx))
    if as_json:
        due = [_due_dict(a, zone) for a in actions]
        emit_json({"at": desk_iso(moment, zone), "applied": apply, "due": due})
    elif not actions:  # a bare table header reads like a failure to list
        click.echo(f"nothing due at {desk_text(moment, zone)}")
    else:
        rows = [(a.incident_number, a.stage, desk_text(a.due_at, zone)) for a in actions]
        emit_table(("INCIDENT", "STAGE", "DUE"), rows)


def _due_dict(action: DueAction, zone: ZoneInfo) -> dict[str, str | None]:
    return {
        "incident": action.incident_number,
        "stage": action.stage,
        "due_at": desk_iso(action.due_at, zone),
    }
