"""Faults the daemon must survive: a full disk under the database or under the outbound maildir.

A real ``ticketd serve`` writes to a tiny tmpfs that the test fills to the last byte. The
sender must hear a clear temporary refusal (452 4.3.1), nothing may be half-recorded, and once
space is freed the sender's retry is recorded exactly once and the waiting replies go out.
Before the disk is full, the storage reserve (``[smtp] min_free_space``) refuses mail the
same way while the database still has room.

Other faults are covered elsewhere: SIGKILL under load, SQLite locked past its timeout and a
PostgreSQL outage (``test_smtp_intake.py``); a relay that is down, then back, and a crashed
dispatcher's lease (``test_outbound_dispatch.py``).
"""

from __future__ import annotations

import json
import pwd
import random
import shutil
import smtplib
import sqlite3
import string
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine, make_url
from sqlmodel import col, select

from ticketing.config import DatabaseConfig
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.migrate import upgrade
from ticketing.store.models import Incident, Message, OutboxMessage

from .conftest import _pg_execute
from .daemon import UNLIMITED_INCIDENTS, Ticketd, free_port, wait_until
from .disks import fill, tmpfs
from .mail import make_mail

# The reserve is off unless a test says otherwise: most tests fill the disk to its last
# byte, the defence behind the reserve.
pytestmark = pytest.mark.ticketd(
    '[intake]\nunknown_senders = "accept"\n',
    UNLIMITED_INCIDENTS,
    "[smtp]\nmin_free_space = 0\n",
    "[outbound]\npoll_interval_seconds = 1\nretry_initial_seconds = 1\nretry_max_seconds = 2\n",
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: small enough to fill in a moment."""
    (tmp_path / "small").mkdir()
    with tmpfs(tmp_path / "small", "size=4m") as mount:
        yield mount


@pytest.fixture
def pg_on_small_disk(postgres_url: str) -> Iterator[tuple[str, Path]]:
    """A PostgreSQL database whose tables live in a tablespace on a 32 MiB tmpfs.

    The tablespace must be on the server's machine, so this needs a local server.
    """
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no local postgres user: the PostgreSQL server is not on this machine")
    root = Path(tempfile.mkdtemp(prefix="ticketd-ts-"))  # under /tmp: postgres can reach it
    root.chmod(0o755)
    name = f"ticketd_full_{uuid.uuid4().hex[:10]}"
    options = f"size=32m,uid={owner.pw_uid},gid={owner.pw_gid},mode=0700"
    with tmpfs(root, options):
        (root / "ts").mkdir()
        shutil.chown(root / "ts", owner.pw_uid, owner.pw_gid)
        _pg_execute(postgres_url, f"CREATE TABLESPACE {name} LOCATION '{root / 'ts'}'")
        try:
            _pg_execute(postgres_url, f'CREATE DATABASE "{name}" TABLESPACE {name}')
            yield make_url(postgres_url).set(database=name).render_as_string(False), root
        finally:
            _pg_execute(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            _pg_execute(postgres_url, f"DROP TABLESPACE IF EXISTS {name}")
    root.rmdir()


def _migrated(url: str) -> Engine:
    engine = create_db_engine(DatabaseConfig(url=url))
    upgrade(engine)
    return engine


def _maildir(path: Path) -> str:
    return f'[outbound]\nmaildir = "{path}"\n'


def _message_ids(engine: Engine) -> list[str | None]:
    with transaction(engine, readonly=True) as session:
        return sorted(session.exec(select(Message.message_id)).all(), key=str)


def _outbox(engine: Engine) -> list[tuple[str, int, str | None]]:
    with transaction(engine, readonly=True) as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
        return [(row.status, row.attempts, row.last_error) for row in rows]


def _delivered(maildir: Path) -> list[Path]:
    return sorted((maildir / "new").glob("*")) if (maildir / "new").is_dir() else []


def _mail_ids(maildir: Path) -> list[str]:
    """The Message-IDs of the delivered mail: each file whole, none twice."""
    return [
        str(message_from_bytes(path.read_bytes(), policy=policy.default)["Message-ID"])
        for path in _delivered(maildir)
    ]


def _outbox_ids(engine: Engine) -> list[str]:
    with transaction(engine, readonly=True) as session:
        return list(session.exec(select(OutboxMessage.message_id)).all())


def _incidents(engine: Engine) -> int:
    with transaction(engine, readonly=True) as session:
        return int(session.exec(select(func.count()).select_from(Incident)).one())


def _all_sent(engine: Engine, maildir: Path) -> bool:
    rows = _outbox(engine)
    return (
        bool(rows)
        and {status for status, _, _ in rows} == {"sent"}
        and len(_delivered(maildir)) == len(rows)
    )


def test_full_database_disk_answers_452_then_records_the_retry_once(
    small_disk: Path, tmp_path: Path, ticketd: Ticketd
) -> None:
    url = f"sqlite:///{small_disk / 'ticketd.db'}"
    engine = _migrated(url)
    maildir = tmp_path / "sent"
    daemon = ticketd(_maildir(maildir), db_url=url)
    first = make_mail(message_id="<full-0@brokers.example>")
    retried = make_mail(message_id="<full-1@brokers.example>", body="Case about 2 clients.\n" * 50)
    with daemon.serve():
        assert daemon.send(first)[0] == 250
        assert wait_until(lambda: _all_sent(engine, maildir)), _outbox(engine)
        filler = fill(small_disk)
        code, text = daemon.send(retried)
        assert (code, text.split()[0]) == (452, "4.3.1"), text
        filler.unlink()
        assert _message_ids(engine) == ["<full-0@brokers.example>"], "half-recorded"
        # the first message's acknowledgement and desk copy
        assert (_incidents(engine), len(_outbox(engine))) == (1, 2)
        assert [daemon.send(retried)[0] for _ in range(2)] == [250, 250]
        assert wait_until(lambda: len(_outbox(engine)) == 4 and _all_sent(engine, maildir))
    assert _message_ids(engine) == ["<full-0@brokers.example>", "<full-1@brokers.example>"]
    assert _incidents(engine) == 2
    engine.dispose()
    with sqlite3.connect(small_disk / "ticketd.db") as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert "452" in daemon.log.read_text()
    assert "Traceback" not in daemon.log.read_text()


def test_full_maildir_disk_keeps_the_reply_pending_then_delivers_it_once(
    small_disk: Path, tmp_path: Path, ticketd: Ticketd
) -> None:
    url = f"sqlite:///{tmp_path / 'ticketd.db'}"
    engine = _migrated(url)
    maildir = small_disk / "sent"
    daemon = ticketd(_maildir(maildir), db_url=url)
    with daemon.serve():
        assert daemon.send(make_mail(message_id="<md-0@brokers.example>"))[0] == 250
        assert wait_until(lambda: _all_sent(engine, maildir)), _outbox(engine)
        filler = fill(small_disk)
        second = make_mail(
            message_id="<md-1@brokers.example>", subject="Escalated Case: Enrollment.PID #:174098"
        )
        assert daemon.send(second)[0] == 250
        assert wait_until(lambda: _outbox(engine)[-1][1] >= 2), _outbox(engine)
        status, _, error = _outbox(engine)[-1]
        assert status in ("pending", "sending")
        assert error is not None and "not writable" in error
        assert len(_delivered(maildir)) == 2  # the first message's ack and desk copy
        # mailbox.Maildir.add fsyncs outside its clean-up, so a failed write leaves an empty
        # file in tmp/ (never read; Maildir.clean() removes it): no mail content may be there.
        assert all(path.stat().st_size == 0 for path in (maildir / "tmp").iterdir())
        filler.unlink()
        assert wait_until(lambda: _all_sent(engine, maildir)), _outbox(engine)
        time.sleep(2)  # a second delivery, if there were one, would land within a round
    assert sorted(_mail_ids(maildir)) == sorted(_outbox_ids(engine))
    assert [status for status, _, _ in _outbox(engine)] == ["sent"] * 4  # acks, desk copies
    assert _message_ids(engine) == ["<md-0@brokers.example>", "<md-1@brokers.example>"]
    engine.dispose()


def _incompressible_text(size: int) -> str:
    """Words PostgreSQL cannot compress into the page it has: the row must grow a file."""
    rng = random.Random(53100)
    words = ("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(size))
    lines, line = [], []
    for word in words:
        line.append(word)
        if len(line) == 12:
            lines.append(" ".join(line))
            line = []
        if sum(map(len, lines)) > size:
            break
    return "\n".join(lines)


@pytest.mark.postgres
def test_full_postgres_disk_answers_452_then_records_the_retry_once(
    pg_on_small_disk: tuple[str, Path], tmp_path: Path, ticketd: Ticketd
) -> None:
    url, disk = pg_on_small_disk
    engine = _migrated(url)
    maildir = tmp_path / "sent"
    daemon = ticketd(_maildir(maildir), db_url=url)
    retried = make_mail(
        message_id="<pgfull-1@brokers.example>",
        subject="Escalated Case: Enrollment.PID #:174098",
        body=_incompressible_text(60_000),
    )
    with daemon.serve():
        assert daemon.send(make_mail(message_id="<pgfull-0@brokers.example>"))[0] == 250
        assert wait_until(lambda: _all_sent(engine, maildir)), _outbox(engine)
        filler = fill(disk)
        code, text = daemon.send(retried)
        assert (code, text.split()[0]) == (452, "4.3.1"), text
        filler.unlink()
        assert _message_ids(engine) == ["<pgfull-0@brokers.example>"], "half-recorded"
        # the first message's acknowledgement and desk copy
        assert (_incidents(engine), len(_outbox(engine))) == (1, 2)
        assert [daemon.send(retried)[0] for _ in range(2)] == [250, 250]
        assert wait_until(lambda: len(_outbox(engine)) == 4 and _all_sent(engine, maildir))
    assert _message_ids(engine) == ["<pgfull-0@brokers.example>", "<pgfull-1@brokers.example>"]
    engine.dispose()


def leave_free(disk: Path, free: int) -> Path:
    """A file that takes all but ``free`` bytes of ``disk``."""
    filler = disk / f"filler-{uuid.uuid4().hex}"
    with filler.open("wb") as handle:
        handle.write(b"\0" * (shutil.disk_usage(disk).free - free))
    return filler


_RESERVE = 1 << 20


def send_sized(port: int, raw: bytes) -> tuple[int, str]:
    """One message whose MAIL announces its size (``SIZE=``), as most clients do."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("producer.example")
        code, text = client.mail("sam@brokers.example", [f"SIZE={len(raw)}"])
        if code >= 400:
            return code, text.decode()
        client.rcpt("escalations@exchange.example")
        code, text = client.data(raw)
        return code, text.decode()


def _ready(port: int) -> tuple[int, str]:
    """``/readyz``: the status and what it says about storage."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=20) as response:
            return response.status, json.loads(response.read())["storage"]
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["storage"]


def test_storage_reserve_refuses_mail_before_the_disk_is_full(
    small_disk: Path, tmp_path: Path, ticketd: Ticketd
) -> None:
    url = f"sqlite:///{small_disk / 'ticketd.db'}"
    engine = _migrated(url)
    http = free_port()
    daemon = ticketd(
        _maildir(tmp_path / "sent"),
        f"[smtp]\nmin_free_space = {_RESERVE}\n",
        f"[observability]\nhttp_port = {http}\n",
        db_url=url,
    )
    sized = make_mail(message_id="<low-0@brokers.example>")
    big = make_mail(message_id="<low-1@brokers.example>", body="Case about 2 clients.\n" * 20_000)
    small = make_mail(message_id="<low-2@brokers.example>", subject="Escalated Case: PID #:174098")
    with daemon.serve():
        assert _ready(http) == (200, "ok")
        filler = leave_free(small_disk, _RESERVE - 1)
        code, text = send_sized(daemon.port, sized)  # refused at MAIL, before any data
        assert (code, text.split()[0]) == (452, "4.3.1"), text
        assert _ready(http) == (503, "below the reserve")  # load balancers look elsewhere
        filler.unlink()
        assert _ready(http) == (200, "ok")
        filler = leave_free(small_disk, _RESERVE + 200_000)
        code, text = daemon.send(big)  # no SIZE=: the 440 KB are refused after DATA
        assert (code, text.split()[0]) == (452, "4.3.1"), text
        assert daemon.send(small)[0] == 250  # what fits above the reserve is taken
        assert _message_ids(engine) == ["<low-2@brokers.example>"]
        filler.unlink()
        assert [send_sized(daemon.port, sized)[0], daemon.send(big)[0]] == [250, 250]
    assert _message_ids(engine) == [f"<low-{n}@brokers.example>" for n in range(3)]
    engine.dispose()
    log = daemon.log.read_text()
    assert "storage reserve reached" in log and "min_free_space" in log
    assert "storage reserve free again" in log
    assert "Traceback" not in log
