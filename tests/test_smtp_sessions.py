"""The SMTP front's abuse limits on a real aiosmtpd server (``start_smtp_server``): sessions
at once, overall and per client address; the idle timeout; the session lifetime; accept()
out of descriptors.  Clients connect from other loopback addresses (127.0.0.2, .3, …), as
outside clients would; the last test runs a whole ``ticketd serve`` from its config."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import smtplib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest

from mailer.recipients import RecipientMap
from mailer.smtp_drain import SessionGate
from mailer.smtp_server import (
    InboundEnvelope,
    IntakeHandler,
    SessionLimits,
    SmtpSettings,
    start_smtp_server,
)

from .builders import TlsFiles
from .daemon import Ticketd, free_port, smtp_session, wait_until
from .mail import make_mail
from .test_observability import get, scrape, value

MAILBOX = "escalations@exchange.example"
TOO_MANY = (421, "4.7.0 Too many connections, try again later")
TOO_MANY_FROM_YOU = (421, "4.7.0 Too many connections from your address, try again later")
IDLE = (421, "4.4.2 Idle too long, closing connection")
TOO_LONG = (421, "4.7.0 Session lasted too long, try again later")


@dataclass
class Front:
    """A running SMTP front: its port, what it recorded, and the limits it reported."""

    port: int
    recording_seconds: float = 0.0
    delivered: list[InboundEnvelope] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)

    def deliver(self, inbound: InboundEnvelope) -> str:
        time.sleep(self.recording_seconds)  # a database commit that takes its time
        self.delivered.append(inbound)
        return "250 2.0.0 recorded"


@contextmanager
def smtp_front(
    *, recording_seconds: float = 0.0, tls: TlsFiles | None = None, **limits: Any
) -> Iterator[Front]:
    """``start_smtp_server`` on 127.0.0.1 with ``SessionLimits(**limits)``, on an event loop
    of its own thread; at the end, every session still open is closed (the drain)."""
    front = Front(free_port(), recording_seconds)
    settings = SmtpSettings(
        host="127.0.0.1",
        port=front.port,
        max_message_size=1_000_000,
        tls_cert=str(tls.cert) if tls else None,
        tls_key=str(tls.key) if tls else None,
        limits=SessionLimits(
            **limits, on_refused=front.refused.append, on_timed_out=front.timed_out.append
        ),
    )
    handler = IntakeHandler(RecipientMap([("escalations", MAILBOX)]), front.deliver)
    gate = SessionGate()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="smtp-front")
    thread.start()
    try:
        start = start_smtp_server(settings, handler, gate)
        server = asyncio.run_coroutine_threadsafe(start, loop).result(10)
        try:
            yield front
        finally:
            asyncio.run_coroutine_threadsafe(_stop(server, gate), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _stop(server: asyncio.Server, gate: SessionGate) -> None:
    server.close()
    await gate.drain(0)
    await server.wait_closed()


def test_the_drain_returns_once_every_session_is_closed() -> None:
    """A session told 421 closes on a later turn of the loop: the drain waits for it, so
    a daemon that stops its loop right after leaves no socket open (nor a warning about
    one at a later collection)."""

    async def drained_while_a_client_idles() -> list[object]:
        gate = SessionGate()
        settings = SmtpSettings(host="127.0.0.1", port=free_port(), max_message_size=1_000)
        handler = IntakeHandler(RecipientMap([("escalations", MAILBOX)]), Front(0).deliver)
        server = await start_smtp_server(settings, handler, gate)
        reader, writer = await asyncio.open_connection("127.0.0.1", settings.port)
        await reader.readline()  # the 220 greeting
        server.close()
        await gate.drain(0)
        left: list[object] = list(gate.unclosed_sessions())
        writer.close()
        await server.wait_closed()
        return left

    assert asyncio.run(drained_while_a_client_idles()) == []


class Wire:
    """A raw SMTP client from a loopback address of its own, reading replies as they come
    (a reply the server sends unasked, such as a 421, is read too)."""

    def __init__(self, port: int, source: str = "127.0.0.2") -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=10, source_address=(source, 0)
        )
        self.file = self.sock.makefile("rb")

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()
        self.sock.close()

    def reply(self) -> tuple[int, str]:
        """The next reply's code and last line; ``(0, "closed")`` at the end of the stream."""
        while (line := self.file.readline())[3:4] == b"-":
            pass
        if not line:
            return 0, "closed"
        return int(line[:3]), line[4:].decode().strip()

    def command(self, line: str) -> tuple[int, str]:
        with suppress(OSError):  # the server may have closed already: its reply is read
            self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def closed(self) -> bool:
        """Whether the server ends the stream now (without a further reply)."""
        try:
            return self.file.read() == b""
        except ConnectionResetError:
            return True

    def start_message(self) -> None:
        """Greeting, EHLO, MAIL, RCPT, DATA: ready for the message's lines."""
        assert self.reply()[0] == 220
        for line, code in [
            ("EHLO producer.example", 250),
            ("MAIL FROM:<sam@brokers.example>", 250),
            (f"RCPT TO:<{MAILBOX}>", 250),
            ("DATA", 354),
        ]:
            assert self.command(line)[0] == code, line

    def reset(self) -> None:
        """Close with a TCP RST, as a client that crashes or is cut off does."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.__exit__()


def _greeted(port: int, count: int, source: str = "127.0.0.2") -> bool:
    """Whether ``count`` sessions at once from ``source`` are all greeted 220."""
    wires = [Wire(port, source) for _ in range(count)]
    try:
        return all(wire.reply()[0] == 220 for wire in wires)
    finally:
        for wire in wires:
            wire.__exit__()


# --- sessions at once ----------------------------------------------------------------------------


def test_a_connection_over_the_cap_gets_421_and_holds_no_slot() -> None:
    with (
        smtp_front(max_sessions=2) as front,
        Wire(front.port) as first,
        Wire(front.port, "127.0.0.3") as second,
    ):
        assert first.reply()[0] == second.reply()[0] == 220
        for _ in range(3):
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                smtplib.SMTP("127.0.0.1", front.port, source_address=("127.0.0.4", 0))
            assert (refused.value.smtp_code, refused.value.smtp_error) == (
                421,
                TOO_MANY[1].encode(),
            )
        with Wire(front.port, "127.0.0.4") as third:
            assert third.reply() == TOO_MANY
            assert third.closed()
        assert first.command("QUIT")[0] == 221
        # the session that quit gives its slot back; the refused ones never took one
        assert wait_until(lambda: _greeted(front.port, 1, "127.0.0.4"), timeout=5)
        assert second.command("NOOP")[0] == 250
    assert front.refused == ["max_sessions"] * 4


def test_the_per_client_cap_counts_each_address() -> None:
    with (
        smtp_front(max_sessions=10, max_sessions_per_client=2) as front,
        Wire(front.port) as first,
        Wire(front.port) as second,
    ):
        assert first.reply()[0] == second.reply()[0] == 220
        with Wire(front.port) as third:
            assert third.reply() == TOO_MANY_FROM_YOU
            assert third.closed()
        other = smtp_session(
            front.port, make_mail(), "sam@brokers.example", [MAILBOX], source=("127.0.0.3", 0)
        )
        assert other == (250, "2.0.0 recorded")
    assert front.refused == ["max_sessions_per_client"]
    assert [m.peer for m in front.delivered] == ["127.0.0.3"]


# --- idle and lifetime -------------------------------------------------------------------------


def test_an_idle_session_is_told_421_and_closed_after_the_idle_timeout() -> None:
    with smtp_front(idle_timeout_seconds=1) as front, Wire(front.port) as wire:
        assert wire.reply()[0] == 220
        assert wire.command("EHLO producer.example")[0] == 250
        started = time.monotonic()
        assert wire.reply() == IDLE
        assert wire.closed()
        assert 0.8 < time.monotonic() - started < 3
    assert front.timed_out == ["idle_timeout"]


def test_a_message_arriving_slowly_or_recorded_slowly_is_not_idle() -> None:
    with (
        smtp_front(idle_timeout_seconds=1, recording_seconds=1.5) as front,
        Wire(front.port) as wire,
    ):
        wire.start_message()
        for line in make_mail().splitlines(keepends=True)[:5]:
            wire.send(line)
            time.sleep(0.4)  # two seconds in all: each gap shorter than the timeout
        wire.send(b"\r\n.\r\n")
        assert wire.reply()[0] == 250  # after 1.5 s of recording
        assert wire.command("NOOP")[0] == 250
    assert (len(front.delivered), front.timed_out) == (1, [])


def test_noop_and_rset_cannot_keep_a_session_past_session_max() -> None:
    with (
        smtp_front(session_max_seconds=2, idle_timeout_seconds=5) as front,
        Wire(front.port) as wire,
    ):
        started = time.monotonic()
        assert wire.reply()[0] == 220
        commands = 0
        while (reply := wire.command(("NOOP", "RSET")[commands % 2]))[0] == 250:
            commands += 1
            time.sleep(0.1)
        assert reply == TOO_LONG
        assert wire.closed()
        assert 1.9 < time.monotonic() - started < 3.5
        assert commands > 10
    assert front.timed_out == ["session_max"]


@pytest.mark.parametrize("phase", ["received", "recorded"])
def test_a_message_in_progress_at_session_max_finishes_before_the_421(phase: str) -> None:
    recording = 1.5 if phase == "recorded" else 0.0
    with (
        smtp_front(session_max_seconds=1, recording_seconds=recording) as front,
        Wire(front.port) as wire,
    ):
        wire.start_message()
        lines = make_mail().splitlines(keepends=True)
        if phase == "received":
            for line in lines[:6]:  # 1.5 s of lines: the limit passes while they arrive
                wire.send(line)
                time.sleep(0.25)
            lines = lines[6:]
        wire.send(b"".join(lines) + b"\r\n.\r\n")
        assert wire.reply() == (250, "2.0.0 recorded")
        assert wire.reply() == TOO_LONG  # at once, unasked
        assert wire.closed()
    assert (len(front.delivered), front.timed_out) == (1, ["session_max"])


# --- connections that end badly ----------------------------------------------------------------


def test_slots_come_back_when_connections_drop_abruptly(tls_files: TlsFiles) -> None:
    with smtp_front(max_sessions=3, max_sessions_per_client=3, tls=tls_files) as front:
        greeted = Wire(front.port)
        assert greeted.reply()[0] == 220
        in_data = Wire(front.port)
        in_data.start_message()
        in_data.send(b"Subject: half a message\r\n")
        in_tls = Wire(front.port)
        assert in_tls.reply()[0] == 220
        assert in_tls.command("EHLO producer.example")[0] == 250
        assert in_tls.command("STARTTLS")[0] == 220
        with Wire(front.port) as fourth:
            assert fourth.reply() == TOO_MANY
        in_tls.send(b"\x16\x03\x01\x00")  # the start of a ClientHello, then nothing
        for wire in (greeted, in_data, in_tls):
            wire.reset()
        assert wait_until(lambda: _greeted(front.port, 3), timeout=5)
        assert not _greeted(front.port, 4)
    assert front.delivered == []


# --- accept() out of descriptors ---------------------------------------------------------------


@contextmanager
def _descriptors_exhausted() -> Iterator[None]:
    """This process's open-file limit lowered and filled, until the block ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 16, hard))
    held: list[int] = []
    try:
        with suppress(OSError):
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_out_of_descriptors_the_server_waits_then_delivers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    with smtp_front() as front:
        client = socket.socket()  # its descriptor taken before there are none left
        client.bind(("127.0.0.2", 0))
        client.settimeout(10)
        with _descriptors_exhausted():
            client.connect(("127.0.0.1", front.port))  # the kernel queues it; accept() fails
            time.sleep(2.5)  # asyncio tries again every second
        smtp = smtplib.SMTP()
        smtp.sock = client
        assert smtp.getreply()[0] == 220
        smtp.ehlo("producer.example")
        smtp.sendmail("sam@brokers.example", [MAILBOX], make_mail())
        smtp.quit()
    assert len(front.delivered) == 1
    said = [r for r in caplog.records if "accept" in r.getMessage()]
    assert [(r.name, r.levelname) for r in said] == [("mailer.smtp_server", "WARNING")]
    assert "Too many open files" in said[0].getMessage()


