"""``ticketd pii scan|redact`` on plain text, stdin and .eml files."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from ticketing.cli.pii_cmd import read_fields

from .conftest import RunCli

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
    assert read_fields(io.BytesIO(b"Hi: there\nno blank line")) == {
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
