"""Shared fixtures: real databases (SQLite and PostgreSQL), the shared corpus, the CLI,
a daemon's config (``ticketd``), a relay sink, test certificates, Dovecot.

Tests that need a server skip with a reason when it is absent, except under
``TICKETD_REQUIRE_SERVICES=1`` (CI), where its absence is a failure.  Tests marked ``slow``
run only under ``TICKETD_RUN_SLOW=1`` (CI sets it).
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import tomli_w
import trustme
from sqlalchemy.engine import Engine, make_url

from tests.builders import RecordedReplies, Sink, TlsFiles
from tests.daemon import TEST_WEB, TEST_WORKERS, DaemonSetup, Ticketd, daemon_config, free_port
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
def postgres_url() -> Iterator[str]:
    """The server URL from ``TICKETD_TEST_POSTGRES_URL``, checked to answer.  When the
    session ends, the databases left to drop (``_DROPS``) are dropped."""
    url = os.environ.get("TICKETD_TEST_POSTGRES_URL")
    if not url:
        unavailable("TICKETD_TEST_POSTGRES_URL is not set")
    assert url is not None
    try:
        _pg_execute(url, "SELECT 1")
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at TICKETD_TEST_POSTGRES_URL does not answer: {exc}")
    yield url
    failures = _DROPS.drain()
    assert not failures, f"databases not dropped: {failures}"


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str) -> Iterator[str]:
    """A database migrated to head once per session, copied for each test (``_PgCopies``)."""
    name = f"ticketd_tpl_{uuid.uuid4().hex[:10]}"
    _pg_database_ddl(postgres_url, f'CREATE DATABASE "{name}"')
    engine = create_db_engine(DatabaseConfig(url=_with_database(postgres_url, name)))
    upgrade(engine)
    engine.dispose()
    copies = _COPIES[(postgres_url, name)] = _PgCopies(postgres_url, name)
    yield name
    del _COPIES[(postgres_url, name)]
    copies.close()
    _DROPS.drop(postgres_url, name)


# --- a database per test, reused ----------------------------------------------------------------
#
# A copy of the template costs the server a CREATE DATABASE (the template's 8 MB through the
# WAL) and then a DROP DATABASE (a checkpoint, unlinking some 300 files): 0.2 to 1 s of each
# test's time while the other worker writes.  A copy is reused instead, put back as the
# template has it, in 20 to 50 ms (``_PgCopies``).

# Everything a test could change in a database that emptying its tables does not undo: the
# schema (tables, columns, defaults, constraints, indexes, triggers, functions, types, views,
# sequences' parameters), permissions, and the database's own settings.  A copy whose
# fingerprint differs from a fresh copy's after a test is dropped, not reused.
_FINGERPRINT = """
WITH ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema')
      AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%'
), rel AS (
    SELECT c.oid FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
)
SELECT md5(string_agg(item, E'\\n' ORDER BY item)) FROM (
    SELECT concat_ws(' ', 'schema', n.nspname, n.nspacl::text) AS item
      FROM pg_namespace n WHERE n.oid IN (SELECT oid FROM ns)
    UNION ALL
    SELECT concat_ws(' ', 'rel', ns.nspname, c.relname, c.relkind, c.relpersistence,
                     c.relacl::text, c.reloptions::text, c.relrowsecurity, c.relreplident)
      FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
    UNION ALL
    SELECT concat_ws(' ', 'col', a.attrelid::regclass::text, a.attname,
                     format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
                     a.attgenerated, a.attisdropped, pg_get_expr(d.adbin, d.adrelid))
      FROM pg_attribute a
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid IN (SELECT oid FROM rel) AND a.attnum > 0
    UNION ALL
    SELECT concat_ws(' ', 'con', conrelid::regclass::text, contypid::regtype::text, conname,
                     pg_get_constraintdef(oid), condeferrable, condeferred)
      FROM pg_constraint WHERE connamespace IN (SELECT oid FROM ns)
    UNION ALL
    SELECT concat_ws(' ', 'index', pg_get_indexdef(indexrelid))
      FROM pg_index WHERE indrelid IN (SELECT oid FROM rel)
    UNION ALL
    SELECT concat_ws(' ', 'trigger', pg_get_triggerdef(oid), tgenabled)
      FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT concat_ws(' ', 'rule', pg_get_ruledef(oid))
      FROM pg_rewrite WHERE ev_class IN (SELECT oid FROM rel)
    UNION ALL
    SELECT concat_ws(' ', 'policy', polrelid::regclass::text, polname, polcmd,
                     pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))
      FROM pg_policy
    UNION ALL
    SELECT concat_ws(' ', 'function', p.oid::regprocedure::text, md5(p.prosrc), p.proacl::text)
      FROM pg_proc p WHERE pronamespace IN (SELECT oid FROM ns)
    UNION ALL
    SELECT concat_ws(' ', 'type', t.oid::regtype::text, t.typtype, t.typacl::text,
                     (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
                        FROM pg_enum WHERE enumtypid = t.oid))
      FROM pg_type t WHERE typnamespace IN (SELECT oid FROM ns)
    UNION ALL
    SELECT concat_ws(' ', 'sequence', seqrelid::regclass::text, seqtypid, seqstart,
                     seqincrement, seqmax, seqmin, seqcache, seqcycle)
      FROM pg_sequence
    UNION ALL
    SELECT concat_ws(' ', 'statistics', stxrelid::regclass::text, stxname) FROM pg_statistic_ext
    UNION ALL
    SELECT concat_ws(' ', 'extension', extname, extversion) FROM pg_extension
    UNION ALL
    SELECT concat_ws(' ', 'event trigger', evtname, evtevent, evtenabled) FROM pg_event_trigger
    UNION ALL
    SELECT concat_ws(' ', 'default acl', defaclrole, defaclobjtype, defaclacl::text)
      FROM pg_default_acl
    UNION ALL
    SELECT concat_ws(' ', 'settings', setrole, setconfig::text) FROM pg_db_role_setting
     WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
    UNION ALL
    SELECT concat_ws(' ', 'database', datallowconn, datconnlimit, datacl::text)
      FROM pg_database WHERE datname = current_database()
    UNION ALL
    SELECT concat_ws(' ', 'large objects', count(*)) FROM pg_largeobject_metadata
    UNION ALL
    SELECT concat_ws(' ', 'publication', pubname) FROM pg_publication
) AS items
"""

_USER_RELATIONS = """
SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_temp\\_%'
   AND (n.nspname NOT LIKE 'pg\\_toast%' OR c.oid IN (
        SELECT reltoastrelid FROM pg_class UNION
        SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT reltoastrelid FROM pg_class)))
