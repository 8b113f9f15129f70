"""Shared fixtures: real databases (SQLite and PostgreSQL), the shared corpus, the CLI,
a daemon's config (``ticketd``), a relay sink, test certificates, Dovecot.

Tests that need a server skip with a reason when it is absent, except under
``TICKETD_REQUIRE_SERVICES=1`` (CI), where its absence is a failure.  Tests marked ``slow``
run only under ``TICKETD_RUN_SLOW=1`` (CI sets it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import trustme
from sqlalchemy.engine import Engine, make_url

from tests.builders import RecordedReplies, Sink, TlsFiles
from tests.daemon import DaemonSetup, Ticketd, daemon_config, free_port
from tests.dns_server import AuthDns
from tests.dovecot import DovecotServer, dovecot_binary
from ticketing.config import DatabaseConfig
from ticketing.store.db import create_db_engine
from ticketing.store.migrate import upgrade

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TICKETD_SHARED_DIR", REPO.parent / "shared"))
REQUIRE_SERVICES = os.environ.get("TICKETD_REQUIRE_SERVICES") == "1"
RUN_SLOW = os.environ.get("TICKETD_RUN_SLOW") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests (minutes each) are skipped unless ``TICKETD_RUN_SLOW=1``."""
    if RUN_SLOW:
        return
    skip = pytest.mark.skip(reason="slow: run it with TICKETD_RUN_SLOW=1 (CI does)")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


def unavailable(reason: str) -> None:
    """Skip on a developer's laptop; fail where CI promises the service exists."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (TICKETD_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "corpus").is_dir():
        unavailable(f"the shared corpus is not at {SHARED}")
    return SHARED


# --- PostgreSQL --------------------------------------------------------------------------------


def _admin_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_execute(url: str, sql: str) -> None:
    with psycopg.connect(_admin_conninfo(url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


_CHECKPOINT_PATIENCE = 60.0  # seconds; test_faults fills its tablespace for a few


def _pg_database_ddl(url: str, sql: str) -> None:
    """CREATE and DROP DATABASE, which ask the server for a checkpoint: while
    test_faults' full-disk test holds its tablespace full, every checkpoint fails
    ("checkpoint request failed"), so another worker's test tries again meanwhile."""
    deadline = time.monotonic() + _CHECKPOINT_PATIENCE
    while True:
        try:
            _pg_execute(url, sql)
            return
        except psycopg.errors.InternalError as exc:
            if "checkpoint" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The server URL from ``TICKETD_TEST_POSTGRES_URL``, checked to answer."""
    url = os.environ.get("TICKETD_TEST_POSTGRES_URL")
    if not url:
        unavailable("TICKETD_TEST_POSTGRES_URL is not set")
    assert url is not None
    try:
        _pg_execute(url, "SELECT 1")
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at TICKETD_TEST_POSTGRES_URL does not answer: {exc}")
    return url


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str) -> Iterator[str]:
    """A database migrated to head once per session, copied for each test."""
    name = f"ticketd_tpl_{uuid.uuid4().hex[:10]}"
    _pg_database_ddl(postgres_url, f'CREATE DATABASE "{name}"')
    engine = create_db_engine(DatabaseConfig(url=_with_database(postgres_url, name)))
    upgrade(engine)
    engine.dispose()
    yield name
    _pg_database_ddl(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fresh_pg_database(postgres_url: str, template: str | None) -> Iterator[str]:
    name = f"ticketd_t_{uuid.uuid4().hex[:12]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    _pg_database_ddl(postgres_url, f'CREATE DATABASE "{name}"{clause}')
    yield _with_database(postgres_url, name)
    _pg_database_ddl(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- one fixture, both databases ---------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL of an empty database of the parametrised kind."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    yield from _fresh_pg_database(request.getfixturevalue("postgres_url"), None)


def migrated_database(backend: str, folder: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL of a database migrated to head, of ``backend``'s kind (SQLite in ``folder``,
    PostgreSQL copied from the session's template); dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{folder / 'ticketd.db'}"
        engine = create_db_engine(DatabaseConfig(url=url))
        upgrade(engine)
        engine.dispose()
        yield url
        return
    template = request.getfixturevalue("postgres_template")
    yield from _fresh_pg_database(request.getfixturevalue("postgres_url"), template)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL of a database migrated to head, of the parametrised kind."""
    yield from migrated_database(backend, tmp_path, request)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(DatabaseConfig(url=db_url))
    yield engine
    engine.dispose()


