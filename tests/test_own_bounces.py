"""Bounces are believed only when they are ours: real DSNs (the shared corpus) through the
real pipeline, against mail the real dispatcher sent with its VERP return path.

A forged DSN naming a producer we wrote to must change nothing: a listed address gets
no acknowledgement and no SLA notice until an operator clears it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from mailer.address_tags import return_path, returned_number, tag, untag
from mailer.bounces import Failure, failures
from mailer.delivery import MaildirTransport
from mailer.parsing import parse_message
from ticketing.config import Config
from ticketing.intake.build import build_pipeline
from ticketing.outbound.compose import ReplyComposer
from ticketing.outbound.outbox import dispatch_due, transport_from_config
from ticketing.outbound.request import ReplyRequest
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import RawMessage, Source
from ticketing.signing.message_ids import make_message_id
from ticketing.store.db import transaction
from ticketing.store.models import (
    AuditEvent,
    Incident,
    OutboxMessage,
    Producer,
    UndeliverableAddress,
)

from .builders import (
    NOW,
    SECRET,
    RecordedReplies,
    Sink,
    make_composer,
    make_config,
    queue_mail,
    relay_config,
)
from .conftest import RunCli, write_config
from .daemon import SECRET_ENV, Ticketd, wait_until
from .mail import make_mail

DESK = "escalations@exchange.example"
# Real DSNs (read from ../shared/corpus at test time) and the recipient each reports.
POSTFIX_5_1_1 = "sisimai/maildir/bsd/lhost-postfix-01.eml"  # Original-Recipient given
POSTFIX_CRLF = "sisimai/maildir/dos/lhost-postfix-01.eml"  # the same, as SMTP carries it
POSTFIX_ADDRESS = "kijitora@example.org"
AOL_5_2_2 = "flanker/tests/fixtures/messages/bounce/mailbox-full.eml"
AOL_ADDRESS = "user@aol.com"
AOL_RETURNED_ID = b"<4E326A95.3010907@example.com>"
DELAYED_4_4_4 = "flanker/tests/fixtures/messages/bounce/no-mx.eml"
DELAYED_ADDRESS = "user@example.com"


@pytest.fixture
def composer() -> ReplyComposer:
    return make_composer(make_config())


@pytest.fixture
def pipeline(engine: Engine) -> IntakePipeline:
    return build_pipeline(Config(), engine, replies=RecordedReplies(), secret=SECRET)


def corpus(shared_dir: Path, name: str) -> bytes:
    return (shared_dir / "corpus" / name).read_bytes()


def case(engine: Engine, address: str, n: int) -> tuple[Incident, Producer]:
    """A new incident ``n`` of the producer at ``address`` (made on first use)."""
    with transaction(engine) as session:
        producer = session.exec(select(Producer).where(Producer.email == address)).first()
        if producer is None:
            producer = Producer(npn=f"5{n}", name="sam amsung", email=address)
            session.add(producer)
            session.flush()
        incident = Incident(
            number=f"200528-{4000000 + n}",
            type="enrollment",
            team="escalated_cases",
            mailbox="escalations",
            producer_id=producer.id,
            opened_at=NOW,
            updated_at=NOW,
        )
        session.add(incident)
    return incident, producer


def ack(composer: ReplyComposer, engine: Engine, address: str, n: int) -> OutboxMessage | None:
    """Order and compose an ack to ``address`` about a new incident ``n`` as intake would;
    ``None`` when a rule suppressed it."""
    incident, producer = case(engine, address, n)
    request = ReplyRequest(kind="ack_new", to=address, incident=incident, producer=producer)
    return queue_mail(engine, composer, request, now=NOW)


def sent_ack(
    composer: ReplyComposer, engine: Engine, maildir: Path, address: str, n: int = 0
) -> tuple[OutboxMessage, str]:
    """An ack to ``address`` delivered by the real dispatcher into ``maildir``; the row and
    the return path written on the delivered file."""
    row = ack(composer, engine, address, n)
    assert row is not None
    transport = MaildirTransport(maildir)
    outbound = composer.config.outbound
    assert asyncio.run(dispatch_due(engine, transport, NOW, outbound, secret=SECRET)) == 1
    [delivered] = [
        data
        for data in (path.read_bytes() for path in (maildir / "new").iterdir())
        if row.message_id.encode() in data
    ]
    first_line = delivered.split(b"\r\n", 1)[0].decode()
    assert first_line.startswith("Return-Path: <") and first_line.endswith(">")
    return stored(engine, row.id), first_line.removeprefix("Return-Path: <").removesuffix(">")


def stored(engine: Engine, outbox_id: int | None) -> OutboxMessage:
    with transaction(engine, readonly=True) as session:
        row = session.get(OutboxMessage, outbox_id)
    assert row is not None
    return row


def bounce(pipeline: IntakePipeline, raw: bytes, *to: str, source: Source = "smtp") -> str | None:
    """Deliver a bounce to our ``escalations`` mailbox (``to``: the envelope recipients)."""
    recipients = to or (DESK,)
    message = RawMessage(raw, source, ("escalations",), "", recipients if source == "smtp" else ())
    outcome = pipeline.process(message)
    assert (outcome.action, outcome.kind) == ("screened", "bounce")
    return outcome.incident_number


def listed(engine: Engine) -> dict[str, UndeliverableAddress]:
    with transaction(engine, readonly=True) as session:
        return {row.address: row for row in session.exec(select(UndeliverableAddress))}


def audited(engine: Engine, kind: str) -> list[AuditEvent]:
    with transaction(engine, readonly=True) as session:
        query = select(AuditEvent).where(AuditEvent.kind == kind).order_by(col(AuditEvent.id))
        return list(session.exec(query))


# --- what the wire reads in a DSN --------------------------------------------------------------


def test_the_status_of_each_failed_recipient_is_kept(shared_dir: Path) -> None:
    postfix = failures(parse_message(corpus(shared_dir, POSTFIX_5_1_1)))
    assert postfix == (Failure("r@p351355.pool.example.ne.jp", POSTFIX_ADDRESS, "5.1.1", True),)
    assert postfix[0].permanent
    [delayed] = failures(parse_message(corpus(shared_dir, DELAYED_4_4_4)))
    assert delayed == Failure(DELAYED_ADDRESS, None, "4.4.4", False)
    assert not delayed.permanent


# --- VERP on the way out -----------------------------------------------------------------------


def test_outbound_mail_in_the_maildir_carries_its_verp_return_path(
    composer: ReplyComposer, engine: Engine, tmp_path: Path
) -> None:
    row, written = sent_ack(composer, engine, tmp_path / "sent", "sam@brokers.example")
    assert row.status == "sent"
    assert written == return_path(DESK, row.id or 0, SECRET)
    tagged = untag(written, SECRET)
    assert tagged is not None and tagged.base == DESK and returned_number(tagged) == row.id
    [delivered] = (tmp_path / "sent" / "new").iterdir()
    assert delivered.read_bytes() == f"Return-Path: <{written}>\r\n".encode() + row.mime


def test_the_relay_is_given_the_verp_return_path_as_mail_from(
    composer: ReplyComposer, engine: Engine, sink: Sink
) -> None:
    first = ack(composer, engine, "sam@brokers.example", 0)
    second = ack(composer, engine, "ana@brokers.example", 1)
    assert first is not None and second is not None
    config = relay_config(sink.port)
    transport = transport_from_config(config)
    assert asyncio.run(dispatch_due(engine, transport, NOW, config, secret=SECRET)) == 2
    senders = {got.rcpt_tos[0]: got.mail_from for got in sink.received}
    assert senders == {
        "sam@brokers.example": return_path(DESK, first.id or 0, SECRET),
        "ana@brokers.example": return_path(DESK, second.id or 0, SECRET),
    }


# --- believed: a bounce of our own mail --------------------------------------------------------


def test_a_real_dsn_to_our_return_path_marks_exactly_that_recipient(
    composer: ReplyComposer,
    engine: Engine,
    pipeline: IntakePipeline,
    shared_dir: Path,
    tmp_path: Path,
) -> None:
    row, verp = sent_ack(composer, engine, tmp_path / "sent", POSTFIX_ADDRESS, 0)
    other, _ = sent_ack(composer, engine, tmp_path / "sent", "sam@brokers.example", 1)
    number = bounce(pipeline, corpus(shared_dir, POSTFIX_5_1_1), verp.upper())
    assert list(listed(engine)) == [POSTFIX_ADDRESS]  # not the Final-Recipient, not Sam
    assert listed(engine)[POSTFIX_ADDRESS].reason.startswith("5.1.1 ")
    assert (stored(engine, row.id).status, stored(engine, other.id).status) == ("bounced", "sent")
    [event] = audited(engine, "outbound_bounced")
    assert event.incident_id == row.incident_id
    assert event.detail == {
        "outbox_id": row.id,
        "status": "5.1.1",
        "via": "return_path",
        "undeliverable": True,
    }
    assert number is None  # matching finds incidents by the returned Message-ID only
    assert ack(composer, engine, POSTFIX_ADDRESS, 2) is None  # no more mail to it


def test_a_dsn_quoting_our_signed_message_id_marks(
    composer: ReplyComposer, engine: Engine, pipeline: IntakePipeline, shared_dir: Path
) -> None:
    row = ack(composer, engine, AOL_ADDRESS, 0)
    assert row is not None
    dsn = corpus(shared_dir, AOL_5_2_2)
    assert dsn.count(AOL_RETURNED_ID) == 1
    # read from an IMAP mailbox: no envelope, and no return path of ours in the headers
    number = bounce(pipeline, dsn.replace(AOL_RETURNED_ID, row.message_id.encode()), source="imap")
    assert number == "200528-4000000"  # recorded on the incident of the mail it returns
    assert list(listed(engine)) == [AOL_ADDRESS]
    assert stored(engine, row.id).status == "bounced"
    [event] = audited(engine, "outbound_bounced")
    assert (event.detail["via"], event.detail["status"]) == ("message_id", "5.2.2")


def test_over_imap_the_return_path_is_read_from_delivered_to(
    composer: ReplyComposer,
    engine: Engine,
    pipeline: IntakePipeline,
    shared_dir: Path,
    tmp_path: Path,
) -> None:
    row, verp = sent_ack(composer, engine, tmp_path / "sent", POSTFIX_ADDRESS)
    dsn = f"Delivered-To: {verp}\r\n".encode() + corpus(shared_dir, POSTFIX_5_1_1)
    bounce(pipeline, dsn, source="imap")
    assert list(listed(engine)) == [POSTFIX_ADDRESS]
    assert stored(engine, row.id).status == "bounced"


def test_a_delay_does_not_mark_the_address(
    composer: ReplyComposer,
    engine: Engine,
    pipeline: IntakePipeline,
    shared_dir: Path,
    tmp_path: Path,
) -> None:
    row, verp = sent_ack(composer, engine, tmp_path / "sent", DELAYED_ADDRESS)
    bounce(pipeline, corpus(shared_dir, DELAYED_4_4_4), verp)
    assert listed(engine) == {}
    assert stored(engine, row.id).status == "sent"
    [event] = audited(engine, "outbound_delayed")
    assert event.detail == {
        "outbox_id": row.id,
        "status": "4.4.4",
        "via": "return_path",
        "counted": False,
        "undeliverable": False,
    }
    assert ack(composer, engine, DELAYED_ADDRESS, 1) is not None  # mail still goes


def test_a_delay_is_counted_on_an_address_already_listed(
    composer: ReplyComposer,
    engine: Engine,
    pipeline: IntakePipeline,
    shared_dir: Path,
    tmp_path: Path,
) -> None:
    _, verp = sent_ack(composer, engine, tmp_path / "sent", DELAYED_ADDRESS)
    with transaction(engine) as session:
        session.add(UndeliverableAddress(address=DELAYED_ADDRESS, reason="5.1.1", bounces=1))
    bounce(pipeline, corpus(shared_dir, DELAYED_4_4_4), verp)
    assert listed(engine)[DELAYED_ADDRESS].bounces == 2
    assert listed(engine)[DELAYED_ADDRESS].reason == "5.1.1"
    assert audited(engine, "outbound_delayed")[0].detail["counted"] is True


# --- not believed: forged, or not about that mail ----------------------------------------------


def forged_return_path(row: OutboxMessage) -> str:
    """A return path of the right shape made with a secret that is not ours."""
    return tag(DESK, "b", (row.id or 0).to_bytes(1, "big"), b"f" * 40)


NOT_OURS = {"reason": "no return path or signed Message-ID of ours"}
NOT_THAT_MAIL = {
    "reason": "a failed recipient is not the address that mail went to",
    "recipients": 1,
}


@pytest.mark.parametrize(
    ("how", "audit"),
    [
        ("plain mailbox", NOT_OURS),
        ("forged return path", NOT_OURS),
        ("tagged for another mail", NOT_THAT_MAIL),
        ("forged message id", NOT_OURS),
    ],
)
def test_a_forged_dsn_marks_nothing_and_the_next_ack_still_goes(
    how: str,
    audit: dict[str, object],
    composer: ReplyComposer,
    engine: Engine,
    pipeline: IntakePipeline,
    shared_dir: Path,
    tmp_path: Path,
) -> None:
    victim, _ = sent_ack(composer, engine, tmp_path / "sent", AOL_ADDRESS, 0)  # we wrote to
    _, own_verp = sent_ack(composer, engine, tmp_path / "sent", "attacker@brokers.example", 1)
    dsn = corpus(shared_dir, AOL_5_2_2)
    to = {
        "plain mailbox": DESK,
        "forged return path": forged_return_path(victim),
        "tagged for another mail": own_verp,  # the attacker's own, genuine return path
        "forged message id": DESK,
    }[how]
    if how == "forged message id":
        forged = make_message_id("200528-4000000", b"f" * 40, "exchange.example")
        dsn = dsn.replace(AOL_RETURNED_ID, forged.encode())
    bounce(pipeline, dsn, to)
    assert listed(engine) == {}
    assert stored(engine, victim.id).status == "sent"
    assert audited(engine, "outbound_bounced") == []
    [event] = audited(engine, "bounce_not_ours")
    assert event.detail == audit
    assert ack(composer, engine, AOL_ADDRESS, 2) is not None  # the producer is still mailed


def test_an_unsigned_message_id_of_a_row_is_not_enough(
    engine: Engine, pipeline: IntakePipeline, shared_dir: Path
) -> None:
    """A row whose Message-ID is not signed (older mail) is not believed by Message-ID."""
    incident, _ = case(engine, AOL_ADDRESS, 0)
    with transaction(engine) as session:
        row = OutboxMessage(
            incident_id=incident.id,
            kind="ack_new",
            to_address=AOL_ADDRESS,
            message_id="<ours-1@exchange.example>",
            mime=b"x",
            status="sent",
        )
        session.add(row)
    dsn = corpus(shared_dir, AOL_5_2_2).replace(AOL_RETURNED_ID, b"<ours-1@exchange.example>")
    bounce(pipeline, dsn)
    assert listed(engine) == {}
    [event] = audited(engine, "bounce_not_ours")
    assert event.detail == NOT_OURS


# --- end to end: the daemon ------------------------------------------------------------------


def return_path_of(maildir: Path, to: str = POSTFIX_ADDRESS) -> str | None:
    """The ``Return-Path`` of the mail to ``to`` in ``maildir``, once it is there (the
    desk copy for the team is there too)."""
    written = list((maildir / "new").glob("*")) if (maildir / "new").is_dir() else []
    for path in written:
        raw = path.read_bytes()
        if f"To: {to}".encode() in raw:
            first_line = raw.split(b"\r\n", 1)[0].decode()
            return first_line.removeprefix("Return-Path: <").removesuffix(">")
    return None


def test_the_daemon_believes_a_dsn_sent_over_smtp_to_its_return_path(
    ticketd: Ticketd, engine: Engine, shared_dir: Path, tmp_path: Path
) -> None:
    with transaction(engine) as session:
        session.add(Producer(npn="1234567", name="Kiji Tora", email=POSTFIX_ADDRESS))
    maildir = tmp_path / "sent"
    daemon = ticketd(f'[outbound]\nmaildir = "{maildir}"\npoll_interval_seconds = 1\n')
    escalation = make_mail(sender=f"Kiji Tora <{POSTFIX_ADDRESS}>")
    with daemon.serve():
        assert daemon.send(escalation, sender=POSTFIX_ADDRESS)[0] == 250
        assert wait_until(lambda: return_path_of(maildir) is not None)
        verp = return_path_of(maildir)
        assert verp is not None and verp.startswith("escalations+b-")
        # the MTA that bounces it writes to the return path, as it is, with a null sender
        dsn = corpus(shared_dir, POSTFIX_CRLF)
        assert daemon.send(dsn, sender="", rcpt=verp)[0] == 250
    tagged = untag(verp, SECRET_ENV["TICKETD_TOKEN_SECRET"].encode())
    assert tagged is not None
    with transaction(engine, readonly=True) as session:
        [row] = session.exec(select(OutboxMessage).where(OutboxMessage.kind != "desk_copy")).all()
    assert (returned_number(tagged), row.to_address, row.status) == (
        row.id,
        POSTFIX_ADDRESS,
        "bounced",
    )
    assert list(listed(engine)) == [POSTFIX_ADDRESS]


# --- the operator's commands -------------------------------------------------------------------


def test_undeliverable_list_and_clear_through_the_cli(
    run_cli: RunCli,
    db_url: str,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", "t" * 40)
    config = str(write_config(tmp_path, db_url))
    with transaction(engine) as session:
        session.add(
            UndeliverableAddress(
                address=AOL_ADDRESS, reason="5.2.2 delivery status notification", bounces=3
            )
        )
    table = run_cli("--config", config, "outbox", "undeliverable", "list")
    assert table.code == 0, table
    header, line = table.out.splitlines()
    assert header.split() == ["ADDRESS", "BOUNCES", "FIRST", "SEEN", "LAST", "SEEN", "REASON"]
    assert line.split()[:2] == [AOL_ADDRESS, "3"]
    assert line.endswith("5.2.2 delivery status notification")
    listing = run_cli("--config", config, "outbox", "undeliverable", "list", "--json")
    [entry] = json.loads(listing.out)
    assert (entry["address"], entry["bounces"]) == (AOL_ADDRESS, 3)
    assert set(entry) == {"address", "reason", "first_seen", "last_seen", "bounces"}

    cleared = run_cli(
        "--config", config, "outbox", "undeliverable", "clear", "User@AOL.com", "--by", "Jo"
    )
    assert cleared.code == 0, cleared
    assert AOL_ADDRESS in cleared.out
    assert listed(engine) == {}
    [event] = audited(engine, "undeliverable_cleared")
    assert event.actor == "operator:Jo"
    assert event.detail == {
        "address": AOL_ADDRESS,
        "reason": "5.2.2 delivery status notification",
        "bounces": 3,
    }
    assert run_cli("--config", config, "outbox", "undeliverable", "list").out.splitlines()[1:] == []

    again = run_cli("--config", config, "outbox", "undeliverable", "clear", AOL_ADDRESS)
    assert again.code == 1
    assert again.err.strip() == f"ticketd: {AOL_ADDRESS} is not an undeliverable address"
