"""XOAUTH2 against a real Dovecot: the token command's access token logs ticketd in.

Microsoft 365 cannot run here, so its token endpoint is stood in for by a small
HTTP server: ``/token`` hands out an access token for the client-credentials
grant (what the operator's token command asks for), and ``/introspect``
(RFC 7662) is what Dovecot asks whether a token is valid.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from mailer.errors import ImapAuthError
from mailer.imap_client import ImapMailbox, ImapSettings
from tests.dovecot import DovecotServer

ACCESS_TOKEN = "eyJ0eXAiOiJKV1QifQ.test-access-token"


class TokenEndpoint(BaseHTTPRequestHandler):
    user = ""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        answer: dict[str, object]
        if self.path == "/token":
            granted = form.get("grant_type") == ["client_credentials"]
            answer = {"access_token": ACCESS_TOKEN, "token_type": "Bearer"} if granted else {}
        else:  # /introspect
            valid = form.get("token") == [ACCESS_TOKEN]
            answer = {"active": valid, "username": self.user} if valid else {"active": False}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def endpoint(imap_user: str) -> Iterator[str]:
    handler = type("Endpoint", (TokenEndpoint,), {"user": imap_user})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def oauth_dovecot(dovecot: DovecotServer, endpoint: str) -> Iterator[DovecotServer]:
    """A Dovecot that accepts XOAUTH2 only (``dovecot`` first: it skips when none)."""
    root = dovecot.root.parent / f"{dovecot.root.name}-oauth2"
    server = DovecotServer(root, introspection_url=f"{endpoint}/introspect")
    server.start()
    yield server
    server.stop()


def _token_command(tmp_path: Path, endpoint: str, grant: str) -> str:
    script = tmp_path / "m365-token.py"
    script.write_text(
        "import json, sys, urllib.request\n"
        f"data = b'grant_type={grant}&client_id=ticketd&scope=imap'\n"
        f"with urllib.request.urlopen('{endpoint}/token', data=data) as answer:\n"
        "    token = json.load(answer).get('access_token')\n"
        "if not token:\n"
        "    sys.exit('no token granted')\n"
        "print(token)\n"
    )
    return f"{sys.executable} {script}"


def _settings(server: DovecotServer, user: str, command: str) -> ImapSettings:
    return ImapSettings(
        host="127.0.0.1", port=server.port, tls="none", username=user, oauth2_token_command=command
    )


def test_the_token_commands_access_token_logs_in_with_xoauth2(
    oauth_dovecot: DovecotServer, imap_user: str, endpoint: str, tmp_path: Path
) -> None:
    command = _token_command(tmp_path, endpoint, "client_credentials")
    box = ImapMailbox.connect(_settings(oauth_dovecot, imap_user, command))
    try:
        assert box.select("INBOX").exists == 0
    finally:
        box.close()


def test_no_token_granted_is_an_authentication_error(
    oauth_dovecot: DovecotServer, imap_user: str, endpoint: str, tmp_path: Path
) -> None:
    command = _token_command(tmp_path, endpoint, "password")
    with pytest.raises(ImapAuthError, match="exited with status 1 and no token"):
        ImapMailbox.connect(_settings(oauth_dovecot, imap_user, command))


def test_a_token_the_server_does_not_accept_is_refused(
    oauth_dovecot: DovecotServer, imap_user: str, tmp_path: Path
) -> None:
    script = tmp_path / "stale.py"
    script.write_text("print('an-expired-token')\n")
    command = f"{sys.executable} {script}"
    with pytest.raises(ImapAuthError, match="XOAUTH2 refused"):
        ImapMailbox.connect(_settings(oauth_dovecot, imap_user, command))
