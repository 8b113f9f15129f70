"""The whole daemon: SMTP in, templated auto-replies out through a real relay, no loops,
no personal data left in logs, the database or outbound mail."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy.engine import Engine
from sqlmodel import select

from ticketing.config import DatabaseConfig
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.models import OutboxMessage

from .daemon import Ticketd, free_port, import_roster, run_ticketd, send, wait_until
from .mail import make_mail


class Sink:
    """An aiosmtpd relay that keeps what it receives; ``respond`` makes it an autoresponder."""

    def __init__(self, respond: Callable[[bytes], bytes | None] | None = None) -> None:
        self.received: list[bytes] = []
        self.respond = respond
        self.target_port = 0

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        content = envelope.original_content
        assert content is not None
        self.received.append(content)
        if self.respond is not None:
            answer = self.respond(content)
            if answer is not None:
                threading.Thread(target=send, args=(self.target_port, answer), daemon=True).start()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 30) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return list(self.received)


@pytest.fixture
def relay() -> Iterator[tuple[Sink, int]]:
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def _relayed(relay_port: int) -> str:
    """Replies go out through the relay on ``relay_port``; caseworkers write from their domain."""
    return (
        f'[outbound]\ntransport = "smtp"\nport = {relay_port}\nstarttls = false\n'
        "poll_interval_seconds = 1\n"
        '[staff]\ndomains = ["caseworkers.exchange.example"]\n'
    )


def _replies_ordered(engine: Engine) -> list[str]:
    with transaction(engine, readonly=True) as session:
        return list(session.exec(select(OutboxMessage.kind)).all())


def _outbox_settled(engine: Engine) -> bool:
    """Replies were ordered, and none is still to compose or to send."""
    with transaction(engine, readonly=True) as session:
        states = session.exec(select(OutboxMessage.status)).all()
    return bool(states) and not set(states) & {"composing", "pending", "sending"}


def _parsed(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, policy=policy.default)


def test_escalation_gets_the_exchange_reply_and_the_answer_threads_back(
    db_url: str, tmp_path: Path, relay: tuple[Sink, int], ticketd: Ticketd
) -> None:
    sink, relay_port = relay
    daemon = ticketd(_relayed(relay_port))
    import_roster(daemon.config, tmp_path)
    with daemon.serve():
        _, text = daemon.send(make_mail(message_id="<first@brokers.example>"))
        number = text.rsplit(" ", 1)[-1]
        (raw,) = sink.wait_for(1)
        ack = _parsed(raw)
        body = ack.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert ack["Subject"] == "Escalated Case: Enrollment.PID #:174097"
        assert ack["In-Reply-To"] == "<first@brokers.example>"
        assert ack["Auto-Submitted"] == "auto-replied"
        lines = [line for line in body.splitlines() if line]
        assert lines[:5] == [
            "Hi sam amsung,",
            f"We have received your inquiry. The assigned incident number is {number}.",
            "You can expect a reply within 2 business days.",
            "Thanks",
            "MHBE Escalated caseworkers Team",
        ]
        assert lines[5].startswith("ref:_00Dtkd01._") and lines[5].endswith(":ref")
        answer = make_mail(
            subject="RE: " + ack["Subject"],
            body="Attached is the notice.",
            headers={"In-Reply-To": ack["Message-ID"], "References": ack["Message-ID"]},
        )
        assert daemon.send(answer) == (250, f"2.0.0 Ok: recorded on incident {number}")


@pytest.mark.parametrize("peer", ["rfc3834", "outlook", "silent_headers"])
def test_two_autoresponders_exchange_at_most_one_message_each(
    engine: Engine, tmp_path: Path, peer: str, ticketd: Ticketd
) -> None:
    """The peer answers everything it gets — including our auto-replies, which a
    compliant responder would not.  It starts by sending us its own auto-reply."""
    headers = {
        "rfc3834": {"Auto-Submitted": "auto-replied"},
        "outlook": {},
        "silent_headers": {"X-Autoreply": "yes"},
    }[peer]
    subject = {"outlook": "Automatic reply: your message"}.get(peer, "Out of office")

    def autoreply(_received: bytes) -> bytes:
        return make_mail(subject=subject, body="I am away until Monday.", headers=headers)

    sink, relay_port = Sink(autoreply), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=relay_port)
    controller.start()
    daemon = ticketd(_relayed(relay_port))
    sink.target_port = daemon.port
    import_roster(daemon.config, tmp_path)
    try:
        with daemon.serve():
            assert daemon.send(autoreply(b""))[0] == 250  # the peer's first (and only) message
            # replies are ordered in the transaction that recorded it, before the 250:
            # none ordered, none will ever go out, so the peer never answers back
            assert _replies_ordered(engine) == []
            assert sink.received == []
    finally:
        controller.stop()


def test_out_of_office_dsn_and_own_address_get_no_answer(
    engine: Engine, tmp_path: Path, relay: tuple[Sink, int], ticketd: Ticketd
) -> None:
    sink, relay_port = relay
    daemon = ticketd(_relayed(relay_port))
    import_roster(daemon.config, tmp_path)
    dsn = make_mail(
        sender="MAILER-DAEMON@mx.brokers.example",
        subject="Undelivered Mail Returned to Sender",
        body="Delivery failed.",
    )
    with daemon.serve():
        assert daemon.send(make_mail(subject="Automatic reply: Escalated Case"))[0] == 250
        assert daemon.send(dsn, sender="")[0] == 250
        assert daemon.send(make_mail(sender="escalations@exchange.example"))[0] == 250
        assert daemon.send(make_mail(subject="Escalated Case: Enrollment.PID #:555123"))[0] == 250
        received = sink.wait_for(1)
    assert _replies_ordered(engine) == ["ack_new"]  # only the person's escalation was answered
    assert len(sink.received) == 1
    assert _parsed(received[0])["Subject"] == "Escalated Case: Enrollment.PID #:555123"


def test_no_personal_data_in_logs_database_or_outbound_mail(
    tmp_path: Path, ticketd: Ticketd
) -> None:
    secrets_in_mail = [
        "219-09-9999",
        "03/14/1961",
        "Rosalind Featherstonehaugh",
        "410-555-0187",
        "7 Quince Orchard Lane",
    ]
    db_url = f"sqlite:///{tmp_path / 'pii.db'}"
    daemon = ticketd(
        '[logging]\nlevel = "DEBUG"\n',
        '[intake]\nunknown_senders = "accept"\n',
        f'[outbound]\nmaildir = "{tmp_path / "sent"}"\npoll_interval_seconds = 1\n',
        db_url=db_url,
    )
    run_ticketd("--config", str(daemon.config), "init", check=True)
    body = (
        "My client Rosalind Featherstonehaugh (DOB 03/14/1961, SSN 219-09-9999, "
        "phone 410-555-0187, 7 Quince Orchard Lane, Gaithersburg, MD 20878) "
        "needs her enrollment fixed, PID 174097."
    )
    with daemon.serve():
        for box in ("escalations@exchange.example", "producer.operations@exchange.example"):
            raw = make_mail(
                to=box, body=body, attachments=[("notes.txt", "text/plain", body.encode())]
            )
            assert daemon.send(raw, rcpt=box)[0] == 250
        engine = create_db_engine(DatabaseConfig(url=db_url))
        try:  # the dispatcher has written (or withheld) every reply: none is left to send
            assert wait_until(lambda: _outbox_settled(engine)), _replies_ordered(engine)
        finally:
            engine.dispose()
    stored = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".toml"]
    assert any(p.name.startswith("pii.db") for p in stored)
    assert any("sent" in p.parts for p in stored)  # the replies were written
    for path in stored:
        data = path.read_bytes()
        for value in secrets_in_mail:
            assert value.encode() not in data, (path.name, value)
