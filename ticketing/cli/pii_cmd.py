"""``ticketd pii scan|redact``: try the PII guard on a text file or an .eml.

Both show what the daemon would do.  An .eml is read by the intake's own MIME
parser (``mailer/parsing.py``) and scanned field by field as the guard stage
scans it: the subject, the text, and the text the stage reads of each
attachment (``attachment:N``, ``pipeline/attachments.py``).  The allow list
is the daemon's: the desk's own identity (``desk_allow``) plus the sender's,
looked up by address in the producers roster or the staff directory.  The
sender is ``--from``, else the message's ``From:``, and is taken as
authenticated: the admin running the command vouches for it.  ``redact`` runs
an .eml through the guard stage itself (``PiiGuardStage.check`` under the
``redact`` policy), so what it prints is what would be stored.  Findings are
printed as types, offsets and scores: the values stay in the file.
"""

from __future__ import annotations

import re
from dataclasses import replace
from email.utils import parseaddr
from typing import BinaryIO

import click
from sqlmodel import select

from mailer.parsing import ParsedMessage, parse_message
from pii_guard import UNLIMITED, AllowList, evaluate
from ticketing.cli.context import Context, pass_context
from ticketing.cli.output import emit_json, emit_table
from ticketing.config.pii_schema import PiiConfig
from ticketing.errors import StorageError
from ticketing.incidents.parties import Identity
from ticketing.pipeline.attachments import attachment_rules, read_attachment
from ticketing.pipeline.guard import PiiGuardStage
from ticketing.pipeline.types import GuardResult
from ticketing.privacy.allow import desk_allow, party_allow
from ticketing.privacy.settings import build_guard
from ticketing.store.db import transaction
from ticketing.store.migrate import require_current
from ticketing.store.models import Producer

__all__ = ["Source", "pii_group", "read_fields", "read_source"]

Source = str | ParsedMessage  # a plain text, or a message as intake parses it

_HEADER_LINE = re.compile(
    rb"^(?:From|To|Cc|Subject|Date|Received|Return-Path|Message-ID|MIME-Version|Delivered-To"
    rb"|Reply-To|X-[\w-]+|Content-Type|DKIM-Signature|ARC-[\w-]+|Authentication-Results)"
    rb":[ \t]",
    re.IGNORECASE,
)
_FROM_HELP = (
    "The sender, as authenticated (default: the .eml's From:): their roster or staff "
    "identity is allowed, as the daemon allows it."
)


@click.group("pii")
def pii_group() -> None:
    """Scan or redact text with the PII guard."""


@pii_group.command("scan")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--from", "sender", metavar="ADDRESS", default=None, help=_FROM_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def scan_command(ctx: Context, source: BinaryIO, sender: str | None, as_json: bool) -> None:
    """List the PII findings in FILE (text or .eml; - or nothing: stdin)."""
    item = read_source(source)
    guard = build_guard(ctx.loaded.config.pii)
    address, display = _sender(item, sender)
    allow = _allow(ctx, _identity(ctx, address, display), display)
    fields = read_fields(item, ctx.loaded.config.pii)
    outcome = evaluate(guard, "redact", fields, allow, guard.budget())
    rows = [
        (name, f.entity_type, f.start, f.end, round(f.score, 2))
        for name, found in outcome.findings.items()
        for f in found
    ]
    if as_json:
        keys = ("field", "entity_type", "start", "end", "score")
        emit_json({"findings": [dict(zip(keys, row, strict=True)) for row in rows]})
    elif rows:
        emit_table(["field", "type", "start", "end", "score"], rows)
    else:
        click.echo("no findings")


@pii_group.command("redact")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--from", "sender", metavar="ADDRESS", default=None, help=_FROM_HELP)
@pass_context
def redact_command(ctx: Context, source: BinaryIO, sender: str | None) -> None:
    """Print FILE (text or .eml) as the daemon would store it under the redact policy."""
    item = read_source(source)
    guard = build_guard(ctx.loaded.config.pii)
    address, display = _sender(item, sender)
    identity = _identity(ctx, address, display)
    if isinstance(item, str):
        allow = _allow(ctx, identity, display)
        outcome = evaluate(guard, "redact", {"text": item}, allow, guard.budget())
        click.echo(outcome.fields["text"], nl=False)
        return
    config = ctx.loaded.config
    stage = PiiGuardStage(guard, desk_allow(config), attachment_rules(config.pii))
    _echo_stored(stage.check("redact", replace(item, from_name=display), identity))


