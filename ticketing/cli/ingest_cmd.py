"""``ticketd ingest``: one message from an MTA's pipe (Postfix pipe, fetchmail --mda, procmail).

Exit status follows sysexits: 0 recorded (or already recorded), 65 a message
that can never be accepted, 75 anything that may work later — the MTA keeps
the message and retries, so nothing is lost.  One line on stderr says why.
"""

from __future__ import annotations

import logging
import sys
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import BinaryIO

import click

from mailer.recipients import RecipientMap
from ticketing.cli.app import Context, pass_context
from ticketing.cli.output import emit_json
from ticketing.config import Config
from ticketing.errors import ConfigError, TicketdError
from ticketing.intake import EX_DATAERR, EX_OK, EX_TEMPFAIL
from ticketing.pipeline import Outcome, PermanentRejection, RawMessage
from ticketing.schema import require_current
from ticketing.services import build_intake

__all__ = ["ingest_command"]

_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")


@click.command("ingest")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--mailbox", default=None, help="Mailbox name (default: from the recipients).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_context
def ingest_command(ctx: Context, source: BinaryIO, mailbox: str | None, as_json: bool) -> None:
    """Record one message read from SOURCE (a file, or - for standard input)."""
    raw = source.read()
    try:
        outcome = _ingest(ctx, raw, mailbox)
    except PermanentRejection as exc:
        _fail(EX_DATAERR, f"rejected: {exc}")
    except ConfigError as exc:
        _fail(EX_TEMPFAIL, str(exc).replace("\n", "; "))
    except TicketdError as exc:
        _fail(EX_TEMPFAIL, f"temporary failure: {exc}")
    if as_json:
        emit_json(_as_dict(outcome))
    sys.exit(EX_OK)


def _ingest(ctx: Context, raw: bytes, mailbox: str | None) -> Outcome:
    config = ctx.loaded.config
    # An MTA keeps our stderr as the delivery status: one line, so no INFO chatter.
    logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))
    mailboxes = _mailboxes(config, raw, mailbox)
    require_current(ctx.engine)
    pipeline = build_intake(config, ctx.engine).pipeline
    return pipeline.process(RawMessage(raw, "pipe", mailboxes))


def _mailboxes(config: Config, raw: bytes, explicit: str | None) -> tuple[str, ...]:
    names = {box.name for box in config.mailboxes}
    if explicit is not None:
        if explicit not in names:
            raise _unknown_mailbox(explicit, names)
        return (explicit,)
    headers = BytesHeaderParser().parsebytes(raw[:256_000])
    recipients = RecipientMap((box.name, box.address) for box in config.mailboxes)
    found = (
        recipients.mailbox_for(addr)
        for header in _RECIPIENT_HEADERS
        for _, addr in getaddresses([str(v) for v in headers.get_all(header, [])])
    )
    mailboxes = tuple(dict.fromkeys(box for box in found if box))
    if not mailboxes and len(config.mailboxes) == 1:
        return (config.mailboxes[0].name,)
    if not mailboxes:
        raise PermanentRejection("no mailbox of ours among the recipients; pass --mailbox")
    return mailboxes


def _unknown_mailbox(name: str, known: set[str]) -> TicketdError:
    return TicketdError(f"unknown mailbox '{name}' (known: {', '.join(sorted(known))})")


def _fail(code: int, message: str) -> None:
    click.echo(f"ticketd: {message}", err=True)
    sys.exit(code)


def _as_dict(outcome: Outcome) -> dict[str, object]:
    return {
        "action": outcome.action,
        "incident": outcome.incident_number,
        "new_incident": outcome.new_incident,
        "message_row_id": outcome.message_row_id,
        "kind": outcome.kind,
        "reason": outcome.reason,
    }
