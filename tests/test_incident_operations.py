"""Operators' commands on incidents, and ``incidents show --json`` after real mail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .builders import LOCAL_CLIENT
from .conftest import CliResult, RunCli, write_config
from .mail import make_mail

STAFF = '[staff]\ndomains = ["caseworkers.exchange.example"]\n'


def _setup(run_cli: RunCli, tmp_path: Path, db_url: str) -> str:
    config = str(write_config(tmp_path, db_url, STAFF))
    roster = tmp_path / "roster.csv"
    roster.write_text("npn,name,email\n1234567,Sam Amsung,sam@brokers.example\n")
    assert run_cli("--config", config, "producers", "import", str(roster)).code == 0
    return config


def _ingest(run_cli: RunCli, config: str, tmp_path: Path, raw: bytes) -> dict[str, object]:
    path = tmp_path / "in.eml"
    path.write_bytes(raw)
    result = run_cli("--config", config, "ingest", *LOCAL_CLIENT, "--json", str(path))
    assert result.code == 0, result
    data: dict[str, object] = json.loads(result.out)
    return data


def _caseworker_mail(number: object, marker: str, body: str) -> bytes:
    """A caseworker's answer to Sam about ``number``, the mailbox in Cc."""
    return make_mail(
        sender="cw@caseworkers.exchange.example",
        to="sam@brokers.example",
        subject=f"RE: [{number}] your case{marker}",
        headers={"Cc": "escalations@exchange.example"},
        body=body,
    )


def test_show_lists_messages_in_order_with_direction_and_state_changes(
    run_cli: RunCli, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", "t" * 40)
    config = _setup(run_cli, tmp_path, db_url)
    number = _ingest(run_cli, config, tmp_path, make_mail())["incident"]
    _ingest(run_cli, config, tmp_path, _caseworker_mail(number, "", "Need the notice."))
    _ingest(
        run_cli,
        config,
        tmp_path,
        make_mail(subject=f"RE: [{number}] your case", body="Here it is."),
    )
    shown = json.loads(run_cli("--config", config, "incidents", "show", str(number), "--json").out)
    assert [m["direction"] for m in shown["messages"]] == ["in", "out", "in"]
    assert [(c["from"], c["to"]) for c in shown["state_changes"]] == [
        ("new", "awaiting_producer"),
        ("awaiting_producer", "open"),
    ]


def test_assign_resolve_reopen_close_merge(
    run_cli: RunCli, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", "t" * 40)
    config = _setup(run_cli, tmp_path, db_url)
    first = str(
        _ingest(run_cli, config, tmp_path, make_mail(subject="Enrollment PID 1001"))["incident"]
    )
    second = str(
        _ingest(run_cli, config, tmp_path, make_mail(subject="Enrollment PID 1002"))["incident"]
    )

    def cli(*args: str) -> CliResult:
        return run_cli("--config", config, "incidents", *args)

    cw = "cw@caseworkers.exchange.example"
    assert cli("assign", first, cw).out == f"{first}: assigned to {cw} (open); {cw} is mailed\n"
    assert cli("assign", first, "sam@brokers.example").err == (
        "ticketd: 'sam@brokers.example' is not staff: name a person of [staff] people, or an "
        "address that [staff] addresses or domains list\n"
    )
    assert cli("resolve", first).out == f"{first}: resolved; the producer is mailed\n"
    again = cli("resolve", first)
    assert (again.code, again.err) == (1, f"ticketd: incident {first} is already resolved\n")
    assert cli("reopen", first).out == f"{first}: open\n"
    assert cli("resolve", first).code == 0  # resolved again: mailed again
    assert _resolved_mail(run_cli, config) == [("sam@brokers.example", "pending")] * 2
    assert cli("reopen", first).code == 0
    assert cli("merge", second, "--into", first).out == f"{second}: merged into {first}\n"
    merged = json.loads(cli("show", second, "--json").out)
    assert (merged["status"], merged["merged_into"]) == ("closed", first)
    assert cli("close", first).out == f"{first}: closed\n"
    assert cli("merge", first, "--into", first).code == 1


def _resolved_mail(run_cli: RunCli, config: str) -> list[tuple[str, str]]:
    rows = json.loads(run_cli("--config", config, "outbox", "list", "--json").out)
    return [(r["to"], r["status"]) for r in rows if r["kind"] == "resolved"]


def test_a_caseworker_resolving_by_mail_tells_the_producer(
    run_cli: RunCli, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", "t" * 40)
    config = _setup(run_cli, tmp_path, db_url)
    number = _ingest(run_cli, config, tmp_path, make_mail())["incident"]
    staff = _caseworker_mail(number, " [resolved]", "Fixed on our side.")
    _ingest(run_cli, config, tmp_path, staff)
    assert _resolved_mail(run_cli, config) == [("sam@brokers.example", "pending")]
