"""``ticketd incidents list|show`` on incidents opened through the library or real intake."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from ticketing.incidents.records import get_incident, open_incident
from ticketing.store.audit import audit
from ticketing.store.db import transaction
from ticketing.store.models import Message, OutboxMessage, Producer

from .builders import LOCAL_CLIENT
from .conftest import RunCli, write_config
from .mail import make_mail


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


def test_list_and_show(run_cli: RunCli, engine: Engine, db_url: str, tmp_path: Path) -> None:
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


def test_unknown_incident_is_a_clear_error(run_cli: RunCli, db_url: str, tmp_path: Path) -> None:
    config = str(write_config(tmp_path, db_url))
    missing = run_cli("--config", config, "incidents", "show", "261126-0000099")
    assert (missing.code, missing.err) == (1, "ticketd: no incident 261126-0000099\n")
    malformed = run_cli("--config", config, "incidents", "show", "42")
    assert malformed.code == 1
    assert "is not an incident number" in malformed.err


def test_commands_refuse_an_uninitialised_database(run_cli: RunCli, tmp_path: Path) -> None:
    config = str(write_config(tmp_path, f"sqlite:///{tmp_path / 'fresh.db'}"))
    result = run_cli("--config", config, "incidents", "list")
    assert result.code == 1
    assert result.err.startswith("ticketd: database schema is at nothing")
    assert "run 'ticketd init'" in result.err


# --- show: the stored text, attachments, replies and why some were not sent -------------------

SSN = "123-45-6789"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def _escalate(
    run_cli: RunCli, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """Real intake: an escalation with an SSN and three attachments, then two replies
    within the hour (the second one's acknowledgement is held back)."""
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", "t" * 40)
    config = str(write_config(tmp_path, db_url))
    roster = tmp_path / "roster.csv"
    roster.write_text("npn,name,email\n1234567,Sam Amsung,sam@brokers.example\n")
    assert run_cli("--config", config, "producers", "import", str(roster)).code == 0
    first = make_mail(
        body=f"My client cannot enroll.\nClient SSN {SSN}.\n\nThanks,\nSam",
        attachments=[
            ("notes.txt", "text/plain", b"Plan year 2027, silver tier.\n"),
            ("scan.png", "image/png", PNG),
            ("ssn.txt", "text/plain", f"SSN {SSN}\n".encode()),
        ],
    )
    number = str(_ingest(run_cli, config, tmp_path, first)["incident"])
    for body in ("Any news?", "Still waiting, please call."):
        _ingest(run_cli, config, tmp_path, make_mail(subject=f"RE: [{number}] case", body=body))
    return config, number


def _ingest(run_cli: RunCli, config: str, tmp_path: Path, raw: bytes) -> dict[str, object]:
    path = tmp_path / "in.eml"
    path.write_bytes(raw)
    result = run_cli(
        "--config", config, "ingest", *LOCAL_CLIENT, "--json", "--mailbox", "escalations", str(path)
    )
    assert result.code == 0, result
    data: dict[str, object] = json.loads(result.out)
    return data


def test_show_prints_the_stored_text_and_attachments(
    run_cli: RunCli, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, number = _escalate(run_cli, tmp_path, db_url, monkeypatch)
    text = run_cli("--config", config, "incidents", "show", number)
    assert text.code == 0, text
    lines = text.out.splitlines()
    header = next(i for i, line in enumerate(lines) if "sam@brokers.example  Escalated" in line)
    assert re.fullmatch(r"  2026-\d\d-\d\d \d\d:\d\d E[SD]T  in   sam@.*", lines[header])
    body = lines[header + 1 : header + 6]
    assert body[0] == "      My client cannot enroll."
    assert body[1].startswith("      Client SSN [REDACTED:")
    assert "      attachment notes.txt (text/plain, 29 bytes): kept" in lines
    assert any(
        line.startswith("      attachment scan.png (image/png, ")
        and "dropped: it cannot be" in line
        for line in lines
    )
    assert any(
        line.startswith("      attachment ssn.txt")
        and "kept as its text, with the personal data it held removed" in line
        for line in lines
    )
    assert any(
        line.startswith("      personal data found, redacted or dropped: ") for line in lines
    )
    assert "      Still waiting, please call." in lines
    assert SSN not in text.out


def test_show_json_has_text_attachments_and_replies(
    run_cli: RunCli, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, number = _escalate(run_cli, tmp_path, db_url, monkeypatch)
    result = run_cli("--config", config, "incidents", "show", number, "--json")
    shown = json.loads(result.out)
    first = shown["messages"][0]
    assert "[REDACTED:" in first["text"] and first["text"].startswith("My client cannot enroll.")
    assert (first["kind"], first["disposition"], first["mailbox"]) == (
        "normal",
        "recorded",
        "escalations",
    )
    assert sum(first["pii_findings"].values()) >= 2  # in the text and in ssn.txt
    assert [(a["filename"], a["disposition"], a["kept"]) for a in first["attachments"]] == [
        ("notes.txt", "stored", True),
        ("scan.png", "dropped_unscannable", False),
        ("ssn.txt", "stored_redacted", True),  # its text, redacted
    ]
    assert first["attachments"][0]["content_type"] == "text/plain"
    assert shown["messages"][2]["new_text"].startswith("Still waiting")
    replies = {(r["kind"], r["to"]) for r in shown["replies"]}
    assert ("ack_new", "sam@brokers.example") in replies
    assert ("ack_reply", "sam@brokers.example") in replies
    held = [n for n in shown["not_sent"] if n["rule"] == "ack_reply_hourly"]
    assert [(n["reply_kind"], n["event"]) for n in held] == [("ack_reply", "auto_reply_suppressed")]
    assert held[0]["why"] == (
        "ack_reply not sent: one acknowledgement an hour per incident (ack_reply_hourly)"
    )
    assert SSN not in result.out


def test_show_text_says_why_a_reply_was_not_sent(
    run_cli: RunCli, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, number = _escalate(run_cli, tmp_path, db_url, monkeypatch)
    out = run_cli("--config", config, "incidents", "show", number).out
    replies = out.split("\nreplies (")[1].split("\nnot sent (")[0]
    assert "  ack_new  to sam@brokers.example  pending" in replies
    not_sent = out.split("\nnot sent (")[1].split("\nhistory (")[0]
    assert (
        "ack_reply not sent: one acknowledgement an hour per incident (ack_reply_hourly)"
        in not_sent
    )


def _withheld_reply(engine: Engine, number: str) -> None:
    """What the outbound guard leaves behind when it keeps a reply back: the row (status
    ``withheld``) and its audit event, with the types of data found, never the values."""
    with transaction(engine) as session:
        incident = get_incident(session, number)
        session.add(
            OutboxMessage(
                incident_id=incident.id,
                kind="pii_redacted",
                to_address="sam@brokers.example",
                message_id="<withheld.1@exchange.example>",
                mime=f"Subject: x\r\n\r\nYour client SSN {SSN}\r\n".encode(),
                status="withheld",
                reason="personal_data",
                created_at=datetime(2026, 11, 25, 15, 5, tzinfo=UTC),
            )
        )
        audit(
            session,
            "outbound_blocked_pii",
            incident_id=incident.id,
            created_at=datetime(2026, 11, 25, 15, 5, tzinfo=UTC),
            detail={"kind": "pii_redacted", "finding_counts": {"US_SSN": 1, "PERSON": 2}},
        )


def test_show_lists_a_withheld_reply_and_why(
    run_cli: RunCli, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    first, _ = _seed(engine)
    _withheld_reply(engine, first)
    config = str(write_config(tmp_path, db_url))
    out = run_cli("--config", config, "incidents", "show", first).out
    assert (
        "  2026-11-25 10:05 EST  pii_redacted  to sam@brokers.example  "
        "withheld: personal data found" in out
    )
    assert (
        "  2026-11-25 10:05 EST  pii_redacted withheld: the composed mail held personal data "
        "(PERSON 2, US_SSN 1)" in out
    )
    shown = json.loads(run_cli("--config", config, "incidents", "show", first, "--json").out)
    [reply] = shown["replies"]
    assert (reply["status"], reply["reason"], reply["created_at"]) == (
        "withheld",
        "personal_data",
        "2026-11-25T10:05:00-05:00",
    )
    [why] = shown["not_sent"]
    assert (why["rule"], why["finding_counts"]) == ("personal_data", {"US_SSN": 1, "PERSON": 2})
    assert SSN not in out and "Your client" not in out


def test_show_times_are_in_the_desk_timezone(
    run_cli: RunCli, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    first, _ = _seed(engine)
    config = str(write_config(tmp_path, db_url))
    text = run_cli("--config", config, "incidents", "show", first).out
    assert "opened_at:  2026-11-25 10:00 EST" in text
    shown = json.loads(run_cli("--config", config, "incidents", "show", first, "--json").out)
    assert shown["opened_at"] == "2026-11-25T10:00:00-05:00"
    assert shown["events"][0]["at"] == "2026-11-25T10:00:00-05:00"
    listed = run_cli("--config", config, "incidents", "list").out
    assert "2026-11-25 10:00 EST" in listed
    kolkata = str(write_config(tmp_path, db_url, '[sla]\ntimezone = "Asia/Kolkata"\n'))
    shown = json.loads(run_cli("--config", kolkata, "incidents", "show", first, "--json").out)
    assert shown["opened_at"] == "2026-11-25T20:30:00+05:30"
    assert (
        "opened_at:  2026-11-25 20:30 IST"
        in run_cli("--config", kolkata, "incidents", "show", first).out
    )


def test_show_never_sends_control_characters_to_the_terminal(
    run_cli: RunCli, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    first, _ = _seed(engine)
    with transaction(engine) as session:
        incident = get_incident(session, first)
        session.add(
            Message(
                incident_id=incident.id,
                direction="in",
                mailbox="escalations",
                dedup_key="k1",
                raw_sha256="0" * 64,
                sender="sam@brokers.example",
                subject="see \x1b]0;owned\x07",
                text="line one\r\n\x1b[2Jline two\n",
                received_at=datetime(2026, 11, 25, 15, 1, tzinfo=UTC),
            )
        )
    config = str(write_config(tmp_path, db_url))
    out = run_cli("--config", config, "incidents", "show", first).out
    assert "\x1b" not in out and "\x07" not in out
    assert "      line one\n      \ufffd[2Jline two\n" in out
    assert "(no text stored)" not in out
