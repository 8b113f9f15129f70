"""``ticketd incidents list|show`` on incidents opened through the library."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from ticketing.db import transaction
from ticketing.incidents import open_incident
from ticketing.models import Producer

from .conftest import write_config


def _seed(engine: Engine) -> tuple[str, str]:
    with transaction(engine) as session:
        producer = Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example")
        session.add(producer)
        session.flush()
        first = open_incident(
            session,
            type="enrollment",
            team="escalated_cases",
            mailbox="escalations",
            subject="Escalated Case: Enrollment.PID #:174097",
            producer_id=producer.id,
            person_ids=["174097"],
            when=datetime(2026, 11, 25, 15, tzinfo=UTC),
        )
        second = open_incident(
            session,
            type="commission",
            team="producer_operations",
            mailbox="producer-operations",
            person_ids=["1001", "1002", "1001"],
            when=datetime(2026, 11, 26, 15, tzinfo=UTC),
        )
    return first.number, second.number


def test_list_and_show(run_cli, engine: Engine, db_url: str, tmp_path: Path) -> None:
    first, second = _seed(engine)
    config = str(write_config(tmp_path, db_url))
    listed = json.loads(run_cli("--config", config, "incidents", "list", "--json").out)
    assert [i["number"] for i in listed] == [second, first]
    only_enrollment = run_cli(
        "--config", config, "incidents", "list", "--status", "new", "--limit", "1"
    )
    assert only_enrollment.out.splitlines()[1].startswith(second)
    shown = json.loads(run_cli("--config", config, "incidents", "show", second, "--json").out)
    assert shown["person_ids"] == ["1001", "1002"]
    assert shown["producer"] is None
    assert [e["kind"] for e in shown["events"]] == ["opened"]
    text = run_cli("--config", config, "incidents", "show", first).out
    assert "Sam Amsung <sam@brokers.example> NPN 1234567" in text
    assert "person ids: 174097" in text


def test_unknown_incident_is_a_clear_error(run_cli, db_url: str, tmp_path: Path) -> None:
    config = str(write_config(tmp_path, db_url))
    missing = run_cli("--config", config, "incidents", "show", "261126-0000099")
    assert (missing.code, missing.err) == (1, "ticketd: no incident 261126-0000099\n")
    malformed = run_cli("--config", config, "incidents", "show", "42")
    assert malformed.code == 1
    assert "is not an incident number" in malformed.err


def test_commands_refuse_an_uninitialised_database(run_cli, tmp_path: Path) -> None:
    config = str(write_config(tmp_path, f"sqlite:///{tmp_path / 'fresh.db'}"))
    result = run_cli("--config", config, "incidents", "list")
    assert result.code == 1
    assert result.err.startswith("ticketd: database schema is at nothing")
    assert "run 'ticketd init'" in result.err
