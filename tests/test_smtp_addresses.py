"""MAIL and RCPT addresses: the session's kept results equal aiosmtpd's own parse."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import SMTP

from mailer.smtp_server import _IntakeSMTP

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
    for arg in args:
        assert parsed(fast, arg) == parsed(plain, arg), arg


def parsed(session: SMTP, arg: str) -> object:
    """The result, or the exception: the stdlib parser raises IndexError on some input
    (aiosmtpd answers that command with a 500)."""
    try:
        return session._getaddr(arg)
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__


def test_the_local_part_limit_still_applies(sessions: tuple[SMTP, SMTP]) -> None:
    fast, plain = sessions
    long_local = "<" + "x" * 65 + "@brokers.example>"
    for session in (fast, plain):
        session.local_part_limit = 64
    assert fast._getaddr(long_local) == plain._getaddr(long_local) == (None, None)
