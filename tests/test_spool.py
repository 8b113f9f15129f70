"""The intake spool: durable files, atomic claims, and what happens to a message that
fails — put back after a temporary failure, quarantined after too many attempts."""

from __future__ import annotations

import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from mailer.smtp_server import InboundEnvelope
from mailer.spool import Spool, SpooledEnvelope
from ticketing.config import Config, DatabaseConfig
from ticketing.intake.build import build_pipeline
from ticketing.intake.spooled import (
    batches_by_size,
    drain_spool,
    process_claimed,
    process_claimed_batch,
    recover_claims,
)
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import RawMessage
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.models import Incident, Producer

from .mail import make_mail

SECRET = b"s" * 40


def _envelope(raw: bytes) -> SpooledEnvelope:
    envelope = InboundEnvelope(
        raw=raw,
        mail_from="sam@brokers.example",
        recipients=("escalations@exchange.example",),
        mailboxes=("escalations",),
        peer="127.0.0.1",
    )
    return SpooledEnvelope(envelope, received_at=time.time() - 60)


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    spool = Spool(tmp_path / "spool")
    spool.create()
    return spool


def test_a_spooled_message_is_private_and_reads_back_exactly(spool: Spool) -> None:
    raw = make_mail(body="Grüße\r\n.\r\nline after a dot\r\n")
    envelope = _envelope(raw)
    name = spool.put(envelope)
    path = spool.path / "new" / name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((spool.path / "new").stat().st_mode) == 0o700
    assert list((spool.path / "tmp").iterdir()) == []
    claimed = spool.claim(name, 0)
    assert claimed is not None and claimed.attempts == 1
    assert spool.read(claimed) == envelope


def test_concurrent_puts_share_folder_syncs_and_each_returns_only_once_covered(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[tuple[float, set[str]]] = []  # when each fsync began, what new/ held then

    def slow_fsync(path: Path) -> None:
        syncs.append((time.monotonic(), set(os.listdir(path))))
        time.sleep(0.005)

    monkeypatch.setattr("mailer.spool._fsync_dir", slow_fsync)
    returned: dict[str, float] = {}

    def put(_: int) -> None:
        name = spool.put(_envelope(make_mail()))
        returned[name] = time.monotonic()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(40)))
    assert len(returned) == 40 and len(syncs) < 40
    for name, at in returned.items():  # a sync that began after the rename, before the 250
        assert any(name in held and began <= at for began, held in syncs), name


def test_only_one_worker_gets_a_message(spool: Spool) -> None:
    name = spool.put(_envelope(make_mail()))
    first, second = spool.claim(name, 0), spool.claim(name, 1)
    assert first is not None and second is None
    assert spool.counts().in_progress == 1 and spool.counts().waiting == 0


def test_a_dead_workers_claims_go_back_counted_and_the_exhausted_to_quarantine(
    spool: Spool,
) -> None:
    calm, poison = (spool.put(_envelope(make_mail())) for _ in range(2))
    for _ in range(2):  # the poison message has killed a worker twice already
        taken = spool.claim(poison, 3)
        assert taken is not None
        poison = spool.release(taken)
    held = [spool.claim(calm, 3), spool.claim(poison, 3)]
    assert [c.attempts for c in held if c] == [1, 3]
    assert spool.slots() == [3]
    assert recover_claims(spool, 3, max_attempts=2) == [calm.rsplit(".", 1)[0] + ".1"]
    assert spool.counts() == spool.counts().__class__(1, 0, 1)
    reasons = list((spool.path / "quarantine").glob("*.reason"))
    assert reasons[0].read_text() == "gave up after 2 attempts\n"


