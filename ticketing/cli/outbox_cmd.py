"""``ticketd outbox list|retry``, ``ticketd outbox undeliverable list|clear``."""

from __future__ import annotations

from typing import Any

import click

from ticketing.cli.context import Context, pass_context
from ticketing.cli.operator import by_option, operator_actor
from ticketing.cli.output import emit_json, emit_table, iso
from ticketing.outbound.outbox import list_outbox, retry_message
from ticketing.outbound.undeliverable import clear_undeliverable, list_undeliverable
from ticketing.store.db import transaction
from ticketing.store.migrate import require_current
from ticketing.store.models import OutboxMessage, UndeliverableAddress, utcnow

__all__ = ["outbox_group"]

STATUSES = ("composing", "pending", "sending", "sent", "failed", "bounced", "withheld")


@click.group("outbox")
def outbox_group() -> None:
    """Outbound mail waiting, sent or failed."""


def _row(row: OutboxMessage) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "kind": row.kind,
        "to": row.to_address,
        "incident_id": row.incident_id,
        "message_id": row.message_id,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at),
        "expires_at": iso(row.expires_at),
        "created_at": iso(row.created_at),
        "sent_at": iso(row.sent_at),
        "reason": row.reason,
        "last_error": row.last_error,
        "pii_findings": row.pii_findings,
    }


def _why(row: dict[str, Any]) -> str:
    """The REASON column: a withheld mail's kinds of data, else the reason or last error."""
    if row["pii_findings"]:
        found = ", ".join(f"{kind} x{count}" for kind, count in sorted(row["pii_findings"].items()))
        return f"{row['reason']}: {found}"
    return str(row["reason"] or row["last_error"] or "")


@outbox_group.command("list")
@click.option("--status", default=None, type=click.Choice(STATUSES), help="Only this status.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def list_command(ctx: Context, status: str | None, limit: int, as_json: bool) -> None:
    """The most recent outbound mails, newest first."""
    require_current(ctx.engine)
    with transaction(ctx.engine) as session:
        rows = [_row(r) for r in list_outbox(session, status=status, limit=limit)]
    if as_json:
        emit_json(rows)
        return
    emit_table(
        ("ID", "STATUS", "KIND", "TO", "TRIES", "CREATED", "NEXT/SENT", "REASON"),
        [
            (
                r["id"],
                r["status"],
                r["kind"],
                r["to"],
                r["attempts"],
                (r["created_at"] or "")[:19],
                (r["sent_at"] or r["next_attempt_at"] or "")[:19],
                _why(r),
            )
            for r in rows
        ],
    )


@outbox_group.command("retry")
@click.argument("outbox_id", type=int)
@pass_context
def retry_command(ctx: Context, outbox_id: int) -> None:
    """Send a failed (or waiting) mail again now, with a fresh maximum age."""
    require_current(ctx.engine)
    with transaction(ctx.engine) as session:
        retry_message(session, outbox_id, utcnow(), ctx.loaded.config.outbound)
    click.echo(f"outbox {outbox_id}: pending, due now")


@outbox_group.group("undeliverable")
def undeliverable_group() -> None:
    """Addresses our mail bounced from for good: no mail goes to them until cleared."""


def _undeliverable_row(row: UndeliverableAddress) -> dict[str, Any]:
    return {
        "address": row.address,
        "reason": row.reason,
        "first_seen": iso(row.first_seen),
        "last_seen": iso(row.last_seen),
        "bounces": row.bounces,
    }


@undeliverable_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def undeliverable_list_command(ctx: Context, as_json: bool) -> None:
    """Every undeliverable address, the most recently bounced first."""
    require_current(ctx.engine)
    with transaction(ctx.engine, readonly=True) as session:
        rows = [_undeliverable_row(r) for r in list_undeliverable(session)]
    if as_json:
        emit_json(rows)
        return
    emit_table(
        ("ADDRESS", "BOUNCES", "FIRST SEEN", "LAST SEEN", "REASON"),
        [
            (
                r["address"],
                r["bounces"],
                (r["first_seen"] or "")[:19],
                (r["last_seen"] or "")[:19],
                r["reason"],
            )
            for r in rows
        ],
    )


@undeliverable_group.command("clear")
@click.argument("address")
@by_option
@pass_context
def undeliverable_clear_command(ctx: Context, address: str, by: str | None) -> None:
    """Mail ADDRESS again (its mailbox was fixed); audited as ``operator:NAME``."""
    require_current(ctx.engine)
    with transaction(ctx.engine) as session:
        cleared = clear_undeliverable(session, address, actor=operator_actor(by), now=utcnow())
    click.echo(f"{cleared.address}: cleared, mail goes to it again")