"""

_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
 ORDER BY 1
"""

# A table no row was ever written to has no page; a row written, even rolled back, makes one.
_SIZES = "SELECT t, pg_relation_size(t::regclass) FROM unnest(%s::text[]) AS t"

_SEQUENCES = "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences ORDER BY 1"

# The planner's figures of every relation of ours (VACUUM sets them; a fresh table's say
# "never vacuumed"), and its statistics (ANALYZE writes them), as a fresh copy has them.
_PLANNER_FIGURES = f"""
SELECT oid::regclass::text, relpages, reltuples, relallvisible FROM pg_class
 WHERE oid IN ({_USER_RELATIONS})
"""
_SET_PLANNER_FIGURES = """
UPDATE pg_class AS c SET relpages = f.pages, reltuples = f.tuples, relallvisible = f.visible
  FROM unnest(%s::text[], %s::int[], %s::real[], %s::int[]) AS f(rel, pages, tuples, visible)
 WHERE c.oid = f.rel::regclass
   AND (c.relpages, c.reltuples, c.relallvisible) IS DISTINCT FROM (f.pages, f.tuples, f.visible)
"""
_STATISTICS = f"SELECT count(*) FROM pg_statistic WHERE starelid IN ({_USER_RELATIONS})"
_FORGET_STATISTICS = f"DELETE FROM pg_statistic WHERE starelid IN ({_USER_RELATIONS})"


