"""One bad message never holds up the next, on any channel.

The poison here is a message the database refuses: a trigger installed in the test
database refuses any message row whose Message-ID names "poison" (as a CHECK
constraint ticketd does not know of would), on SQLite and PostgreSQL alike.  It is
real intake, a real database and real servers — nothing of ticketd is patched.
Besides it, the values mail really carries and a database refuses (a NUL in MAIL FROM,
an over-long From address) must be fitted before they reach it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlmodel import col, select

from mailer.smtp_server import InboundEnvelope
from mailer.spool import Spool, SpooledEnvelope
from tests.builders import LOCAL_CLIENT
from tests.conftest import RunCli, write_config
from tests.daemon import Ticketd, run_ticketd, wait_until
from tests.dovecot import PASSWORD, DovecotServer, folder_count, inbox_session
from tests.mail import make_mail
from ticketing import metrics
from ticketing.config import Config, ImapConfig, IntakeConfig, MailboxConfig
from ticketing.config.desk_schema import StaffConfig
from ticketing.errors import StorageError
from ticketing.intake.build import build_pipeline
from ticketing.intake.imap.leadership import FileLock
from ticketing.intake.imap.poller import MailboxPoller
from ticketing.intake.spooled import process_claimed_batch
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import RawMessage
from ticketing.pipeline.verdict import describe_defect, verdict_of
from ticketing.store.db import is_sqlite, transaction
from ticketing.store.models import AuditEvent, Message

SECRET = b"s" * 40
REFUSAL = "the test trigger refuses this row"
_SQLITE_TRIGGER = f"""
CREATE TRIGGER refuse_poison BEFORE INSERT ON messages
WHEN NEW.message_id LIKE '%poison%'
BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END
"""
_PG_FUNCTION = f"""
CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF strpos(NEW.message_id, 'poison') > 0 THEN
        RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$
"""
_PG_TRIGGER = """
CREATE TRIGGER refuse_poison BEFORE INSERT ON messages
FOR EACH ROW EXECUTE FUNCTION refuse_poison()
"""


@pytest.fixture
def refusing(engine: Engine) -> Engine:
    """``engine``'s database, refusing every message whose Message-ID names "poison"."""
    statements = [_SQLITE_TRIGGER] if is_sqlite(engine) else [_PG_FUNCTION, _PG_TRIGGER]
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    return engine


def _poison(n: int = 1) -> bytes:
    return make_mail(message_id=f"<poison-{n}@brokers.example>", subject=f"poisoned {n}")


def _good(n: int) -> bytes:
    return make_mail(message_id=f"<good-{n}@brokers.example>", subject=f"good {n}")


def _config(**imap: object) -> Config:
    box = MailboxConfig(
        name="escalations",
        address="escalations@exchange.example",
        team="escalated_cases",
        imap=ImapConfig.model_validate(imap) if imap else None,
    )
    return Config(
        mailboxes=(box,),
        staff=StaffConfig(domains=("exchange.example",)),
        intake=IntakeConfig(unknown_senders="accept", defect_attempts=3),
    )


def _pipeline(engine: Engine, config: Config | None = None) -> IntakePipeline:
    return build_pipeline(config or _config(), engine, secret=SECRET)


def _smtp(raw: bytes, envelope_from: str | None = "sam@brokers.example") -> RawMessage:
    return RawMessage(
        raw, "smtp", ("escalations",), envelope_from, ("escalations@exchange.example",)
    )


# --- values fitted at the store ---------------------------------------------------------------


