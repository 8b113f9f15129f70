"""A shared mailbox over IMAP, as the poller needs it.

This module speaks IMAP and nothing else: connect (the configured TLS mode or
an error, never a silent fall-back to plaintext), log in with a password or
XOAUTH2, and the few folder operations the poller uses.  What to do with the
messages is decided in ``ticketing.intake.imap``.  Every failure surfaces as
``ImapError``, whose text names the server and the operation but never message
content, so the poller can log it and reconnect.
"""

from __future__ import annotations

import imaplib
import shlex
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailer.errors import ImapAuthError, ImapError

__all__ = [
    "FetchedMessage",
    "FolderStatus",
    "ImapMailbox",
    "ImapSettings",
    "MessageSummary",
    "TlsMode",
]

TlsMode = Literal["implicit", "starttls", "none"]
_TOKEN_TIMEOUT_SECONDS = 30
_IDLE_SLICE_SECONDS = 1.0
_PROTOCOL_ERRORS = (IMAPClientError, imaplib.IMAP4.error, OSError, EOFError)


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    tls: TlsMode
    username: str
    password: str | None = field(default=None, repr=False)
    oauth2_token_command: str | None = None
    ca_file: str | None = None
    timeout: float = 60.0


@dataclass(frozen=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int
    exists: int
    keywords: bool = False  # the server keeps keywords of our own on this folder's messages


@dataclass(frozen=True)
class MessageSummary:
    """What a folder listing shows of a message: never its content."""

    uid: int
    internaldate: datetime | None
    size: int
    keywords: frozenset[str]


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    raw: bytes = field(repr=False)
    internaldate: datetime | None = None


@contextmanager
def _protocol(what: str) -> Iterator[None]:
    """Turn every library and socket error into ``ImapError`` naming the operation."""
    try:
        yield
    except ImapError:
        raise
    except _PROTOCOL_ERRORS as exc:
        raise ImapError(f"IMAP {what} failed: {type(exc).__name__}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no detail"


def oauth2_token(command: str) -> str:
    """Run the configured command and return the access token it prints."""
    try:
        done = subprocess.run(  # noqa: S603 - the operator's own configured command
            shlex.split(command),
            capture_output=True,
            timeout=_TOKEN_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImapAuthError(f"oauth2_token_command could not run: {type(exc).__name__}") from None
    token = done.stdout.decode("ascii", "replace").strip()
    if done.returncode != 0 or not token:
        raise ImapAuthError(
            f"oauth2_token_command exited with status {done.returncode} and "
            f"{'no token' if not token else 'a token'}"
        )
    return token


class ImapMailbox:
    """One logged-in IMAP connection; use ``ImapMailbox.connect`` and ``close``."""

    def __init__(self, client: IMAPClient, settings: ImapSettings) -> None:
        self._client = client
        self._client.normalise_times = False  # keep INTERNALDATE's zone (aware datetimes)
        self._settings = settings
        self._delimiter, self._prefix = self._namespace()

    @classmethod
    def connect(cls, settings: ImapSettings) -> ImapMailbox:
        where = f"{settings.host}:{settings.port}"
        with _protocol(f"connect to {where}"):
            client = _open(settings)
        try:
            _login(client, settings, where)
            return cls(client, settings)
        except BaseException:
            _quietly_close(client)
            raise

    def close(self) -> None:
        _quietly_close(self._client)

    def alive(self) -> bool:
        """Whether the connection still answers (a NOOP): after a failed command, tells a
        refusal of that command from a lost connection."""
        try:
            with _protocol("noop"):
                self._client.noop()
        except ImapError:
            return False
        return True

    @property
    def capabilities(self) -> frozenset[bytes]:
        return frozenset(self._client.capabilities())

    def server_name(self, folder: str) -> str:
        """The server's name for a configured folder (``/`` separated)."""
        if folder.upper() == "INBOX":
            return "INBOX"
        name = folder.replace("/", self._delimiter) if self._delimiter else folder
        if self._prefix and not name.startswith(self._prefix):
            name = self._prefix + name
        return name

    def ensure_folder(self, folder: str) -> None:
        """Create ``folder`` and its parents when missing (and subscribe, for mail clients)."""
        parts = folder.split("/")
        with _protocol(f"create folder {folder!r}"):
            for depth in range(1, len(parts) + 1):
                name = self.server_name("/".join(parts[:depth]))
                if not self._client.folder_exists(name):
                    self._client.create_folder(name)
                    self._client.subscribe_folder(name)

    def select(self, folder: str, *, readonly: bool = False) -> FolderStatus:
        with _protocol(f"select {folder!r}"):
            info = self._client.select_folder(self.server_name(folder), readonly=readonly)
        return FolderStatus(
            uidvalidity=int(info[b"UIDVALIDITY"]),
            uidnext=int(info.get(b"UIDNEXT", 0)),
            exists=int(info.get(b"EXISTS", 0)),
            keywords=b"\\*" in info.get(b"PERMANENTFLAGS", ()),
        )

    def undeleted_uids(self) -> list[int]:
        with _protocol("search"):
            return sorted(int(uid) for uid in self._client.search(["UNDELETED"]))

    def uids_after(self, last_uid: int) -> list[int]:
        # "n:*" always matches the highest UID, even one below n (RFC 3501 6.4.8)
        with _protocol("search"):
            found = self._client.search(["UID", f"{last_uid + 1}:*"])
        return sorted(int(uid) for uid in found if int(uid) > last_uid)

    def uids_since(self, day: date) -> list[int]:
        with _protocol("search"):
            return sorted(int(uid) for uid in self._client.search(["SINCE", day]))

    def summaries(self, uids: list[int]) -> list[MessageSummary]:
        """Arrival, size and keywords of each message, in UID order."""
        if not uids:
            return []
        with _protocol("fetch summaries"):
            found = self._client.fetch(uids, ["INTERNALDATE", "RFC822.SIZE", "FLAGS"])
        return [
            MessageSummary(
                int(uid),
                data.get(b"INTERNALDATE"),
                int(data.get(b"RFC822.SIZE", 0)),
                frozenset(_text(flag) for flag in data.get(b"FLAGS", ()) if not _system(flag)),
            )
            for uid, data in sorted(found.items())
        ]

    def set_keyword(self, uids: list[int], keyword: str, *, on: bool = True) -> None:
        """Add (or with ``on=False`` remove) a keyword of our own on these messages."""
        if not uids:
            return
        with _protocol("store keywords"):
            if on:
                self._client.add_flags(uids, [keyword.encode("ascii")], silent=True)
            else:
                self._client.remove_flags(uids, [keyword.encode("ascii")], silent=True)

    def message_ids(self, uids: list[int]) -> dict[int, str | None]:
        """Each message's Message-ID header (for a rescan that fetches only the unknown)."""
        key = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
        with _protocol("fetch headers"):
            found = self._client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        return {int(uid): _message_id(data.get(key, b"")) for uid, data in found.items()}

    def append_once(self, folder: str, message: bytes, message_id: str) -> bool:
        """APPEND ``message`` to ``folder`` (made when missing) unless a message that is not
        ``\\Deleted`` already carries exactly this Message-ID: a retried delivery, even one
        whose first APPEND landed but whose answer was lost, never shows a copy twice.

        No flags, so a mail client shows it unread; the server dates it now.  ``True`` when
        appended, ``False`` when it was there already.  One writer per Message-ID at a time
        (the outbox's claim): two sessions racing could both find it absent."""
        wanted = " ".join(message_id.split())  # as ``message_ids`` reads it back
        if not wanted or not wanted.isascii():
            raise ValueError("append_once needs an ASCII Message-ID")
        self.ensure_folder(folder)
        self.select(folder, readonly=True)  # EXAMINE: SEARCH needs a folder, \Recent stays
        # HEADER is a case-insensitive substring search: the hits are only candidates
        with _protocol(f"search {folder!r}"):
            hits = self._client.search(["UNDELETED", "HEADER", "Message-ID", wanted])
        if hits and wanted in self.message_ids(sorted(int(uid) for uid in hits)).values():
            return False
        with _protocol(f"append to {folder!r}"):
            self._client.append(self.server_name(folder), message)
        return True

    def fetch(self, uids: list[int]) -> list[FetchedMessage]:
        """Whole messages, without setting ``\\Seen``; in UID order."""
        if not uids:
            return []
        with _protocol("fetch"):
            found = self._client.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE"])
        return [
            FetchedMessage(int(uid), bytes(data[b"BODY[]"]), data.get(b"INTERNALDATE"))
            for uid, data in sorted(found.items())
            if b"BODY[]" in data
        ]

    def move(self, uids: list[int], folder: str) -> None:
        """MOVE where the server has it, else COPY, ``\\Deleted`` and UID EXPUNGE."""
        if not uids:
            return
        target = self.server_name(folder)
        with _protocol(f"move to {folder!r}"):
            if b"MOVE" in self.capabilities:
                self._client.move(uids, target)
                return
            self._client.copy(uids, target)
        self.expunge(uids)

    def expunge(self, uids: list[int]) -> None:
        """Remove exactly these messages (UID EXPUNGE; plain EXPUNGE without UIDPLUS)."""
        if not uids:
            return
        with _protocol("expunge"):
            self._client.add_flags(uids, [b"\\Deleted"], silent=True)
            if b"UIDPLUS" in self.capabilities:
                self._client.uid_expunge(uids)
            else:
                self._client.expunge()

    def wait(self, seconds: float, stop: threading.Event, *, idle: bool = True) -> bool:
        """Wait up to ``seconds`` for new mail in the selected folder (IDLE where the
        server offers it); ``True`` when the server announced some."""
        if not (idle and b"IDLE" in self.capabilities):
            stop.wait(seconds)
            return False
        with _protocol("idle"):
            self._client.idle()
            try:
                return _idle_until(self._client, seconds, stop)
            finally:
                self._client.idle_done()

    def _namespace(self) -> tuple[str, str]:
        with _protocol("namespace"):
            if b"NAMESPACE" in self.capabilities:
                personal = self._client.namespace().personal
                if personal:
                    prefix, delimiter = personal[0]
                    return _text(delimiter), _text(prefix)
            folders = self._client.list_folders(directory="", pattern="")
        return (_text(folders[0][1]) if folders else "/"), ""


def _idle_until(client: IMAPClient, seconds: float, stop: threading.Event) -> bool:
    waited = 0.0
    while waited < seconds and not stop.is_set():
        responses = client.idle_check(timeout=_IDLE_SLICE_SECONDS)
        if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
            return True
        waited += _IDLE_SLICE_SECONDS
    return False


def _open(settings: ImapSettings) -> IMAPClient:
    if settings.tls == "none":
        return IMAPClient(settings.host, settings.port, ssl=False, timeout=settings.timeout)
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.tls == "implicit":
        return IMAPClient(
            settings.host, settings.port, ssl=True, ssl_context=context, timeout=settings.timeout
        )
    client = IMAPClient(settings.host, settings.port, ssl=False, timeout=settings.timeout)
    if b"STARTTLS" not in client.capabilities():
        _quietly_close(client)
        raise ImapError(
            f"{settings.host}:{settings.port} offers no STARTTLS; not logging in over plaintext"
        )
    client.starttls(context)
    return client


def _login(client: IMAPClient, settings: ImapSettings, where: str) -> None:
    if settings.oauth2_token_command:
        token = oauth2_token(settings.oauth2_token_command)
        with _protocol(f"XOAUTH2 login at {where}"), _refused(where, "XOAUTH2"):
            client.oauth2_login(settings.username, token)
        return
    if settings.password is None:
        raise ImapAuthError(f"no password for {settings.username} at {where}")
    with _protocol(f"login at {where}"), _refused(where, "login"):
        client.login(settings.username, settings.password)


@contextmanager
def _refused(where: str, how: str) -> Iterator[None]:
    try:
        yield
    except (IMAPClientError, imaplib.IMAP4.error) as exc:
        if isinstance(exc, imaplib.IMAP4.abort):
            raise
        raise ImapAuthError(f"{how} refused at {where}: {_first_line(exc)}") from None


def _quietly_close(client: IMAPClient) -> None:
    try:
        client.logout()
    except _PROTOCOL_ERRORS:
        with suppress(*_PROTOCOL_ERRORS):
            client.shutdown()


def _system(flag: bytes | str) -> bool:
    """``\\Seen`` and the other flags the protocol defines, not keywords."""
    return _text(flag).startswith("\\")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _message_id(header: bytes) -> str | None:
    _, _, value = header.decode("ascii", "replace").partition(":")
    value = " ".join(value.split())
    return value or None