@dataclass
class _Fresh:
    """What a fresh copy of the template holds: its fingerprint, its tables with their
    sizes and rows (alembic_version's, say), its sequences' values, its planner figures."""

    fingerprint: str
    tables: list[str]
    sizes: dict[str, int]
    rows: dict[str, bytes]
    sequences: list[tuple[str, int, bool]]
    planner: list[list[Any]]  # the columns of _PLANNER_FIGURES
    statistics: int

    @classmethod
    def read(cls, conn: psycopg.Connection[Any]) -> _Fresh:
        tables = [str(row[0]) for row in conn.execute(_TABLES)]
        rows = {}
        for table in tables:
            if conn.execute(f"SELECT EXISTS (SELECT FROM {table})").fetchone() == (True,):
                with conn.cursor().copy(f"COPY {table} TO STDOUT (FORMAT binary)") as copy:
                    rows[table] = b"".join(bytes(block) for block in copy)
        sequences = []
        for (sequence,) in conn.execute(_SEQUENCES).fetchall():
            found = conn.execute(f"SELECT last_value, is_called FROM {sequence}").fetchone()
            assert found is not None
            sequences.append((str(sequence), int(found[0]), bool(found[1])))
        return cls(
            fingerprint=_fingerprint(conn),
            tables=tables,
            sizes=dict(conn.execute(_SIZES, (tables,)).fetchall()),
            rows=rows,
            sequences=sequences,
            planner=[list(column) for column in zip(*conn.execute(_PLANNER_FIGURES), strict=True)],
            statistics=_count(conn, _STATISTICS),
        )


