"""Connecting to a real Dovecot: each TLS mode does what it says and never falls back
to plaintext; bad credentials and failing token commands are clear errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mailer.errors import ImapAuthError, ImapError
from mailer.imap_client import ImapMailbox, ImapSettings, oauth2_token
from tests.builders import TlsFiles
from tests.dovecot import PASSWORD, DovecotServer
from ticketing.config import validate_config
from ticketing.errors import ConfigError


def _settings(port: int, user: str, **extra: Any) -> ImapSettings:
    settings = ImapSettings(
        host="127.0.0.1",
        port=port,
        tls="none",
        username=user,
        password=PASSWORD,
        timeout=10.0,
    )
    return replace(settings, **extra)


def test_implicit_tls_with_the_servers_ca_logs_in(
    dovecot: DovecotServer, imap_user: str, tls_files: TlsFiles
) -> None:
    settings = _settings(dovecot.tls_port, imap_user, tls="implicit", ca_file=str(tls_files.ca))
    box = ImapMailbox.connect(settings)
    try:
        assert box.select("INBOX").exists == 0
    finally:
        box.close()


def test_starttls_upgrades_before_login(
    dovecot: DovecotServer, imap_user: str, tls_files: TlsFiles
) -> None:
    settings = _settings(dovecot.port, imap_user, tls="starttls", ca_file=str(tls_files.ca))
    box = ImapMailbox.connect(settings)
    try:
        assert box.select("INBOX").uidvalidity > 0
    finally:
        box.close()


def test_an_untrusted_certificate_is_an_error_not_a_plaintext_login(
    dovecot: DovecotServer, imap_user: str
) -> None:
    for mode, port in (("implicit", dovecot.tls_port), ("starttls", dovecot.port)):
        with pytest.raises(ImapError, match=r"connect|SSL|certificate"):
            ImapMailbox.connect(_settings(port, imap_user, tls=mode))


@pytest.fixture
def plain_dovecot(dovecot: DovecotServer) -> Iterator[DovecotServer]:
    """A Dovecot without TLS at all (``dovecot`` first: it skips when none is installed)."""
    root = dovecot.root.parent / f"{dovecot.root.name}-plain"
    server = DovecotServer(root)
    server.start()
    yield server
    server.stop()


def test_starttls_refuses_a_server_that_does_not_offer_it(
    plain_dovecot: DovecotServer, imap_user: str
) -> None:
    with pytest.raises(ImapError, match="offers no STARTTLS; not logging in over plaintext"):
        ImapMailbox.connect(_settings(plain_dovecot.port, imap_user, tls="starttls"))


def test_a_wrong_password_is_an_authentication_error(
    dovecot: DovecotServer, imap_user: str
) -> None:
    with pytest.raises(ImapAuthError, match=r"login refused at 127\.0\.0\.1") as caught:
        ImapMailbox.connect(_settings(dovecot.port, imap_user, password="wrong"))
    assert "wrong" not in str(caught.value)


def test_a_token_command_that_fails_names_its_status_not_its_output(tmp_path: Path) -> None:
    script = tmp_path / "token.py"
    script.write_text("import sys\nprint('secret-ish output')\nsys.exit(3)\n")
    with pytest.raises(ImapAuthError, match="exited with status 3") as caught:
        oauth2_token(f"{sys.executable} {script}")
    assert "secret-ish" not in str(caught.value)
    with pytest.raises(ImapAuthError, match="could not run"):
        oauth2_token(str(tmp_path / "missing-command"))


def test_a_token_command_prints_the_token(tmp_path: Path) -> None:
    script = tmp_path / "token.py"
    script.write_text("print('  eyJ0eXAi.token  ')\n")
    assert oauth2_token(f"{sys.executable} {script}") == "eyJ0eXAi.token"


def test_an_imap_table_is_checked_key_by_key() -> None:
    box = {"name": "escalations", "address": "escalations@exchange.example", "team": "t"}
    imap = {
        "host": "imap.example",
        "username": "desk",
        "password_env": "DESK_PW",
        "tls": "ssl",
        "folder_states": {"Resolved": "done"},
    }
    with pytest.raises(ConfigError) as info:
        validate_config({"mailboxes": [box | {"imap": imap}]}, "ticketd.toml")
    text = str(info.value)
    assert "mailboxes[0].imap.tls: must be one of implicit, starttls, none" in text
    assert "mailboxes[0].imap.folder_states.Resolved: must be one of" in text
    assert "ticketd.toml" in text
