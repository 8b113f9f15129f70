"""The IMAP poller against a real Dovecot and real databases: exactly once, moves
after commit, caseworkers' sent mail, state folders, quarantine, UIDVALIDITY."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from mailer.delivery import MaildirTransport
from mailer.errors import ImapError
from pii_guard import PiiGuard
from tests.builders import RecordedReplies, make_composer
from tests.dns_server import AuthDns
from tests.dovecot import DovecotServer, poll_round
from tests.mail import make_mail
from ticketing.config import AuthenticationConfig, Config, ImapConfig, MailboxConfig
from ticketing.config.desk_schema import StaffConfig
from ticketing.config.pii_schema import PiiConfig
from ticketing.errors import StorageError
from ticketing.intake.build import build_pipeline
from ticketing.intake.imap import poller as poller_module
from ticketing.intake.imap.leadership import FileLock
from ticketing.intake.imap.poller import MailboxPoller
from ticketing.outbound.desk_transport import DeskTransport
from ticketing.outbound.outbox import dispatch_due
from ticketing.outbound.templated import TemplatedReplies
from ticketing.pipeline.guard import PiiGuardStage
from ticketing.pipeline.types import RawMessage
from ticketing.privacy.settings import build_guard
from ticketing.server.daemon import desk_folders
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, Incident, Message, OutboxMessage, Producer, utcnow

SECRET = b"s" * 40


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return build_guard(PiiConfig())


def _config(imap: ImapConfig, policy: str = "redact") -> Config:
    box = MailboxConfig(
        name="escalations",
        address="escalations@exchange.example",
        team="escalated_cases",
        pii_policy=policy,
        imap=imap,
    )
    return Config(mailboxes=(box,), staff=StaffConfig(domains=("exchange.example",)))


@dataclass
class Desk:
    """A shared mailbox on Dovecot, the test's own IMAP session on it, and a database."""

    dovecot: DovecotServer
    user: str
    client: IMAPClient
    engine: Engine
    guard: PiiGuard
    lock: Path
    dns: AuthDns

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """``raw`` into ``folder`` as a producer's mail system sends it: DKIM-signed."""
        self.client.append(folder, self.dns.sign_as_author(raw))

    def imap(self, **extra: object) -> ImapConfig:
        values: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.dovecot.port,
            "tls": "none",
            "username": self.user,
            "password_env": "TICKETD_TEST_IMAP_PASSWORD",
            "poll_interval": 1,
            "batch_size": 7,
        }
        return ImapConfig.model_validate(values | extra)

    def poller(self, config: Config, replies: RecordedReplies | None = None) -> MailboxPoller:
        """A poller of ``config``, whose sender authentication asks the private DNS."""
        checks = AuthenticationConfig(nameservers=(self.dns.nameserver,))
        config = config.model_copy(update={"authentication": checks})
        box = config.mailboxes[0]
        assert box.imap is not None
        stage = PiiGuardStage(self.guard)
        pipeline = build_pipeline(config, self.engine, guard=stage, secret=SECRET, replies=replies)
        return MailboxPoller(box, box.imap, pipeline, FileLock(self.lock))


@pytest.fixture
def desk(
    dovecot: DovecotServer,
    imap_user: str,
    engine: Engine,
    guard: PiiGuard,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    auth_dns: AuthDns,
) -> Iterator[Desk]:
    monkeypatch.setenv("TICKETD_TEST_IMAP_PASSWORD", "secret")
    with transaction(engine) as session:
        session.add(Producer(npn="1234567", name="sam amsung", email="sam@brokers.example"))
    client = IMAPClient("127.0.0.1", dovecot.port, ssl=False)
    client.login(imap_user, "secret")
    client.select_folder("INBOX")  # creates the mailbox before two sessions race to
    yield Desk(dovecot, imap_user, client, engine, guard, tmp_path / "lock", auth_dns)
    client.logout()


def _count(client: IMAPClient, folder: str) -> int:
    client.noop()  # STATUS of the selected folder is only as fresh as the session's view
    return int(client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])


