"""``ticketd quarantine list|release|purge`` over the spool's quarantine and an IMAP
mailbox's quarantine folder on a real Dovecot, each change audited with its operator;
the retention purge the daemon runs; a released spooled message recorded by the daemon."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from mailer.smtp_server import InboundEnvelope
from mailer.spool import Spool, SpooledEnvelope
from ticketing.config import load_config
from ticketing.intake.quarantine import purge_expired
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, Message

from .conftest import RunCli, write_config
from .daemon import Ticketd, wait_until
from .dovecot import PASSWORD, DovecotServer, shared_mailbox_toml
from .mail import make_mail

QUARANTINE = "ticketd.quarantine"  # Dovecot's name of "ticketd/quarantine"
OLD = timedelta(days=20)


def _quarantine_in_spool(spool: Spool, reason: str, age: timedelta = timedelta(0)) -> str:
    """A spooled message set aside the way a worker does it; its file name."""
    envelope = InboundEnvelope(
        raw=make_mail(),
        mail_from="sam@brokers.example",
        recipients=("escalations@exchange.example",),
        mailboxes=("escalations",),
        peer="127.0.0.1",
    )
    name = spool.put(SpooledEnvelope(envelope, time.time()))
    claimed = spool.claim(name, 0)
    assert claimed is not None
    path = spool.quarantine(claimed, reason)
    when = (datetime.now(UTC) - age).timestamp()
    os.utime(path, (when, when))
    return path.name


@dataclass
class Desk:
    config: str
    spool: Spool
    client: IMAPClient

    def hold(self, *, age: timedelta = timedelta(0), reason: str = "defect") -> None:
        """A message in the IMAP quarantine folder, as the poller leaves one."""
        arrived = datetime.now(UTC) - age
        flags = [f"ticketd-{reason}".encode()] if reason else []
        self.client.append(QUARANTINE, make_mail(), flags=flags, msg_time=arrived)


@pytest.fixture
def desk(
    db_url: str,
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_user: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Desk]:
    monkeypatch.setenv("TICKETD_TEST_IMAP_PASSWORD", PASSWORD)
    monkeypatch.setenv("USER", "casey")
    config = write_config(tmp_path, db_url, shared_mailbox_toml(dovecot, imap_user))
    spool = Spool(tmp_path / "var" / "spool")
    spool.create()
    client = IMAPClient("127.0.0.1", dovecot.port, ssl=False)
    client.login(imap_user, PASSWORD)
    client.create_folder("ticketd")
    client.create_folder(QUARANTINE)
    yield Desk(str(config), spool, client)
    client.logout()


def _listed(run_cli: RunCli, config: str) -> dict[str, dict[str, object]]:
    result = run_cli("--config", config, "quarantine", "list", "--json")
    assert result.code == 0, result
    listing = json.loads(result.out)
    assert listing["problems"] == []
    return {str(m["id"]): m for m in listing["messages"]}


def _events(engine: Engine) -> list[tuple[str, str, object, object, bool]]:
    """(kind, actor, place, items, whether an arrival limit was given) of each event."""
    with transaction(engine, readonly=True) as session:
        rows = session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.kind).startswith("quarantine_"))
            .order_by(col(AuditEvent.id))
        ).all()
    return [
        (e.kind, e.actor, e.detail["place"], e.detail["items"], "arrived_before" in e.detail)
        for e in rows
    ]


def test_list_release_and_purge_over_the_spool_and_an_imap_folder(
    run_cli: RunCli, desk: Desk, engine: Engine
) -> None:
    old = _quarantine_in_spool(desk.spool, "failed 5 times: RecursionError", OLD)
    recent = _quarantine_in_spool(desk.spool, "unreadable spool file (ValueError)")
    desk.hold(age=OLD, reason="")
    desk.hold()
    listed = _listed(run_cli, desk.config)
    assert set(listed) == {f"spool:{old}", f"spool:{recent}", "escalations:1", "escalations:2"}
    assert listed[f"spool:{old}"]["reason"] == "failed 5 times: RecursionError"
    assert (listed["escalations:1"]["reason"], listed["escalations:2"]["reason"]) == ("", "defect")
    assert all(int(str(m["size"])) > 0 for m in listed.values())

    purged = run_cli("--config", desk.config, "quarantine", "purge", "--older-than", "14")
    assert (purged.code, purged.out) == (0, "purged 2 messages\n")
    assert set(_listed(run_cli, desk.config)) == {f"spool:{recent}", "escalations:2"}

    released = run_cli(
        "--config", desk.config, "quarantine", "release", f"spool:{recent}", "escalations:2",
        "--by", "robin",
    )  # fmt: skip
    assert (released.code, released.out) == (0, "released 2 messages\n")
    assert _listed(run_cli, desk.config) == {}
    assert desk.spool.waiting() == [recent.rsplit(".", 1)[0] + ".0"]  # attempts afresh
    desk.client.select_folder("INBOX", readonly=True)
    flags = desk.client.get_flags(desk.client.search(["ALL"]))
    assert [b"ticketd-defect" in f for f in flags.values()] == [False]  # its reason goes
    assert _events(engine) == [
        ("quarantine_purged", "operator:casey", "spool", [old], True),
        ("quarantine_purged", "operator:casey", "escalations", ["1"], True),
        ("quarantine_released", "operator:robin", "spool", [recent], False),
        ("quarantine_released", "operator:robin", "escalations", ["2"], False),
    ]


def test_nothing_goes_unless_named_and_unknown_ids_are_reported(
    run_cli: RunCli, desk: Desk
) -> None:
    name = _quarantine_in_spool(desk.spool, "gave up after 5 attempts")
    unnamed = run_cli("--config", desk.config, "quarantine", "purge")
    assert unnamed.code == 2 and "--all" in unnamed.err
    unknown = run_cli("--config", desk.config, "quarantine", "release", "spool:../../etc/passwd")
    assert unknown.code == 1
    assert "spool:../../etc/passwd: not in a quarantine" in unknown.err
    assert set(_listed(run_cli, desk.config)) == {f"spool:{name}"}
    everything = run_cli("--config", desk.config, "quarantine", "purge", "--all")
    assert (everything.code, everything.out) == (0, "purged 1 message\n")


def test_the_retention_purge_deletes_what_is_older_than_the_limit(
    desk: Desk, engine: Engine
) -> None:
    old = _quarantine_in_spool(desk.spool, "failed 5 times: DataError", OLD)
    kept = _quarantine_in_spool(desk.spool, "failed 5 times: DataError", timedelta(days=13))
    desk.hold(age=OLD)
    desk.hold(age=timedelta(days=13))
    config = load_config(Path(desk.config)).config
    settled = purge_expired(config, engine, datetime.now(UTC))
    assert sorted(settled.done) == sorted([f"spool:{old}", "escalations:1"])
    assert [q.name for q in desk.spool.quarantined()] == [kept]
    assert [event[:3] for event in _events(engine)] == [
        ("quarantine_purged", "system", "spool"),
        ("quarantine_purged", "system", "escalations"),
    ]
    forever = config.model_copy(
        update={"intake": config.intake.model_copy(update={"quarantine_retention_days": 0})}
    )
    assert purge_expired(forever, engine, datetime.now(UTC) + OLD).done == []


@pytest.mark.ticketd('[intake]\nunknown_senders = "accept"\n')
def test_a_released_spooled_message_is_recorded_by_a_daemon_without_workers(
    run_cli: RunCli, ticketd: Ticketd, engine: Engine, tmp_path: Path
) -> None:
    """Released while the daemon is down here; one that runs picks it up within a minute
    (the same job, ``spool drain``, every 60 s)."""
    daemon = ticketd()
    spool = Spool(tmp_path / "var" / "spool")
    spool.create()
    name = _quarantine_in_spool(spool, "failed 5 times: RecursionError")
    released = run_cli("--config", str(daemon.config), "quarantine", "release", f"spool:{name}")
    assert released.code == 0, released

    def recorded() -> bool:
        with transaction(engine, readonly=True) as session:
            return session.exec(select(Message)).first() is not None

    with daemon.serve():
        assert wait_until(recorded, timeout=60)
    assert spool.quarantined() == [] and spool.waiting() == []
