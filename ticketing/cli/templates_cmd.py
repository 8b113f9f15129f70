"""``ticketd templates list|check|preview``."""

from __future__ import annotations

import sys
from typing import Any

import click

from ticketing.cli.context import Context, pass_context
from ticketing.cli.output import emit_json, emit_table
from ticketing.config.case_types import CASE_TYPES
from ticketing.errors import ReplyError
from ticketing.outbound.check import check_templates
from ticketing.outbound.preview import preview_mail, refused_for
from ticketing.privacy.settings import build_guard
from ticketing.templating.kinds import KINDS, LANGUAGES
from ticketing.templating.template_store import TemplateSet, TemplateStore, layers_for

__all__ = ["templates_group"]


@click.group("templates")
def templates_group() -> None:
    """Admin tools for the auto-reply templates."""


def _variants(store: TemplateStore) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for kind in KINDS:
        for team in store.config.teams:
            for language in LANGUAGES:
                try:
                    chosen = store.select(kind, team, language)
                except ReplyError:
                    continue
                rows.append({"kind": kind, "team": team, "language": language, **_parts(chosen)})
    return rows


def _parts(chosen: TemplateSet) -> dict[str, Any]:
    """Where each part comes from: the subject and the body are chosen apart, so they may
    come from different folders (an override subject over the shipped body)."""
    body, subject = chosen.text.name, chosen.subject.name
    return {
        "uses": body.language,
        "layer": body.layer,
        "html": chosen.html is not None,
        "body": str(body.path),
        "subject": str(subject.path),
        "subject_layer": subject.layer,
        "files": chosen.files,
    }


@templates_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def list_command(ctx: Context, as_json: bool) -> None:
    """Which templates each kind, team and language is sent with."""
    rows = _variants(TemplateStore.from_config(ctx.loaded.config))
    if as_json:
        emit_json(rows)
        return
    emit_table(
        ("KIND", "TEAM", "LANG", "USES", "LAYER", "HTML", "BODY", "SUBJECT"),
        [
            (
                r["kind"],
                r["team"],
                r["language"],
                r["uses"],
                r["layer"],
                "yes" if r["html"] else "no",
                r["body"],
                r["subject"],
            )
            for r in rows
        ],
    )


@templates_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@pass_context
def check_command(ctx: Context, as_json: bool) -> None:
    """Render every template for every team, type and language; exit 1 on any problem."""
    config = ctx.loaded.config
    problems = check_templates(config, layers_for(config), build_guard(config.pii))
    if as_json:
        emit_json(
            {
                "ok": not problems,
                "problems": [
                    {"file": p.file, "line": p.line, "message": p.message} for p in problems
                ],
            }
        )
    else:
        for problem in problems:
            click.echo(problem.render())
        if not problems:
            click.echo("templates: OK")
    if problems:
        sys.exit(1)


@templates_group.command("preview")
@click.argument("kind", type=click.Choice(list(KINDS)))
@click.option("--team", default=None, help="Team key (default: the type's owning team).")
@click.option(
    "--type",
    "case_type",
    default="enrollment",
    show_default=True,
    type=click.Choice(list(CASE_TYPES)),
)
@click.option("--lang", "language", default="en", show_default=True, type=click.Choice(LANGUAGES))
@pass_context
def preview_command(
    ctx: Context, kind: str, team: str | None, case_type: str, language: str
) -> None:
    """Print the whole MIME message KIND would send, rendered from sample data."""
    store = TemplateStore.from_config(ctx.loaded.config, quiet=True)
    refused = refused_for(store, kind)
    if refused:  # the preview would silently show another folder's version: fail like check
        for problem in refused:
            click.echo(problem.render(), err=True)
        sys.exit(1)
    mime = preview_mail(store, kind, team=team, case_type=case_type, language=language)
    click.echo(mime.decode("utf-8", errors="replace").replace("\r\n", "\n"), nl=False)
