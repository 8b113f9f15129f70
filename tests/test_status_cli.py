"""``ticketd status``: counts and times read from a real database after real intake."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.engine import Engine

from mailer.smtp_server import InboundEnvelope
from mailer.spool import Spool, SpooledEnvelope
from ticketing.server.backlog import register_backlog
from ticketing.store.db import transaction
from ticketing.store.models import MailboxCursor, OutboxMessage, utcnow

from .builders import LOCAL_CLIENT
from .conftest import RunCli, write_config
from .daemon import SECRET_ENV
from .dns_server import AuthDns
from .mail import make_mail

SAM = "sam@brokers.example"


@pytest.fixture
def config(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, secret in SECRET_ENV.items():
        monkeypatch.setenv(name, secret)
    return write_config(tmp_path, db_url)


def status(run_cli: RunCli, config: Path) -> dict[str, object]:
    result = run_cli("--config", str(config), "status", "--json")
    assert result.code == 0, result
    data: dict[str, object] = json.loads(result.out)
    return data


def desk_lines(run_cli: RunCli, config: Path) -> list[str]:
    """The text output without its storage lines (free space is the host's, not the desk's)."""
    out = run_cli("--config", str(config), "status").out.splitlines()
    return [line for line in out if not line.startswith("storage ")]


def test_an_empty_desk(run_cli: RunCli, config: Path) -> None:
    data = status(run_cli, config)
    assert data["incidents"] == {}
    assert data["outbox"] == {
        "pending": 0,
        "failed": 0,
        "withheld": 0,
        "oldest_pending_at": None,
        "oldest_pending_age_seconds": None,
    }
    assert data["next_sla"] is None
    assert data["last_message"] is None
    assert data["spool"] is None  # workers = 0 and no spool left behind
    lines = run_cli("--config", str(config), "status").out.splitlines()
    assert lines[:5] == [
        "incidents    none",
        "outbox       0 pending, 0 failed, 0 withheld",
        "next SLA     none running",
        "last message none yet",
        "unverified   0 waiting for staff",
    ]
    storage = data["storage"]
    assert isinstance(storage, list)
    assert len(lines) == 5 + len(storage)


def test_after_an_escalation(run_cli: RunCli, config: Path, engine: Engine, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(f"npn,name,email\n1234567,Sam Amsung,{SAM}\n", encoding="utf-8")
    assert run_cli("--config", str(config), "producers", "import", str(roster)).code == 0
    mail = tmp_path / "mail.eml"
    mail.write_bytes(make_mail(body="My client cannot enroll. Client SSN 123-45-6789."))
    before = utcnow()
    assert (
        run_cli(
            "--config", str(config), "ingest", *LOCAL_CLIENT, "--mailbox", "escalations", str(mail)
        ).code
        == 0
    )

    data = status(run_cli, config)
    with engine.connect() as conn:
        number, warn_at = conn.execute(text("SELECT number, sla_warn_at FROM incidents")).one()
    assert isinstance(number, str) and isinstance(warn_at, datetime | str)
    assert data["incidents"] == {"new": 1}
    outbox = data["outbox"]
    assert isinstance(outbox, dict)
    assert (outbox["pending"], outbox["failed"]) == (2, 0)  # the acknowledgement, the desk copy
    assert 0 <= outbox["oldest_pending_age_seconds"] < 120
    next_sla = data["next_sla"]
    assert isinstance(next_sla, dict)
    assert (next_sla["incident"], next_sla["stage"]) == (number, "warning")
    assert _naive(next_sla["at"]) == _naive(warn_at)
    last = data["last_message"]
    assert isinstance(last, dict)
    assert (last["source"], last["mailbox"], last["incident"]) == ("pipe", "escalations", number)
    assert datetime.fromisoformat(last["received_at"]) >= before - timedelta(seconds=1)

    with engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET status = 'failed', reason = 'expired'"))
    result = run_cli("--config", str(config), "status")
    assert "outbox       0 pending, 2 failed, 0 withheld" in result.out.splitlines()
    assert f"next SLA     {number} warning " in result.out
    assert "via pipe to escalations, incident " + number in result.out
    assert SAM not in result.out and "123-45-6789" not in result.out


def test_the_imap_folders_and_how_far_they_are_read(
    run_cli: RunCli, config: Path, engine: Engine
) -> None:
    moved = utcnow() - timedelta(minutes=3)
    with transaction(engine) as session:
        for folder, uid in (("INBOX", 532), ("Sent Items", 40)):
            session.add(
                MailboxCursor(
                    mailbox="escalations",
                    folder=folder,
                    uidvalidity=7,
                    last_uid=uid,
                    updated_at=moved,
                )
            )
    data = status(run_cli, config)
    imap = data["imap"]
    assert isinstance(imap, list)
    assert [(c["folder"], c["last_uid"]) for c in imap] == [
        ("INBOX", 532),
        ("Sent Items", 40),
    ]
    lines = desk_lines(run_cli, config)
    assert lines[-2].startswith("imap         escalations INBOX: uid 532, ")
    assert lines[-1].endswith("(3m ago)") and "Sent Items: uid 40" in lines[-1]


def test_the_spool_of_this_host(run_cli: RunCli, db_url: str, tmp_path: Path) -> None:
    config = write_config(
        tmp_path, db_url, '[smtp]\nworkers = 2\nspool = true\nspool_dir = "spool"\n'
    )
    spool = Spool(tmp_path / "spool")
    spool.create()
    inbound = InboundEnvelope(
        make_mail(), SAM, ("escalations@exchange.example",), ("escalations",), ""
    )
    envelope = SpooledEnvelope(inbound, 0.0)
    for _ in range(3):
        spool.put(envelope)
    claimed = spool.claim(spool.waiting()[0], 0)
    assert claimed is not None
    spool.quarantine(claimed, "gave up after 5 attempts")
    spool.claim(spool.waiting()[0], 1)
    assert status(run_cli, config)["spool"] == {
        "waiting": 1,
        "in_progress": 1,
        "quarantined": 1,
        "unfinished": 0,
    }
    lines = desk_lines(run_cli, config)
    assert lines[-1] == "spool        1 waiting, 1 in progress, 1 quarantined (this host)"


def _naive(value: datetime | str) -> datetime:
    """UTC without tzinfo: SQLite hands back naive text, PostgreSQL aware datetimes."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def test_status_on_an_uninitialised_database(run_cli: RunCli, tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'fresh.db'}")
    result = run_cli("--config", str(config), "status")
    assert result.code == 1
    assert result.err.startswith("ticketd: database schema is at nothing")


