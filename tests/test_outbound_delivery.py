"""Transports against real servers: a maildir on disk, aiosmtpd as the relay."""

from __future__ import annotations

import asyncio
import mailbox
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from mailer.delivery import MaildirTransport, RelaySettings, SmtpRelayTransport
from mailer.errors import PermanentDeliveryError, RelayUnavailableError, TemporaryDeliveryError
from ticketing.config import OutboundConfig
from ticketing.outbound.outbox import transport_from_config

from .builders import Sink, TlsFiles
from .daemon import free_port

MESSAGE = (
    b"From: a@x.example\r\nTo: b@y.example\r\nSubject: t\r\nMessage-ID: <1@x>\r\n\r\nhello\r\n"
)


def relay(port: int, **extra: Any) -> SmtpRelayTransport:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "starttls": False,
        "username": None,
        "password": None,
        "timeout": 5.0,
    }
    return SmtpRelayTransport(RelaySettings(**{**values, **extra}))


def send(transport: Any, message: bytes = MESSAGE) -> None:
    async def session() -> None:
        try:
            await transport.send("desk@x.example", ["b@y.example"], message)
        finally:
            # A daemon's loop runs on; this one ends at once.  Let a connection whose
            # TLS handshake failed finish closing, as it would in the daemon.
            await asyncio.sleep(0.1)

    asyncio.run(session())


def test_maildir(tmp_path: Path) -> None:
    send(MaildirTransport(tmp_path / "sent"))
    box = mailbox.Maildir(tmp_path / "sent", create=False)
    [stored] = list(box)
    assert stored["Message-ID"] == "<1@x>"


def test_maildir_not_writable_is_temporary(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TemporaryDeliveryError, match="maildir not writable"):
        send(MaildirTransport(blocker / "sent"))


def test_transport_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(
        transport_from_config(OutboundConfig(maildir=str(tmp_path))), MaildirTransport
    )
    monkeypatch.setenv("RELAY_PW", "pw")
    smtp = transport_from_config(
        OutboundConfig(transport="smtp", username="u", password_env="RELAY_PW")
    )
    assert isinstance(smtp, SmtpRelayTransport)


def test_plain_relay(sink: Sink) -> None:
    send(relay(sink.port))
    [got] = sink.received
    assert (got.mail_from, got.rcpt_tos) == ("desk@x.example", ["b@y.example"])
    assert got.message["Message-ID"] == "<1@x>"


def test_relay_down_is_unavailable() -> None:
    with pytest.raises(RelayUnavailableError):
        send(relay(free_port()))


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [
        ("451 4.3.0 Try again later", TemporaryDeliveryError, "SMTP 451 4.3.0"),
        ("550 5.1.1 <b@y.example>: no such user", PermanentDeliveryError, "SMTP 550 5.1.1"),
        ("554 5.7.1 Message refused", PermanentDeliveryError, "SMTP 554 5.7.1"),
    ],
)
def test_temporary_and_permanent_are_told_apart(
    sink: Sink, answer: str, error: type[Exception], text: str
) -> None:
    sink.handler.answer = answer
    with pytest.raises(error) as info:
        send(relay(sink.port))
    assert str(info.value).startswith(text)
    assert "b@y.example" not in str(info.value)
    assert not isinstance(info.value, RelayUnavailableError)


def test_refused_recipient_is_permanent(sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        return "550 5.1.1 unknown"

    # aiosmtpd finds the hook by name; the sink's handler has none of its own
    monkeypatch.setattr(sink.handler, "handle_RCPT", refuse, raising=False)
    with pytest.raises(PermanentDeliveryError, match=r"SMTP 550 5\.1\.1"):
        send(relay(sink.port))


def test_starttls_required_but_not_offered_never_falls_back(sink: Sink) -> None:
    with pytest.raises(TemporaryDeliveryError, match="does not offer STARTTLS"):
        send(relay(sink.port, starttls=True))
    assert sink.received == []


def _tls_sink(tls: TlsFiles, logins: list[tuple[bytes, bytes]]) -> Sink:
    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    return Sink(
        free_port(),
        tls_context=tls.server_context(),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )


def test_starttls_and_auth(tls_files: TlsFiles) -> None:
    logins: list[tuple[bytes, bytes]] = []
    server = _tls_sink(tls_files, logins)
    server.start()
    try:
        transport = relay(
            server.port,
            starttls=True,
            username="ticketd",
            password="s3cret",
            tls_context=tls_files.client_context(),
        )
        send(transport)
        assert logins == [(b"ticketd", b"s3cret")]
        assert len(server.received) == 1
        bad = relay(
            server.port,
            starttls=True,
            username="ticketd",
            password="wrong",
            tls_context=tls_files.client_context(),
            timeout=2.0,
        )
        with pytest.raises(TemporaryDeliveryError):  # our configuration, not the mail, is wrong
            send(bad)
        assert len(server.received) == 1
    finally:
        server.stop()


def test_untrusted_certificate_is_not_accepted(tls_files: TlsFiles) -> None:
    server = _tls_sink(tls_files, [])
    server.start()
    try:
        with pytest.raises(TemporaryDeliveryError):
            send(relay(server.port, starttls=True, username="u", password="s3cret"))
        assert server.received == []
    finally:
        server.stop()
