"""``ticketd producers import|list``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ticketing.cli.context import Context, pass_context
from ticketing.cli.output import emit_json, emit_table
from ticketing.incidents.roster import ImportReport, import_roster, list_producers, read_roster
from ticketing.store.db import transaction
from ticketing.store.migrate import require_current

__all__ = ["producers_group"]


@click.group("producers")
def producers_group() -> None:
    """The producers (brokers) roster."""


@producers_group.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_context
def import_command(ctx: Context, csv_file: Path, as_json: bool) -> None:
    """Upsert producers from CSV (columns npn, name, email; optional language, phones
    separated by ';', agency).

    Good rows are imported even when others are rejected; the exit status is 1
    when any row was rejected.
    """
    rows, rejected = read_roster(csv_file)
    report = ImportReport(rejected=rejected)
    require_current(ctx.engine)
    with transaction(ctx.engine) as session:
        import_roster(session, rows, report)
    if as_json:
        emit_json(
            {
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "rejected": [{"line": r.line, "reason": r.reason} for r in report.rejected],
            }
        )
    else:
        for bad in report.rejected:
            click.echo(f"{csv_file}:{bad.line}: rejected: {bad.reason}", err=True)
        click.echo(
            f"{report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.rejected)} rejected"
        )
    if report.rejected:
        sys.exit(1)


@producers_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def list_command(ctx: Context, as_json: bool) -> None:
    """List the roster."""
    require_current(ctx.engine)
    with transaction(ctx.engine) as session:
        producers = list_producers(session)
    if as_json:
        emit_json(
            [
                {
                    "npn": p.npn,
                    "name": p.name,
                    "email": p.email,
                    "language": p.language,
                    "phones": p.phones,
                    "agency": p.agency,
                }
                for p in producers
            ]
        )
    else:
        emit_table(
            ("NPN", "NAME", "EMAIL", "LANG", "AGENCY"),
            [(p.npn, p.name, p.email, p.language, p.agency or "") for p in producers],
        )
