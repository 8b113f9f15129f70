"""Who an operator's command is audited as (``--by``, then the account), and the
``config check`` warning about an empty ``[staff]``."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest

from .builders import LOCAL_CLIENT
from .conftest import REPO, RunCli, write_config
from .mail import make_mail

ACCOUNT_VARIABLES = ("USER", "LOGNAME", "LNAME", "USERNAME")  # what getpass.getuser() reads


@pytest.fixture
def desk(
    run_cli: RunCli, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str, str]:
    """A config and two incidents from real intake."""
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", "t" * 40)
    config = str(write_config(tmp_path, db_url, '[staff]\ndomains = ["exchange.example"]\n'))
    roster = tmp_path / "roster.csv"
    roster.write_text("npn,name,email\n1234567,Sam Amsung,sam@brokers.example\n")
    assert run_cli("--config", config, "producers", "import", str(roster)).code == 0
    numbers = []
    for person in ("1001", "1002"):
        path = tmp_path / "in.eml"
        path.write_bytes(make_mail(subject=f"Enrollment PID {person}"))
        result = run_cli("--config", config, "ingest", *LOCAL_CLIENT, "--json", str(path))
        assert result.code == 0, result
        numbers.append(str(json.loads(result.out)["incident"]))
    return config, numbers[0], numbers[1]


def _actors(run_cli: RunCli, config: str, number: str) -> list[tuple[str, str]]:
    """(event kind, actor) of what operators did on the incident."""
    shown = json.loads(run_cli("--config", config, "incidents", "show", number, "--json").out)
    kinds = ("assigned", "status_changed", "merged")
    return [(e["kind"], e["actor"]) for e in shown["events"] if e["kind"] in kinds]


def test_by_names_the_operator_of_every_command(
    run_cli: RunCli, desk: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, first, second = desk
    monkeypatch.setenv("USER", "someone-else")

    def cli(*args: str) -> None:
        result = run_cli("--config", config, "incidents", *args)
        assert result.code == 0, result

    cli("assign", first, "cw@exchange.example", "--by", "casey")
    cli("resolve", first, "--by", "casey")
    cli("reopen", first, "--by", "robin")
    cli("merge", second, "--into", first, "--by", "casey")
    cli("close", first, "--by", "robin")
    assert _actors(run_cli, config, first) == [
        ("assigned", "operator:casey"),
        ("status_changed", "operator:casey"),  # new -> open, by the assignment
        ("status_changed", "operator:casey"),
        ("status_changed", "operator:robin"),
        ("merged", "operator:casey"),
        ("status_changed", "operator:robin"),
    ]
    assert _actors(run_cli, config, second) == [
        ("status_changed", "operator:casey"),
        ("merged", "operator:casey"),
    ]


def test_without_by_the_account_from_the_environment(
    run_cli: RunCli, desk: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, first, _ = desk
    monkeypatch.setenv("USER", "alex")
    monkeypatch.setenv("LOGNAME", "lee")
    assert run_cli("--config", config, "incidents", "resolve", first).code == 0
    monkeypatch.delenv("USER")
    assert run_cli("--config", config, "incidents", "reopen", first).code == 0
    assert [a for _, a in _actors(run_cli, config, first)] == ["operator:alex", "operator:lee"]


def test_with_no_variables_the_os_account(
    run_cli: RunCli, desk: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As under systemd or in a container: no $USER, no $LOGNAME."""
    config, first, _ = desk
    for name in ACCOUNT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert run_cli("--config", config, "incidents", "close", first).code == 0
    account = pwd.getpwuid(os.getuid()).pw_name
    assert _actors(run_cli, config, first) == [("status_changed", f"operator:{account}")]


def test_by_must_be_a_name(run_cli: RunCli, desk: tuple[str, str, str]) -> None:
    config, first, _ = desk
    for bad in ("", "   ", "a\nb", "x" * 201):
        result = run_cli("--config", config, "incidents", "resolve", first, "--by", bad)
        assert result.code == 2, (bad, result)
        assert "--by" in result.err
    assert _actors(run_cli, config, first) == []


# --- config check: no staff -----------------------------------------------------------------


def test_config_check_warns_when_no_staff_is_configured(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[staff]\naddresses = []\n", encoding="utf-8")
    result = run_cli("--config", str(path), "config", "check")
    assert result.code == 0
    assert result.out.startswith(f"{path}: OK")
    [warning] = result.err.splitlines()
    assert warning.startswith(f"ticketd: warning: {path}: staff.addresses, staff.domains: ")
    assert "refused as not authorized until [staff] lists their addresses or domain" in warning
    data = json.loads(run_cli("--config", str(path), "config", "check", "--json").out)
    assert data["ok"] is True
    [found] = data["warnings"]
    assert found["key"] == "staff.addresses, staff.domains"
    assert "not authorized" in found["message"]


def test_the_shipped_config_warns_and_staff_silences_it(run_cli: RunCli, tmp_path: Path) -> None:
    shipped = run_cli("--config", str(REPO / "config.toml"), "config", "check")
    assert shipped.code == 0 and "staff.addresses, staff.domains" in shipped.err
    for staff in ('addresses = ["casey@exchange.example"]', 'domains = ["exchange.example"]'):
        path = tmp_path / "config.toml"
        path.write_text(f"[staff]\n{staff}\n", encoding="utf-8")
        result = run_cli("--config", str(path), "config", "check")
        assert (result.code, result.err) == (0, "")
        data = json.loads(run_cli("--config", str(path), "config", "check", "--json").out)
        assert data["warnings"] == []