def test_values_a_database_refuses_are_fitted_before_they_reach_it(engine: Engine) -> None:
    """PostgreSQL refused both before (a NUL in text, 300 characters in VARCHAR(254))."""
    pipeline = _pipeline(engine)
    no_from = _good(1).replace(b"From: Sam Amsung <sam@brokers.example>\r\n", b"")
    long_from = _good(2).replace(b"sam@brokers.example", b"s" * 300 + b"@brokers.example")
    verdicts = [
        pipeline.judge(_smtp(no_from, "sam\x00x@brokers.example")),
        pipeline.judge(_smtp(long_from)),
    ]
    assert [v.kind for v in verdicts] == ["accepted", "accepted"]
    with transaction(engine, readonly=True) as session:
        senders = sorted(session.exec(select(Message.sender)).all(), key=len)
        actors = session.exec(select(AuditEvent.actor)).all()
    assert senders[0] == "samx@brokers.example"
    assert len(senders[1]) == 254
    assert max(len(actor) for actor in actors) <= 254


def test_a_refused_value_is_the_messages_defect_logged_without_values(
    refusing: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = _pipeline(refusing)
    with caplog.at_level(logging.ERROR):
        verdict = pipeline.judge(_smtp(_poison()))
    assert (verdict.kind, verdict.reason) == ("defect", "IntegrityError")
    logged = caplog.text
    assert "IntegrityError" in logged and "INSERT INTO messages" in logged
    for value in ("poison-1", "sam@brokers.example", "poisoned", REFUSAL):
        assert value not in logged, value
    assert pipeline.judge(_smtp(_good(1))).kind == "accepted"  # the next one is not held up


def test_a_value_the_database_refuses_is_a_defect_whatever_wraps_it() -> None:
    refused = DataError("INSERT INTO messages (sender) VALUES (%(s)s)", {"s": "x"}, ValueError())
    wrapped = StorageError("could not store")
    wrapped.__cause__ = refused
    nul = ValueError("A string literal cannot contain NUL (0x00) characters.")
    lost = OperationalError("SELECT 1", {}, ValueError(), connection_invalidated=True)
    gone = InterfaceError("SELECT 1", {}, ValueError(), connection_invalidated=True)
    kinds = [verdict_of(error).kind for error in (refused, wrapped, nul, lost, gone)]
    assert kinds == ["defect", "defect", "defect", "temporary", "temporary"]
    assert describe_defect(wrapped) == "StorageError (from DataError) in INSERT INTO messages"


# --- the spool ---------------------------------------------------------------------------------


def test_spool_a_poison_message_is_set_aside_and_its_batch_recorded(
    refusing: Engine, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.create()
    for raw in (_good(1), _poison(), _good(2)):
        envelope = InboundEnvelope(
            raw,
            "sam@brokers.example",
            ("escalations@exchange.example",),
            ("escalations",),
            peer="127.0.0.1",
        )
        spool.put(SpooledEnvelope(envelope, time.time()))
    pipeline = _pipeline(refusing)
    rounds = []
    for _ in range(2):  # as a worker takes what waits: one batch, one commit if it can
        claimed = [spool.claim(name, 0) for name in spool.waiting()]
        settled = process_claimed_batch(spool, [c for c in claimed if c], pipeline, 2)
        rounds.append([s.result for s in settled])
    assert rounds == [["recorded", "retry", "recorded"], ["quarantined"]]
    assert [q.reason for q in spool.quarantined()] == ["failed 2 times: IntegrityError"]


# --- SMTP, recorded in the daemon -------------------------------------------------------------


@pytest.mark.ticketd('[intake]\nunknown_senders = "accept"\ndefect_attempts = 3\n')
def test_smtp_a_poison_message_is_refused_for_good_once_other_mail_gets_through(
    refusing: Engine, ticketd: Ticketd
) -> None:
    daemon = ticketd()
    with daemon.serve():
        lone = [daemon.send(_poison(1))[0] for _ in range(4)]
        first, good, second, third = (
            daemon.send(raw) for raw in (_poison(2), _good(1), _poison(2), _poison(2))
        )
        after = daemon.send(_poison(1))  # mail got through since it first failed
    assert lone == [451, 451, 451, 451]  # nothing else got through: an outage, not a poison
    assert [first[0], good[0], second[0]] == [451, 250, 451]
    assert third[0] == 554 and "IntegrityError" in third[1] and third[1].startswith("5.6.0")
    assert after[0] == 554


# --- IMAP -------------------------------------------------------------------------------------


@pytest.fixture
def inbox(
    dovecot: DovecotServer, imap_user: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[IMAPClient]:
    monkeypatch.setenv("TICKETD_TEST_IMAP_PASSWORD", PASSWORD)
    with inbox_session(dovecot, imap_user) as client:
        yield client


def test_imap_a_poison_message_waits_aside_while_the_others_are_recorded(
    refusing: Engine,
    dovecot: DovecotServer,
    imap_user: str,
    inbox: IMAPClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = _config(
        host="127.0.0.1",
        port=dovecot.port,
        tls="none",
        username=imap_user,
        password_env="TICKETD_TEST_IMAP_PASSWORD",
        poll_interval=1,
    )
    box = config.mailboxes[0]
    assert box.imap is not None
    poller = MailboxPoller(box, box.imap, _pipeline(refusing, config), FileLock(tmp_path / "lock"))
    for raw in (_good(1), _poison(), _good(2)):
        inbox.append("INBOX", raw)
    quarantined = metrics.IMAP_QUARANTINED.labels("defect")
    counted_before = quarantined._value.get()
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,))
    started = time.monotonic()
    thread.start()
    try:
        assert wait_until(lambda: folder_count(inbox, "ticketd.processed") == 2, timeout=20)
        recorded_after = time.monotonic() - started
        assert wait_until(lambda: folder_count(inbox, "ticketd.quarantine") == 1, timeout=20)
    finally:
        stop.set()
        thread.join(10)
    assert recorded_after < 1 + 2  # one poll interval (and the connection's set-up)
    assert folder_count(inbox, "INBOX") == 0
    with transaction(refusing, readonly=True) as session:
        ids = session.exec(select(Message.message_id).where(col(Message.source) == "imap")).all()
    assert sorted(ids, key=str) == ["<good-1@brokers.example>", "<good-2@brokers.example>"]
    inbox.select_folder("ticketd.quarantine", readonly=True)
    flags = inbox.get_flags(inbox.search(["ALL"]))
    assert [b"ticketd-defect" in f for f in flags.values()] == [True]
    assert quarantined._value.get() == counted_before + 1  # ticketd_imap_quarantined_total
    assert "retrying in" not in caplog.text  # the mailbox never backed off
    assert "attempt 2 of 3" in caplog.text and "failed in intake 3 times" in caplog.text


# --- the pipe ---------------------------------------------------------------------------------


def test_pipe_exits_65_for_a_defect_with_one_line_and_no_traceback(
    refusing: Engine, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, db_url)
    poisoned = run_ticketd(
        "--config",
        str(config),
        "ingest",
        "--mailbox",
        "escalations",
        *LOCAL_CLIENT,
        stdin=_poison(),
    )
    assert poisoned.returncode == 65
    cause = "" if is_sqlite(refusing) else " (from CheckViolation)"
    assert poisoned.stderr.decode().splitlines() == [
        f"ticketd: rejected: cannot be processed: IntegrityError{cause} in INSERT INTO messages"
    ]


def test_pipe_exits_75_when_the_message_cannot_even_be_judged(
    run_cli: RunCli, tmp_path: Path
) -> None:
    message = tmp_path / "message.eml"
    message.write_bytes(_good(1))
    broken = tmp_path / "broken.toml"
    broken.write_text('[smtp]\nport = "2525"\n', encoding="utf-8")
    unreadable = run_cli("--config", str(broken), "ingest", str(message))
    assert unreadable.code == 75
    assert unreadable.err.splitlines() == [
        f"ticketd: temporary failure: {broken}: smtp.port: must be an integer"
    ]
    misused = run_cli("--config", str(broken), "ingest", "--no-such-option", str(message))
    assert misused.code == 75
    assert misused.err == "ticketd: temporary failure: usage: No such option '--no-such-option'.\n"
    missing = run_cli("--config", str(broken), "ingest", str(tmp_path / "none.eml"))
    assert missing.code == 75 and len(missing.err.splitlines()) == 1
