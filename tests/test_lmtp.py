"""LMTP intake and XFORWARD: a real ``ticketd serve``, real ``smtplib.LMTP`` and ``SMTP``
clients on the Unix socket and on TCP (outside clients from 127.0.0.2), a real database.

Senders are judged with ``[authentication] mode = "trust"``: a client among the trusted
hosts is believed, anyone else is not (no DNS is asked), so what the pipeline took for
the client address shows in the stored message and in the 250 (only a believed producer
opens an incident, and only then does the 250 name it).
"""

from __future__ import annotations

import signal
import smtplib
import socket
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from select import select as wait_readable

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from mailer.xforward import ForwardedClient, apply_xforward
from ticketing.config import load_config
from ticketing.store.db import transaction
from ticketing.store.models import Message

from .conftest import REPO
from .daemon import DaemonSetup, Ticketd, free_port, serve_refused, wait_until
from .mail import make_mail

ESCALATIONS = "escalations@exchange.example"
PRODUCER_OPERATIONS = "producer.operations@exchange.example"
FORWARDED_TRUSTED = "198.51.100.7"  # a client Postfix saw, among the trusted hosts
FORWARDED_STRANGER = "203.0.113.9"  # a client Postfix saw, trusted by nobody
OUTSIDE = ("127.0.0.2", 0)  # a client that is not a trusted host
SSN = "219-09-9999"

pytestmark = pytest.mark.ticketd(
    '[authentication]\nmode = "trust"\n'
    f'trusted_hosts = ["127.0.0.1", "{FORWARDED_TRUSTED}", "2001:db8::7"]\n'
    '[roster]\nfile = "roster.csv"\n'
)

Reply = tuple[int, str]


@pytest.fixture
def backend() -> str:
    """SQLite only: LMTP and XFORWARD are the wire's; the pipeline behind them is the
    SMTP intake's, tested on both databases elsewhere."""
    return "sqlite"


@pytest.fixture
def desk(ticketd: Ticketd, tmp_path: Path, db_url: str) -> DaemonSetup:
    """A daemon whose roster holds Sam (sam@brokers.example, the sender of ``make_mail``)."""
    (tmp_path / "roster.csv").write_text("npn,name,email\n1234567,Sam Amsung,sam@brokers.example\n")
    return ticketd(f'[lmtp]\nhost = "127.0.0.1"\nport = {free_port()}\n')


def lmtp_socket(desk: DaemonSetup) -> Path:
    return desk.config.parent / "var" / "lmtp.sock"


def lmtp_port(desk: DaemonSetup) -> int:
    return int(tomllib.loads(desk.config.read_text())["lmtp"]["port"])


@contextmanager
def serving(desk: DaemonSetup) -> Iterator[None]:
    """The daemon in this process, once its LMTP listeners accept (after the SMTP port)."""
    with desk.serve():
        assert wait_until(lambda: _accepts(str(lmtp_socket(desk)))), "no LMTP socket"
        yield


def _accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def _text(reply: tuple[int, bytes]) -> Reply:
    return reply[0], reply[1].decode()


def deliver(client: smtplib.SMTP, raw: bytes, rcpts: Sequence[str]) -> list[Reply]:
    """MAIL, RCPT each of ``rcpts``, DATA: the RCPT replies, then every reply to the end of
    the message (LMTP: one per accepted recipient); NOOP shows nothing more was said."""
    assert client.mail("sam@brokers.example")[0] == 250
    replies = [_text(client.rcpt(rcpt)) for rcpt in rcpts]
    accepted = sum(code == 250 for code, _ in replies)
    replies.append(_text(client.data(raw)))
    if isinstance(client, smtplib.LMTP):
        replies += [_text(client.getreply()) for _ in range(accepted - 1)]
    assert client.noop() == (250, b"OK"), "more replies than recipients"
    return replies


def stored(engine: Engine, raw: bytes) -> Message:
    message_id = next(
        line.split(b":", 1)[1].strip().decode()
        for line in raw.splitlines()
        if line.lower().startswith(b"message-id:")
    )
    with transaction(engine, readonly=True) as session:
        return session.exec(select(Message).where(Message.message_id == message_id)).one()


def believed(message: Message) -> bool:
    return message.authentication == "trusted_host"


# --- the Unix socket ---------------------------------------------------------------------------


