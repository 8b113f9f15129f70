"""ticketd behind a real Postfix (tests/postfix.py), each way an MTA hands it mail: relayed
by SMTP, piped to ``ticketd ingest`` with the lines of deploy/postfix/ (only paths and the
user changed), and by LMTP over the daemon's Unix socket.  A pipe that meets a setup
mistake (a file its user cannot read or write) has the message deferred, never bounced,
and delivered once the mistake is fixed.

The pipe and the daemon beside it run as an unprivileged user of their own
(``PIPE_USER``), as in production: the user ``ticketd`` of deploy/ticketd.service.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.conftest import REPO, migrated_database, unavailable
from tests.daemon import Ticketd, daemon_config, free_port, import_roster, wait_until
from tests.dns_server import AuthDns
from tests.mail import make_mail
from tests.postfix import (
    MAILBOX_DOMAIN,
    PostfixServer,
    deployed_pipe_entry,
    other_users_venv,
    postfix_binary,
    service_user,
    serving_as,
    settings_named,
)

PIPE_USER = "ticketd-mta-test"
PRODUCER = "sam@brokers.example"
ESCALATIONS = f"escalations@{MAILBOX_DOMAIN}"
DEPLOY = REPO / "deploy" / "postfix"
DELIVERY_TIMEOUT = 90.0  # an ingest process is ~3 s of CPU; the machine is shared

StartPostfix = Callable[..., PostfixServer]


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postfix_ready() -> None:
    if postfix_binary() is None:
        unavailable("postfix is not installed (make test installs it with apt-get as root)")
    if os.geteuid() != 0:
        unavailable("a private Postfix needs root (postfix start)")


@pytest.fixture
def postfix(postfix_ready: None) -> Iterator[StartPostfix]:
    """Starts private Postfix instances (``PostfixServer``); each stopped and removed after."""
    servers: list[PostfixServer] = []

    def start(transport: str, *, services: str = "", settings: str = "") -> PostfixServer:
        # not under pytest's 0700 folders: Postfix's own users must reach the queue
        root = Path(tempfile.mkdtemp(prefix="ticketd-postfix-"))
        server = PostfixServer(root, transport, services=services, settings=settings)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pipe_user(postfix_ready: None) -> pwd.struct_passwd:
    return service_user(PIPE_USER)


@pytest.fixture(scope="session")
def service_ticketd(postfix_ready: None) -> Iterator[Path]:
    """A ``ticketd`` command ``PIPE_USER`` can run (``other_users_venv``)."""
    folder = Path(tempfile.mkdtemp(prefix="ticketd-postfix-venv-"))
    command = other_users_venv(folder)
    if command is None:
        shutil.rmtree(folder)
        unavailable("no /usr/bin/python3 of this Python's version to run ticketd as another user")
    assert command is not None
    yield command
    shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Desk:
    """A ticketd set up as deploy/ sets it up: its config, SQLite database, sent maildir
    and secret file in one folder owned by the service user, who runs ``serve`` and
    whom Postfix's pipe runs ``ingest`` as."""

    folder: Path
    config: Path
    port: int
    user: pwd.struct_passwd
    command: Path

    @property
    def database(self) -> Path:
        return self.folder / "db" / "ticketd.db"

    @property
    def socket(self) -> Path:
        return self.folder / "var" / "lmtp.sock"

    def hand_over(self, path: Path | None = None) -> None:
        """``path`` (the whole folder: None) and all within, the service user's."""
        top = path or self.folder
        for item in (top, *top.rglob("*")):
            os.chown(item, self.user.pw_uid, self.user.pw_gid, follow_symlinks=False)

    @contextmanager
    def serving(self, group: int | None = None) -> Iterator[None]:
        """``ticketd serve`` as the service user (its group: ``group`` if given) for the
        block, its stderr in ``serve.log``."""
        in_group = self.user.pw_gid if group is None else group
        log = self.folder / "serve.log"
        with serving_as(self.user, in_group, self.command, self.config, self.port, log):
            yield

    def serve_log(self) -> str:
        path = self.folder / "serve.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@pytest.fixture
