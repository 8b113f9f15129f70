"""``ticketd pii scan|redact`` on plain text, stdin and .eml files."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from ticketing.cli.pii_cmd import read_fields, read_source
from ticketing.config.pii_schema import PiiConfig

from .conftest import RunCli, write_config

EML = (
    "From: Kevin Brooks <kb@example.com>\r\n"
    "To: escalations@exchange.example\r\n"
    "Subject: My client Maria Gonzalez\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<p>Her SSN is 219-09-9999.</p><p>Incident 251103-0045521</p>\r\n"
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text("[pii]\nreject_threshold = 0.6\n", encoding="utf-8")
    return path


def test_scan_json_lists_types_offsets_and_scores(
    run_cli: RunCli, config: Path, tmp_path: Path
) -> None:
    source = tmp_path / "note.txt"
    source.write_text("Call her at (443) 555-0187, NPN 18234567.", encoding="utf-8")
    result = run_cli("--config", str(config), "pii", "scan", str(source), "--json")
    assert result.code == 0, result
    (finding,) = json.loads(result.out)["findings"]
    assert finding["field"] == "text" and finding["entity_type"] == "PHONE_NUMBER"
    assert (finding["start"], finding["end"]) == (12, 26) and finding["score"] >= 0.6
    assert "555" not in result.out


def test_scan_table_and_no_findings(run_cli: RunCli, config: Path, tmp_path: Path) -> None:
    source = tmp_path / "clean.txt"
    source.write_text("Following up on incident 250918-0031187.", encoding="utf-8")
    assert run_cli("--config", str(config), "pii", "scan", str(source)).out == "no findings\n"


def test_redact_eml_subject_and_html_body(run_cli: RunCli, config: Path, tmp_path: Path) -> None:
    source = tmp_path / "m.eml"
    source.write_bytes(EML.encode())
    result = run_cli("--config", str(config), "pii", "redact", str(source))
    assert result.code == 0, result
    assert result.out.startswith("Subject: My client [REDACTED:PERSON]\n\n")
    assert "Her SSN is [REDACTED:US_SSN]." in result.out
    assert "Incident 251103-0045521" in result.out


def test_stdin_is_read_and_messages_are_sniffed(
    run_cli: RunCli, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(EML.encode())))
    result = run_cli("--config", str(config), "pii", "scan", "-", "--json")
    fields = {f["field"] for f in json.loads(result.out)["findings"]}
    assert fields == {"subject", "text"}


def test_plain_text_is_one_field() -> None:
    assert read_fields(read_source(io.BytesIO(b"Hi: there\nno blank line")), PiiConfig()) == {
        "text": "Hi: there\nno blank line"
    }


def test_missing_spacy_model_is_one_line(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[pii]\nspacy_model = "en_core_web_nonexistent"\n', encoding="utf-8")
    source = tmp_path / "t.txt"
    source.write_text("SSN 219-09-9999", encoding="utf-8")
    result = run_cli("--config", str(path), "pii", "scan", str(source))
    assert result.code == 1
    (line,) = result.err.strip().splitlines()
    assert line.startswith("ticketd: [pii] spacy_model 'en_core_web_nonexistent' is not installed")


def test_config_rejects_unknown_entity_and_bad_threshold(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "[pii]\nreject_threshold = 2.0\n[pii.redact_thresholds]\nNAME = 0.5\n", encoding="utf-8"
    )
    result = run_cli("--config", str(path), "config", "check")
    assert result.code == 1
    assert "pii.reject_threshold" in result.err and "pii.redact_thresholds" in result.err


# --- the sender's context: the allow list the daemon would use ------------------------------

SIGNATURE = """Hello team,

Please look at the enrollment for PID 174097; the client is still waiting.