# --- from the config, on a whole daemon ------------------------------------------------------


def test_the_daemon_applies_the_limits_of_its_config(db_url: str, ticketd: Ticketd) -> None:
    http = free_port()
    daemon = ticketd(
        '[intake]\nunknown_senders = "accept"\n'
        "[smtp]\nmax_sessions_per_client = 1\nidle_timeout_seconds = 1\n"
        f"[observability]\nhttp_port = {http}\nhttp_timeout_seconds = 1\n"
        "http_max_connections = 1\n"
    )
    with daemon.serve():
        before = scrape(http)
        with Wire(daemon.port) as held:
            assert held.reply()[0] == 220
            with Wire(daemon.port) as second:
                assert second.reply() == TOO_MANY_FROM_YOU
            other = smtp_session(
                daemon.port, make_mail(), "sam@brokers.example", [MAILBOX], source=("127.0.0.3", 0)
            )
            assert other[0] == 250  # another address is served meanwhile
            assert held.reply() == IDLE
        with socket.create_connection(("127.0.0.1", http)) as silent:
            assert get(http, "/healthz")[0] == 503  # the one connection is taken
            silent.settimeout(5)
            assert silent.recv(100) == b""  # dropped after a second
        after = scrape(http)

    def grew(name: str, reason: str) -> float:
        return value(after, name, reason=reason) - value(before, name, reason=reason)

    assert grew("ticketd_smtp_sessions_refused_total", "max_sessions_per_client") == 1
    assert grew("ticketd_smtp_sessions_timed_out_total", "idle_timeout") == 1