# --- the command line, in process --------------------------------------------------------------


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out!r}, err={self.err!r})"


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Run ``ticketd ARGS`` in this process; returns exit code, stdout and stderr."""
    from ticketing.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def write_config(directory: Path, db_url: str, extra: str = "") -> Path:
    """A config file in ``directory`` that points at ``db_url``; ``extra`` is appended."""
    path = directory / "config.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n{extra}', encoding="utf-8")
    return path


# --- a daemon's config: the ``ticketd`` factory --------------------------------------------------


@pytest.fixture
def ticketd(request: pytest.FixtureRequest, tmp_path: Path) -> Ticketd:
    r"""Writes the config of a ``ticketd serve`` and returns its ``DaemonSetup``::

        @pytest.mark.ticketd('[intake]\nunknown_senders = "accept"\n')
        def test_x(ticketd: Ticketd) -> None:
            daemon = ticketd("[smtp]\nmax_header_count = 50\n")
            with daemon.serve():
                assert daemon.send(make_mail())[0] == 250

    ``ticketd(*sections, port=None, db_url=None, folder=None)`` writes ``folder/config.toml``
    (``folder`` is ``tmp_path`` unless given): ``[database] url`` (``db_url``, else the
    test's ``db_url`` fixture), ``[smtp] port`` (``port``, else a free one), then the TOML
    sections of the test's closest ``ticketd`` marker (the test's, else its class's or
    module's ``pytestmark``) and the ``sections`` given, merged in that order.  The daemon
    logs to ``folder/serve.log``.
    """
    marker = request.node.get_closest_marker("ticketd")
    defaults: tuple[str, ...] = tuple(marker.args) if marker else ()
    if not all(isinstance(section, str) for section in defaults):
        pytest.fail("@pytest.mark.ticketd takes TOML texts", pytrace=False)

    def setup(
        *sections: str,
        port: int | None = None,
        db_url: str | None = None,
        folder: Path | None = None,
    ) -> DaemonSetup:
        if db_url is None:
            if "db_url" not in request.fixturenames:
                pytest.fail("ticketd(): pass db_url= or request the db_url fixture", pytrace=False)
            db_url = str(request.getfixturevalue("db_url"))
        port = free_port() if port is None else port
        where = tmp_path if folder is None else folder
        where.mkdir(parents=True, exist_ok=True)
        config = daemon_config(where / "config.toml", db_url, port, *defaults, *sections)
        return DaemonSetup(config, port, where / "serve.log")

    return setup


@pytest.fixture
def pg_db_url(postgres_url: str, postgres_template: str) -> Iterator[str]:
    """A PostgreSQL database migrated to head, for tests about PostgreSQL alone."""
    yield from _fresh_pg_database(postgres_url, postgres_template)


# --- Dovecot (IMAP) ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot(tls_ca: trustme.CA) -> Iterator[DovecotServer]:
    """One private Dovecot (plain and TLS listeners) for the session; tests use own users.
    Its certificate is from ``tls_ca``: a client trusts it with ``tls_files.ca``."""
    if dovecot_binary() is None:
        unavailable("dovecot is not installed (make test installs it with apt-get as root)")
    # not under pytest's 0700 folders: Dovecot's own users must reach the files
    root = Path(tempfile.mkdtemp(prefix="ticketd-dovecot-"))
    root.chmod(0o755)
    files = TlsFiles.issue(tls_ca, root)
    server = DovecotServer(root, files.cert, files.key)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> str:
    """A fresh IMAP user (and so an empty mailbox) on the session's Dovecot."""
    return f"desk{uuid.uuid4().hex[:10]}"


# --- a relay, certificates, the intake's replies -----------------------------------------------


@pytest.fixture
def sink() -> Iterator[Sink]:
    """An SMTP relay sink on a free loopback port, running for the test."""
    relay = Sink(free_port())
    relay.start()
    yield relay
    relay.stop()


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """The session's test CA: it issues the certificates of ``tls_files`` and of Dovecot."""
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_files(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A certificate for 127.0.0.1 from ``tls_ca``, its key and the CA's certificate, as files."""
    return TlsFiles.issue(tls_ca, tmp_path_factory.mktemp("tls"))


@pytest.fixture
def replies() -> RecordedReplies:
    """A reply sink for an intake pipeline that records the orders it is given."""
    return RecordedReplies()


# --- sender authentication: a private DNS server -----------------------------------------------


@pytest.fixture(scope="session")
def auth_dns() -> Iterator[AuthDns]:
    """An ``AuthDns`` (tests/dns_server.py, which lists its domains, addresses and keys): a
    private DNS server on 127.0.0.1, UDP and TCP, serving SPF, DKIM and DMARC records of
    the test domains, with their DKIM keys made at start.

    ``auth_dns.nameserver`` ("127.0.0.1@PORT") goes in ``[authentication] nameservers``;
    ``auth_dns.sign(raw, "brokers.example")`` DKIM-signs a producer's message;
    ``auth_dns.settings()`` is the ``DnsSettings`` to call ``verify_sender`` with.
    """
    world = AuthDns.start()
    yield world
    world.stop()