def desk(
    pipe_user: pwd.struct_passwd,
    service_ticketd: Path,
    auth_dns: AuthDns,
    request: pytest.FixtureRequest,
) -> Iterator[Desk]:
    # not under pytest's 0700 folders: the service user (and Postfix's lmtp) must reach it
    folder = Path(tempfile.mkdtemp(prefix="ticketd-postfix-desk-"))
    folder.chmod(0o755)
    port = free_port()
    with contextmanager(migrated_database)("sqlite", folder / "db", request) as url:
        config = daemon_config(folder / "config.toml", url, port, _desk_sections(auth_dns))
        import_roster(config, folder)
        _secret_as_serve_makes_it(folder / "var" / "token_secret")
        setup = Desk(folder, config, port, pipe_user, service_ticketd)
        setup.hand_over()
        yield setup
    shutil.rmtree(folder, ignore_errors=True)


def _secret_as_serve_makes_it(path: Path) -> None:
    """What ``ticketd serve``'s first start leaves ([security] generated_secret_file): the
    pipe reads it and never makes its own (its tokens would verify nowhere else)."""
    path.parent.mkdir(exist_ok=True)
    path.write_text(secrets.token_urlsafe(48) + "\n", encoding="utf-8")
    path.chmod(0o600)


def _desk_sections(dns: AuthDns) -> str:
    return f"""
[outbound]
poll_interval_seconds = 1
[authentication]
nameservers = ["{dns.nameserver}"]
"""


# --- what came out -----------------------------------------------------------------------------