def test_inbox_messages_are_recorded_once_and_moved_after_commit(desk: Desk) -> None:
    poller = desk.poller(_config(desk.imap()))
    for i in range(20):
        desk.deliver(make_mail(subject=f"Escalated Case: Enrollment.PID #:1740{i:02d}"))
    conn = poller.connect(poller._settings)
    poller.prepare(conn)
    assert poller.poll_once(conn) == 20
    assert poller.poll_once(conn) == 0
    conn.close()
    assert _count(desk.client, "INBOX") == 0
    assert _count(desk.client, "ticketd.processed") == 20
    with transaction(desk.engine, readonly=True) as session:
        messages = session.exec(select(Message)).all()
        assert len(messages) == 20 and {m.source for m in messages} == {"imap"}
        assert len(session.exec(select(Incident)).all()) == 20


def test_a_message_committed_but_not_moved_is_fetched_again_and_not_repeated(desk: Desk) -> None:
    """The crash window: recorded, then killed before the MOVE; the next round dedups."""
    poller = desk.poller(_config(desk.imap()))
    raw = desk.dns.sign_as_author(make_mail())
    desk.client.append("INBOX", raw)
    poller.pipeline.process(RawMessage(raw, "imap", ("escalations",)))  # committed, not moved
    assert poll_round(poller) == 1
    assert _count(desk.client, "INBOX") == 0
    with transaction(desk.engine, readonly=True) as session:
        assert len(session.exec(select(Message)).all()) == 1
        assert len(session.exec(select(Incident)).all()) == 1


@pytest.mark.parametrize("action", ["quarantine", "expunge"])
def test_a_rejected_message_leaves_the_shared_inbox(desk: Desk, action: str) -> None:
    imap = desk.imap(pii_rejected=action)
    poller = desk.poller(_config(imap, policy="reject"))
    desk.deliver(make_mail(body="Client SSN 219-09-9999, please fix.\n\nSam"))
    desk.client.append("INBOX", b"this is not an email message at all")
    desk.deliver(make_mail(body="Nothing personal here.\n\nSam"))
    assert poll_round(poller) == 3
    assert _count(desk.client, "INBOX") == 0
    assert _count(desk.client, "ticketd.processed") == 1
    assert _count(desk.client, "ticketd.quarantine") == (2 if action == "quarantine" else 1)
    with transaction(desk.engine, readonly=True) as session:
        actions = sorted(m.disposition for m in session.exec(select(Message)).all())
    assert actions == ["pii_rejected", "recorded"]


def test_a_caseworker_reply_in_the_sent_folder_stops_the_first_response_clock(desk: Desk) -> None:
    desk.client.create_folder("Sent Items")
    desk.client.append("Sent Items", make_mail(subject="old history, not to be read"))
    poller = desk.poller(_config(desk.imap(sent_folder="Sent Items")))
    question = make_mail(message_id="<q1@brokers.example>")
    desk.deliver(question)
    assert poll_round(poller) == 1  # the question; the sent folder's cursor starts at its end
    with transaction(desk.engine, readonly=True) as session:
        incident = session.exec(select(Incident)).one()
        assert incident.sla_due_at is not None and incident.first_response_at is None
    reply = make_mail(
        sender="Escalations <escalations@exchange.example>",
        to="sam@brokers.example",
        subject="RE: Escalated Case: Enrollment.PID #:174097",
        body="We corrected the enrollment.\n\nCaseworker",
        headers={"In-Reply-To": "<q1@brokers.example>", "References": "<q1@brokers.example>"},
    )
    desk.client.append("Sent Items", reply)
    assert poll_round(poller) == 1
    assert poll_round(poller) == 0
    with transaction(desk.engine, readonly=True) as session:
        incident = session.exec(select(Incident)).one()
        assert incident.status == "awaiting_producer"
        assert incident.first_response_at is not None
        out = session.exec(select(Message).where(Message.direction == "out")).one()
        assert out.incident_id == incident.id and out.disposition == "staff_reply"
    assert _count(desk.client, "Sent Items") == 2  # the sent folder is only read


