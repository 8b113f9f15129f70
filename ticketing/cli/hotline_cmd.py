"""``ticketd incidents open``: an incident for a producer who called the hotline.

The same function as the console's hotline page (``ticketing/desk/hotline.py``):
the producer is acknowledged as for a mailed-in case, and the command is
audited with the operator (``--by``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ticketing.cli.context import Context, pass_context
from ticketing.cli.operator import by_option, operator_actor
from ticketing.cli.output import emit_json
from ticketing.config.case_types import CASE_TYPES
from ticketing.store.migrate import require_current

if TYPE_CHECKING:
    from pii_guard import PiiGuard
    from ticketing.desk.hotline import FormErrors, HotlineOpened
    from ticketing.outbound.sinks import Replies

__all__ = ["open_command"]

# The form's fields as this command's options, to say which one is wrong.
_OPTIONS = {"npn": "--npn", "type": "--type", "person_ids": "--person-id", "summary": "--summary"}


@click.command("open")
@click.option("--npn", required=True, help="The calling producer's NPN (in the roster).")
@click.option("--type", "case_type", required=True, help=f"One of {', '.join(CASE_TYPES)}.")
@click.option(
    "--person-id",
    "person_ids",
    multiple=True,
    metavar="ID",
    help="A consumer's Person ID (again for several; '174201, 174202' also reads).",
)
@click.option("--summary", required=True, help="What the producer said (redacted before storing).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@by_option
@pass_context
def open_command(
    ctx: Context,
    npn: str,
    case_type: str,
    person_ids: tuple[str, ...],
    summary: str,
    as_json: bool,
    by: str | None,
) -> None:
    """Open an incident for a producer who called the hotline; they are mailed the
    acknowledgement with its number, as for a mailed-in case."""
    # the pipeline's and the guard's modules only here: every other command starts faster
    from ticketing.desk.actions import Desk
    from ticketing.desk.hotline import FormErrors, HotlineForm, HotlineOpened, open_hotline
    from ticketing.privacy.settings import build_guard

    require_current(ctx.engine)
    guard = build_guard(ctx.loaded.config.pii)
    desk = Desk.of(ctx.engine, ctx.loaded.config, lambda: _replies(ctx, guard))
    form = HotlineForm(npn=npn, type=case_type, person_ids=person_ids, summary=summary)
    result = open_hotline(desk, guard, form, operator_actor(by))
    if isinstance(result, FormErrors):
        _refuse(result)
    assert isinstance(result, HotlineOpened)
    if as_json:
        emit_json(_opened_dict(result))
        return
    click.echo(f"{result.number}: opened; {_news(result)}")


def _replies(ctx: Context, guard: PiiGuard) -> Replies:
    """The daemon's replies, composed and scanned here (its dispatcher delivers them)."""
    from ticketing.intake.build import build_composer
    from ticketing.outbound.templated import TemplatedReplies

    composer, _store = build_composer(ctx.loaded.config, ctx.engine)
    return TemplatedReplies(composer, ctx.engine, guard)


def _refuse(result: FormErrors) -> None:
    """Each wrong option on a line of its own, then exit 2 (a usage error)."""
    for name, why in result.errors.items():
        click.echo(f"ticketd: {_OPTIONS.get(name, name)}: {why}", err=True)
    raise click.exceptions.Exit(2)


def _news(result: HotlineOpened) -> str:
    told = "the producer is mailed the acknowledgement"
    if not result.acknowledged:
        told = "no acknowledgement (incidents show says why)"
    removed = sum(result.removed.values())
    return f"{told}; {removed} item(s) of personal data removed" if removed else told


def _opened_dict(result: HotlineOpened) -> dict[str, object]:
    return {
        "number": result.number,
        "acknowledged": result.acknowledged,
        "removed": dict(result.removed),
    }
