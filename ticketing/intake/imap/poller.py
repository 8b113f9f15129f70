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

One bad message never holds up the next: a message that fails with a defect
(a bug, a value the database refuses, a server that will not hand it out) stays
where it is and the round goes on; it is tried again next round, and after
``[intake] defect_attempts`` failures an inbox message moves to the quarantine
folder (one in a followed folder is passed over), with the reason in the log.
Only an outage (the database, the IMAP server) stops the round.

With ``[smtp] workers`` ≥ 1 the poller does not judge mail itself: it hands each
fetched batch to the worker processes (``intake/handoff.py``) — the raw bytes
over their queue, spread over every worker, each part recorded with one commit
— waits for every verdict, and then settles each message exactly as it would
have (moves, quarantine, desk copies, defect counts).  In the inbox it fetches and
hands over the next batch first, so the workers record it while the poller settles
this one.  The sent and state folders go the same way: a caseworker's reply costs
the PII guard as much as a producer's mail, and the poller thread is left with IMAP
alone.  A message whose worker died (or that failed otherwise) goes to the workers
alone next time, so a message that kills workers takes no other with it into the
quarantine.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from mailer.errors import ImapError
from mailer.imap_client import FetchedMessage, ImapMailbox, ImapSettings
from ticketing import metrics
from ticketing.backoff import Backoff
from ticketing.config import Config, ImapConfig, MailboxConfig
from ticketing.errors import StorageError
from ticketing.intake.attempts import DefectCounts
from ticketing.intake.handoff import BatchRecorder, SentBatch
from ticketing.intake.imap.cursors import load_cursor, save_cursor
from ticketing.intake.imap.desk import HeldCopy, finish_desk_copy, take_desk_copy
from ticketing.intake.imap.folders import Disposition, apply_folder_state, known_message_ids
from ticketing.intake.imap.leadership import Leadership, leadership_for
from ticketing.intake.imap.quarantine import quarantine_keyword
from ticketing.outbound.desk_copies import desk_destination
from ticketing.outbound.desk_transport import imap_recipient
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import Origin, Outcome, RawMessage
from ticketing.pipeline.verdict import Verdict, log_defect, verdict_of
from ticketing.store.models import utcnow

__all__ = ["MailboxPoller", "imap_settings", "mailbox_pollers"]

log = logging.getLogger(__name__)

# How far back a receipt time may be taken from the server's INTERNALDATE (the
# SLA clock starts then); older dates come from imports, not from waiting mail.
_OLDEST_RECEIPT = timedelta(days=14)
# After a UIDVALIDITY change, messages from this long before the cursor's last
# advance are checked (by Message-ID) for ones not yet recorded.
_RESCAN_MARGIN = timedelta(days=7)


@dataclass(frozen=True)
class _Settled:
    """What becomes of one message: where it goes (``None``: it stays, to be tried again
    next round), why it is quarantined, what intake recorded."""

    disposition: Disposition | None
    reason: str = ""
    outcome: Outcome | None = None


_RETRY = _Settled(None)


@dataclass(frozen=True)
class _Handed:
    """A batch fetched (the UID of a message the server would not hand out in its place)
    and, with workers, handed to them; without, judged as it is settled."""

    items: list[FetchedMessage | int]
    origin: Origin
    sent: SentBatch | None = None


