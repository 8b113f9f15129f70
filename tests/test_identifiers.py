"""Incident numbers and ref tokens."""

from __future__ import annotations

import multiprocessing
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from ticketing.config import DatabaseConfig
from ticketing.incidents.numbering import allocate_incident_number, day_key
from ticketing.incidents.records import open_incident
from ticketing.signing.tokens import RefTokens
from ticketing.store.db import create_db_engine, transaction

from .daemon import process_context

NUMBER = re.compile(r"^\d{6}-\d{7}$")
SECRET = b"k" * 40


def _open_many(url: str, count: int, start: multiprocessing.synchronize.Event) -> list[str]:
    engine = create_db_engine(DatabaseConfig(url=url, busy_timeout_ms=30_000))
    start.wait()
    numbers = []
    for _ in range(count):
        with transaction(engine) as session:
            incident = open_incident(
                session,
                type="enrollment",
                team="escalated_cases",
                mailbox="escalations",
                person_ids=["174097"],
            )
            numbers.append(incident.number)
    engine.dispose()
    return numbers


def test_eight_processes_get_distinct_numbers(db_url: str) -> None:
    ctx = process_context()
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(8) as pool:
            pending = [pool.apply_async(_open_many, (db_url, 25, start)) for _ in range(8)]
            start.set()
            numbers = [n for result in pending for n in result.get(timeout=240)]
    assert len(numbers) == 200
    assert len(set(numbers)) == 200
    assert all(NUMBER.match(n) for n in numbers)
    assert sorted(int(n[7:]) for n in numbers) == list(range(1, 201))


def test_number_uses_the_new_york_date_and_restarts_daily(engine: Engine) -> None:
    late_evening_ny = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)  # 22:30 on the 26th in New York
    next_morning = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    with transaction(engine) as session:
        first = allocate_incident_number(session, late_evening_ny)
        second = allocate_incident_number(session, late_evening_ny)
        third = allocate_incident_number(session, next_morning)
    assert (first, second, third) == ("261126-0000001", "261126-0000002", "261127-0000001")


def test_rolled_back_number_is_handed_out_again(engine: Engine) -> None:
    when = datetime(2026, 5, 28, 15, 0, tzinfo=UTC)
    with pytest.raises(RuntimeError), transaction(engine) as session:
        assert allocate_incident_number(session, when) == "260528-0000001"
        raise RuntimeError("crash before commit")
    with transaction(engine) as session:
        assert allocate_incident_number(session, when) == "260528-0000001"


def test_day_key_across_dst_change() -> None:
    # 2026-03-08 07:30 UTC is 03:30 EDT (clocks went forward at 02:00 EST)
    assert day_key(datetime(2026, 3, 8, 4, 59, tzinfo=UTC)) == "260307"
    assert day_key(datetime(2026, 3, 8, 5, 0, tzinfo=UTC)) == "260308"


def test_token_round_trip_and_shape() -> None:
    tokens = RefTokens(SECRET, "00Dtkd01")
    token = tokens.make("200528-2866868")
    assert re.fullmatch(r"ref:_00Dtkd01\._[0-9A-Za-z]{19}:ref", token)
    assert tokens.verify(token) == "200528-2866868"
    assert tokens.find(f"Thanks\nMHBE team\n{token}\n> {token}") == [token, token]


def test_every_single_character_change_is_refused() -> None:
    tokens = RefTokens(SECRET, "00Dtkd01")
    token = tokens.make("261126-0000042")
    case_start = token.index("._") + 2
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    tried = 0
    for position in range(len("ref:_"), len(token) - len(":ref")):
        if token[position] in "._":
            continue
        for char in alphabet:
            if char == token[position]:
                continue
            forged = token[:position] + char + token[position + 1 :]
            assert tokens.verify(forged) is None, (position, char)
            tried += 1
    assert tried == 61 * (len(token) - case_start - len(":ref") + len("00Dtkd01"))


def test_token_from_another_secret_or_org_is_refused() -> None:
    ours = RefTokens(SECRET, "00Dtkd01")
    theirs = RefTokens(b"another secret of enough length!!", "00Dtkd01")
    other_org = RefTokens(SECRET, "00Dother")
    assert ours.verify(theirs.make("261126-0000001")) is None
    assert ours.verify(other_org.make("261126-0000001")) is None
    assert ours.verify("ref:_00Dr01aQ5._500r06HRvE:ref") is None
    assert ours.verify("not a token") is None


def test_repr_does_not_show_the_secret() -> None:
    assert "k" * 10 not in repr(RefTokens(SECRET, "00Dtkd01"))