def test_moving_a_conversation_into_a_state_folder_changes_its_incident(desk: Desk) -> None:
    desk.client.create_folder("Resolved")
    imap = desk.imap(folder_states={"Resolved": "resolved"})
    replies = RecordedReplies()
    poller = desk.poller(_config(imap), replies)
    desk.deliver(make_mail())
    poll_round(poller)
    desk.client.select_folder("ticketd.processed")
    desk.client.move(desk.client.search(["ALL"]), "Resolved")  # what a caseworker does in Outlook
    poll_round(poller)
    with transaction(desk.engine, readonly=True) as session:
        incident = session.exec(select(Incident)).one()
        assert incident.status == "resolved"
        event = session.exec(select(AuditEvent).where(AuditEvent.kind == "status_changed")).all()
        assert any(e.actor == "imap:escalations/Resolved" for e in event)
    told = [(o.kind, o.identity.address) for o in replies.orders]
    assert told == [("ack_new", "sam@brokers.example"), ("resolved", "sam@brokers.example")]


def test_a_new_uidvalidity_neither_repeats_nor_skips(desk: Desk) -> None:
    desk.client.create_folder("Sent Items")
    poller = desk.poller(_config(desk.imap(sent_folder="Sent Items")))
    poll_round(poller)  # cursor at the (empty) end
    first = make_mail(
        sender="escalations@exchange.example", body="first reply", message_id="<r1@x>"
    )
    desk.client.append("Sent Items", first)
    assert poll_round(poller) == 1
    # the folder is rebuilt (a server migration): same mail, new UIDs, one message more
    desk.client.delete_folder("Sent Items")
    desk.client.create_folder("Sent Items")
    desk.client.append("Sent Items", first)
    desk.client.append(
        "Sent Items",
        make_mail(sender="escalations@exchange.example", body="second", message_id="<r2@x>"),
    )
    assert poll_round(poller) == 1  # only the unrecorded one is fetched
    assert poll_round(poller) == 0
    with transaction(desk.engine, readonly=True) as session:
        ids = sorted(m.message_id or "" for m in session.exec(select(Message)).all())
    assert ids == ["<r1@x>", "<r2@x>"]


def test_the_poller_thread_stops_promptly_and_releases_its_lock(desk: Desk) -> None:
    poller = desk.poller(_config(desk.imap()))
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,))
    thread.start()
    try:
        desk.deliver(make_mail())
        assert _wait_for(desk.client, "ticketd.processed", 1)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    standby = FileLock(desk.lock)
    assert standby.acquire()
    standby.release()


