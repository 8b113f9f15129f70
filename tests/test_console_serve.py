"""The console as ``ticketd serve`` runs it: on Hypercorn beside SMTP, over real HTTP.

The first admin is made with the command line (as the README says), signs in
through the form with a real HTTP client, and the daemon stops cleanly; a taken
``[web]`` port stops the start with the key named.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.console_client import PASSWORD, STAFF_TOML
from tests.daemon import Ticketd, free_port, run_ticketd

pytestmark = pytest.mark.ticketd(STAFF_TOML)


def _add_admin(config: Path) -> None:
    """The first admin, as the README makes them: ``ticketd users add`` on the terminal."""
    result = run_ticketd(
        "--config",
        str(config),
        "users",
        "add",
        "ada@exchange.example",
        "--password-stdin",
        stdin=(PASSWORD + "\n").encode(),
    )
    assert result.returncode == 0, result.stderr


def test_the_first_admin_signs_in_to_the_served_console(ticketd: Ticketd, db_url: str) -> None:
    web = free_port()
    daemon = ticketd(f"[web]\nport = {web}\n")
    _add_admin(daemon.config)
    with daemon.serve():
        base = f"http://127.0.0.1:{web}"
        with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
            assert client.get("/queue").headers["location"].startswith("/login")
            form = client.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token is not None
            data = {"address": "ada@exchange.example", "password": PASSWORD, "csrf": token[1]}
            signed = client.post("/login", data=data)
            assert signed.status_code == 303, signed.text
            page = client.get("/users")
            assert page.status_code == 200 and "Ada Admin" in page.text
    assert f"console on http://127.0.0.1:{web}/" in daemon.log.read_text()


def test_a_taken_console_port_stops_the_start_naming_the_key(ticketd: Ticketd, db_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        daemon = ticketd(f"[web]\nport = {taken.getsockname()[1]}\n")
        result = run_ticketd("--config", str(daemon.config), "serve", timeout=60)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "[web] host, port" in stderr.strip().splitlines()[-1]
    assert "Traceback" not in stderr