def test_one_message_for_our_recipients_and_a_reply_for_each(
    desk: DaemonSetup, engine: Engine
) -> None:
    raw = make_mail(to=f"{ESCALATIONS}, {PRODUCER_OPERATIONS}")
    with serving(desk), smtplib.LMTP(str(lmtp_socket(desk)), timeout=30) as client:
        code, _ = client.ehlo("mta.exchange.example")
        assert code == 250
        assert (
            client.docmd("XFORWARD", f"ADDR={FORWARDED_TRUSTED} HELO=mx.brokers.example")[0] == 250
        )
        replies = deliver(
            client, raw, [ESCALATIONS, "nobody@exchange.example", PRODUCER_OPERATIONS]
        )
    assert replies[:3] == [
        (250, "2.1.5 OK"),
        (550, "5.1.1 No such mailbox here"),
        (250, "2.1.5 OK"),
    ]
    assert len(replies) == 5, "one reply per accepted recipient"
    assert replies[3] == replies[4]
    assert replies[3][0] == 250 and replies[3][1].startswith("2.0.0 Ok: recorded on incident")
    message = stored(engine, raw)
    assert sorted(message.mailboxes) == ["escalations", "producer-operations"]
    assert believed(message)


def test_the_strictest_pii_policy_of_the_recipients_applies(
    desk: DaemonSetup, engine: Engine
) -> None:
    body = f"My client PID 174097, SSN {SSN}, needs help."
    both = make_mail(to=f"{ESCALATIONS}, {PRODUCER_OPERATIONS}", body=body)
    redact_only = make_mail(body=body)
    with serving(desk), smtplib.LMTP(str(lmtp_socket(desk)), timeout=30) as client:
        client.ehlo("mta.exchange.example")
        client.docmd("XFORWARD", f"ADDR={FORWARDED_TRUSTED}")
        # the redact mailbox first: the reject mailbox after it still decides
        to_both = deliver(client, both, [ESCALATIONS, PRODUCER_OPERATIONS])
        client.docmd("XFORWARD", f"ADDR={FORWARDED_TRUSTED}")
        to_one = deliver(client, redact_only, [ESCALATIONS])
    assert [code for code, _ in to_both] == [250] * 4
    assert to_both[2] == to_both[3]
    rejected = stored(engine, both)
    assert (rejected.text, rejected.pii_findings) == ("", {"US_SSN": 1})
    assert to_one[1][0] == 250
    redacted = stored(engine, redact_only)
    assert "[REDACTED:US_SSN]" in redacted.text and SSN not in redacted.text


def test_xforward_on_the_socket_says_who_the_client_was(desk: DaemonSetup, engine: Engine) -> None:
    """A local socket is no trusted host: the client is whom XFORWARD names, and a
    stranger behind the MTA is not believed, whatever From: he writes."""
    forged, plain, trusted, ipv6 = (make_mail() for _ in range(4))
    with serving(desk), smtplib.LMTP(str(lmtp_socket(desk)), timeout=30) as client:
        client.ehlo("mta.exchange.example")
        assert client.has_extn("xforward")
        assert client.esmtp_features["xforward"] == "NAME ADDR PROTO HELO"
        xforward = f"NAME=mail.evil.example ADDR={FORWARDED_STRANGER} PROTO=ESMTP HELO=evil"
        assert _text(client.docmd("XFORWARD", xforward)) == (250, "2.0.0 Ok")
        forged_reply = deliver(client, forged, [ESCALATIONS])[-1]
        plain_reply = deliver(client, plain, [ESCALATIONS])[-1]  # the attributes ended
        client.docmd("XFORWARD", f"ADDR={FORWARDED_TRUSTED}")
        trusted_reply = deliver(client, trusted, [ESCALATIONS])[-1]
        client.docmd("XFORWARD", "ADDR=IPV6:2001:db8::7 HELO=mx+2Ebrokers.example")
        ipv6_reply = deliver(client, ipv6, [ESCALATIONS])[-1]
    assert forged_reply == (250, "2.0.0 Ok: recorded"), "a forged producer opened an incident"
    assert not believed(stored(engine, forged))
    assert plain_reply == (250, "2.0.0 Ok: recorded")
    assert not believed(stored(engine, plain)), "a socket without XFORWARD is no trusted host"
    assert trusted_reply[1].startswith("2.0.0 Ok: recorded on incident")
    assert f"trusted host {FORWARDED_TRUSTED}" in stored(engine, trusted).authentication_results
    assert ipv6_reply[1].startswith("2.0.0 Ok: recorded on incident")
    assert "trusted host 2001:db8::7" in stored(engine, ipv6).authentication_results