Thanks,
Denise Whitaker
Whitaker Lowe Benefit Partners
Office (410) 555-0134 | Cell 443.555.0178
"""
ROSTER = (
    "npn,name,email,phones,agency\n"
    "1234567,Denise Whitaker,denise@whitakerlowe.example,(410) 555-0134;443-555-0178,"
    "Whitaker Lowe Benefit Partners\n"
)


@pytest.fixture
def desk_config(run_cli: RunCli, db_url: str, tmp_path: Path) -> Path:
    """A migrated database whose roster holds Denise Whitaker (phones, agency)."""
    config = write_config(tmp_path, db_url, "[pii]\nreject_threshold = 0.6\n")
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    assert run_cli("--config", str(config), "producers", "import", str(roster)).code == 0
    return config


def _kinds(run_cli: RunCli, config: Path, *args: str) -> list[tuple[str, str]]:
    result = run_cli("--config", str(config), "pii", "scan", "--json", *args)
    assert result.code == 0, result
    return [(f["field"], f["entity_type"]) for f in json.loads(result.out)["findings"]]


def test_a_roster_producers_signature_is_theirs_with_from(
    run_cli: RunCli, desk_config: Path, tmp_path: Path
) -> None:
    source = tmp_path / "note.txt"
    source.write_text(SIGNATURE, encoding="utf-8")
    without = _kinds(run_cli, desk_config, str(source))
    assert {"PERSON", "PHONE_NUMBER"} <= {kind for _, kind in without}
    assert _kinds(run_cli, desk_config, "--from", "denise@whitakerlowe.example", str(source)) == []
    result = run_cli("--config", str(desk_config), "pii", "redact", str(source))
    assert "[REDACTED:PHONE_NUMBER]" in result.out


def test_an_emls_from_is_the_sender_and_its_attachments_are_fields(
    run_cli: RunCli, desk_config: Path, tmp_path: Path
) -> None:
    source = tmp_path / "m.eml"
    source.write_bytes(_mail("Denise Whitaker <Denise@WhitakerLowe.example>", SIGNATURE))
    assert _kinds(run_cli, desk_config, str(source)) == [("attachment:0", "US_SSN")]
    result = run_cli("--config", str(desk_config), "pii", "redact", str(source))
    assert result.code == 0, result
    assert result.out.startswith("Subject: Enrollment PID 174097\n\n")
    assert "Office (410) 555-0134 | Cell 443.555.0178" in result.out
    assert "[attachment:0 notes.txt (text/plain): stored_redacted]\n" in result.out
    assert "Client SSN [REDACTED:US_SSN]" in result.out
    assert "219-09" not in result.out


def test_an_unknown_from_is_said_and_scanned_as_a_stranger(
    run_cli: RunCli, desk_config: Path, tmp_path: Path
) -> None:
    source = tmp_path / "m.eml"
    source.write_bytes(_mail("Denise Whitaker <denise@whitakerlowe.example>", SIGNATURE))
    result = run_cli(
        "--config", str(desk_config), "pii", "redact", "--from", "x@elsewhere.example", str(source)
    )
    assert result.code == 0, result
    (warning,) = [line for line in result.err.splitlines() if "warning" in line]
    assert warning == (
        "ticketd: warning: x@elsewhere.example is neither in the producers roster nor on "
        "the staff list: scanned as an unknown sender"
    )
    # a stranger's display name is not vouched for: the signature is redacted with the rest
    assert "Thanks,\n[REDACTED:PERSON]" in result.out
    assert "[REDACTED:PHONE_NUMBER]" in result.out


def test_staff_from_the_config_need_no_database(run_cli: RunCli, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    database = tmp_path / "never-created.db"
    staff = '[staff]\naddresses = ["casey@exchange.example"]\n'
    config.write_text(f'[database]\nurl = "sqlite:///{database}"\n{staff}', encoding="utf-8")
    source = tmp_path / "note.txt"
    source.write_text("Thanks,\nCasey Marlowe\nEscalations desk", encoding="utf-8")
    named = "Casey Marlowe <casey@exchange.example>"
    assert _kinds(run_cli, config, source.as_posix()) == [("text", "PERSON")]
    assert _kinds(run_cli, config, "--from", named, source.as_posix()) == []


def _mail(sender: str, body: str) -> bytes:
    return (
        f"From: {sender}\r\n"
        "To: escalations@exchange.example\r\n"
        "Subject: Enrollment PID 174097\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n"
        "\r\n"
        "--b\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{body}\r\n"
        "--b\r\n"
        "Content-Type: text/plain; name=notes.txt\r\n"
        "Content-Disposition: attachment; filename=notes.txt\r\n"
        "\r\n"
        "Client SSN 219-09-9999\r\n"
        "--b--\r\n"
    ).encode()