# The outcomes whose message got a desk copy (or had one already: a duplicate).
_COPIED = ("recorded", "unverified", "duplicate")
_Moves = dict[tuple[Disposition, str], list[int]]
# A fetched message and its verdict, or the UID of one the server would not hand out.
_Judged = tuple[FetchedMessage, Verdict] | int
_Key = tuple[str, int, int]  # folder, UIDVALIDITY, UID
_ALONE_CAPACITY = 10_000  # messages remembered to be sent to the workers alone


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
    # [smtp] workers ≥ 1: the worker processes judge the batches (None: this thread does)
    workers: BatchRecorder | None = None

    _retry: dict[str, set[int]] = field(default_factory=dict, init=False, repr=False)
    # the messages that failed and are still to be tried: each goes to the workers alone
    _alone: set[_Key] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self._backoff = Backoff(cap=float(self.imap.reconnect_max_seconds))
        self._settings = imap_settings(self.imap)
        # defects per (folder, UIDVALIDITY, UID); in followed folders, the UIDs to try again
        self._defects = DefectCounts(self.pipeline.config.intake.defect_attempts)
        config = self.pipeline.config
        # where the desk copies of this mailbox's team go; replaced originals need them here
        self._desk_recipient = imap_recipient(self.mailbox.name)
        self._replaces_originals = self.mailbox.pii_policy == "redact" and (
            desk_destination(config, self.mailbox.team) == self._desk_recipient
        )

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
                self.poll_once(conn, stop)
                self._backoff.succeeded()
                conn.select(self.imap.folder)
                conn.wait(self.imap.poll_interval, stop, idle=self.imap.idle)
        finally:
            conn.close()

    def prepare(self, conn: ImapMailbox) -> None:
        """Create the folders messages are moved to, once per connection."""
        for folder in (self.imap.processed_folder, self.imap.quarantine_folder):
            conn.ensure_folder(folder)

    def poll_once(self, conn: ImapMailbox, stop: threading.Event | None = None) -> int:
        """One round over the inbox, the sent folder and the state folders; once ``stop``
        is set it ends after the batch in hand (the rest waits for the next start)."""
        handled = self._inbox(conn, stop)
        if self.imap.sent_folder and not _stopped(stop):
            handled += self._follow(conn, self.imap.sent_folder, "sent", None)
        for folder, state in self.imap.folder_states.items():
            if not _stopped(stop):
                handled += self._follow(conn, folder, "received", state)
        return handled

    def _inbox(self, conn: ImapMailbox, stop: threading.Event | None) -> int:
        folder = self.imap.folder
        status = conn.select(folder)
        where = (folder, status.uidvalidity)
        handled = 0
        for batch, handed in self._handed_ahead(conn, conn.undeleted_uids(), where, stop):
            moves: _Moves = {}
            replaced: dict[int, int] = {}  # UID -> its recorded message's row
            try:
                for uid, settled in self._settle_handed(handed, where, None):
                    if settled.disposition == "replaced" and settled.outcome is not None:
                        replaced[uid] = settled.outcome.message_row_id or 0
                    elif settled.disposition is not None:
                        moves.setdefault((settled.disposition, settled.reason), []).append(uid)
                    handled += 1
            finally:  # what is committed leaves the inbox even if a later message failed
                self._replace(conn, replaced, moves)
                self._dispose(conn, moves, keywords=status.keywords)
            save_cursor(self.engine, self.mailbox.name, folder, status.uidvalidity, batch[-1])
        return handled

    def _handed_ahead(
        self,
        conn: ImapMailbox,
        uids: list[int],
        where: tuple[str, int],
        stop: threading.Event | None,
    ) -> Iterator[tuple[list[int], _Handed]]:
        """The inbox's batches, each fetched and handed over.  With workers the next batch
        is handed over before this one is settled: they record it while this thread
        moves the last one and fetches, instead of waiting for its IMAP round trips.  A
        batch handed over and not settled (the round stopped) stays in the inbox, and
        whatever of it was recorded is a duplicate next round."""
        ahead: tuple[list[int], _Handed] | None = None
        for batch in _chunks(uids, self.imap.batch_size):
            if _stopped(stop):
                break
            handed = (batch, self._hand(conn, batch, "received", where))
            if self.workers is None:
                yield handed  # judged here as it is settled: nothing to overlap
                continue
            if ahead is not None:
                yield ahead
            ahead = handed
        if ahead is not None:
            yield ahead

    def _replace(self, conn: ImapMailbox, replaced: dict[int, int], moves: _Moves) -> None:
        """Put each message's desk copy into the desk folder, then expunge the original
        (``intake/imap/desk.py``); one whose copy is not this poller's to deliver goes to
        the processed folder, one whose copy another process holds waits a round."""
        if not replaced:
            return
        done: list[int] = []
        try:
            for uid, row_id in replaced.items():
                taken = take_desk_copy(self.engine, row_id, self._desk_recipient, utcnow())
                if isinstance(taken, HeldCopy):
                    conn.append_once(self.imap.desk_folder, taken.mime, taken.message_id)
                    finish_desk_copy(self.engine, taken, utcnow())
                    done.append(uid)
                elif taken == "delivered":
                    done.append(uid)
                elif taken == "elsewhere":
                    moves.setdefault(("processed", ""), []).append(uid)
        finally:
            conn.select(self.imap.folder)  # APPEND looked into the desk folder
            conn.expunge(done)

    def _dispose(self, conn: ImapMailbox, moves: _Moves, *, keywords: bool) -> None:
        for (disposition, reason), uids in moves.items():
            if disposition == "processed":
                conn.move(uids, self.imap.processed_folder)
            elif disposition == "quarantine":
                if keywords and reason:  # the reason travels with it (imap/quarantine.py)
                    conn.set_keyword(uids, quarantine_keyword(reason))
                conn.move(uids, self.imap.quarantine_folder)
                metrics.count_imap_quarantined(reason or "defect", len(uids))
            else:
                conn.expunge(uids)

    def _follow(self, conn: ImapMailbox, folder: str, origin: Origin, state: str | None) -> int:
        """Read what arrived in a folder whose messages stay there, from its cursor on
        (and what failed there last round, once more)."""
        status = conn.select(folder, readonly=True)
        cursor = load_cursor(self.engine, self.mailbox.name, folder)
        if cursor is None:  # first sight: follow what arrives from now on, not the archive
            last = status.uidnext - 1 if status.uidnext else max(conn.uids_after(0), default=0)
            save_cursor(self.engine, self.mailbox.name, folder, status.uidvalidity, last)
            return 0
        retry = self._retry.setdefault(folder, set())
        if cursor.uidvalidity == status.uidvalidity:
            uids = sorted(retry) + conn.uids_after(cursor.last_uid)
        else:
            retry.clear()
            uids = self._unrecorded_since(conn, cursor.updated_at - _RESCAN_MARGIN)
            log.warning("mailbox %s: folder %r has a new UIDVALIDITY", self.mailbox.name, folder)
        where, last = (folder, status.uidvalidity), cursor.last_uid
        for batch in _chunks(uids, self.imap.batch_size):
            for uid, settled in self._settle_all(conn, batch, origin, where, state):
                if settled is _RETRY:
                    retry.add(uid)
                else:
                    retry.discard(uid)
            last = max(last, batch[-1])
            save_cursor(self.engine, self.mailbox.name, folder, status.uidvalidity, last)
        if not uids and cursor.uidvalidity != status.uidvalidity:
            save_cursor(self.engine, self.mailbox.name, folder, status.uidvalidity, cursor.last_uid)
        return len(uids)

    def _fetch(self, conn: ImapMailbox, batch: list[int]) -> list[FetchedMessage | int]:
        """The batch's messages, fetched together, else one by one: the UID of one the
        server will not hand out (while the connection lives) stands in for it."""
        try:
            return list(conn.fetch(batch))
        except ImapError:
            if not conn.alive():
                raise
        found: list[FetchedMessage | int] = []
        for uid in batch:
            try:
                found.extend(conn.fetch([uid]))
            except ImapError:
                if not conn.alive():
                    raise
                found.append(uid)
        return found

    def _settle_all(
        self,
        conn: ImapMailbox,
        batch: list[int],
        origin: Origin,
        where: tuple[str, int],
        state: str | None,
    ) -> Iterator[tuple[int, _Settled]]:
        """A batch fetched, judged and settled, message by message.  An outage (the
        database, the workers) stops the round once what was judged before it is settled
        (with workers: the whole batch), so committed mail leaves the inbox first."""
        return self._settle_handed(self._hand(conn, batch, origin, where), where, state)

    def _settle_handed(
        self, handed: _Handed, where: tuple[str, int], state: str | None
    ) -> Iterator[tuple[int, _Settled]]:
        """``_settle_all`` of a batch fetched and handed over."""
        outage: Exception | None = None
        for judged in self._judged(handed):
            try:
                settled = self._settle(judged, where, state)
            except Exception as exc:  # noqa: BLE001 - an outage (_settle keeps defects): raised below
                outage = outage or exc
                if self.workers is None:
                    break  # the next message is not judged: the round stops here
                continue
            yield settled
        if outage is not None:
            raise outage

    def _hand(
        self, conn: ImapMailbox, batch: list[int], origin: Origin, where: tuple[str, int]
    ) -> _Handed:
        """A batch fetched and, with workers, handed to them."""
        items = self._fetch(conn, batch)
        if self.workers is None:
            return _Handed(items, origin)
        messages = [item for item in items if not isinstance(item, int)]
        alone = [i for i, m in enumerate(messages) if (*where, m.uid) in self._alone]
        raws = [self._raw(message, origin) for message in messages]
        return _Handed(items, origin, self.workers.send(raws, alone))

    def _judged(self, handed: _Handed) -> Iterable[_Judged]:
        """Each message with its verdict: in this thread, each judged only once the one
        before is settled (an outage ends the round before the next); by the workers, the
        batch at once."""
        if handed.sent is None:
            return (self._judge_here(item, handed.origin) for item in handed.items)
        verdicts = iter(handed.sent.verdicts())
        return [item if isinstance(item, int) else (item, next(verdicts)) for item in handed.items]

    def _judge_here(self, item: FetchedMessage | int, origin: Origin) -> _Judged:
        if isinstance(item, int):
            return item
        return item, self.pipeline.judge(self._raw(item, origin))

    def _raw(self, message: FetchedMessage, origin: Origin) -> RawMessage:
        return RawMessage(
            message.raw,
            "imap",
            (self.mailbox.name,),
            received_at=_receipt_time(message.internaldate),
            origin=origin,
        )

    def _settle(
        self, judged: _Judged, where: tuple[str, int], state: str | None
    ) -> tuple[int, _Settled]:
        """What becomes of one judged message (and its folder's state); an outage propagates
        (the round stops, the mailbox backs off), anything else is this message's defect."""
        if isinstance(judged, int):
            return judged, self._defect(where, judged, "the server would not hand it out")
        message, verdict = judged
        try:
            settled = self._after(message, verdict, where[0], state)
        except Exception as exc:
            failure = verdict_of(exc)
            if failure.kind in ("temporary", "storage_full"):
                raise
            log_defect(log, "mailbox %s: UID %d failed", self.mailbox.name, message.uid, error=exc)
            settled = _Settled(None, failure.reason)
        if settled.disposition is None:
            return message.uid, self._defect(where, message.uid, settled.reason)
        self._alone.discard((*where, message.uid))
        return message.uid, settled

    def _defect(self, where: tuple[str, int], uid: int, reason: str) -> _Settled:
        """Count a defect of one message: try it again next round (alone, with workers), or
        set it aside."""
        folder, name = where[0], self.mailbox.name
        key = (*where, uid)
        attempt = self._defects.failed(key)
        if not attempt.give_up:
            if len(self._alone) >= _ALONE_CAPACITY:
                self._alone.clear()  # of messages gone from the folder, mostly: forget them
            self._alone.add(key)
            log.warning(
                "mailbox %s: %s UID %d failed in intake (%s), attempt %d of %d; tried again "
                "next round",
                *(name, folder, uid, reason, attempt.count, self._defects.limit),
            )
            return _RETRY
        self._alone.discard(key)
        aside = "quarantined" if folder == self.imap.folder else "passed over"
        log.error(
            "mailbox %s: %s UID %d failed in intake %d times (%s); %s",
            *(name, folder, uid, attempt.count, reason, aside),
        )
        return _Settled("quarantine", "defect")

    def _unrecorded_since(self, conn: ImapMailbox, since: datetime) -> list[int]:
        """After a UIDVALIDITY change: the messages since ``since`` not recorded yet."""
        uids = conn.uids_since(since.date())
        ids = conn.message_ids(uids) if uids else {}
        known = known_message_ids(self.engine, {i for i in ids.values() if i})
        return [uid for uid in uids if ids.get(uid) is None or ids[uid] not in known]

    def _after(
        self, message: FetchedMessage, verdict: Verdict, folder: str, state: str | None
    ) -> _Settled:
        """Where a judged message goes (no disposition: a defect, with its reason);
        temporary failures propagate (retry later)."""
        if verdict.kind == "permanent":
            log.warning(
                "mailbox %s: UID %d refused: %s", self.mailbox.name, message.uid, verdict.reason
            )
            return _Settled("quarantine", "refused")
        if verdict.kind == "defect":  # logged where it was judged
            return _Settled(None, verdict.reason)
        if verdict.outcome is None:  # the database or a secret: the message waits
            raise verdict.error or StorageError(verdict.reason)
        outcome = verdict.outcome
        if outcome.action != "duplicate" and self.after_commit is not None:
            self.after_commit()
        if state is not None:
            apply_folder_state(self.pipeline, outcome, state, f"{self.mailbox.name}/{folder}")
        if outcome.action == "pii_rejected":
            if self.imap.pii_rejected == "expunge":
                return _Settled("expunge", outcome=outcome)
            return _Settled("quarantine", "pii-rejected", outcome)
        if self._replaces_originals and state is None and outcome.action in _COPIED:
            return _Settled("replaced", outcome=outcome)
        return _Settled("processed", outcome=outcome)


def _receipt_time(internaldate: datetime | None) -> datetime:
    """In UTC: the server's offset is imapclient's own tzinfo, which does not pickle (the
    worker processes receive it)."""
    now = utcnow()
    if internaldate is None or internaldate.tzinfo is None:
        return now
    return min(now, max(internaldate.astimezone(UTC), now - _OLDEST_RECEIPT))


def _stopped(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def mailbox_pollers(
    config: Config,
    pipeline: IntakePipeline,
    after_commit: Callable[[], None] | None = None,
    workers: BatchRecorder | None = None,
) -> list[MailboxPoller]:
    """A poller for each mailbox with an ``[mailboxes.imap]`` section (``serve`` runs each
    in a thread of its own), judging in its thread or through ``workers``."""
    return [
        MailboxPoller(
            box,
            box.imap,
            pipeline,
            leadership_for(pipeline.engine, box.name),
            after_commit,
            workers=workers,
        )
        for box in config.mailboxes
        if box.imap is not None
    ]
