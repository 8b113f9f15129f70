"""``ticketd ingest``: the MTA pipe, with sysexits exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .builders import LOCAL_CLIENT
from .conftest import write_config
from .daemon import free_port, run_ticketd
from .mail import make_mail

ACCEPT = '[intake]\nunknown_senders = "accept"\n'


def _ingest(config: Path, raw: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``ticketd ingest`` in a process of its own, ``raw`` on its stdin, as an MTA runs it."""
    return run_ticketd("--config", str(config), "ingest", *LOCAL_CLIENT, *args, stdin=raw)


def test_recorded_then_duplicate(db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, db_url, ACCEPT)
    raw = make_mail(
        to="Producer Ops <producer.operations@exchange.example>",
        subject="Commission question PID 1001",
    )
    first = _ingest(config, raw, "--json")
    assert first.returncode == 0, first.stderr
    outcome = json.loads(first.stdout)
    assert (outcome["action"], outcome["new_incident"]) == ("recorded", True)
    shown = run_ticketd(
        "--config", str(config), "incidents", "show", outcome["incident"], "--json", check=True
    )
    assert json.loads(shown.stdout)["mailbox"] == "producer-operations"
    again = _ingest(config, raw, "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["action"] == "duplicate"


def test_from_a_file_with_an_explicit_mailbox(db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, db_url, ACCEPT)
    path = tmp_path / "message.eml"
    path.write_bytes(make_mail(to="someone-else@exchange.example"))
    result = run_ticketd(
        "--config", str(config), "ingest", *LOCAL_CLIENT, "--mailbox", "escalations", str(path)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""


def test_a_message_that_can_never_be_accepted_exits_65(db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, db_url)
    result = _ingest(config, b"\n\n", "--mailbox", "escalations")
    assert result.returncode == 65
    assert result.stderr.decode().strip() == "ticketd: rejected: empty message"
    not_ours = _ingest(config, make_mail(to="nobody@elsewhere.example"))
    assert not_ours.returncode == 65
    assert b"pass --mailbox" in not_ours.stderr


def test_temporary_failures_exit_75(tmp_path: Path) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    config = write_config(tmp_path, unreachable)
    down = _ingest(config, make_mail())
    assert down.returncode == 75
    assert down.stderr.decode().startswith("ticketd: temporary failure: database unavailable")
    assert b"Traceback" not in down.stderr
    unknown = _ingest(config, make_mail(), "--mailbox", "nope")
    assert unknown.returncode == 75
    assert b"unknown mailbox 'nope'" in unknown.stderr
