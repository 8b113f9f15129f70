"""The quarantines as an operator sees them: the spool's ``quarantine/`` and each IMAP
mailbox's quarantine folder, together.

    list      what is held, where, since when, how big, and why (never the content)
    release   back where intake takes it again: the spool's ``new/``, the IMAP inbox
    purge     delete for good (all, some, or what is older than N days)

An item is named ``spool:<file name>`` or ``<mailbox>:<UID>``.  Every release and
purge is audited (``quarantine_released``, ``quarantine_purged``) with who did it;
``purge_expired`` is the daemon's timed job that deletes what is older than
``[intake] quarantine_retention_days``: quarantined mail was never screened for
personal data, so it is not kept for ever.  A mailbox whose server cannot be
reached is reported as a problem, and the others are still done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.engine import Engine

from mailer.errors import ImapError
from mailer.imap_client import ImapMailbox, ImapSettings
from mailer.spool import Spool
from ticketing.config import Config, ImapConfig
from ticketing.intake.imap.poller import imap_settings
from ticketing.intake.imap.quarantine import held_messages, purge_held, release_held
from ticketing.store.audit import audit
from ticketing.store.db import transaction

__all__ = [
    "Held",
    "Listing",
    "Selection",
    "Settled",
    "list_quarantine",
    "purge_expired",
    "purge_quarantine",
    "release_quarantine",
]

log = logging.getLogger(__name__)

SPOOL = "spool"
_AUDITED_ITEMS = 200  # names or UIDs kept in one audit event; the count is always whole

Connect = Callable[[ImapSettings], ImapMailbox]
Action = Literal["release", "purge"]


@dataclass(frozen=True)
class Held:
    ref: str  # "spool:<name>" or "<mailbox>:<UID>"
    place: str  # "spool" or the mailbox's name
    arrived: datetime | None
    size: int
    reason: str


@dataclass
class Listing:
    held: list[Held] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per place not reachable


@dataclass(frozen=True)
class Selection:
    """Which held messages: the named ones (``refs``; ``None``: all), older than a time."""

    refs: tuple[str, ...] | None = None
    before: datetime | None = None

    def wants(self, place: str) -> bool:
        return self.refs is None or any(ref.partition(":")[0] == place for ref in self.refs)

    def takes(self, held: Held) -> bool:
        if self.refs is not None and held.ref not in self.refs:
            return False
        if self.before is not None:
            return held.arrived is not None and held.arrived < self.before
        return True


@dataclass
class Settled:
    """What a release or purge did: the refs acted on, and the places it could not reach."""

    done: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def list_quarantine(config: Config, *, connect: Connect = ImapMailbox.connect) -> Listing:
    """Everything held, the spool's first, then each IMAP mailbox's."""
    listing = Listing()
    spool = _spool(config)
    if spool is not None:
        listing.held.extend(_spool_held(spool))
    for name, imap in _imap_boxes(config):
        try:
            with _connected(imap, connect) as conn:
                listing.held.extend(_imap_held(name, conn, imap))
        except ImapError as exc:
            listing.problems.append(f"{name}: {exc}")
    return listing


def release_quarantine(
    config: Config,
    engine: Engine,
    selection: Selection,
    actor: str,
    *,
    connect: Connect = ImapMailbox.connect,
) -> Settled:
    """Give the selected messages another try; audited as ``actor``."""
    return _settle(config, engine, selection, "release", actor, connect)


def purge_quarantine(
    config: Config,
    engine: Engine,
    selection: Selection,
    actor: str,
    *,
    connect: Connect = ImapMailbox.connect,
) -> Settled:
    """Delete the selected messages for good; audited as ``actor``."""
    return _settle(config, engine, selection, "purge", actor, connect)


def purge_expired(
    config: Config, engine: Engine, now: datetime, *, connect: Connect = ImapMailbox.connect
) -> Settled:
    """The timed job: purge what arrived more than ``quarantine_retention_days`` ago
    (nothing when that is 0)."""
    days = config.intake.quarantine_retention_days
    if not days:
        return Settled()
    selection = Selection(before=now - timedelta(days=days))
    settled = _settle(config, engine, selection, "purge", "system", connect)
    if settled.done:
        log.info("quarantine: purged %d messages older than %d days", len(settled.done), days)
    for problem in settled.problems:
        log.warning("quarantine purge: %s", problem)
    return settled


def _settle(
    config: Config,
    engine: Engine,
    selection: Selection,
    action: Action,
    actor: str,
    connect: Connect,
) -> Settled:
    settled = Settled()
    spool = _spool(config)
    if spool is not None and selection.wants(SPOOL):
        done = _settle_spool(spool, selection, action)
        _audit(engine, action, actor, SPOOL, done, selection)
        settled.done.extend(done)
    for name, imap in _imap_boxes(config):
        if not selection.wants(name):
            continue
        try:
            with _connected(imap, connect) as conn:
                done = _settle_imap(name, conn, imap, selection, action)
        except ImapError as exc:
            settled.problems.append(f"{name}: {exc}")
            continue
        _audit(engine, action, actor, name, done, selection)
        settled.done.extend(done)
    return settled


def _settle_spool(spool: Spool, selection: Selection, action: Action) -> list[str]:
    chosen = [held for held in _spool_held(spool) if selection.takes(held)]
    act = spool.unquarantine if action == "release" else spool.purge
    return [held.ref for held in chosen if act(held.ref.partition(":")[2])]


def _settle_imap(
    name: str, conn: ImapMailbox, imap: ImapConfig, selection: Selection, action: Action
) -> list[str]:
    uids = [
        int(h.ref.partition(":")[2]) for h in _imap_held(name, conn, imap) if selection.takes(h)
    ]
    if not uids:
        return []
    act = release_held if action == "release" else purge_held
    return [f"{name}:{uid}" for uid in act(conn, imap, uids)]


def _audit(
    engine: Engine, action: Action, actor: str, place: str, done: list[str], selection: Selection
) -> None:
    if not done:
        return
    detail: dict[str, object] = {
        "place": place,
        "count": len(done),
        "items": [ref.partition(":")[2] for ref in done[:_AUDITED_ITEMS]],
    }
    if selection.before is not None:
        detail["arrived_before"] = selection.before.isoformat()
    kind = "quarantine_released" if action == "release" else "quarantine_purged"
    with transaction(engine) as session:
        audit(session, kind, actor=actor, detail=detail)


def _spool(config: Config) -> Spool | None:
    spool = Spool(config.smtp.spool_dir)
    return spool if (spool.path / "quarantine").is_dir() else None


def _spool_held(spool: Spool) -> list[Held]:
    return [
        Held(
            f"{SPOOL}:{q.name}",
            SPOOL,
            datetime.fromtimestamp(q.arrived, UTC),
            q.size,
            q.reason,
        )
        for q in spool.quarantined()
    ]


def _imap_boxes(config: Config) -> list[tuple[str, ImapConfig]]:
    return [(box.name, box.imap) for box in config.mailboxes if box.imap is not None]


def _imap_held(name: str, conn: ImapMailbox, imap: ImapConfig) -> list[Held]:
    return [
        Held(f"{name}:{m.uid}", name, m.arrived, m.size, m.reason)
        for m in held_messages(conn, imap)
    ]


@contextmanager
def _connected(imap: ImapConfig, connect: Connect) -> Iterator[ImapMailbox]:
    conn = connect(imap_settings(imap))
    try:
        yield conn
    finally:
        conn.close()