def _wait_for(client: IMAPClient, folder: str, count: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.folder_exists(folder) and _count(client, folder) >= count:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def moveless_dovecot(dovecot: DovecotServer) -> Iterator[DovecotServer]:
    """A Dovecot that does not advertise MOVE (as older servers): COPY + EXPUNGE instead."""
    root = dovecot.root.parent / f"{dovecot.root.name}-nomove"
    capabilities = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS CHILDREN"
    server = DovecotServer(root, extra=f"imap_capability = {capabilities}\n")
    server.start()
    yield server
    server.stop()


def test_without_move_messages_are_copied_then_expunged(
    desk: Desk, moveless_dovecot: DovecotServer
) -> None:
    client = IMAPClient("127.0.0.1", moveless_dovecot.port, ssl=False)
    client.login(desk.user, "secret")
    client.select_folder("INBOX")
    for _ in range(3):
        client.append("INBOX", make_mail())
    desk.dovecot = moveless_dovecot
    poller = desk.poller(_config(desk.imap()))
    conn = poller.connect(poller._settings)
    assert b"MOVE" not in conn.capabilities
    poller.prepare(conn)
    assert poller.poll_once(conn) == 3
    conn.close()
    assert _count(client, "INBOX") == 0
    assert _count(client, "ticketd.processed") == 3
    client.logout()


# --- a redact mailbox: the original replaced by its desk copy, crash or not ---------------------


def _desk_poller(desk: Desk) -> tuple[Config, MailboxPoller]:
    """A poller whose pipeline orders real desk copies (outbound/desk_copies.py)."""
    config = _config(desk.imap())
    composer = make_composer(config)
    replies = TemplatedReplies(composer, desk.engine, desk.guard)
    checks = AuthenticationConfig(nameservers=(desk.dns.nameserver,))
    config = config.model_copy(update={"authentication": checks})
    box = config.mailboxes[0]
    assert box.imap is not None
    stage = PiiGuardStage(desk.guard)
    pipeline = build_pipeline(
        config, desk.engine, guard=stage, secret=composer.secret, replies=replies
    )
    return config, MailboxPoller(box, box.imap, pipeline, FileLock(desk.lock))


def _with_ssn(i: int) -> bytes:
    return make_mail(
        subject=f"Escalated Case: Enrollment.PID #:1750{i:02d}",
        body="My client's SSN is 219-09-9999; the enrollment failed.\n\nSam",
    )


def _fails_with(error: Exception) -> Callable[..., None]:
    """A stand-in that dies as a killed process would, at that point."""

    def fail(*args: object) -> None:
        raise error

    return fail


def _folders(client: IMAPClient) -> dict[str, int]:
    return {f: _count(client, f) for f in ("INBOX", "Desk", "ticketd.processed")}


def test_the_original_is_replaced_by_its_desk_copy(desk: Desk) -> None:
    _, poller = _desk_poller(desk)
    desk.deliver(_with_ssn(1))
    assert poll_round(poller) == 1
    assert _folders(desk.client) == {"INBOX": 0, "Desk": 1, "ticketd.processed": 0}
    desk.client.select_folder("Desk", readonly=True)
    (raw,) = [
        d[b"BODY[]"] for d in desk.client.fetch(desk.client.search(["ALL"]), ["BODY[]"]).values()
    ]
    assert b"219-09-9999" not in raw and b"[REDACTED:US_SSN]" in raw
    with transaction(desk.engine, readonly=True) as session:
        (row,) = session.exec(select(OutboxMessage).where(OutboxMessage.kind == "desk_copy")).all()
    assert (row.status, row.to_address) == ("sent", "imap:escalations")


def test_a_crash_between_the_copy_and_the_removal_leaves_both_then_one(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Five crashes at the two points between APPEND and EXPUNGE: never neither, and
    once it settles, each message once (one record, one desk copy, no original)."""
    config, poller = _desk_poller(desk)
    real_finish = poller_module.finish_desk_copy  # type: ignore[attr-defined]
    for i in range(5):
        desk.deliver(_with_ssn(i))
        conn = poller.connect(poller._settings)
        poller.prepare(conn)
        if i % 2:  # after the row is marked sent, before the original goes
            monkeypatch.setattr(conn, "expunge", _fails_with(ImapError("killed")))
        else:  # after the APPEND, before the row is marked sent
            monkeypatch.setattr(poller_module, "finish_desk_copy", _fails_with(StorageError("x")))
        with pytest.raises((ImapError, StorageError)):
            poller.poll_once(conn)
        conn.close()
        monkeypatch.setattr(poller_module, "finish_desk_copy", real_finish)
        both = _folders(desk.client)
        assert (both["INBOX"], both["Desk"]) == (1, i + 1), both  # never neither
        poll_round(poller)  # the next round: the copy is sent, or still held by the dead lease
        if _count(desk.client, "INBOX"):
            # the lease of the crashed claim runs out and the dispatcher takes the copy over
            transport = DeskTransport(MaildirTransport(tmp_path / "sent"), desk_folders(config))
            later = utcnow() + timedelta(minutes=10)
            asyncio.run(dispatch_due(desk.engine, transport, later, config.outbound))
            poll_round(poller)
        assert _folders(desk.client) == {"INBOX": 0, "Desk": i + 1, "ticketd.processed": 0}
    with transaction(desk.engine, readonly=True) as session:
        assert len(session.exec(select(Message)).all()) == 5
        copies = session.exec(select(OutboxMessage).where(OutboxMessage.kind == "desk_copy")).all()
    assert sorted(row.status for row in copies) == ["sent"] * 5
