"""``ticketd quarantine list|release|purge``: the mail intake set aside
(``ticketing/intake/quarantine.py``): the spool's and every IMAP mailbox's."""

from __future__ import annotations

from datetime import datetime, timedelta

import click

from ticketing.cli.context import Context, pass_context
from ticketing.cli.desk_time import desk_iso, desk_text, desk_zone
from ticketing.cli.operator import by_option, operator_actor
from ticketing.cli.output import emit_json, emit_table
from ticketing.intake.quarantine import (
    Selection,
    Settled,
    list_quarantine,
    purge_quarantine,
    release_quarantine,
)
from ticketing.store.migrate import require_current
from ticketing.store.models import utcnow

__all__ = ["quarantine_group"]

_REFS = click.argument("refs", nargs=-1, metavar="[ID]...")
_ALL = click.option("--all", "every", is_flag=True, help="Every quarantined message.")


@click.group("quarantine")
def quarantine_group() -> None:
    """Mail intake set aside: refused, or failing again and again."""


@quarantine_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def list_command(ctx: Context, as_json: bool) -> None:
    """Every quarantined message: its ID, when it arrived, its size and why."""
    config = ctx.loaded.config
    listing = list_quarantine(config)
    zone = desk_zone(config)
    if as_json:
        rows = [
            {
                "id": held.ref,
                "place": held.place,
                "arrived": desk_iso(held.arrived, zone),
                "size": held.size,
                "reason": held.reason,
            }
            for held in listing.held
        ]
        emit_json({"messages": rows, "problems": listing.problems})
    elif listing.held:
        emit_table(
            ("ID", "ARRIVED", "SIZE", "REASON"),
            [(h.ref, desk_text(h.arrived, zone), h.size, h.reason) for h in listing.held],
        )
    elif not listing.problems:
        click.echo("nothing quarantined")
    _problems(listing.problems)


@quarantine_group.command("release")
@_REFS
@_ALL
@by_option
@pass_context
def release_command(ctx: Context, refs: tuple[str, ...], every: bool, by: str | None) -> None:
    """Give messages another try: back to the spool's new/ or the IMAP inbox."""
    selection = _selection(refs, every)
    require_current(ctx.engine)
    settled = release_quarantine(ctx.loaded.config, ctx.engine, selection, operator_actor(by))
    _report("released", refs, settled)


@quarantine_group.command("purge")
@_REFS
@_ALL
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(0, 3650),
    default=None,
    metavar="DAYS",
    help="Only messages that arrived more than DAYS days ago.",
)
@by_option
@pass_context
def purge_command(
    ctx: Context, refs: tuple[str, ...], every: bool, days: int | None, by: str | None
) -> None:
    """Delete messages for good: the IDs named, --all, or all that arrived more than
    --older-than DAYS ago (of the IDs named, when some are)."""
    before = utcnow() - timedelta(days=days) if days is not None else None
    selection = _selection(refs, every, before)
    require_current(ctx.engine)
    settled = purge_quarantine(ctx.loaded.config, ctx.engine, selection, operator_actor(by))
    _report("purged", refs, settled)


def _selection(refs: tuple[str, ...], every: bool, before: datetime | None = None) -> Selection:
    """Nothing is released or purged by default: the IDs must be named, or --all (or
    --older-than) given."""
    if refs and every:
        raise click.UsageError("name IDs or pass --all, not both")
    if not (refs or every or before):
        raise click.UsageError("name the IDs (from `ticketd quarantine list`), or pass --all")
    return Selection(refs or None, before)


def _report(done: str, refs: tuple[str, ...], settled: Settled) -> None:
    click.echo(f"{done} {len(settled.done)} message{'s' if len(settled.done) != 1 else ''}")
    missing = [ref for ref in refs if ref not in settled.done]
    for ref in missing:
        click.echo(f"ticketd: {ref}: not in a quarantine", err=True)
    _problems(settled.problems)
    if missing:
        raise SystemExit(1)


def _problems(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"ticketd: {problem}", err=True)
    if problems:
        raise SystemExit(1)
