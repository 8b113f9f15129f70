"""``ticketd init`` and ``ticketd serve``."""

from __future__ import annotations

import click

from ticketing.cli.context import Context, pass_context
from ticketing.cli.output import emit_json
from ticketing.store.migrate import upgrade

__all__ = ["init_command", "serve_command"]


@click.command("init")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_context
def init_command(ctx: Context, as_json: bool) -> None:
    """Create the database schema, or upgrade it to this version."""
    before, after = upgrade(ctx.engine)
    if as_json:
        emit_json({"before": before, "after": after, "changed": before != after})
    elif before == after:
        click.echo(f"database schema already at {after}")
    else:
        click.echo(f"database schema upgraded from {before or 'empty'} to {after}")


@click.command("serve")
@pass_context
def serve_command(ctx: Context) -> None:
    """Run the daemon: SMTP intake until SIGTERM or SIGINT."""
    # the daemon's modules (the console, Hypercorn, the workers) only for serve: every
    # other command, and the pipe's fallback, start without them
    from ticketing.server.daemon import run_daemon

    run_daemon(ctx.loaded.config, ctx.source, ctx.engine)
