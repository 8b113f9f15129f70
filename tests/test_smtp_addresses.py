"""MAIL and RCPT addresses: the session's kept results equal aiosmtpd's own parse,
except that an argument the stdlib parser crashes on is a malformed address (553)."""

from __future__ import annotations

import asyncio
import random
import smtplib
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from mailer.smtp_server import _IntakeSMTP

from .daemon import free_port

PIECES = [
    *("<", ">", "@", ".", '"', " ", "\t", "(", ")", "\\", "a", "Z", "9", "-", "é", "=", ","),
    *("<a@b.c>", "<x.y@z>", " SIZE=1", "(c)", "<a@[1.2.3.4]>"),
]
SHAPES = [
    "<sam@brokers.example>",
    "<sam.amsung+x@brokers.example> SIZE=2048",
    "<>",
    "<@relay.example:sam@brokers.example> BODY=8BITMIME",
    '<"sam amsung"@brokers.example>',
    "sam@brokers.example",
    " <sam@brokers.example>",
    "<sam@brokers.example",
    "<sam@@brokers.example> SIZE=1",
    "<" + "x" * 70 + "@brokers.example>",
    "<ünï@brokers.example> SMTPUTF8",
]


@pytest.fixture
def sessions() -> Iterator[tuple[SMTP, SMTP]]:
    loop = asyncio.new_event_loop()
    yield _IntakeSMTP(None, loop=loop), SMTP(None, loop=loop)
    loop.close()


def test_kept_addresses_parse_as_aiosmtpd_does(sessions: tuple[SMTP, SMTP]) -> None:
    fast, plain = sessions
    rng = random.Random(11)
    args = [*SHAPES, *SHAPES]  # the second time from what was kept
    args += ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12))) for _ in range(20_000)]
    args += [f"{rng.choice(SHAPES)} SIZE={rng.randint(1, 99999)}" for _ in range(300)]
    crashed = 0
    for arg in args:
        expected = parsed(plain, arg)
        if expected == "IndexError":
            crashed += 1
            expected = (None, None)
        assert parsed(fast, arg) == expected, arg
    assert crashed > 10  # the random arguments do reach the parser's crash


def parsed(session: SMTP, arg: str) -> object:
    """The result, or the exception: the stdlib parser raises IndexError on some input
    (aiosmtpd's own session answers that command with a 500 and logs a traceback)."""
    try:
        return session._getaddr(arg)
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__


def test_an_address_the_parser_crashes_on_gets_553_over_smtp(
    caplog: pytest.LogCaptureFixture,
) -> None:
    controller = _IntakeController(_Accepting(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with smtplib.SMTP(controller.hostname, controller.port) as client:
            client.ehlo("producer.example")
            assert client.docmd("MAIL FROM:x@") == (553, b"5.1.3 Error: malformed address")
            assert client.mail("sam@brokers.example")[0] == 250
            assert client.docmd("RCPT TO:y@") == (553, b"5.1.3 Error: malformed address")
    finally:
        controller.stop()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


class _IntakeController(Controller):
    def factory(self) -> SMTP:
        return _IntakeSMTP(self.handler)


class _Accepting:
    async def handle_DATA(self, *args: object) -> str:
        return "250 OK"


def test_the_local_part_limit_still_applies(sessions: tuple[SMTP, SMTP]) -> None:
    fast, plain = sessions
    long_local = "<" + "x" * 65 + "@brokers.example>"
    for session in (fast, plain):
        session.local_part_limit = 64
    assert fast._getaddr(long_local) == plain._getaddr(long_local) == (None, None)
