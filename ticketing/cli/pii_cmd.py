"""``ticketd pii scan|redact``: try the PII guard on a text file or an .eml.

For an .eml the subject and the body (plain text, else HTML stripped of
tags) are scanned as separate fields, with the standard library's parser;
the intake pipeline's MIME parser will replace it.  Findings are printed as
types, offsets and scores: the values stay in the file.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import BinaryIO

import click

from ticketing.cli.app import Context, pass_context
from ticketing.cli.output import emit_json, emit_table
from ticketing.privacy.settings import build_guard

__all__ = ["pii_group", "read_fields"]

_HEADER_LINE = re.compile(
    rb"^(?:From|To|Cc|Subject|Date|Received|Return-Path|Message-ID|MIME-Version|Delivered-To"
    rb"|Reply-To|X-[\w-]+|Content-Type|DKIM-Signature|ARC-[\w-]+|Authentication-Results)"
    rb":[ \t]",
    re.IGNORECASE,
)


@click.group("pii")
def pii_group() -> None:
    """Scan or redact text with the PII guard."""


@pii_group.command("scan")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def scan_command(ctx: Context, source: BinaryIO, as_json: bool) -> None:
    """List the PII findings in FILE (text or .eml; - or nothing: stdin)."""
    fields = read_fields(source)
    guard = build_guard(ctx.loaded.config.pii)
    rows = [
        (name, f.entity_type, f.start, f.end, round(f.score, 2))
        for name, text in fields.items()
        for f in guard.scan(text)
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
@pass_context
def redact_command(ctx: Context, source: BinaryIO) -> None:
    """Print FILE (text or .eml) with each finding replaced by [REDACTED:TYPE]."""
    fields = read_fields(source)
    guard = build_guard(ctx.loaded.config.pii)
    redacted = {name: guard.redact(text, guard.scan(text)) for name, text in fields.items()}
    if "subject" in redacted:
        click.echo(f"Subject: {redacted.pop('subject')}\n")
    click.echo("\n\n".join(redacted.values()), nl=False)


def read_fields(source: BinaryIO) -> dict[str, str]:
    """The text fields of ``source``: ``{"text": ...}``, or subject and text of a message."""
    data = source.read()
    if _is_message(getattr(source, "name", ""), data):
        return _message_fields(data)
    return {"text": data.decode("utf-8", errors="replace")}


def _is_message(name: object, data: bytes) -> bool:
    if isinstance(name, str) and name.lower().endswith(".eml"):
        return True
    head = data.lstrip()[:2048]
    return bool(_HEADER_LINE.match(head)) and (b"\n\n" in data or b"\r\n\r\n" in data)


def _message_fields(data: bytes) -> dict[str, str]:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage
    fields = {"subject": str(message.get("subject", ""))}
    body = message.get_body(("plain", "html"))
    if body is None:
        return fields | {"text": ""}
    content = str(body.get_content())
    text = _html_text(content) if body.get_content_subtype() == "html" else content
    return fields | {"text": text}


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"br", "p", "div", "tr", "li"}:
            self.parts.append("\n")


def _html_text(html: str) -> str:
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)
