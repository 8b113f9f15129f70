"""SIGHUP: reread what admins change while the daemon runs — templates and the roster.

Templates are also picked up every ``reload_interval_seconds``; SIGHUP makes
it happen now (after a deploy, say) and logs the result either way.  The
roster file of ``[roster] file`` is imported at start and on each SIGHUP with
the same upsert as ``ticketd producers import``: added and updated by NPN,
never deleted.  At start an unreadable roster stops the daemon (a wrong path
should be seen at once); on SIGHUP it is logged and the roster in the
database stays as it was, so a half-copied file never takes intake down.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy.engine import Engine

from ticketing.config import Config
from ticketing.errors import RosterError, StorageError
from ticketing.incidents.roster import ImportReport, import_roster, read_roster
from ticketing.store.db import transaction
from ticketing.store.models import utcnow
from ticketing.templating.reload import reload_templates
from ticketing.templating.store import TemplateStore

__all__ = ["HangupReloader", "import_roster_file", "roster_path"]

log = logging.getLogger(__name__)


def roster_path(config: Config, source: str) -> Path | None:
    """``[roster] file``, a relative path taken from the config file's folder."""
    if config.roster.file is None:
        return None
    path = Path(config.roster.file).expanduser()
    if path.is_absolute():
        return path
    source_path = Path(source)
    base = source_path.resolve().parent if source_path.is_file() else Path.cwd()
    return base / path


def import_roster_file(engine: Engine, path: Path) -> ImportReport:
    """Upsert the roster from ``path``; ``RosterError`` when the file cannot be used at all."""
    rows, rejected = read_roster(path)
    report = ImportReport(rejected=rejected)
    with transaction(engine) as session:
        import_roster(session, rows, report)
    for bad in report.rejected:  # reasons name columns and NPNs, never the row's values
        log.warning("roster %s:%d rejected: %s", path, bad.line, bad.reason)
    log.info(
        "roster %s imported: %d created, %d updated, %d unchanged, %d rejected",
        path,
        report.created,
        report.updated,
        report.unchanged,
        len(report.rejected),
    )
    return report


class HangupReloader:
    """Runs one reload per SIGHUP off the event loop; a SIGHUP during a reload runs one more."""

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
