"""``ticketd config check``."""

from __future__ import annotations

import sys

import click

from ticketing.cli.app import Context, pass_context
from ticketing.cli.output import emit_json
from ticketing.config import environment_problems
from ticketing.errors import ConfigError

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
    if as_json:
        emit_json({"ok": True, "source": ctx.source, "problems": []})
        return
    names = ", ".join(box.name for box in loaded.config.mailboxes)
    click.echo(f"{ctx.source}: OK ({len(loaded.config.mailboxes)} mailboxes: {names})")
