"""What ``ticketd serve`` runs for operators beside the mail.

The roster import at start, the HTTP endpoint with the backlog collector, the
readiness state, the SIGHUP reloader and the SMTP drain on SIGTERM, in one
object so the daemon's main loop only says *when* each happens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from mailer.smtp_drain import SessionGate
from ticketing.config import Config
from ticketing.server.backlog import register_backlog
from ticketing.server.http import OpsHttpServer, ServingState
from ticketing.server.reload import HangupReloader, import_roster_file, roster_path
from ticketing.templating.store import TemplateStore

__all__ = ["Operations", "start_operations"]

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
        ops.http = OpsHttpServer(settings.http_host, settings.http_port, engine, ops.state)
    except Exception:
        ops.close()
        raise
    return ops
