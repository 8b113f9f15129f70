"""Desk copies: outbox rows addressed ``imap:<mailbox>`` go into an IMAP folder.

A desk copy is a redacted copy of a producer's message, put into a folder of the
team's shared mailbox so caseworkers see it in their mail client.  It travels
through the outbox like any other mail (claims, retries, backoff); this
transport only decides where it lands: an ``imap:`` recipient is APPENDed to
that mailbox's configured folder, every other recipient goes to the default
transport unchanged.

APPEND is not idempotent, so a retry first looks for the copy's Message-ID in
the folder (``ImapMailbox.append_once``): a copy never shows twice.  IMAP
failures are temporary (a refused login can be fixed, a server comes back) and
not ``RelayUnavailableError``: the round's other rows go by other ways.
Error texts name the mailbox and the IMAP operation, never message content.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser

from mailer.delivery import Transport
from mailer.errors import ImapError, PermanentDeliveryError, TemporaryDeliveryError
from mailer.imap_client import ImapMailbox, ImapSettings

__all__ = [
    "IMAP_RECIPIENT_PREFIX",
    "DeskTransport",
    "ImapTarget",
    "imap_recipient",
]

log = logging.getLogger(__name__)

IMAP_RECIPIENT_PREFIX = "imap:"


def imap_recipient(mailbox_name: str) -> str:
    """The outbox recipient that means "``mailbox_name``'s desk folder"."""
    return IMAP_RECIPIENT_PREFIX + mailbox_name


@dataclass(frozen=True)
class ImapTarget:
    """Where a mailbox's desk copies go: its IMAP account and the folder in it."""

    settings: ImapSettings
    folder: str


class DeskTransport:
    """A ``Transport``: ``imap:`` recipients by IMAP APPEND, the rest by ``default``."""

    def __init__(
        self,
        default: Transport,
        folders: Mapping[str, ImapTarget],
        connect: Callable[[ImapSettings], ImapMailbox] = ImapMailbox.connect,
    ) -> None:
        self._default = default
        self._folders = dict(folders)
        self._connect = connect

    async def send(self, mail_from: str, recipients: Sequence[str], message: bytes) -> None:
        if not any(r.startswith(IMAP_RECIPIENT_PREFIX) for r in recipients):
            await self._default.send(mail_from, recipients, message)
            return
        if len(recipients) != 1:
            raise PermanentDeliveryError("a desk copy has exactly one recipient")
        name = recipients[0].removeprefix(IMAP_RECIPIENT_PREFIX)
        target = self._folders.get(name)
        if target is None:
            raise PermanentDeliveryError(f"no IMAP desk folder for mailbox {name!r}")
        message_id = _message_id(message)
        try:
            appended = await asyncio.to_thread(self._append, target, message, message_id)
        except ImapError as exc:  # ImapAuthError too: credentials can be fixed
            raise TemporaryDeliveryError(f"desk copy for mailbox {name!r}: {exc}") from None
        if not appended:
            log.info("desk copy for mailbox %r was already in its folder", name)

    def _append(self, target: ImapTarget, message: bytes, message_id: str) -> bool:
        box = self._connect(target.settings)
        try:
            return box.append_once(target.folder, message, message_id)
        finally:
            box.close()


def _message_id(message: bytes) -> str:
    """The one Message-ID the search for an earlier copy looks for."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(message)
    found = headers.get_all("Message-ID") or []
    values = [" ".join(str(value).split()) for value in found]
    if len(values) != 1 or not values[0] or not values[0].isascii():
        raise PermanentDeliveryError("a desk copy needs exactly one ASCII Message-ID header")
    return values[0]
