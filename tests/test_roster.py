"""The producers roster: import from CSV, report rejected rows, upsert, list."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import CliResult, RunCli, write_config

GOOD = """npn,name,email,language
1234567,Sam Amsung,sam@brokers.example,en
9,Ana Ortiz,Ana.Ortiz@Brokers.example,ES
"""


def _import(run_cli: RunCli, config: Path, tmp_path: Path, text: str, *extra: str) -> CliResult:
    csv_path = tmp_path / "roster.csv"
    csv_path.write_text(text, encoding="utf-8")
    return run_cli("--config", str(config), "producers", "import", str(csv_path), *extra)


def test_import_then_list(run_cli: RunCli, db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, db_url)
    result = _import(run_cli, config, tmp_path, GOOD)
    assert result.code == 0, result
    assert result.out == "2 created, 0 updated, 0 unchanged, 0 rejected\n"
    listed = json.loads(run_cli("--config", str(config), "producers", "list", "--json").out)
    blank: dict[str, list[str] | None] = {"phones": [], "agency": None}
    assert listed == [
        {"npn": "9", "name": "Ana Ortiz", "email": "ana.ortiz@brokers.example", "language": "es"}
        | blank,
        {"npn": "1234567", "name": "Sam Amsung", "email": "sam@brokers.example", "language": "en"}
        | blank,
    ]
    table = run_cli("--config", str(config), "producers", "list").out.splitlines()
    assert table[0].split() == ["NPN", "NAME", "EMAIL", "LANG", "AGENCY"]
    assert len(table) == 3


def test_bad_rows_are_reported_and_good_rows_imported(
    run_cli: RunCli, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, db_url)
    text = (
        "\ufeffNPN , Name,Email\n"
        "1234567,Sam Amsung,sam@brokers.example\n"
        "12345678901,Too Long,long@brokers.example\n"
        "55,No Address,not-an-address\n"
        ",,\n"
        "1234567,Sam Again,sam2@brokers.example\n"
        "77,Same Mail,SAM@brokers.example\n"
        "88,,empty@brokers.example\n"
    )
    result = _import(run_cli, config, tmp_path, text)
    assert result.code == 1
    csv_path = tmp_path / "roster.csv"
    assert result.err.splitlines() == [
        f"{csv_path}:3: rejected: npn must be 1 to 10 digits",
        f"{csv_path}:4: rejected: email is not a valid address",
        f"{csv_path}:6: rejected: npn repeats line 2",
        f"{csv_path}:7: rejected: email repeats line 2",
        f"{csv_path}:8: rejected: name must be 1 to 200 characters",
    ]
    assert result.out == "1 created, 0 updated, 0 unchanged, 5 rejected\n"


def test_upsert_by_npn(run_cli: RunCli, db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, db_url)
    assert _import(run_cli, config, tmp_path, GOOD).code == 0
    changed = (
        "npn,name,email\n"
        "1234567,Sam Amsung,sam.new@brokers.example\n"
        "9,Ana Ortiz,ana.ortiz@brokers.example\n"
    )
    result = _import(run_cli, config, tmp_path, changed, "--json")
    report = json.loads(result.out)
    assert report == {"created": 0, "updated": 2, "unchanged": 0, "rejected": []}
    again = json.loads(_import(run_cli, config, tmp_path, changed, "--json").out)
    assert again["unchanged"] == 2
    listed = json.loads(run_cli("--config", str(config), "producers", "list", "--json").out)
    assert {p["email"] for p in listed} == {"sam.new@brokers.example", "ana.ortiz@brokers.example"}
    assert {p["language"] for p in listed} == {"en"}


def test_phones_and_agency_are_imported_checked_and_updated(
    run_cli: RunCli, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, db_url)
    text = (
        "npn,name,email,phones,agency\n"
        '1234567,Sam Amsung,sam@brokers.example,"(410) 555-0134; 443.555.0178",  Amsung  Agency \n'
        "55,Bad Phone,bad@brokers.example,12345,\n"
    )
    result = _import(run_cli, config, tmp_path, text)
    assert result.err.splitlines() == [
        f"{tmp_path / 'roster.csv'}:3: rejected: phones: '12345' is not a phone number (7 to 15"
        " digits)"
    ]
    [sam] = json.loads(run_cli("--config", str(config), "producers", "list", "--json").out)
    assert (sam["phones"], sam["agency"]) == (["(410) 555-0134", "443.555.0178"], "Amsung Agency")
    moved = "npn,name,email,phones\n1234567,Sam Amsung,sam@brokers.example,410-555-0199\n"
    assert json.loads(_import(run_cli, config, tmp_path, moved, "--json").out)["updated"] == 1
    [sam] = json.loads(run_cli("--config", str(config), "producers", "list", "--json").out)
    assert (sam["phones"], sam["agency"]) == (["410-555-0199"], None)


def test_email_of_another_producer_is_rejected(
    run_cli: RunCli, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, db_url)
    _import(run_cli, config, tmp_path, GOOD)
    result = _import(run_cli, config, tmp_path, "npn,name,email\n42,Other,sam@brokers.example\n")
    assert result.code == 1
    assert result.err.strip().endswith(":2: rejected: email belongs to NPN 1234567")


def test_unusable_files_are_one_line_errors(run_cli: RunCli, db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, db_url)
    missing = run_cli("--config", str(config), "producers", "import", str(tmp_path / "none.csv"))
    assert missing.code == 1
    assert missing.err.startswith("ticketd: ") and "cannot read" in missing.err
    no_email = _import(run_cli, config, tmp_path, "npn,name\n1,A\n")
    assert no_email.err == f"ticketd: {tmp_path / 'roster.csv'}: missing column(s): email\n"
