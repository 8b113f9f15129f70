"""``ticketd status [--json]``: the desk at a glance, from the database.

It reads the shared database, not a running process, so it answers the same
on any host and with any number of instances, and also while none runs.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from mailer.spool import Spool, SpoolCounts
from ticketing.cli.context import Context, pass_context
from ticketing.cli.desk_time import desk_iso, desk_zone
from ticketing.cli.output import emit_json
from ticketing.intake.smtp import storage_reserve
from ticketing.server.status import LastMessage, StatusSnapshot, read_status
from ticketing.store.db import transaction
from ticketing.store.migrate import require_current
from ticketing.store.models import utcnow

__all__ = ["status_command"]


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def status_command(ctx: Context, as_json: bool) -> None:
    """Incidents by status, the outbox backlog, the next SLA timer, the last message,
    this host's intake spool (``[smtp] workers``) and the free space the SMTP front
    watches (``[smtp] min_free_space``)."""
    require_current(ctx.engine)
    with transaction(ctx.engine, readonly=True) as session:
        snapshot = read_status(session, utcnow())
    spool = _spool_counts(Path(ctx.loaded.config.smtp.spool_dir))
    reserve = storage_reserve(ctx.loaded.config)
    free = reserve.free_space()
    zone = desk_zone(ctx.loaded.config)
    if as_json:
        storage = [_storage_dict(path, left, reserve.minimum) for path, left in free.items()]
        spooled = asdict(spool) if spool else None
        emit_json({**as_dict(snapshot, zone), "spool": spooled, "storage": storage})
        return
    lines = as_lines(snapshot, zone)
    if spool is not None:
        lines.append(("spool", _spool_line(spool)))
    lines += [
        ("storage", _storage_line(path, left, reserve.minimum)) for path, left in free.items()
    ]
    for label, value in lines:
        click.echo(f"{label:<13}{value}")


def _storage_dict(path: Path, free: int | None, reserve: int) -> dict[str, Any]:
    below = free is not None and free < reserve
    return {"path": str(path), "free_bytes": free, "reserve_bytes": reserve, "below": below}


def _storage_line(path: Path, free: int | None, reserve: int) -> str:
    """Free space under a folder the SMTP front watches (``[smtp] min_free_space``)."""
    if free is None:
        return f"unreadable under {path}"
    kept = f"reserve {_size(reserve)}" if reserve else "no reserve"
    line = f"{_size(free)} free under {path}, {kept} (this host)"
    return line + (": below it, SMTP answers 452" if free < reserve else "")


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def _spool_line(spool: SpoolCounts) -> str:
    # unfinished: left in tmp/ by sessions killed before their 250 (the next start removes them)
    unfinished = f", {spool.unfinished} unfinished in tmp/" if spool.unfinished else ""
    return (
        f"{spool.waiting} waiting, {spool.in_progress} in progress, "
        f"{spool.quarantined} quarantined{unfinished} (this host)"
    )


def _spool_counts(path: Path) -> SpoolCounts | None:
    """The spool's counts, ``None`` where there is none (``workers = 0`` and never set)."""
    if not (path / "new").is_dir():
        return None
    try:
        return Spool(path).counts()
    except OSError:
        return None


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n] or ["0s"]
    return "".join(shown[:2])


def _when(moment: datetime, now: datetime, zone: ZoneInfo) -> str:
    delta = (moment - now).total_seconds()
    relative = f"in {_age(delta)}" if delta >= 0 else f"{_age(-delta)} ago"
    return f"{moment.astimezone(zone).isoformat(timespec='seconds')} ({relative})"


def _outbox_line(s: StatusSnapshot) -> str:
    age = s.outbox.oldest_pending_age(s.now)
    oldest = f" (oldest waiting {_age(age)})" if age is not None else ""
    line = f"{s.outbox.pending} pending{oldest}, {s.outbox.failed} failed"
    withheld = s.outbox.withheld
    # withheld mail never goes out by itself: name the command that shows it
    hint = " (personal data found: see ticketd outbox list --status withheld)"
    return f"{line}, {withheld} withheld{hint if withheld else ''}"


def _unverified_line(count: int) -> str:
    """Unverified mail waits for a person: name the command that shows it."""
    return f"{count} waiting for staff" + (" (ticketd incidents unverified)" if count else "")


def as_lines(s: StatusSnapshot, zone: ZoneInfo) -> list[tuple[str, str]]:
    incidents = ", ".join(f"{k} {v}" for k, v in s.incidents.items()) or "none"
    sla = "none running"
    if s.next_sla is not None:
        nxt = s.next_sla
        sla = f"{nxt.incident_number} {nxt.stage} {_when(nxt.at, s.now, zone)}"
    last = "none yet"
    if s.last_message is not None:
        m = s.last_message
        on = f", incident {m.incident_number}" if m.incident_number else ""
        last = f"{_when(m.received_at, s.now, zone)} via {m.source} to {m.mailbox}{on}"
    lines = [
        ("incidents", incidents),
        ("outbox", _outbox_line(s)),
        ("next SLA", sla),
        ("last message", last),
        ("unverified", _unverified_line(s.unverified)),
    ]
    for cursor in s.imap:  # one line per polled folder: a stuck poller shows its age
        moved = _when(cursor.updated_at, s.now, zone)
        lines.append(("imap", f"{cursor.mailbox} {cursor.folder}: uid {cursor.last_uid}, {moved}"))
    return lines


def as_dict(s: StatusSnapshot, zone: ZoneInfo) -> dict[str, Any]:
    nxt = s.next_sla
    return {
        "now": desk_iso(s.now, zone),
        "incidents": s.incidents,
        "outbox": _outbox_dict(s, zone),
        "next_sla": None
        if nxt is None
        else {"incident": nxt.incident_number, "stage": nxt.stage, "at": desk_iso(nxt.at, zone)},
        "imap": [
            {
                "mailbox": c.mailbox,
                "folder": c.folder,
                "last_uid": c.last_uid,
                "updated_at": desk_iso(c.updated_at, zone),
            }
            for c in s.imap
        ],
        "last_message": _last_message_dict(s.last_message, zone),
        "unverified": s.unverified,
    }


def _outbox_dict(s: StatusSnapshot, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "pending": s.outbox.pending,
        "failed": s.outbox.failed,
        "withheld": s.outbox.withheld,
        "oldest_pending_at": desk_iso(s.outbox.oldest_pending_at, zone),
        "oldest_pending_age_seconds": s.outbox.oldest_pending_age(s.now),
    }


def _last_message_dict(last: LastMessage | None, zone: ZoneInfo) -> dict[str, Any] | None:
    if last is None:
        return None
    return {
        "received_at": desk_iso(last.received_at, zone),
        "source": last.source,
        "mailbox": last.mailbox,
        "direction": last.direction,
        "incident": last.incident_number,
    }
