"""``ticketd incidents list|show``."""

from __future__ import annotations

import os
from typing import Any

import click

from ticketing.cli.app import Context, pass_context
from ticketing.cli.output import emit_json, emit_table, iso
from ticketing.db import transaction
from ticketing.incidents import (
    IncidentDetail,
    assign_incident,
    incident_detail,
    list_incidents,
    merge_incidents,
    move_incident,
)
from ticketing.models import Incident
from ticketing.schema import require_current
from ticketing.sla.clocks import SlaClocks

__all__ = ["incidents_group"]


@click.group("incidents")
def incidents_group() -> None:
    """Look at incidents."""


def _summary(incident: Incident) -> dict[str, Any]:
    return {
        "number": incident.number,
        "type": incident.type,
        "status": incident.status,
        "priority": incident.priority,
        "team": incident.team,
        "mailbox": incident.mailbox,
        "subject": incident.subject,
        "opened_at": iso(incident.opened_at),
        "updated_at": iso(incident.updated_at),
    }


@incidents_group.command("list")
@click.option("--status", default=None, help="Only incidents in this status.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def list_command(ctx: Context, status: str | None, limit: int, as_json: bool) -> None:
    """The most recently opened incidents."""
    require_current(ctx.engine)
    with transaction(ctx.engine) as session:
        incidents = list_incidents(session, status=status, limit=limit)
    if as_json:
        emit_json([_summary(i) for i in incidents])
        return
    emit_table(
        ("NUMBER", "TYPE", "STATUS", "TEAM", "OPENED", "SUBJECT"),
        [
            (
                i.number,
                i.type,
                i.status,
                i.team,
                i.opened_at.strftime("%Y-%m-%d %H:%M"),
                i.subject[:60],
            )
            for i in incidents
        ],
    )


def _detail(detail: IncidentDetail) -> dict[str, Any]:
    producer = detail.producer
    return {
        **_summary(detail.incident),
        "producer": {"npn": producer.npn, "name": producer.name, "email": producer.email}
        if producer
        else None,
        "person_ids": detail.person_ids,
        "messages": [
            {
                "direction": m.direction,
                "sender": m.sender,
                "subject": m.subject,
                "message_id": m.message_id,
                "received_at": iso(m.received_at),
                "pii_findings": m.pii_findings,
            }
            for m in detail.messages
        ],
        "state_changes": [
            {
                "from": e.detail.get("from"),
                "to": e.detail.get("to"),
                "at": iso(e.created_at),
                "actor": e.actor,
                "reason": e.detail.get("reason"),
            }
            for e in detail.events
            if e.kind == "status_changed"
        ],
        "assignee": detail.incident.assignee,
        "linked_from": detail.linked_from,
        "merged_into": detail.merged_into,
        "events": [
            {"kind": e.kind, "actor": e.actor, "at": iso(e.created_at), "detail": e.detail}
            for e in detail.events
        ],
    }


@incidents_group.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def show_command(ctx: Context, number: str, as_json: bool) -> None:
    """One incident with its consumers, messages and history."""
    require_current(ctx.engine)
    with transaction(ctx.engine) as session:
        data = _detail(incident_detail(session, number))
    if as_json:
        emit_json(data)
        return
    for key in ("number", "type", "status", "priority", "team", "mailbox", "subject", "opened_at"):
        click.echo(f"{key + ':':11} {data[key]}")
    producer = data["producer"]
    click.echo(
        f"{'producer:':11} {producer['name']} <{producer['email']}> NPN {producer['npn']}"
        if producer
        else f"{'producer:':11} (none)"
    )
    click.echo(f"{'person ids:':11} {', '.join(data['person_ids']) or '(none)'}")
    click.echo(f"\nmessages ({len(data['messages'])}):")
    for m in data["messages"]:
        click.echo(f"  {m['received_at']}  {m['direction']:3}  {m['sender']}  {m['subject']}")
    click.echo(f"\nhistory ({len(data['events'])}):")
    for e in data["events"]:
        click.echo(f"  {e['at']}  {e['kind']}  {e['actor']}")


def _clocks(ctx: Context) -> SlaClocks:
    return SlaClocks.from_config(ctx.loaded.config.sla)


def _operator() -> str:
    return f"operator:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"


def _state_command(name: str, to: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("number")
    @click.option("--reason", default=f"{name} by operator", show_default=True)
    @pass_context
    def command(ctx: Context, number: str, reason: str) -> None:
        require_current(ctx.engine)
        with transaction(ctx.engine) as session:
            incident = move_incident(session, number, to, _operator(), reason, _clocks(ctx))
        click.echo(f"{incident.number}: {incident.status}")

    return command


incidents_group.add_command(_state_command("resolve", "resolved", "Mark an incident resolved."))
incidents_group.add_command(
    _state_command("reopen", "open", "Reopen a resolved or closed incident.")
)
incidents_group.add_command(_state_command("close", "closed", "Close an incident."))


@incidents_group.command("assign")
@click.argument("number")
@click.argument("assignee")
@pass_context
def assign_command(ctx: Context, number: str, assignee: str) -> None:
    """Assign an incident to a caseworker (address or name)."""
    require_current(ctx.engine)
    with transaction(ctx.engine) as session:
        incident = assign_incident(session, number, assignee, _operator(), _clocks(ctx))
    click.echo(f"{incident.number}: assigned to {incident.assignee} ({incident.status})")


@incidents_group.command("merge")
@click.argument("number")
@click.option("--into", "into", required=True, help="The incident that lives on.")
@pass_context
def merge_command(ctx: Context, number: str, into: str) -> None:
    """Merge NUMBER into another incident; mail to NUMBER then lands on that one."""
    require_current(ctx.engine)
    with transaction(ctx.engine) as session:
        target = merge_incidents(session, number, into, _operator(), _clocks(ctx))
    click.echo(f"{number}: merged into {target.number}")