def _echo_stored(stored: GuardResult) -> None:
    """The subject and text as stored, and what becomes of each attachment (its name
    redacted like text), with the text kept in place of a file that held personal data."""
    click.echo(f"Subject: {stored.subject}\n")
    click.echo(stored.text, nl=False)
    for index, kept in enumerate(stored.attachments):
        about = f"{kept.filename} ({kept.content_type})"
        click.echo(f"\n[attachment:{index} {about}: {kept.disposition}]", nl=False)
        if kept.disposition == "stored_redacted" and kept.content is not None:
            click.echo("\n" + kept.content.decode("utf-8", errors="replace"), nl=False)
    click.echo()


def read_source(source: BinaryIO) -> Source:
    """A message parsed by the intake's parser when ``source`` is one, else its text."""
    data = source.read()
    if _is_message(getattr(source, "name", ""), data):
        return parse_message(data)
    return data.decode("utf-8", errors="replace")


def read_fields(item: Source, config: PiiConfig) -> dict[str, str]:
    """The fields the guard stage scans: ``text`` alone for a plain text; for a message
    its subject, its text, and the text of each attachment the guard can read
    (``attachment:N``, read by the stage's own rules: ``pipeline/attachments.py``)."""
    if isinstance(item, str):
        return {"text": item}
    fields = {"subject": item.subject, "text": item.text}
    rules = attachment_rules(config)
    for index, part in enumerate(item.attachments):
        reading = read_attachment(part, rules, UNLIMITED)
        if reading.text is not None:
            fields[f"attachment:{index}"] = reading.text
    return fields


def _is_message(name: object, data: bytes) -> bool:
    if isinstance(name, str) and name.lower().endswith(".eml"):
        return True
    head = data.lstrip()[:2048]
    return bool(_HEADER_LINE.match(head)) and (b"\n\n" in data or b"\r\n\r\n" in data)


def _sender(item: Source, sender: str | None) -> tuple[str | None, str]:
    """The sender's address and display name: ``--from`` (``ADDRESS`` or
    ``Name <ADDRESS>``), else the message's ``From:``; none for a plain text."""
    message = item if isinstance(item, ParsedMessage) else None
    if sender:
        display, address = parseaddr(sender)
        return address.strip().lower() or None, display or (message.from_name if message else "")
    return (message.from_address, message.from_name) if message else (None, "")


def _identity(ctx: Context, address: str | None, display: str) -> Identity:
    """Who the daemon would take the sender for once authenticated: a caseworker, a
    roster producer, or (said on stderr) an unknown address; nobody without a sender."""
    if not address:
        return Identity(address=None)
    if ctx.loaded.config.staff.is_staff(address):
        return Identity(address, name=display, is_staff=True, authenticated=True)
    try:
        producer = _roster_producer(ctx, address)
        why = "is neither in the producers roster nor on the staff list"
    except StorageError as exc:  # no database here (an admin's laptop): the scan still helps
        producer, why = None, f"cannot be looked up in the producers roster ({exc})"
    if producer is None:
        click.echo(f"ticketd: warning: {address} {why}: scanned as an unknown sender", err=True)
        return Identity(address, name=display, authenticated=True)
    return Identity.of_producer(address, producer)


def _roster_producer(ctx: Context, address: str) -> Producer | None:
    require_current(ctx.engine)
    with transaction(ctx.engine, readonly=True) as session:
        return session.exec(select(Producer).where(Producer.email == address)).first()


def _allow(ctx: Context, identity: Identity, display: str) -> AllowList:
    """The allow list the guard stage builds for ``identity`` writing as ``display``
    (``pipeline/guard.py``)."""
    return party_allow(
        desk_allow(ctx.loaded.config),
        producer=identity.producer,
        address=identity.address,
        names=identity.own_names(display),
    )
