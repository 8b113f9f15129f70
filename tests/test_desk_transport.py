"""Desk copies against a real Dovecot: an ``imap:`` recipient is APPENDed once to the
mailbox's desk folder (unread, dated now), a retry never shows it twice, IMAP failures
are temporary and say nothing of the message, and other recipients go on unchanged."""

from __future__ import annotations

import asyncio
import mailbox
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime
from pathlib import Path

import pytest

from mailer.delivery import MaildirTransport
from mailer.errors import (
    PermanentDeliveryError,
    RelayUnavailableError,
    TemporaryDeliveryError,
)
from mailer.imap_client import ImapMailbox, ImapSettings
from tests.daemon import free_port
from tests.dovecot import PASSWORD, DovecotServer, inbox_session
from ticketing.outbound.desk_transport import (
    IMAP_RECIPIENT_PREFIX,
    DeskTransport,
    ImapTarget,
    imap_recipient,
)

FOLDER = "Desk"
MAILBOX = "escalations"
SUBJECT = "Escalated Case: Enrollment.PID #:174097"
BODY = "Member [NAME] cannot complete enrollment."


def _settings(port: int, user: str, password: str = PASSWORD) -> ImapSettings:
    return ImapSettings(
        host="127.0.0.1", port=port, tls="none", username=user, password=password, timeout=10.0
    )


def _copy(message_id: str, body: str = BODY) -> bytes:
    message = EmailMessage()
    message["From"] = "Sam Amsung <sam@brokers.example>"
    message["To"] = "escalations@exchange.example"
    message["Subject"] = SUBJECT
    message["Date"] = format_datetime(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    message["Message-ID"] = message_id
    message.set_content(body)
    return message.as_bytes(policy=policy.SMTP)


class _NoDefault:
    """The default transport of the IMAP tests: an ``imap:`` copy must never reach it."""

    async def send(self, mail_from: str, recipients: Sequence[str], message: bytes) -> None:
        raise AssertionError(f"default transport called for {list(recipients)}")


def _desk(port: int, user: str, password: str = PASSWORD) -> DeskTransport:
    target = ImapTarget(_settings(port, user, password), FOLDER)
    return DeskTransport(_NoDefault(), {MAILBOX: target})


def _send(transport: DeskTransport, recipient: str, message: bytes) -> None:
    asyncio.run(transport.send("desk@exchange.example", [recipient], message))


@dataclass(frozen=True)
class Stored:
    message_id: str | None
    flags: frozenset[bytes]
    raw: bytes
    internaldate: datetime


def _folder(dovecot: DovecotServer, user: str) -> list[Stored]:
    """What the desk folder holds now, seen from a session of the test's own."""
    with inbox_session(dovecot, user) as client:
        client.select_folder(FOLDER, readonly=True)
        uids = client.search(["ALL"])
        found = client.fetch(uids, ["FLAGS", "BODY.PEEK[]", "INTERNALDATE"]) if uids else {}
    stored = []
    for _, data in sorted(found.items()):
        raw = bytes(data[b"BODY[]"])
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
        flags = frozenset(data[b"FLAGS"])
        stored.append(Stored(headers["Message-ID"], flags, raw, data[b"INTERNALDATE"]))
    return stored


def test_a_copy_creates_the_folder_and_lands_once_unread_dated_now(
    dovecot: DovecotServer, imap_user: str
) -> None:
    message = _copy("<desk-1@exchange.example>")
    with inbox_session(dovecot, imap_user) as client:
        assert not client.folder_exists(FOLDER)
    before = datetime.now(UTC)

    _send(_desk(dovecot.port, imap_user), imap_recipient(MAILBOX), message)

    [stored] = _folder(dovecot, imap_user)
    assert stored.raw == message
    assert stored.message_id == "<desk-1@exchange.example>"
    assert stored.flags - {b"\\Recent"} == frozenset()  # no \Seen: shown unread
    # INTERNALDATE is the arrival, not the message's Date: (2026-11-24)
    arrived = stored.internaldate.astimezone(UTC)
    assert before - timedelta(seconds=5) <= arrived <= datetime.now(UTC) + timedelta(seconds=5)
    with inbox_session(dovecot, imap_user) as client:  # subscribed, for mail clients
        assert any(name == FOLDER for _, _, name in client.list_sub_folders())


def test_a_retry_of_the_same_copy_leaves_exactly_one(
    dovecot: DovecotServer, imap_user: str
) -> None:
    message = _copy("<desk-2@exchange.example>")
    desk = _desk(dovecot.port, imap_user)
    for _ in range(3):
        _send(desk, imap_recipient(MAILBOX), message)
    assert [s.message_id for s in _folder(dovecot, imap_user)] == ["<desk-2@exchange.example>"]

    box = ImapMailbox.connect(_settings(dovecot.port, imap_user))
    try:
        assert box.append_once(FOLDER, message, "<desk-2@exchange.example>") is False
        assert box.append_once(
            FOLDER, _copy("<desk-3@exchange.example>"), "<desk-3@exchange.example>"
        )
    finally:
        box.close()
    assert len(_folder(dovecot, imap_user)) == 2


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # the second's id is a substring of the first's: Dovecot's HEADER search finds it
        ("<17@exchange.example>", "17@exchange.example"),
        # HEADER search ignores case; Message-IDs are compared exactly
        ("<Desk-17@Exchange.Example>", "<desk-17@exchange.example>"),
        # the second's id contains the first's
        ("17@exchange.example", "<17@exchange.example>"),
    ],
)
def test_a_message_id_the_search_only_resembles_is_still_appended(
    dovecot: DovecotServer, imap_user: str, first: str, second: str
) -> None:
    desk = _desk(dovecot.port, imap_user)
    _send(desk, imap_recipient(MAILBOX), _copy(first, "first copy"))
    _send(desk, imap_recipient(MAILBOX), _copy(second, "second copy"))

    stored = _folder(dovecot, imap_user)
    assert [s.message_id for s in stored] == [first, second]
    assert b"second copy" in stored[1].raw
    # a retry of either still finds its own copy
    _send(desk, imap_recipient(MAILBOX), _copy(first, "first copy"))
    _send(desk, imap_recipient(MAILBOX), _copy(second, "second copy"))
    assert len(_folder(dovecot, imap_user)) == 2


