"""``ticketd ingest``: the MTA pipe, with sysexits exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_the_envelope_recipient_chooses_the_mailbox_and_its_policy(
    db_url: str, tmp_path: Path
) -> None:
    """Postfix passes ``${recipient}``: mail delivered to Producer Operations (policy
    ``reject``) is judged by that policy, whatever mailbox its To: names; a recipient
    that is not ours is bounced with its address said."""
    config = write_config(tmp_path, db_url, ACCEPT)
    raw = make_mail(
        to="escalations@exchange.example",
        body="My client's SSN is 219-09-9999, please fix the enrollment.\n\nSam",
    )
    ops = _ingest(config, raw, "--recipient", "Producer.Operations@exchange.example", "--json")
    assert ops.returncode == 0, ops.stderr
    assert json.loads(ops.stdout)["action"] == "pii_rejected"
    elsewhere = _ingest(config, make_mail(), "--recipient", "someone@elsewhere.example")
    assert elsewhere.returncode == 65
    assert b"someone@elsewhere.example" in elsewhere.stderr


def _as_a_service_user(config: Path, raw: bytes) -> subprocess.CompletedProcess[bytes]:
    """``ticketd ingest`` as a user who cannot read or write what is not theirs: root
    without the capabilities that override file permissions (``setpriv``), as the pipe's
    own user would run it."""
    command = [sys.executable, "-m", "ticketing", "--config", str(config), "ingest"]
    if os.geteuid() == 0:
        drop = "--bounding-set=-dac_override,-dac_read_search"
        command = ["setpriv", "--inh-caps=-all", drop, "--", *command]
    env = {**os.environ, "TICKETD_TOKEN_SECRET": ""}  # the generated secret file is used
    return subprocess.run(
        [*command, *LOCAL_CLIENT], input=raw, capture_output=True, env=env, timeout=120
    )


@pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None, reason="setpriv is not installed"
)
@pytest.mark.parametrize(
    "unusable", ["config.toml", "var/token_secret", "var/ticketd.db.writer-lock"]
)
def test_a_file_the_pipes_user_cannot_use_is_deferred_with_its_path(
    tmp_path: Path, unusable: str
) -> None:
    """A setup mistake — a config, a generated secret or a lock the pipe's user cannot
    read, left by ``init`` run as root — exits 75 (Postfix defers: no bounce, nothing
    lost) with one line that names the file, never click's 2 or a traceback."""
    db = tmp_path / "var" / "ticketd.db"
    config = write_config(tmp_path, f"sqlite:///{db}", ACCEPT)
    (tmp_path / "var").mkdir()
    run_ticketd("--config", str(config), "init", check=True)
    (tmp_path / "var" / "token_secret").write_text("k" * 64, encoding="utf-8")
    (tmp_path / "var" / "ticketd.db.writer-lock").touch()
    (tmp_path / unusable).chmod(0)
    result = _as_a_service_user(config, make_mail())
    assert result.returncode == 75, result.stderr
    line = result.stderr.decode()
    assert line.startswith("ticketd: temporary failure:") and line.count("\n") == 1, line
    assert "Permission denied" in line and Path(unusable).name in line
    (tmp_path / unusable).chmod(0o600)
    assert _as_a_service_user(config, make_mail()).returncode == 0