def incident_numbers(database: Path) -> list[str]:
    """The incidents recorded (read as the database's owner would, without a writer's turn)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return [str(row[0]) for row in conn.execute("SELECT number FROM incidents ORDER BY id")]


def acks_to(maildir: Path, address: str) -> list[str]:
    """The text of every mail to ``address`` in the outbound maildir."""
    found = []
    for path in sorted(p for sub in ("new", "cur") for p in (maildir / sub).glob("*")):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        if address in str(mail["To"]):
            body = mail.get_body(("plain",))
            found.append("" if body is None else str(body.get_content()))
    return found


def producer_mail(dns: AuthDns, subject: str) -> bytes:
    """A roster producer's new escalation, DKIM-signed by the producer's domain: it is
    believed whichever way it reached ticketd (SPF sees Postfix, or the pipe's client)."""
    return dns.sign(make_mail(subject=subject), "brokers.example")


def assert_recorded_and_acknowledged(desk_folder: Path, database: Path) -> None:
    assert wait_until(lambda: len(incident_numbers(database)) == 1, DELIVERY_TIMEOUT)
    (number,) = incident_numbers(database)
    maildir = desk_folder / "var" / "sent"
    assert wait_until(lambda: bool(acks_to(maildir, PRODUCER)), DELIVERY_TIMEOUT), "no ack"
    (ack,) = acks_to(maildir, PRODUCER)
    assert number in ack


# --- the deploy lines, for this machine ----------------------------------------------------------


def deployed_pipe(desk: Desk) -> tuple[str, str]:
    """deploy/postfix's pipe service and its main.cf settings, with this test's paths and
    user in place of /opt/ticketd, /etc/ticketd and ``ticketd``."""
    master_cf = (DEPLOY / "master.cf").read_text()
    entry = deployed_pipe_entry(master_cf, desk.user.pw_name, str(desk.command), desk.config)
    settings = settings_named((DEPLOY / "main.cf").read_text(), "ticketd_")
    return entry, settings


# --- the tests ---------------------------------------------------------------------------------


def test_smtp_relay_through_postfix_records_and_acknowledges(
    postfix: StartPostfix,
    ticketd: Ticketd,
    auth_dns: AuthDns,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    with contextmanager(migrated_database)("sqlite", tmp_path / "db", request) as url:
        daemon = ticketd(_desk_sections(auth_dns), db_url=url)
        import_roster(daemon.config, tmp_path)
        mta = postfix(f"smtp:[127.0.0.1]:{daemon.port}")
        with daemon.serve():
            mail = producer_mail(auth_dns, "Escalated Case: Enrollment.PID #:174097")
            assert mta.send(mail, PRODUCER, [ESCALATIONS])[0] == 250
            assert mta.wait_empty(DELIVERY_TIMEOUT), mta.log()
            assert_recorded_and_acknowledged(tmp_path, tmp_path / "db" / "ticketd.db")
        assert "relay=127.0.0.1" in mta.log(lines=0)
        assert not mta.bounces()


def test_pipe_with_the_deploy_lines_records_and_acknowledges(
    postfix: StartPostfix, desk: Desk, auth_dns: AuthDns
) -> None:
    service, settings = deployed_pipe(desk)
    mta = postfix("ticketd:", services=service, settings=settings)
    with desk.serving():
        mail = producer_mail(auth_dns, "Escalated Case: Enrollment.PID #:174098")
        assert mta.send(mail, PRODUCER, [ESCALATIONS])[0] == 250
        assert mta.wait_empty(DELIVERY_TIMEOUT), mta.log()
        assert_recorded_and_acknowledged(desk.folder, desk.database)
    log = mta.log(lines=0)
    assert "relay=ticketd" in log and "status=sent" in log, log
    assert not mta.bounces()


@dataclass(frozen=True)
class Mistake:
    """A setup mistake of the pipe's user, what the pipe says about it, and its fix."""

    name: str
    make: Callable[[Desk], None]
    said: str
    fix: Callable[[Desk], None]


def _unreadable_config(desk: Desk) -> None:
    os.chown(desk.config, 0, 0)
    desk.config.chmod(0o600)


def _unwritable_database_folder(desk: Desk) -> None:
    os.chown(desk.database.parent, 0, 0)
    desk.database.parent.chmod(0o755)


def _root_writer_lock(desk: Desk) -> None:
    lock = Path(f"{desk.database}.writer-lock")
    lock.touch()
    os.chown(lock, 0, 0)
    lock.chmod(0o600)


MISTAKES = [
    Mistake(
        "config unreadable",
        _unreadable_config,
        "config.toml: cannot read: Permission denied",
        lambda desk: desk.hand_over(desk.config),
    ),
    Mistake(
        "database folder unwritable",
        _unwritable_database_folder,
        "database unavailable",
        lambda desk: desk.hand_over(desk.database.parent),
    ),
    Mistake(
        "writer lock of root",
        _root_writer_lock,
        "Permission denied: " + "{database}.writer-lock",
        lambda desk: desk.hand_over(desk.database.parent),
    ),
]


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_pipe_defers_on_a_setup_mistake_and_delivers_once_fixed(
    postfix: StartPostfix, desk: Desk, auth_dns: AuthDns, mistake: Mistake
) -> None:
    service, settings = deployed_pipe(desk)
    mta = postfix("ticketd:", services=service, settings=settings)
    mistake.make(desk)
    mail = producer_mail(auth_dns, "Escalated Case: Enrollment.PID #:174099")
    assert mta.send(mail, PRODUCER, [ESCALATIONS])[0] == 250

    deferred = mta.wait_deferred(DELIVERY_TIMEOUT)
    assert deferred is not None, mta.log()
    assert deferred.recipients == (ESCALATIONS,)
    # the pipe's one line, naming what to fix: no traceback
    said = mistake.said.format(database=desk.database)
    assert "ticketd: temporary failure: " in deferred.reasons[0], deferred.reasons
    assert said in deferred.reasons[0], deferred.reasons
    assert "Traceback" not in mta.log(lines=0)
    assert not mta.bounces()
    assert incident_numbers(desk.database) == []

    mistake.fix(desk)
    mta.flush()
    assert mta.wait_empty(DELIVERY_TIMEOUT), mta.log()
    assert len(incident_numbers(desk.database)) == 1
    assert not mta.bounces()


def test_lmtp_over_the_daemons_socket_records_and_acknowledges(
    postfix: StartPostfix, desk: Desk, auth_dns: AuthDns
) -> None:
    # [lmtp] socket is made 0660 in the daemon's group: Postfix's lmtp client (the user
    # postfix) gets in through that group, as `usermod -aG ticketd postfix` does it in
    # deploy/postfix/master.cf; here the daemon runs with postfix's group instead, so
    # that no system user changes.
    text = desk.config.read_text() + '\n[lmtp]\nsocket = "var/lmtp.sock"\n'
    desk.config.write_text(text)
    mta = postfix(f"lmtp:unix:{desk.socket}", settings="lmtp_send_xforward_command = yes")
    with desk.serving(group=pwd.getpwnam("postfix").pw_gid):
        mail = producer_mail(auth_dns, "Escalated Case: Enrollment.PID #:174100")
        assert mta.send(mail, PRODUCER, [ESCALATIONS])[0] == 250
        assert mta.wait_empty(DELIVERY_TIMEOUT), f"{mta.log()}\n{desk.serve_log()}"
        assert_recorded_and_acknowledged(desk.folder, desk.database)
    assert "status=sent" in mta.log(lines=0)
    assert not mta.bounces()
