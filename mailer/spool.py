"""The intake spool: accepted SMTP messages, durable on disk until a worker records them.

The SMTP front answers 250 once a message is here (written to ``tmp/``,
fsynced, renamed into ``new/``, the folder fsynced: Postfix's queue, Mailman's
switchboard), and worker processes drain it, so the CPU-heavy stages use every
core.  A worker claims a message by renaming it into its own ``cur/<slot>/``;
a rename is atomic, so no two workers ever take the same file.

Each file name carries the number of attempts (``<id>.<attempts>``), counted at
claim time, so a message that kills its worker is counted too; after
``max_attempts`` it moves to ``quarantine/`` instead of looping, with a
``.reason`` file beside it; an operator lists, releases (back to ``new/``, its
attempts counted afresh) or purges what is there.  The spool holds unscreened
mail: files are private to the daemon's user (0600 in 0700 folders) and deleted
as soon as the message is committed.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from mailer.smtp_server import InboundEnvelope

__all__ = ["ClaimedMessage", "QuarantinedMessage", "Spool", "SpoolCounts", "SpooledEnvelope"]

_FOLDERS = ("tmp", "new", "cur", "quarantine")
_REASON = ".reason"


@dataclass(frozen=True)
class SpooledEnvelope:
    """A message as the SMTP session handed it over, and when it got its 250."""

    envelope: InboundEnvelope
    received_at: float  # seconds since the epoch


@dataclass(frozen=True)
class ClaimedMessage:
    """A message a worker has taken out of ``new/``; it must be finished or released."""

    name: str
    path: Path
    attempts: int


@dataclass(frozen=True)
class QuarantinedMessage:
    """A message set aside, as a listing shows it: never its content."""

    name: str
    arrived: float  # when it was spooled, seconds since the epoch (the file's mtime)
    size: int
    reason: str


@dataclass(frozen=True)
class SpoolCounts:
    waiting: int
    in_progress: int
    quarantined: int
    # in tmp/: being written, or left by a session killed before its 250 (removed at start)
    unfinished: int = 0


def _split(name: str) -> tuple[str, int]:
    ident, _, attempts = name.rpartition(".")
    return ident, int(attempts) if attempts.isdigit() else 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _SharedDirSync:
    """``fsync`` of one folder for many threads at once (group commit).

    A rename is durable once an ``fsync`` of its folder *begins* after it.  Each caller
    takes a ticket after its rename; whoever gets the lock fsyncs for every ticket taken
    so far, and a caller whose ticket an fsync already covered returns at once.  Under
    load one fsync serves all the SMTP sessions that renamed while the last one ran.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._tickets = itertools.count(1)
        self._issued = 0
        self._covered = 0

    def sync(self) -> None:
        ticket = self._issued = next(self._tickets)  # after the caller's rename
        with self._lock:
            if self._covered >= ticket:
                return
            target = self._issued
            _fsync_dir(self._path)
            self._covered = target