def _pipeline(engine: Engine) -> IntakePipeline:
    with transaction(engine) as session:
        if session.get(Producer, 1) is None:
            session.add(Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example"))
    return build_pipeline(Config(), engine, secret=SECRET)


def test_a_committed_message_leaves_the_spool(spool: Spool, engine: Engine) -> None:
    envelope = _envelope(make_mail())
    claimed = spool.claim(spool.put(envelope), 0)
    assert claimed is not None
    result = process_claimed(spool, claimed, _pipeline(engine), max_attempts=5)
    assert result.result == "recorded" and result.outcome is not None
    assert result.outcome.incident_number
    assert spool.counts() == spool.counts().__class__(0, 0, 0)
    with transaction(engine, readonly=True) as session:
        incident = session.exec(select(Incident)).one()
    # the SLA clock starts when the sender got its 250, not when a worker got to it
    assert abs(incident.opened_at.timestamp() - envelope.received_at) < 1


def test_a_database_outage_puts_the_message_back_without_counting_an_attempt(
    spool: Spool, tmp_path: Path
) -> None:
    down = create_db_engine(DatabaseConfig(url="postgresql://postgres@127.0.0.1:9/none"))
    name = spool.put(_envelope(make_mail()))
    for _ in range(3):
        claimed = spool.claim(spool.waiting()[0], 0)
        assert claimed is not None
        pipeline = build_pipeline(Config(), down, secret=SECRET)
        assert process_claimed(spool, claimed, pipeline, max_attempts=1).result == "retry"
    assert spool.waiting() == [name]  # still attempt 0: outages never quarantine mail


class _Exploding:
    """Stands in for a pipeline with a bug (the only way to make one fail on purpose)."""

    def process(self, raw: RawMessage) -> None:
        raise RuntimeError("bug")


def test_a_message_that_keeps_failing_is_quarantined_after_the_last_attempt(
    spool: Spool,
) -> None:
    spool.put(_envelope(make_mail()))
    pipeline = cast(IntakePipeline, _Exploding())
    results = []
    for _ in range(3):
        claimed = spool.claim(spool.waiting()[0], 0)
        assert claimed is not None
        results.append(process_claimed(spool, claimed, pipeline, max_attempts=3).result)
    assert results == ["retry", "retry", "quarantined"]
    assert spool.counts().quarantined == 1 and spool.waiting() == []
    reason = next((spool.path / "quarantine").glob("*.reason")).read_text()
    assert reason == "failed 3 times: RuntimeError\n"


def test_a_damaged_spool_file_is_quarantined_not_retried(spool: Spool, engine: Engine) -> None:
    (spool.path / "new" / "00000000000000000001-damaged.0").write_bytes(b"\x00\xffnot json\n")
    assert drain_spool(spool, _pipeline(engine), 5, lambda: None) == 0
    assert spool.counts().quarantined == 1


def test_the_daemon_without_workers_records_what_a_previous_run_left(
    spool: Spool, engine: Engine
) -> None:
    woken = []
    for _ in range(3):
        spool.put(_envelope(make_mail()))
    left = spool.claim(spool.waiting()[0], 1)  # claimed by a worker that then died
    assert left is not None
    assert drain_spool(spool, _pipeline(engine), 5, lambda: woken.append(1)) == 3
    assert len(woken) == 3 and spool.counts() == spool.counts().__class__(0, 0, 0)


def test_claimed_messages_recorded_together_each_leave_the_spool(
    spool: Spool, engine: Engine
) -> None:
    subjects = [f"Escalated Case: Enrollment.PID #:{pid}" for pid in (100001, 100002, 100003)]
    names = [spool.put(_envelope(make_mail(subject=s))) for s in subjects]
    (spool.path / "new" / "00000000000000000001-damaged.0").write_bytes(b"\x00\xffnot json\n")
    claimed = [spool.claim(name, 0) for name in [*names, "00000000000000000001-damaged.0"]]
    assert all(claimed)
    results = process_claimed_batch(
        spool, [c for c in claimed if c is not None], _pipeline(engine), max_attempts=5
    )
    assert [r.result for r in results] == ["recorded", "recorded", "recorded", "quarantined"]
    numbers = {r.outcome.incident_number for r in results if r.outcome is not None}
    assert len(numbers) == 3
    assert spool.counts() == spool.counts().__class__(0, 0, 1)


def test_big_messages_are_recorded_alone_so_memory_stays_bounded(spool: Spool) -> None:
    sizes = [300, 300, 5_000, 300, 300, 300]
    names = [spool.put(_envelope(make_mail(body="x" * size))) for size in sizes]
    claimed = [c for c in (spool.claim(name, 0) for name in names) if c is not None]
    on_disk = {c.name: c.path.stat().st_size for c in claimed}
    limit = 3 * max(size for size in on_disk.values() if size < 2_000)  # three small ones
    groups = list(batches_by_size(claimed, max_bytes=limit))
    assert [c for batch in groups for c in batch] == claimed  # all of them, in order
    assert [len(batch) for batch in groups] == [2, 1, 3]  # the big one alone
