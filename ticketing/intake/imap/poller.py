"""The IMAP poller: one shared mailbox, read as reliably as SMTP.

Each round reads three kinds of folder:

* the **inbox**: every message still there goes through intake and, once its
  record is committed, is moved out (to the processed folder, or the
  quarantine folder / expunged when refused).  A crash between commit and move
  leaves it in the inbox; the next round fetches it again and deduplication
  makes that a no-op.  Because handled mail leaves the folder, a UIDVALIDITY
  change there can neither skip nor repeat anything.
* the **sent folder**: caseworkers answering from the shared mailbox.  Its
  messages stay, so a cursor (UIDVALIDITY, last UID) says where reading
  stopped; each reply is recorded as outbound correspondence on its incident.
* **state folders** (``folder_states``): a conversation moved into, say,
  ``Resolved`` moves its incident to that state.

Between rounds the poller IDLEs on the inbox (or sleeps) for ``poll_interval``.
Any IMAP or database failure closes the connection and retries with backoff;
only the instance holding the mailbox's lock polls.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from mailer.errors import ImapError
from mailer.imap_client import FetchedMessage, ImapMailbox, ImapSettings
from ticketing.backoff import Backoff
from ticketing.config import Config, ImapConfig, MailboxConfig
from ticketing.errors import StorageError
from ticketing.intake.imap.cursors import load_cursor, save_cursor
from ticketing.intake.imap.folders import Disposition, apply_folder_state, known_message_ids
from ticketing.intake.imap.leadership import Leadership, leadership_for
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import Origin, Outcome, RawMessage
from ticketing.store.models import utcnow

__all__ = ["MailboxPoller", "imap_settings", "mailbox_pollers"]

log = logging.getLogger(__name__)

# How far back a receipt time may be taken from the server's INTERNALDATE (the
# SLA clock starts then); older dates come from imports, not from waiting mail.
_OLDEST_RECEIPT = timedelta(days=14)
# After a UIDVALIDITY change, messages from this long before the cursor's last
# advance are checked (by Message-ID) for ones not yet recorded.
_RESCAN_MARGIN = timedelta(days=7)


def imap_settings(imap: ImapConfig) -> ImapSettings:
    """Connection settings, with the password read from the environment now."""
    password = os.environ.get(imap.password_env) if imap.password_env else None
    return ImapSettings(
        host=imap.host,
        port=imap.port,
        tls=imap.tls,
        username=imap.username,
        password=password,
        oauth2_token_command=imap.oauth2_token_command,
        ca_file=imap.tls_ca_file,
        timeout=float(imap.timeout_seconds),
    )


@dataclass
class MailboxPoller:
    mailbox: MailboxConfig
    imap: ImapConfig
    pipeline: IntakePipeline
    leadership: Leadership
    after_commit: Callable[[], None] | None = None
    connect: Callable[[ImapSettings], ImapMailbox] = ImapMailbox.connect

    def __post_init__(self) -> None:
        self._backoff = Backoff(cap=float(self.imap.reconnect_max_seconds))
        self._settings = imap_settings(self.imap)

    @property
    def engine(self) -> Engine:
        return self.pipeline.engine

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; errors are logged and retried, never fatal."""
        try:
            while not stop.is_set():
                if not self.leadership.acquire():
                    stop.wait(self.imap.poll_interval)  # a standby: try again next interval
                    continue
                try:
                    self._connected(stop)
                except (ImapError, StorageError) as exc:
                    self._pause(stop, str(exc))
                except Exception as exc:  # noqa: BLE001 - a defect must not end the polling
                    # the type only: a library's exception text may quote message content
                    self._pause(stop, f"unexpected {type(exc).__name__}")
        finally:
            self.leadership.release()

    def _pause(self, stop: threading.Event, why: str) -> None:
        pause = self._backoff.failed()
        log.warning("mailbox %s: %s; retrying in %.0f s", self.mailbox.name, why, pause)
        stop.wait(pause)

    def _connected(self, stop: threading.Event) -> None:
        conn = self.connect(self._settings)
        try:
            self.prepare(conn)
            log.info("mailbox %s: polling %s", self.mailbox.name, self._settings.host)
            while not stop.is_set() and self.leadership.still_held():
                self.poll_once(conn)
                self._backoff.succeeded()
                conn.select(self.imap.folder)
                conn.wait(self.imap.poll_interval, stop, idle=self.imap.idle)
        finally:
            conn.close()

    def prepare(self, conn: ImapMailbox) -> None:
        """Create the folders messages are moved to, once per connection."""
        for folder in (self.imap.processed_folder, self.imap.quarantine_folder):
            conn.ensure_folder(folder)

    def poll_once(self, conn: ImapMailbox) -> int:
        """One round over the inbox, the sent folder and the state folders."""
        handled = self._inbox(conn)
        if self.imap.sent_folder:
            handled += self._follow(conn, self.imap.sent_folder, "sent", None)
        for folder, state in self.imap.folder_states.items():
            handled += self._follow(conn, folder, "received", state)
        return handled

    def _inbox(self, conn: ImapMailbox) -> int:
        folder = self.imap.folder
        status = conn.select(folder)
        handled = 0
        for batch in _chunks(conn.undeleted_uids(), self.imap.batch_size):
            moves: dict[Disposition, list[int]] = {}
            try:
                for message in conn.fetch(batch):
                    disposition, _ = self._ingest(message, "received")
                    moves.setdefault(disposition, []).append(message.uid)
                    handled += 1
            finally:  # what is committed leaves the inbox even if a later message failed
                self._dispose(conn, moves)
            save_cursor(self.engine, self.mailbox.name, folder, status.uidvalidity, batch[-1])
        return handled

    def _dispose(self, conn: ImapMailbox, moves: dict[Disposition, list[int]]) -> None:
        for disposition, uids in moves.items():
            if disposition == "processed":
                conn.move(uids, self.imap.processed_folder)
            elif disposition == "quarantine":
                conn.move(uids, self.imap.quarantine_folder)
            else:
                conn.expunge(uids)

    def _follow(self, conn: ImapMailbox, folder: str, origin: Origin, state: str | None) -> int:
        """Read what arrived in a folder whose messages stay there, from its cursor on."""
        status = conn.select(folder, readonly=True)
        cursor = load_cursor(self.engine, self.mailbox.name, folder)
        if cursor is None:  # first sight: follow what arrives from now on, not the archive
            last = status.uidnext - 1 if status.uidnext else max(conn.uids_after(0), default=0)
            save_cursor(self.engine, self.mailbox.name, folder, status.uidvalidity, last)
            return 0
        if cursor.uidvalidity == status.uidvalidity:
            uids = conn.uids_after(cursor.last_uid)
        else:
            uids = self._unrecorded_since(conn, cursor.updated_at - _RESCAN_MARGIN)
            log.warning("mailbox %s: folder %r has a new UIDVALIDITY", self.mailbox.name, folder)
        for batch in _chunks(uids, self.imap.batch_size):
            for message in conn.fetch(batch):
                _, outcome = self._ingest(message, origin)
                if state is not None and outcome is not None:
                    apply_folder_state(
                        self.pipeline, outcome, state, f"{self.mailbox.name}/{folder}"
                    )
            save_cursor(self.engine, self.mailbox.name, folder, status.uidvalidity, batch[-1])
        if not uids and cursor.uidvalidity != status.uidvalidity:
            save_cursor(self.engine, self.mailbox.name, folder, status.uidvalidity, cursor.last_uid)
        return len(uids)

    def _unrecorded_since(self, conn: ImapMailbox, since: datetime) -> list[int]:
        """After a UIDVALIDITY change: the messages since ``since`` not recorded yet."""
        uids = conn.uids_since(since.date())
        ids = conn.message_ids(uids) if uids else {}
        known = known_message_ids(self.engine, {i for i in ids.values() if i})
        return [uid for uid in uids if ids.get(uid) is None or ids[uid] not in known]

    def _ingest(
        self, message: FetchedMessage, origin: Origin
    ) -> tuple[Disposition, Outcome | None]:
        """Intake for one fetched message; temporary failures propagate (retry later)."""
        raw = RawMessage(
            message.raw,
            "imap",
            (self.mailbox.name,),
            received_at=_receipt_time(message.internaldate),
            origin=origin,
        )
        verdict = self.pipeline.judge(raw)
        if verdict.kind == "permanent":
            log.warning(
                "mailbox %s: UID %d refused: %s", self.mailbox.name, message.uid, verdict.reason
            )
            return "quarantine", None
        if verdict.kind == "defect":  # a defect must not wedge the mailbox: set it aside
            log.error(
                "mailbox %s: UID %d failed in intake (%s); quarantined",
                self.mailbox.name,
                message.uid,
                verdict.reason,
            )
            return "quarantine", None
        if verdict.outcome is None:  # the database or a secret: the message waits
            raise verdict.error or StorageError(verdict.reason)
        outcome = verdict.outcome
        if outcome.action != "duplicate" and self.after_commit is not None:
            self.after_commit()
        if outcome.action == "pii_rejected":
            return ("expunge" if self.imap.pii_rejected == "expunge" else "quarantine"), outcome
        return "processed", outcome


def _receipt_time(internaldate: datetime | None) -> datetime:
    now = utcnow()
    if internaldate is None or internaldate.tzinfo is None:
        return now
    return min(now, max(internaldate, now - _OLDEST_RECEIPT))


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def mailbox_pollers(
    config: Config, pipeline: IntakePipeline, after_commit: Callable[[], None] | None = None
) -> list[MailboxPoller]:
    """A poller for each mailbox with an ``[mailboxes.imap]`` section (``serve`` runs each
    in a thread of its own)."""
    return [
        MailboxPoller(
            box, box.imap, pipeline, leadership_for(pipeline.engine, box.name), after_commit
        )
        for box in config.mailboxes
        if box.imap is not None
    ]