class Spool:
    """A spool folder; safe to share between processes (all moves are renames)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._new_synced = _SharedDirSync(self.path / "new")

    def create(self) -> None:
        """Make the folders (private to this user); an ``OSError`` names what failed."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for folder in _FOLDERS:
            (self.path / folder).mkdir(mode=0o700, exist_ok=True)

    def remove_unfinished(self) -> int:
        """Delete what ``tmp/`` holds, and say how many: messages whose session was killed
        before its 250 (the sender still has them).  Only at start, before the SMTP
        front listens: later a file there may be a message being written."""
        folder = self.path / "tmp"
        if not folder.is_dir():
            return 0
        removed = 0
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    Path(entry.path).unlink(missing_ok=True)
                    removed += 1
        return removed

    def put(self, spooled: SpooledEnvelope) -> str:
        """Write ``spooled`` durably and return its name; ``OSError`` when the disk refuses."""
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:16]}.0"
        temp = self.path / "tmp" / name
        envelope = spooled.envelope
        head = {
            "mail_from": envelope.mail_from,
            "recipients": list(envelope.recipients),
            "mailboxes": list(envelope.mailboxes),
            "peer": envelope.peer,
            "helo": envelope.helo,
            "received_at": spooled.received_at,
        }
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(json.dumps(head).encode() + b"\n")
                handle.write(envelope.raw)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(temp, self.path / "new" / name)
            self._new_synced.sync()
        except OSError:
            temp.unlink(missing_ok=True)
            raise
        return name

    def waiting(self, older_than: float = 0.0) -> list[str]:
        """Names in ``new/``, oldest first; only those untouched for ``older_than`` seconds."""
        cutoff = time.time() - older_than
        names = []
        with os.scandir(self.path / "new") as entries:
            for entry in entries:
                try:
                    if older_than <= 0 or entry.stat().st_mtime <= cutoff:
                        names.append(entry.name)
                except FileNotFoundError:  # claimed meanwhile
                    continue
        return sorted(names)

    def claim(self, name: str, slot: int) -> ClaimedMessage | None:
        """Take ``name`` for worker ``slot``; ``None`` when another worker was first."""
        ident, attempts = _split(name)
        folder = self.path / "cur" / str(slot)
        folder.mkdir(mode=0o700, exist_ok=True)
        claimed = f"{ident}.{attempts + 1}"
        try:
            os.rename(self.path / "new" / name, folder / claimed)
        except FileNotFoundError:
            return None
        return ClaimedMessage(claimed, folder / claimed, attempts + 1)

    @staticmethod
    def read(claimed: ClaimedMessage) -> SpooledEnvelope:
        """The envelope and bytes of a claimed message (``ValueError`` if the file is damaged)."""
        data = claimed.path.read_bytes()
        line, _, raw = data.partition(b"\n")
        head = json.loads(line)
        envelope = InboundEnvelope(
            raw=raw,
            mail_from=str(head["mail_from"]),
            recipients=tuple(head["recipients"]),
            mailboxes=tuple(head["mailboxes"]),
            peer=str(head["peer"]),
            helo=str(head.get("helo") or ""),  # spooled before the HELO was kept: none
        )
        return SpooledEnvelope(envelope, float(head["received_at"]))

    @staticmethod
    def finish(claimed: ClaimedMessage) -> None:
        """The message is committed: the unscreened copy goes."""
        claimed.path.unlink(missing_ok=True)

    def release(self, claimed: ClaimedMessage, *, count_attempt: bool = True) -> str:
        """Back to ``new/`` for a later try (its name there); a temporary failure does not
        count as an attempt."""
        ident, attempts = _split(claimed.name)
        name = f"{ident}.{attempts if count_attempt else max(attempts - 1, 0)}"
        os.rename(claimed.path, self.path / "new" / name)
        return name

    def quarantine(self, claimed: ClaimedMessage, reason: str) -> Path:
        """Set the message aside for an operator, with ``reason`` (no content) beside it."""
        target = self.path / "quarantine" / claimed.name
        os.rename(claimed.path, target)
        target.with_name(target.name + _REASON).write_text(reason + "\n", encoding="utf-8")
        return target

    def quarantined(self) -> list[QuarantinedMessage]:
        """What is in ``quarantine/``, oldest name first."""
        folder = self.path / "quarantine"
        found = []
        for name in sorted(os.listdir(folder)) if folder.is_dir() else []:
            if name.endswith(_REASON):
                continue
            try:
                stat = (folder / name).stat()
            except FileNotFoundError:  # released or purged meanwhile
                continue
            reason = folder / (name + _REASON)
            why = reason.read_text(encoding="utf-8").strip() if reason.exists() else ""
            found.append(QuarantinedMessage(name, stat.st_mtime, stat.st_size, why))
        return found

    def unquarantine(self, name: str) -> str | None:
        """Put a quarantined message back into ``new/``, its attempts counted afresh; its
        name there, or ``None`` when ``name`` is not in the quarantine."""
        source = self._quarantined_file(name)
        if source is None:
            return None
        ident, _ = _split(name)
        released = f"{ident}.0"
        try:
            os.rename(source, self.path / "new" / released)
        except FileNotFoundError:
            return None
        source.with_name(name + _REASON).unlink(missing_ok=True)
        return released

    def purge(self, name: str) -> bool:
        """Delete a quarantined message for good (``False`` when it is not there)."""
        source = self._quarantined_file(name)
        if source is None:
            return False
        try:
            source.unlink()
        except FileNotFoundError:
            return False
        source.with_name(name + _REASON).unlink(missing_ok=True)
        return True

    def _quarantined_file(self, name: str) -> Path | None:
        """The file of a quarantined message; ``None`` for anything else (a path, a reason)."""
        if not name or name != Path(name).name or name.startswith(".") or name.endswith(_REASON):
            return None
        return self.path / "quarantine" / name

    def recover(self, slot: int) -> list[ClaimedMessage]:
        """What worker ``slot`` held when it died: the messages it had claimed."""
        folder = self.path / "cur" / str(slot)
        if not folder.is_dir():
            return []
        return [
            ClaimedMessage(name, folder / name, _split(name)[1])
            for name in sorted(os.listdir(folder))
        ]

    def slots(self) -> list[int]:
        """Worker slots that hold claimed messages (after a crash of the whole daemon)."""
        cur = self.path / "cur"
        return sorted(int(p.name) for p in cur.iterdir() if p.name.isdigit() and any(p.iterdir()))

    def counts(self) -> SpoolCounts:
        cur = self.path / "cur"
        in_progress = sum(len(os.listdir(p)) for p in cur.iterdir() if p.is_dir())
        quarantined = sum(1 for p in (self.path / "quarantine").iterdir() if p.suffix != _REASON)
        tmp = self.path / "tmp"
        unfinished = len(os.listdir(tmp)) if tmp.is_dir() else 0
        waiting = len(os.listdir(self.path / "new"))
        return SpoolCounts(waiting, in_progress, quarantined, unfinished)
