"""Nothing on the side: no message in a library's debug log, no database or spool file
others can read, no unfinished message left behind in the spool."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy.engine import Engine

from mailer.smtp_server import InboundEnvelope
from mailer.spool import Spool, SpooledEnvelope
from ticketing.config import (
    AuthenticationConfig,
    Config,
    DatabaseConfig,
    ImapConfig,
    MailboxConfig,
)
from ticketing.intake.build import build_pipeline
from ticketing.intake.imap.leadership import FileLock
from ticketing.intake.imap.poller import MailboxPoller
from ticketing.logs import configure_logging
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.migrate import upgrade
from ticketing.store.models import Producer

from .conftest import RunCli
from .daemon import Ticketd
from .dns_server import AuthDns
from .dovecot import DovecotServer
from .mail import make_mail

SSN = "219-09-9999"
SECRET = b"s" * 40


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The umask of a shell that ``make run`` starts from: files 0644, folders 0755."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- logs ------------------------------------------------------------------------------------


def test_imap_at_debug_never_logs_the_message(
    dovecot: DovecotServer,
    imap_user: str,
    engine: Engine,
    auth_dns: AuthDns,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``[logging] level = "DEBUG"``: the poller fetches a message with an SSN in it; no log
    line carries it.  The same fetch with imapclient's logger left alone would."""
    monkeypatch.setenv("TICKETD_TEST_IMAP_PASSWORD", "secret")
    with transaction(engine) as session:
        session.add(Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example"))
    client = IMAPClient("127.0.0.1", dovecot.port, ssl=False)
    client.login(imap_user, "secret")
    client.select_folder("INBOX")
    client.append("INBOX", make_mail(body=f"My client's SSN is {SSN}.\n\nSam"))
    configure_logging(logging.DEBUG)  # as the CLI starts (its handlers are pytest's here)
    caplog.set_level(logging.DEBUG)  # as ``[logging] level = "DEBUG"`` sets the root's
    poller = _poller(dovecot, imap_user, engine, auth_dns, tmp_path)
    conn = poller.connect(poller._settings)
    try:
        poller.prepare(conn)
        assert poller.poll_once(conn) == 1
    finally:
        conn.close()
    assert SSN not in caplog.text
    library = logging.getLogger("imapclient")
    assert library.getEffectiveLevel() == logging.INFO
    library.setLevel(logging.NOTSET)  # the control: what the fetch logs unquieted
    try:
        client.select_folder("ticketd.processed")
        client.fetch(client.search(), ["RFC822"])
    finally:
        library.setLevel(logging.INFO)
        client.logout()
    assert SSN in caplog.text


def _poller(
    dovecot: DovecotServer, user: str, engine: Engine, dns: AuthDns, folder: Path
) -> MailboxPoller:
    imap = ImapConfig.model_validate(
        {
            "host": "127.0.0.1",
            "port": dovecot.port,
            "tls": "none",
            "username": user,
            "password_env": "TICKETD_TEST_IMAP_PASSWORD",
        }
    )
    box = MailboxConfig(
        name="escalations",
        address="escalations@exchange.example",
        team="escalated_cases",
        pii_policy="off",  # the text goes everywhere it may: still not into a log
        imap=imap,
    )
    checks = AuthenticationConfig(nameservers=(dns.nameserver,))
    config = Config(mailboxes=(box,), authentication=checks)
    pipeline = build_pipeline(config, engine, secret=SECRET)
    return MailboxPoller(box, imap, pipeline, FileLock(folder / "lock"))


# --- file modes ------------------------------------------------------------------------------


def test_a_new_sqlite_database_and_its_wal_are_private(
    run_cli: RunCli, tmp_path: Path, umask_022: None
) -> None:
    """``ticketd init`` as ``make run`` runs it, then a write: every file 0600."""
    folder = tmp_path / "db"
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{folder / "ticketd.db"}"\n', encoding="utf-8")
    assert run_cli("--config", str(config), "init").code == 0
    engine = create_db_engine(DatabaseConfig(url=f"sqlite:///{folder / 'ticketd.db'}"))
    try:
        with transaction(engine) as session:
            session.add(Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example"))
        files = {path.name: mode(path) for path in folder.iterdir()}
    finally:
        engine.dispose()
    assert set(files) >= {"ticketd.db", "ticketd.db-wal", "ticketd.db-shm"}
    assert files == dict.fromkeys(files, 0o600)


def test_an_existing_database_open_to_others_is_made_private(
    tmp_path: Path, umask_022: None, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:  # as an earlier version left it: 0644
        old.execute("PRAGMA journal_mode=WAL")
        old.execute("CREATE TABLE t (x)")
    assert mode(path) == 0o644
    engine = create_db_engine(DatabaseConfig(url=f"sqlite:///{path}"))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    files = {p.name: mode(p) for p in tmp_path.glob("old.db*")}
    assert "old.db-wal" in files and files == dict.fromkeys(files, 0o600)
    assert "old.db was open to other users (644): now 600" in caplog.text


def test_the_spool_is_private(tmp_path: Path, umask_022: None) -> None:
    spool = Spool(tmp_path / "var" / "spool")
    spool.create()
    name = spool.put(SpooledEnvelope(_envelope(), 0.0))
    folders = [spool.path, *(spool.path / f for f in ("tmp", "new", "cur", "quarantine"))]
    assert [mode(folder) for folder in folders] == [0o700] * 5
    assert mode(spool.path / "new" / name) == 0o600


# --- the spool's tmp/ ------------------------------------------------------------------------


def _envelope() -> InboundEnvelope:
    mail = make_mail(body=f"SSN {SSN}")
    return InboundEnvelope(
        mail, "sam@brokers.example", ("escalations@exchange.example",), ("escalations",), ""
    )


def test_unfinished_messages_are_counted_and_removed_at_start(
    db_url: str, ticketd: Ticketd, run_cli: RunCli
) -> None:
    """What sessions killed before their 250 left in ``tmp/`` shows in ``ticketd status``,
    and the daemon removes it when it starts; what waits in ``new/`` is recorded."""
    daemon = ticketd('[smtp]\nworkers = 1\nspool = true\nspool_dir = "spool"\n')
    spool = Spool(daemon.config.parent / "spool")
    spool.create()
    for name in ("00000000000000000001-aaaa.0", "00000000000000000002-bbbb.0"):
        (spool.path / "tmp" / name).write_bytes(b'{"mail_from": "sam@brokers.example"')
    spool.put(SpooledEnvelope(_envelope(), 0.0))
    status = run_cli("--config", str(daemon.config), "status", "--json")
    assert '"unfinished": 2' in status.out
    line = run_cli("--config", str(daemon.config), "status").out
    assert "0 quarantined, 2 unfinished in tmp/ (this host)" in line
    with daemon.serve():
        assert os.listdir(spool.path / "tmp") == []
        assert daemon.send(make_mail())[0] == 250
        assert os.listdir(spool.path / "tmp") == []  # written, renamed into new/
    assert "removed 2 unfinished messages from" in daemon.log.read_text(encoding="utf-8")
    after = run_cli("--config", str(daemon.config), "status", "--json").out
    assert '"unfinished": 0' in after