# --- TCP: LMTP and SMTP ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["lmtp", "smtp"])
def test_xforward_from_an_untrusted_peer_is_refused(
    protocol: str, desk: DaemonSetup, engine: Engine
) -> None:
    raw = make_mail()
    with serving(desk), _tcp_client(protocol, desk, OUTSIDE) as client:
        client.ehlo("mx.outside.example")
        assert not client.has_extn("xforward")
        refused = _text(client.docmd("XFORWARD", f"ADDR={FORWARDED_TRUSTED}"))
        reply = deliver(client, raw, [ESCALATIONS])[-1]
    assert refused == (550, "5.7.0 Error: insufficient authorization")
    assert reply == (250, "2.0.0 Ok: recorded"), "the refused XFORWARD was believed"
    assert not believed(stored(engine, raw))


@pytest.mark.parametrize("protocol", ["lmtp", "smtp"])
def test_xforward_from_a_trusted_peer_replaces_it_for_one_transaction(
    protocol: str, desk: DaemonSetup, engine: Engine
) -> None:
    """Behind a Postfix on 127.0.0.1 (a trusted host), a relayed stranger is not believed;
    after RSET, and after the message, the peer is 127.0.0.1 again."""
    relayed, after_rset, after_data = make_mail(), make_mail(), make_mail()
    with serving(desk), _tcp_client(protocol, desk, ("127.0.0.1", 0)) as client:
        client.ehlo("mta.exchange.example")
        assert client.esmtp_features.get("xforward") == "NAME ADDR PROTO HELO"
        client.docmd("XFORWARD", f"ADDR={FORWARDED_STRANGER}")
        client.rset()
        rset_reply = deliver(client, after_rset, [ESCALATIONS])[-1]
        client.docmd("XFORWARD", f"ADDR={FORWARDED_STRANGER} HELO=mx.stranger.example")
        client.docmd("XFORWARD", "NAME=mx.stranger.example")  # adds to the first
        client.mail("sam@brokers.example")
        in_transaction = _text(client.docmd("XFORWARD", f"ADDR={FORWARDED_TRUSTED}"))
        client.rset()
        client.docmd("XFORWARD", f"ADDR={FORWARDED_STRANGER}")
        relayed_reply = deliver(client, relayed, [ESCALATIONS])[-1]
        data_reply = deliver(client, after_data, [ESCALATIONS])[-1]
    assert in_transaction == (503, "5.5.1 Error: MAIL transaction in progress")
    assert relayed_reply == (250, "2.0.0 Ok: recorded"), "the stranger was believed"
    assert not believed(stored(engine, relayed))
    for reply, raw in ((rset_reply, after_rset), (data_reply, after_data)):
        assert reply[1].startswith("2.0.0 Ok: recorded on incident"), reply
        assert "trusted host 127.0.0.1" in stored(engine, raw).authentication_results


@contextmanager
def _tcp_client(
    protocol: str, desk: DaemonSetup, source: tuple[str, int]
) -> Iterator[smtplib.SMTP]:
    if protocol == "lmtp":
        client: smtplib.SMTP = smtplib.LMTP(
            "127.0.0.1", lmtp_port(desk), timeout=30, source_address=source
        )
    else:
        client = smtplib.SMTP("127.0.0.1", desk.port, timeout=30, source_address=source)
    with client:
        yield client


# --- the socket file and the drain ---------------------------------------------------------------


def test_a_stale_socket_is_replaced_and_the_socket_removed_at_stop(
    desk: DaemonSetup, engine: Engine
) -> None:
    path = lmtp_socket(desk)
    path.parent.mkdir(exist_ok=True)
    with socket.socket(socket.AF_UNIX) as killed:  # what a killed daemon leaves
        killed.bind(str(path))
    raw = make_mail()
    with serving(desk), smtplib.LMTP(str(path), timeout=30) as client:
        assert path.stat().st_mode & 0o777 == 0o660
        client.ehlo("mta.exchange.example")
        assert deliver(client, raw, [ESCALATIONS])[-1][0] == 250
    assert not path.exists(), "the socket outlived the daemon"
    assert stored(engine, raw).mailboxes == ["escalations"]


