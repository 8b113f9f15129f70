"""The ``ticketd`` command group and its error edge (the context: ``context.py``).

Every ticketd error is caught here and printed as one line per problem on
stderr with a non-zero exit: no tracebacks for user mistakes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mailer.errors import MailerError
from ticketing.cli.context import Context
from ticketing.errors import ConfigError, TicketdError
from ticketing.logs import configure_logging

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    # not checked here: an unreadable file is the loader's ConfigError, naming it (and
    # ``ingest`` must answer 75 for it, not click's usage status 2)
    type=click.Path(dir_okay=False, readable=False, path_type=Path),
    default=None,
    help="Configuration file (default: $TICKETD_CONFIG, then ./config.toml).",
)
@click.version_option(package_name="ticketd")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """ticketd: email intake and ticketing for the escalated-cases desk."""
    ctx.obj = Context(config_path)
    ctx.call_on_close(ctx.obj.close)


def _register_commands() -> None:
    from ticketing.cli import (
        config_cmd,
        hotline_cmd,
        incidents_cmd,
        ingest_cmd,
        outbox_cmd,
        pii_cmd,
        producers_cmd,
        quarantine_cmd,
        reports_cmd,
        serve_cmd,
        sla_cmd,
        status_cmd,
        templates_cmd,
        users_cmd,
    )

    cli.add_command(config_cmd.config_group)
    cli.add_command(templates_cmd.templates_group)
    cli.add_command(outbox_cmd.outbox_group)
    cli.add_command(pii_cmd.pii_group)
    cli.add_command(producers_cmd.producers_group)
    cli.add_command(incidents_cmd.incidents_group)
    incidents_cmd.incidents_group.add_command(hotline_cmd.open_command)
    cli.add_command(serve_cmd.init_command)
    cli.add_command(serve_cmd.serve_command)
    cli.add_command(ingest_cmd.ingest_command)
    cli.add_command(quarantine_cmd.quarantine_group)
    cli.add_command(sla_cmd.sla_group)
    cli.add_command(status_cmd.status_command)
    cli.add_command(users_cmd.users_group)
    cli.add_command(reports_cmd.reports_group)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    try:
        cli.main(args=argv, prog_name="ticketd", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("ticketd: aborted", err=True)
        sys.exit(1)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            click.echo(f"ticketd: {line}", err=True)
        sys.exit(1)
    except (TicketdError, MailerError) as exc:
        click.echo(f"ticketd: {exc}", err=True)
        sys.exit(1)
