"""``ticketd config check``."""

from __future__ import annotations

import sys

import click

from ticketing.cli.context import Context, pass_context
from ticketing.cli.output import emit_json
from ticketing.config import Config, environment_problems
from ticketing.errors import ConfigError, ConfigProblem

__all__ = ["config_group"]


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_context
def check_command(ctx: Context, as_json: bool) -> None:
    """Validate the configuration; print every problem with its key, exit 1 if any."""
    try:
        loaded = ctx.loaded
        problems = environment_problems(loaded.config)
        if problems:
            raise ConfigError(ctx.source, problems)
    except ConfigError as exc:
        if not as_json:
            raise
        found = [{"key": p.key, "message": p.message} for p in exc.problems]
        emit_json({"ok": False, "source": exc.source, "problems": found})
        sys.exit(1)
    warnings = config_warnings(loaded.config)
    if as_json:
        found = [{"key": w.key, "message": w.message} for w in warnings]
        emit_json({"ok": True, "source": ctx.source, "problems": [], "warnings": found})
        return
    for warning in warnings:
        click.echo(f"ticketd: warning: {warning.render(ctx.source)}", err=True)
    names = ", ".join(box.name for box in loaded.config.mailboxes)
    click.echo(f"{ctx.source}: OK ({len(loaded.config.mailboxes)} mailboxes: {names})")


def config_warnings(config: Config) -> list[ConfigProblem]:
    """What works but will surprise: shown by ``config check``, never a reason to refuse."""
    staff = config.staff
    if staff.addresses or staff.domains:
        return []
    # the shipped default is empty on purpose (who counts as staff is the desk's decision),
    # and then a caseworker Cc'ing a mailbox gets a not_authorized answer
    message = (
        "no caseworkers configured: their replies to a mailbox will be refused as not "
        "authorized until [staff] lists their addresses or domain "
        '(e.g. domains = ["exchange.example"])'
    )
    return [ConfigProblem("staff.addresses, staff.domains", message)]
