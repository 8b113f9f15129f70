"""``ticketd reports sla|volume|first-response|pii``: the console's reports, in a terminal.

The same functions as the console's ``/reports`` (``ticketing.desk.reports``): aligned
tables for people, ``--csv`` for a spreadsheet (the console's export, audited the same
way), ``--json`` for scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from ticketing.cli.context import Context, pass_context
from ticketing.cli.desk_time import desk_zone
from ticketing.cli.operator import by_option, operator_actor
from ticketing.cli.output import emit_json, emit_table
from ticketing.desk.reports import (
    MAX_WEEKS,
    Compliance,
    FirstResponseReport,
    Period,
    PiiReport,
    ProducerFindings,
    Report,
    ResponseTimes,
    SlaReport,
    Tally,
    VolumeReport,
    build_report,
    last_weeks,
    record_export,
    report_csv,
    report_json,
    report_rows,
)
from ticketing.store.db import transaction
from ticketing.store.migrate import require_current
from ticketing.store.models import utcnow

__all__ = ["reports_group"]


@click.group("reports")
def reports_group() -> None:
    """SLA compliance, volume, first-response times and PII findings, by week."""


def _period(ctx: Context, weeks: int, team: str | None) -> Period:
    teams = ctx.loaded.config.teams
    if team is not None and team not in teams:
        known = ", ".join(sorted(teams)) or "none"
        raise click.BadParameter(f"unknown team '{team}' (known: {known})", param_hint="--team")
    return last_weeks(utcnow(), weeks, desk_zone(ctx.loaded.config), team)


@dataclass(frozen=True)
class _Options:
    """What every report command takes."""

    weeks: int
    team: str | None
    as_csv: bool
    as_json: bool
    by: str | None


def _run(ctx: Context, name: str, options: _Options) -> Report | None:
    """Build report ``name``; with ``--csv`` or ``--json`` print it and answer ``None``."""
    require_current(ctx.engine)
    period = _period(ctx, options.weeks, options.team)
    with transaction(ctx.engine, readonly=not options.as_csv) as session:
        report = build_report(session, name, period, ctx.loaded.config.sla)
        if options.as_csv:
            record_export(session, name, period, operator_actor(options.by))
    if options.as_csv:
        click.echo(report_csv(report_rows(name, report)), nl=False)
    elif options.as_json:
        emit_json(report_json(report))
    else:
        return report
    return None


def _report_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.option(
                "--weeks",
                default=12,
                show_default=True,
                type=click.IntRange(1, MAX_WEEKS),
                help="The last N weeks (Monday to Sunday, desk time), this one included.",
            ),
            click.option("--team", default=None, help="Only this team (a key of [teams])."),
            click.option("--csv", "as_csv", is_flag=True, help="Print CSV (audited export)."),
            click.option("--json", "as_json", is_flag=True, help="Print JSON."),
            by_option,
        )
    ):
        command = option(command)
    return command


def _section(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    click.echo(f"\n{title}")
    emit_table(headers, rows)


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f}%"


def _compliance(title: str, first: str, items: Sequence[Compliance]) -> None:
    rows = [(c.key, c.due, c.met, c.breached, _percent(c.ratio)) for c in items]
    _section(title, (first, "DUE", "MET", "BREACHED", "COMPLIANCE"), rows)


@reports_group.command("sla")
@_report_options
@pass_context
def sla_command(ctx: Context, /, **options: Any) -> None:
    """Deadlines that came due, met or breached, by week, team and type."""
    report = _run(ctx, "sla", _Options(**options))
    if not isinstance(report, SlaReport):
        return
    _compliance("By week", "WEEK OF", report.by_week)
    _compliance("By team", "TEAM", report.by_team)
    _compliance("By type", "TYPE", report.by_type)
    _compliance("All", "", (report.total,))


def _tallies(title: str, first: str, items: Sequence[Tally]) -> None:
    _section(title, (first, "OPENED"), [(t.key, t.count) for t in items])


@reports_group.command("volume")
@_report_options
@pass_context
def volume_command(ctx: Context, /, **options: Any) -> None:
    """Incidents opened, by week, team and type."""
    report = _run(ctx, "volume", _Options(**options))
    if not isinstance(report, VolumeReport):
        return
    _tallies("By week", "WEEK OF", report.by_week)
    _tallies("By team", "TEAM", report.by_team)
    _tallies("By type", "TYPE", report.by_type)
    click.echo(f"\n{report.total} opened")


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _times(title: str, first: str, items: Sequence[ResponseTimes]) -> None:
    rows = [
        (t.key, t.answered, t.waiting, _hours(t.median_hours), _hours(t.p90_hours)) for t in items
    ]
    _section(title, (first, "ANSWERED", "WAITING", "MEDIAN H", "P90 H"), rows)


@reports_group.command("first-response")
@_report_options
@pass_context
def first_response_command(ctx: Context, /, **options: Any) -> None:
    """Time to the first staff reply of the incidents opened, in business hours."""
    report = _run(ctx, "first_response", _Options(**options))
    if not isinstance(report, FirstResponseReport):
        return
    click.echo(f"In {report.unit}, by the week the incident opened.")
    _times("By week", "WEEK OF", report.by_week)
    _times("By team", "TEAM", report.by_team)
    _times("All", "", (report.total,))


@reports_group.command("pii")
@click.option(
    "--group",
    "grouping",
    type=click.Choice(["kind", "producer"]),
    default="kind",
    show_default=True,
    help="What --csv lists.",
)
@_report_options
@pass_context
def pii_command(ctx: Context, /, grouping: str, **options: Any) -> None:
    """Personal data the guard found in producers' mail: counts by kind and by producer,
    never a value."""
    report = _run(ctx, f"pii_by_{grouping}", _Options(**options))
    if not isinstance(report, PiiReport):
        return
    kinds = [(k.kind, k.messages, k.findings) for k in report.by_kind]
    _section("By kind", ("KIND", "MESSAGES", "FINDINGS"), kinds)
    producers = [
        (p.npn or "-", p.name, p.messages, p.findings, _kinds_text(p)) for p in report.by_producer
    ]
    _section("By producer", ("NPN", "PRODUCER", "MESSAGES", "FINDINGS", "KINDS"), producers)


def _kinds_text(found: ProducerFindings) -> str:
    return ", ".join(f"{k.kind} x{k.findings}" for k in found.kinds)