def test_sigterm_tells_an_lmtp_session_421(desk: DaemonSetup) -> None:
    path = lmtp_socket(desk)
    with desk.serve_process() as proc:
        assert wait_until(lambda: _accepts(str(path)))
        with smtplib.LMTP(str(path), timeout=30) as client:
            client.ehlo("mta.exchange.example")
            proc.send_signal(signal.SIGTERM)
            told, _, _ = wait_readable([client.sock], [], [], 30)  # idle: told at once
            assert told, "the idle session was not told anything"
            code, text = client.getreply()
        assert (code, text) == (421, b"4.3.2 Service shutting down, try again later")
        assert proc.wait(30) == 0
    assert not path.exists()


@pytest.mark.parametrize("case", ["not a socket", "too long", "in use"])
def test_an_unusable_socket_path_stops_the_start(
    case: str, ticketd: Ticketd, tmp_path: Path, db_url: str
) -> None:
    (tmp_path / "roster.csv").write_text("npn,name,email\n")
    path = tmp_path / ("s" * 120 if case == "too long" else "lmtp.sock")
    daemon = ticketd(f'[lmtp]\nsocket = "{path.name}"\n')
    live = socket.socket(socket.AF_UNIX)
    with live:
        if case == "not a socket":
            path.write_text("a file someone left\n")
        elif case == "in use":
            live.bind(str(path))
            live.listen(1)
        code, last = serve_refused(daemon.config)
    assert code == 1
    why = {
        "not a socket": "a file that is not a socket is in the way",
        "too long": f"path is {len(str(path).encode())} bytes long, a Unix socket's at most 107",
        "in use": "another process is listening on it",
    }[case]
    assert last == f"ticketd: {daemon.config}: lmtp.socket: cannot listen on {path}: {why}"
    if case == "not a socket":
        assert path.read_text() == "a file someone left\n"


# --- the configuration and the XFORWARD grammar --------------------------------------------------


def test_lmtp_keys_are_documented_and_the_socket_is_relative_to_the_config(
    tmp_path: Path,
) -> None:
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    section = text.split("\n[lmtp]\n", 1)[1].split("\n[", 1)[0]
    for key in ("socket", "host", "port"):
        line = next(ln for ln in section.splitlines() if ln.startswith(f"{key} ="))
        assert "# default:" in line, f"[lmtp] {key} has no documented default"
    config = tmp_path / "etc" / "config.toml"
    config.parent.mkdir()
    config.write_text('[lmtp]\nsocket = "run/lmtp.sock"\n')
    assert load_config(config).config.lmtp.socket == str(tmp_path / "etc" / "run" / "lmtp.sock")
    config.write_text('[lmtp]\nsocket = ""\n')
    assert load_config(config).config.lmtp.socket == ""


@pytest.mark.parametrize(
    ("before", "arg", "after", "reply"),
    [
        (None, "ADDR=192.0.2.1 HELO=mx.example", ForwardedClient("192.0.2.1", "mx.example"), 250),
        (None, "addr=IPv6:2001:DB8::1", ForwardedClient("2001:db8::1"), 250),
        (None, "NAME=mx.example", ForwardedClient(), 250),  # the connection's own: unknown
        (None, "ADDR=[UNAVAILABLE] HELO=[tempunavail]", ForwardedClient(), 250),
        (None, "ADDR=mx.example", ForwardedClient(), 250),  # not an address: unknown
        (
            None,
            "HELO=mx+2Eexample ADDR=192.0.2.+31",
            ForwardedClient("192.0.2.1", "mx.example"),
            250,
        ),
        (None, "HELO=<mx@example>", ForwardedClient(), 250),
        (ForwardedClient("192.0.2.1", "a"), "HELO=b", ForwardedClient("192.0.2.1", "b"), 250),
        (ForwardedClient("192.0.2.1"), "ADDR=[UNAVAILABLE]", ForwardedClient(), 250),
        (ForwardedClient("192.0.2.1"), "ADDR=192.0.2.+ZZ", ForwardedClient("192.0.2.1"), 501),
        (None, "ADDR=", None, 501),
        (None, "ADDR", None, 501),
        (None, "", None, 501),
        (None, "PORT=25", None, 501),
        (None, "HELO=" + "x" * 256, None, 501),
    ],
)
def test_xforward_attributes(
    before: ForwardedClient | None, arg: str, after: ForwardedClient | None, reply: int
) -> None:
    client, line = apply_xforward(before, arg)
    assert (client, int(line[:3])) == (after, reply)
