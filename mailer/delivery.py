"""Outbound transports: a local maildir, or an SMTP relay over STARTTLS with AUTH.

Errors (``mailer/errors.py``) say what the dispatcher needs to decide:

    DeliveryError
    ├── TemporaryDeliveryError   try again later (4xx, timeout, no STARTTLS)
    │   └── RelayUnavailableError    the relay cannot be reached at all
    └── PermanentDeliveryError   never retry (5xx for the recipient or the message)

With ``starttls = true`` a relay that does not offer STARTTLS is a temporary
error, never a silent fall-back to plaintext: a password and producers' mail
do not cross the network in the clear because a relay was misconfigured.
Error texts carry SMTP codes and a short phrase, never addresses or content.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosmtplib

from mailer.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RelayUnavailableError,
    TemporaryDeliveryError,
)

__all__ = [
    "MaildirTransport",
    "RelaySettings",
    "SmtpRelayTransport",
    "Transport",
]

_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})")


class Transport(Protocol):
    """Hands one message to the next hop, or raises a ``DeliveryError``."""

    async def send(self, mail_from: str, recipients: Sequence[str], message: bytes) -> None: ...


class MaildirTransport:
    """Writes each message into a maildir: ``tmp/``, fsync, then linked into ``new/``.

    The envelope sender is written first, as ``Return-Path:``, as a delivering MTA
    does: it is the one place a maildir keeps the envelope.

    Written here rather than with ``mailbox.Maildir.add``, which leaves its file
    open (and in ``tmp/``) when the disk fills during the final flush.  The
    folders are made on the first message, and again if they are gone by a later
    one.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._ready = False
        self._count = itertools.count()

    async def send(self, mail_from: str, recipients: Sequence[str], message: bytes) -> None:
        await asyncio.to_thread(self._write, _with_return_path(mail_from, message))

    def _write(self, message: bytes) -> None:
        try:
            try:
                self._deliver(message)
            except FileNotFoundError:  # removed since they were made
                self._ready = False
                self._deliver(message)
        except OSError as exc:
            self._ready = False
            raise TemporaryDeliveryError(f"maildir not writable: {exc.strerror}") from None

    def _deliver(self, message: bytes) -> None:
        if not self._ready:
            for folder in ("tmp", "new", "cur"):
                (self._path / folder).mkdir(parents=True, exist_ok=True)
            self._ready = True
        name = self._unique_name()
        tmp = self._path / "tmp" / name
        try:
            with open(tmp, "xb") as handle:
                handle.write(message)
                handle.flush()
                os.fsync(handle.fileno())
            os.link(tmp, self._path / "new" / name)  # never replaces a file already there
        finally:
            tmp.unlink(missing_ok=True)

    def _unique_name(self) -> str:
        """The maildir convention: time, microseconds, process, counter, host."""
        now = time.time()
        micro = int((now % 1) * 1_000_000)
        host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        return f"{int(now)}.M{micro}P{os.getpid()}Q{next(self._count)}.{host}"


def _with_return_path(mail_from: str, message: bytes) -> bytes:
    """``message`` under a ``Return-Path:`` naming ``mail_from`` (``<>`` for none), with the
    message's own line ending."""
    ending = b"\r\n" if message.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
    sender = "".join(c for c in mail_from if c.isprintable() and c not in "<>").strip()
    return b"Return-Path: <" + sender.encode("ascii", "replace") + b">" + ending + message


@dataclass(frozen=True)
class RelaySettings:
    host: str
    port: int
    starttls: bool
    username: str | None
    password: str | None
    timeout: float
    tls_context: ssl.SSLContext | None = None


class SmtpRelayTransport:
    """One SMTP session per message through ``[outbound] host:port``."""

    def __init__(self, settings: RelaySettings) -> None:
        self._settings = settings

    async def send(self, mail_from: str, recipients: Sequence[str], message: bytes) -> None:
        s = self._settings
        client = aiosmtplib.SMTP(hostname=s.host, port=s.port, timeout=s.timeout, start_tls=False)
        try:
            await client.connect()
            await self._secure(client)
            if s.username:
                await client.login(s.username, s.password or "")
            await client.sendmail(mail_from, list(recipients), message)
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPConnectTimeoutError) as exc:
            raise RelayUnavailableError(f"relay unreachable: {type(exc).__name__}") from None
        except aiosmtplib.SMTPException as exc:
            raise _translate(exc) from None
        except OSError as exc:
            raise RelayUnavailableError(f"relay unreachable: {type(exc).__name__}") from None
        finally:
            # Always: after a failed STARTTLS handshake aiosmtplib reports itself
            # disconnected while its socket is still open.  close() only schedules
            # the socket's closing; one turn of the loop lets it happen.
            client.close()
            await asyncio.sleep(0)

    async def _secure(self, client: aiosmtplib.SMTP) -> None:
        if not self._settings.starttls:
            return
        await client.ehlo()
        if not client.supports_extension("starttls"):
            raise TemporaryDeliveryError("relay does not offer STARTTLS (refusing plaintext)")
        context = self._settings.tls_context or ssl.create_default_context()
        await client.starttls(tls_context=context)


def _translate(exc: aiosmtplib.SMTPException) -> DeliveryError:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        worst = min(codes) if codes else 450
        return _by_code(worst, exc.recipients[0].message if exc.recipients else "", "recipient")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return TemporaryDeliveryError(f"relay refused AUTH: SMTP {exc.code}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, exc.message, type(exc).__name__.removeprefix("SMTP"))
    return TemporaryDeliveryError(f"relay session failed: {type(exc).__name__}")


def _by_code(code: int, message: str, what: str) -> DeliveryError:
    enhanced = _ENHANCED.match(message or "")
    text = f"SMTP {code}{' ' + enhanced.group(1) if enhanced else ''} ({what})"
    return PermanentDeliveryError(text) if 500 <= code < 600 else TemporaryDeliveryError(text)