def _fingerprint(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(_FINGERPRINT).fetchone()
    assert row is not None
    return str(row[0])


def _count(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


class _PgCopies:
    """Copies of a template for the tests, each reused from test to test.

    When a test ends, every connection to its database is ended and the database renamed:
    no process of that test can reach it again, as if it were dropped.  If its schema,
    permissions and settings still match a fresh copy's (``_FINGERPRINT``), the rows of
    the tables it wrote to are deleted and VACUUM gives their pages back (a table left
    with no page is as new: its next rows are stored in the order they come, from the
    first page); the fresh copy's rows, sequence values, planner figures and statistics
    are put back, its activity counters reset, and it waits for the next test.  Else, or
    on any error, it is dropped.  (TRUNCATE would make new files of each table and its
    indexes: 25 ms a table, where DELETE and VACUUM take 5.)"""

    def __init__(self, url: str, template: str) -> None:
        self.url, self.template = url, template
        self._idle: list[str] = []
        self._fresh: _Fresh | None = None

    def take(self) -> str:
        if self._idle:
            return self._idle.pop()
        name = _database_name()
        _pg_database_ddl(self.url, f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        if self._fresh is None:
            try:
                with self._connect(name) as conn:
                    self._fresh = _Fresh.read(conn)
            except BaseException:
                _DROPS.drop(self.url, name)
                raise
        return name

    def give_back(self, name: str) -> None:
        renamed = None
        try:
            renamed = self._rename(name)
            self._empty(renamed)
        except Exception:  # noqa: BLE001 (any doubt: the copy is dropped, as it used to be)
            _DROPS.drop(self.url, renamed or name)
            return
        self._idle.append(renamed)

    def close(self) -> None:
        while self._idle:
            _DROPS.drop(self.url, self._idle.pop())

    def _connect(self, name: str) -> psycopg.Connection[Any]:
        conninfo = _admin_conninfo(_with_database(self.url, name))
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=5)

    def _rename(self, name: str) -> str:
        renamed = _database_name()
        with psycopg.connect(_admin_conninfo(self.url), autocommit=True) as admin:
            deadline = time.monotonic() + 10
            while True:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                try:
                    admin.execute(f'ALTER DATABASE "{name}" RENAME TO "{renamed}"')
                    return renamed
                except psycopg.errors.ObjectInUse:  # the ended sessions are still leaving
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)

    def _empty(self, name: str) -> None:
        fresh = self._fresh
        assert fresh is not None
        with self._connect(name) as conn:
            conn.execute("SET lock_timeout = '5s'")
            prepared = "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()"
            if _count(conn, prepared) or _fingerprint(conn) != fresh.fingerprint:
                raise RuntimeError("not as a fresh copy: drop it")
            sizes = conn.execute(_SIZES, (fresh.tables,)).fetchall()
            written = [t for t, size in sizes if size != fresh.sizes[t] or t in fresh.rows]
            with conn.transaction():
                conn.execute("SET LOCAL session_replication_role = replica")  # no FK checks
                for table in written:
                    conn.execute(f"DELETE FROM {table}")
            if written:
                conn.execute(f"VACUUM {', '.join(written)}")
            left = conn.execute(_SIZES, (written,)).fetchall()
            if any(size for _, size in left):
                raise RuntimeError(f"VACUUM left pages: {left}")
            with conn.transaction():
                for table, data in fresh.rows.items():
                    with conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:
                        copy.write(data)
                for sequence, value, called in fresh.sequences:
                    conn.execute("SELECT setval(%s, %s, %s)", (sequence, value, called))
                conn.execute(_SET_PLANNER_FIGURES, fresh.planner)
                if not fresh.statistics:
                    conn.execute(_FORGET_STATISTICS)
            # the counters autovacuum goes by, as a fresh copy's: this session's own first
            conn.execute("SELECT pg_stat_force_next_flush()")
            conn.execute("SELECT pg_stat_reset()")


_COPIES: dict[tuple[str, str], _PgCopies] = {}


def _database_name() -> str:
    return f"ticketd_t_{uuid.uuid4().hex[:12]}"


class _Drops:
    """DROP DATABASE in a thread of its own: it waits for a checkpoint, which takes
    seconds while the other worker writes, and no test needs to wait for it.  Every
    database handed over is dropped before the session ends (``drain``)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._failures: list[str] = []

    def drop(self, url: str, name: str) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="drop-database", daemon=True)
            self._thread.start()
        self._queue.put((url, name))

    def drain(self) -> list[str]:
        """Wait for the drops handed over; the ones that failed."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        failures, self._failures = self._failures, []
        return failures

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            url, name = item
            try:
                _pg_database_ddl(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # noqa: BLE001 (reported when the session ends)
                self._failures.append(f"{name}: {exc!r}")


_DROPS = _Drops()


def _fresh_pg_database(postgres_url: str, template: str | None) -> Iterator[str]:
    """A database for one test: a copy of ``template`` (reused, ``_PgCopies``), or an empty
    one of its own (``template`` None)."""
    copies = _COPIES.get((postgres_url, template)) if template else None
    if copies is None:
        name = _database_name()
        clause = f' TEMPLATE "{template}"' if template else ""
        _pg_database_ddl(postgres_url, f'CREATE DATABASE "{name}"{clause}')
        yield _with_database(postgres_url, name)
        _DROPS.drop(postgres_url, name)
        return
    name = copies.take()
    yield _with_database(postgres_url, name)
    copies.give_back(name)


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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session (as ``ticketd init`` leaves it: WAL
    mode, 0600), copied for each test: a migration run costs a test ~0.1 s of CPU."""
    path = tmp_path_factory.mktemp("sqlite-template") / "ticketd.db"
    engine = create_db_engine(DatabaseConfig(url=f"sqlite:///{path}"))
    upgrade(engine)
    engine.dispose()
    # the last connection closed checkpointed the WAL into the file and removed it
    assert not Path(f"{path}-wal").exists(), "the template's WAL was not checkpointed"
    return path


def migrated_database(backend: str, folder: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL of a database migrated to head, of ``backend``'s kind (SQLite in ``folder``,
    copied from the session's ``sqlite_template``; PostgreSQL copied from the session's
    ``postgres_template``); dropped afterwards."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = folder / "ticketd.db"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, path)
        path.chmod(0o600)
        yield f"sqlite:///{path}"
        return
    name = request.getfixturevalue("postgres_template")
    yield from _fresh_pg_database(request.getfixturevalue("postgres_url"), name)


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
    """A config file in ``directory`` that points at ``db_url``, with ``extra`` (TOML)
    merged in; no worker processes unless ``extra`` asks for them (``TEST_WORKERS``)."""
    path = directory / "config.toml"
    merged: dict[str, Any] = {
        "database": {"url": db_url},
        "smtp": dict(TEST_WORKERS),
        "web": dict(TEST_WEB),
    }
    for table, values in tomllib.loads(extra).items():
        if isinstance(values, dict) and isinstance(merged.get(table), dict):
            merged[table].update(values)
        else:
            merged[table] = values
    path.write_text(tomli_w.dumps(merged), encoding="utf-8")
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
