"""What ``ticketd serve`` runs for operators beside the mail.

The roster import at start, the HTTP endpoint with the backlog collector, the
readiness state, the SIGHUP reloader and the SMTP drain on SIGTERM, in one
object so the daemon's main loop only says *when* each happens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from mailer.smtp_drain import SessionGate
from ticketing.config import Config
from ticketing.errors import RosterError, StorageError
from ticketing.incidents.roster import import_roster_file, roster_path
from ticketing.server.backlog import register_backlog
from ticketing.server.http import OpsHttpServer, ServingState
from ticketing.store.models import utcnow
from ticketing.templating.reload import reload_templates
from ticketing.templating.template_store import TemplateStore

__all__ = ["HangupReloader", "Operations", "start_operations"]

log = logging.getLogger(__name__)


@dataclass
class Operations:
    reloader: HangupReloader
    grace_seconds: float
    state: ServingState = field(default_factory=ServingState)
    gate: SessionGate = field(default_factory=SessionGate)
    http: OpsHttpServer | None = None
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    def smtp_started(self) -> None:
        self.state.smtp_listening = True

    async def drain_smtp(self) -> None:
        """Not ready any more; new sessions get 421, sessions in a message may finish."""
        self.state.smtp_listening = False
        await self.gate.drain(self.grace_seconds)

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
        for cleanup in reversed(self._cleanups):
            cleanup()


def start_operations(
    config: Config, source: str, engine: Engine, store: TemplateStore
) -> Operations:
    """Import ``[roster] file`` (``RosterError`` stops the start), then open the endpoint."""
    roster = roster_path(config, source)
    if roster is not None:
        import_roster_file(engine, roster)
    ops = Operations(
        HangupReloader(store, engine, roster), float(config.smtp.shutdown_grace_seconds)
    )
    settings = config.observability
    if settings.http_port == 0:
        log.info("metrics and health endpoints off ([observability] http_port = 0)")
        return ops
    ops._cleanups.append(register_backlog(engine, config.smtp.spool_dir))
    try:
        ops.http = OpsHttpServer(
            settings.http_host,
            settings.http_port,
            engine,
            ops.state,
            timeout=settings.http_timeout_seconds,
            max_connections=settings.http_max_connections,
        )
    except Exception:
        ops.close()
        raise
    return ops


class HangupReloader:
    """SIGHUP: reread what admins change while the daemon runs — the templates, and the
    roster file of ``[roster] file`` (the same upsert as ``ticketd producers import``).

    One reload per SIGHUP, off the event loop; a SIGHUP during a reload runs one more.
    Templates are also picked up every ``reload_interval_seconds``; SIGHUP makes it
    happen now and logs the result.  An unreadable roster on SIGHUP is logged and the
    roster in the database stays as it was, so a half-copied file never takes intake
    down (at start it stops the daemon: a wrong path should be seen at once)."""

    def __init__(self, store: TemplateStore, engine: Engine, roster: Path | None) -> None:
        self._store = store
        self._engine = engine
        self._roster = roster
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def request(self) -> None:
        """The signal handler (on the event loop)."""
        log.info("SIGHUP: reloading templates%s", " and roster" if self._roster else "")
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def wait(self) -> None:
        """Let a reload in progress finish (at shutdown)."""
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            self._again = False
            await asyncio.to_thread(self.reload_now)
            if not self._again:
                return

    def reload_now(self) -> None:
        result = reload_templates(self._store, self._engine, utcnow())
        log.info(
            "SIGHUP: templates: %d changed, %d removed, %d refused",
            len(result.changed),
            len(result.removed),
            len(result.refused),
        )
        if self._roster is None:
            return
        try:
            import_roster_file(self._engine, self._roster)
        except (RosterError, StorageError) as exc:
            log.warning("SIGHUP: roster not reloaded, the database keeps the last one: %s", exc)
