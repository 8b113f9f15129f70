"""``ticketd ingest``: one message from an MTA's pipe (``ticketing/intake/pipe.py``).

One line on stderr says why a message was not recorded; the exit status
(sysexits) tells the MTA whether to bounce it or try again.
"""

from __future__ import annotations

import logging
import sys
from typing import BinaryIO

import click

from ticketing.cli.app import Context, pass_context
from ticketing.cli.output import emit_json
from ticketing.intake.pipe import PipeEnvelope, exit_status, ingest_piped
from ticketing.pipeline.types import Outcome
from ticketing.pipeline.verdict import Verdict

__all__ = ["ingest_command"]


@click.command("ingest")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--mailbox", default=None, help="Mailbox name (default: from the recipients).")
@click.option(
    "--client-address",
    default=None,
    metavar="IP",
    help="The client that sent it to the MTA (Postfix: ${client_address}), for SPF.",
)
@click.option("--helo", default=None, help="The client's HELO name (Postfix: ${client_helo}).")
@click.option("--sender", default=None, help="The envelope sender (Postfix: ${sender}), for SPF.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_context
def ingest_command(
    ctx: Context,
    source: BinaryIO,
    mailbox: str | None,
    client_address: str | None,
    helo: str | None,
    sender: str | None,
    as_json: bool,
) -> None:
    """Record one message read from SOURCE (a file, or - for standard input)."""
    raw = source.read()
    envelope = PipeEnvelope(mailbox, client_address, helo, sender)
    config = ctx.loaded.config  # loading it sets up logging: quieten that afterwards
    # An MTA keeps our stderr as the delivery status: one line, so no INFO chatter.
    logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))
    verdict = ingest_piped(config, ctx.engine, raw, envelope)
    if verdict.outcome is None:
        click.echo(f"ticketd: {_why(verdict)}", err=True)
    elif as_json:
        emit_json(_as_dict(verdict.outcome))
    sys.exit(exit_status(verdict))


def _why(verdict: Verdict) -> str:
    if verdict.kind == "permanent":
        return f"rejected: {verdict.reason}"
    return f"temporary failure: {verdict.reason}"


def _as_dict(outcome: Outcome) -> dict[str, object]:
    return {
        "action": outcome.action,
        "incident": outcome.incident_number,
        "new_incident": outcome.new_incident,
        "message_row_id": outcome.message_row_id,
        "kind": outcome.kind,
        "reason": outcome.reason,
    }