def test_the_header_search_really_matches_substrings_and_case(
    dovecot: DovecotServer, imap_user: str
) -> None:
    """The premise of the exact comparison above: were it not so, that test proves less."""
    _send(_desk(dovecot.port, imap_user), imap_recipient(MAILBOX), _copy("<Ab-9@Exchange.Example>"))
    with inbox_session(dovecot, imap_user) as client:
        client.select_folder(FOLDER, readonly=True)
        assert len(client.search(["HEADER", "Message-ID", "ab-9@exchange.example"])) == 1
        assert len(client.search(["HEADER", "Message-ID", "<ab-9@exchange.example>"])) == 1


def test_a_deleted_copy_does_not_count(dovecot: DovecotServer, imap_user: str) -> None:
    message = _copy("<desk-4@exchange.example>")
    desk = _desk(dovecot.port, imap_user)
    _send(desk, imap_recipient(MAILBOX), message)
    with inbox_session(dovecot, imap_user) as client:
        client.select_folder(FOLDER)
        client.add_flags(client.search(["ALL"]), [b"\\Deleted"])

    _send(desk, imap_recipient(MAILBOX), message)

    stored = _folder(dovecot, imap_user)
    assert [b"\\Deleted" in s.flags for s in stored] == [True, False]


def test_other_recipients_go_to_the_default_transport(tmp_path: Path) -> None:
    def no_imap(settings: ImapSettings) -> ImapMailbox:
        raise AssertionError("connected to IMAP for an ordinary recipient")

    sent = tmp_path / "sent"
    desk = DeskTransport(
        MaildirTransport(sent),
        {MAILBOX: ImapTarget(_settings(free_port(), "nobody"), FOLDER)},
        connect=no_imap,
    )
    message = _copy("<reply-1@exchange.example>")
    _send(desk, "sam@brokers.example", message)

    [stored] = list(mailbox.Maildir(sent, create=False))
    assert stored["Message-ID"] == "<reply-1@exchange.example>"
    assert stored["Return-Path"] == "<desk@exchange.example>"
    assert str(stored.get_payload()).strip() == BODY


def test_a_wrong_password_is_temporary_and_names_no_content(
    dovecot: DovecotServer, imap_user: str
) -> None:
    message = _copy("<desk-5@exchange.example>")
    with pytest.raises(TemporaryDeliveryError, match="login refused") as caught:
        _send(_desk(dovecot.port, imap_user, "wrong-pw"), imap_recipient(MAILBOX), message)
    assert not isinstance(caught.value, RelayUnavailableError)
    text = str(caught.value)
    assert MAILBOX in text
    for secret in ("desk-5", "Enrollment", "NAME", "brokers", "wrong-pw"):
        assert secret not in text


def test_an_unreachable_server_is_temporary() -> None:
    with pytest.raises(TemporaryDeliveryError, match="connect") as caught:
        _send(_desk(free_port(), "nobody"), imap_recipient(MAILBOX), _copy("<d-6@x.example>"))
    assert not isinstance(caught.value, RelayUnavailableError)


def test_an_unknown_mailbox_is_permanent(tmp_path: Path) -> None:
    def no_imap(settings: ImapSettings) -> ImapMailbox:
        raise AssertionError("connected to IMAP for an unknown mailbox")

    desk = DeskTransport(MaildirTransport(tmp_path / "sent"), {}, connect=no_imap)
    with pytest.raises(PermanentDeliveryError, match="no IMAP desk folder for mailbox 'other'"):
        _send(desk, imap_recipient("other"), _copy("<desk-7@exchange.example>"))
    assert not (tmp_path / "sent").exists()


@pytest.mark.parametrize(
    "message",
    [
        b"From: a@x.example\r\nSubject: no id\r\n\r\nhello\r\n",
        b"Message-ID: <a@x.example>\r\nMessage-ID: <b@x.example>\r\n\r\nhello\r\n",
    ],
)
def test_a_copy_without_one_message_id_is_permanent(message: bytes) -> None:
    def no_imap(settings: ImapSettings) -> ImapMailbox:
        raise AssertionError("connected to IMAP for a copy it could not deduplicate")

    target = ImapTarget(_settings(free_port(), "nobody"), FOLDER)
    desk = DeskTransport(_NoDefault(), {MAILBOX: target}, connect=no_imap)
    with pytest.raises(PermanentDeliveryError, match="Message-ID"):
        _send(desk, imap_recipient(MAILBOX), message)


def test_a_desk_copy_has_exactly_one_recipient() -> None:
    target = ImapTarget(_settings(free_port(), "nobody"), FOLDER)
    desk = DeskTransport(_NoDefault(), {MAILBOX: target})
    with pytest.raises(PermanentDeliveryError, match="exactly one recipient"):
        asyncio.run(
            desk.send(
                "desk@exchange.example",
                [imap_recipient(MAILBOX), "sam@brokers.example"],
                _copy("<desk-8@exchange.example>"),
            )
        )
    assert imap_recipient(MAILBOX) == IMAP_RECIPIENT_PREFIX + MAILBOX == "imap:escalations"
