"""``ticketd ingest``: one message from an MTA's pipe (``ticketing/intake/pipe.py``).

One line on stderr says why a message was not recorded; the exit status
(sysexits) tells the MTA whether to bounce it or try again, and is never
anything but 0, 65 or 75: a Postfix ``pipe`` bounces on any other status.
Whatever fails before the message could be judged — the configuration cannot
be read, the command line is wrong, the database cannot be reached, even a
``RecursionError`` or ``MemoryError`` — is 75 (EX_TEMPFAIL): the MTA keeps the
message while an operator fixes it, and nothing is lost.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, BinaryIO, NoReturn

import click

from mailer.errors import MailerError
from ticketing.cli.context import Context, pass_context
from ticketing.cli.output import emit_json
from ticketing.errors import TicketdError
from ticketing.intake.pipe import (
    EX_TEMPFAIL,
    PipeEnvelope,
    exit_status,
    ingest_piped,
    setup_problem,
)
from ticketing.pipeline.types import Outcome
from ticketing.pipeline.verdict import Verdict, describe_defect

__all__ = ["ingest_command"]


class _MtaCommand(click.Command):
    """A command whose exit status an MTA reads: a usage error or anything raised
    is one line on stderr and EX_TEMPFAIL, never click's 1 or 2 or a traceback."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.Exit:  # --help
            raise
        except click.ClickException as exc:
            _temporary(f"usage: {exc.format_message()}")

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (SystemExit, click.exceptions.Exit):
            raise
        except BaseException as exc:  # noqa: BLE001  the MTA must see 75, whatever it was
            _temporary(_one_line(exc))


def _one_line(error: BaseException) -> str:
    """Our own errors say what is wrong (every line of a ConfigError); a library's
    text may quote the message, so only its type is named."""
    if isinstance(error, TicketdError | MailerError):
        return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return setup_problem(error)


def _temporary(why: str) -> NoReturn:
    click.echo(f"ticketd: temporary failure: {why}", err=True)
    sys.exit(EX_TEMPFAIL)


@click.command("ingest", cls=_MtaCommand)
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--mailbox", default=None, help="Mailbox name (default: from the recipients).")
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    metavar="ADDRESS",
    help="An envelope recipient (Postfix: ${recipient}); its mailbox records the message.",
)
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
    recipients: tuple[str, ...],
    client_address: str | None,
    helo: str | None,
    sender: str | None,
    as_json: bool,
) -> None:
    """Record one message read from SOURCE (a file, or - for standard input).

    Exit 0: recorded (or already recorded); 65: never acceptable (bounce it);
    75: try again later (the configuration, the database or ticketd itself)."""
    raw = source.read()
    envelope = PipeEnvelope(
        mailbox=mailbox,
        client_address=client_address,
        recipients=recipients,
        helo=helo,
        sender=sender,
    )
    config = ctx.loaded.config  # loading it sets up logging: quieten that afterwards
    # An MTA keeps our stderr as the delivery status: one line, so no INFO or WARNING
    # chatter (the daemon beside the pipe says the same warnings in its log).
    logging.getLogger().setLevel(max(logging.ERROR, logging.getLogger().level))
    verdict = ingest_piped(config, ctx.engine, raw, envelope)
    if verdict.outcome is None:
        click.echo(f"ticketd: {_why(verdict)}", err=True)
    elif as_json:
        emit_json(_as_dict(verdict.outcome))
    sys.exit(exit_status(verdict))


def _why(verdict: Verdict) -> str:
    if verdict.kind == "permanent":
        return f"rejected: {verdict.reason}"
    if verdict.kind == "defect" and verdict.error is not None:
        return f"rejected: cannot be processed: {describe_defect(verdict.error)}"
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