def test_the_free_space_the_smtp_front_watches(run_cli: RunCli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'ticketd.db'}"
    assert run_cli("--config", str(write_config(tmp_path, url)), "init").code == 0
    beyond = shutil.disk_usage(tmp_path).total + 1  # more than the disk could ever free
    for reserve, below in ((beyond, True), (0, False)):
        config = write_config(
            tmp_path,
            url,
            f'[smtp]\nworkers = 1\nspool = true\nspool_dir = "spool"\nmin_free_space = {reserve}\n',
        )
        storage = status(run_cli, config)["storage"]
        assert isinstance(storage, list)
        assert [(s["path"], s["below"], s["reserve_bytes"]) for s in storage] == [
            (str(tmp_path / "spool"), below, reserve),
            (str(tmp_path / "db"), below, reserve),
        ]
        last = run_cli("--config", str(config), "status").out.splitlines()[-1]
        assert last.startswith("storage      ") and f"free under {tmp_path / 'db'}" in last
        assert last.endswith(": below it, SMTP answers 452" if below else "no reserve (this host)")


def _outbox_row(engine: Engine, status: str, number: int) -> None:
    with transaction(engine) as session:
        session.add(
            OutboxMessage(
                kind="ack_new",
                to_address=SAM,
                message_id=f"<{status}.{number}@exchange.example>",
                mime=b"Subject: x\r\n\r\nx\r\n",
                status=status,
                reason="personal_data" if status == "withheld" else "expired",
            )
        )


def test_withheld_mail_is_counted_and_explained(
    run_cli: RunCli, config: Path, engine: Engine, tmp_path: Path
) -> None:
    for number in range(2):
        _outbox_row(engine, "withheld", number)
    _outbox_row(engine, "failed", 9)
    outbox = status(run_cli, config)["outbox"]
    assert isinstance(outbox, dict)
    assert (outbox["pending"], outbox["failed"], outbox["withheld"]) == (0, 1, 2)
    assert desk_lines(run_cli, config)[1] == (
        "outbox       0 pending, 1 failed, 2 withheld "
        "(personal data found: see ticketd outbox list --status withheld)"
    )
    registry = CollectorRegistry()
    remove = register_backlog(engine, str(tmp_path / "no-spool"), registry)
    assert registry.get_sample_value("ticketd_outbox_withheld") == 2
    assert registry.get_sample_value("ticketd_outbox_failed") == 1
    remove()


def test_times_are_in_the_desk_timezone(
    run_cli: RunCli, config: Path, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    moved = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)
    with transaction(engine) as session:
        session.add(
            MailboxCursor(mailbox="escalations", folder="INBOX", last_uid=1, updated_at=moved)
        )
    imap = status(run_cli, config)["imap"]
    assert isinstance(imap, list)
    [cursor] = imap
    assert cursor["updated_at"] == "2026-01-15T10:00:00-05:00"
    assert desk_lines(run_cli, config)[-1].startswith(
        "imap         escalations INBOX: uid 1, 2026-01-15T10:00:00-05:00 ("
    )
    kolkata = write_config(tmp_path, db_url, '[sla]\ntimezone = "Asia/Kolkata"\n')
    data = status(run_cli, kolkata)
    imap = data["imap"]
    assert isinstance(imap, list)
    assert imap[0]["updated_at"] == "2026-01-15T20:30:00+05:30"
    assert str(data["now"]).endswith("+05:30")
    assert ", 2026-01-15T20:30:00+05:30 (" in desk_lines(run_cli, kolkata)[-1]


def test_mail_waiting_for_staff_is_counted_and_explained(
    run_cli: RunCli, config: Path, tmp_path: Path, auth_dns: AuthDns
) -> None:
    """Unsigned mail from a client that is not trusted waits: status says how much, and where."""
    checks = f'[authentication]\nnameservers = ["{auth_dns.nameserver}"]\n'
    config.write_text(config.read_text() + checks, encoding="utf-8")
    mail = tmp_path / "mail.eml"
    mail.write_bytes(make_mail(body="My client cannot enroll."))
    ingest = ("--config", str(config), "ingest", "--mailbox", "escalations", str(mail))
    assert run_cli(*ingest, "--client-address", "192.0.2.1").code == 0
    assert status(run_cli, config)["unverified"] == 1
    lines = run_cli("--config", str(config), "status").out.splitlines()
    assert "unverified   1 waiting for staff (ticketd incidents unverified)" in lines
