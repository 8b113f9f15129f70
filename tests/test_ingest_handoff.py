"""``ticketd ingest`` handing its message to the running daemon over ``[lmtp] socket``.

Real ``ticketd serve`` (in this process), real ``ticketd ingest`` processes started as
an MTA's pipe starts them: a new interpreter each time, the message on stdin.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from ticketing.config import DatabaseConfig
from ticketing.store.db import create_db_engine

from .daemon import SECRET_ENV, Ticketd
from .mail import make_mail

OURS = "escalations@exchange.example"
ACCEPT = '[intake]\nunknown_senders = "accept"\n'

# ``ticketd`` as its console script runs it, saying on stderr (after its own lines)
# whether the whole command line was loaded: the fast path must not need it.
_PIPE = """
import sys
from ticketing.cli import main
try:
    main(sys.argv[1:])
finally:
    print("loaded the command line:", "ticketing.cli.app" in sys.modules, file=sys.stderr)
"""


def _pipe(config: Path, raw: bytes, *args: str) -> tuple[int, str, bool]:
    """Exit status, the pipe's own stderr line(s), and whether it loaded the whole CLI."""
    command = [sys.executable, "-c", _PIPE, "--config", str(config), "ingest", *args]
    result = subprocess.run(
        command, input=raw, capture_output=True, env={**SECRET_ENV, "PATH": ""}, timeout=120
    )
    *said, loaded = result.stderr.decode().strip().splitlines()
    return result.returncode, "\n".join(said), loaded.endswith("True")


def _messages(db_url: str) -> list[tuple[str, str]]:
    """Each stored message's source and how its sender was authenticated."""
    engine = create_db_engine(DatabaseConfig(url=db_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT source, authentication FROM messages ORDER BY id"))
            return [(str(source), str(auth)) for source, auth in rows]
    finally:
        engine.dispose()


def test_ingest_hands_the_message_to_the_daemon_without_loading_the_cli(
    ticketd: Ticketd, db_url: str
) -> None:
    """With ``serve`` up, the pipe neither loads the command line nor opens the database:
    the daemon records the message (XFORWARD carries the client the MTA named, so a
    trusted MTA's mail is authenticated and another client's is not)."""
    daemon = ticketd(ACCEPT)
    trusted = ("--recipient", OURS, "--client-address", "127.0.0.1", "--helo", "mx.example")
    with daemon.serve():
        status, said, loaded = _pipe(daemon.config, make_mail(), *trusted)
        assert (status, said, loaded) == (0, "", False)
        # as a pipe gives it: LF line ends, and longer than one line may be on the wire
        piped = make_mail(body="My client cannot enroll.\n" * 200).replace(b"\r\n", b"\n")
        assert len(piped) > 4000
        status, said, _ = _pipe(daemon.config, piped, *trusted)
        assert status == 0, said
        outsider = ("--recipient", OURS, "--client-address", "192.0.2.7", "--sender", "")
        status, said, loaded = _pipe(daemon.config, make_mail(), *outsider)
        assert (status, loaded) == (0, False), said
    first, piped_in, outsiders = _messages(db_url)
    assert first[1] == piped_in[1] == "trusted_host" and outsiders[1] != "trusted_host"


def test_the_daemons_refusals_are_the_pipes_exit_statuses(ticketd: Ticketd, db_url: str) -> None:
    """A recipient not ours and a message too big are bounced (65) with the daemon's
    words; nothing is recorded twice when the MTA retries what was recorded."""
    daemon = ticketd(ACCEPT, "[smtp]\nmax_message_size = 20000\n")
    with daemon.serve():
        status, said, loaded = _pipe(daemon.config, make_mail(), "--recipient", "x@else.example")
        assert (status, loaded) == (65, False)
        assert said.startswith("ticketd: rejected: 550")
        big = make_mail(body="word " * 10_000)
        status, said, _ = _pipe(daemon.config, big, "--recipient", OURS)
        assert status == 65 and "552" in said, said
        raw = make_mail()
        assert _pipe(daemon.config, raw, "--recipient", OURS)[0] == 0
        assert _pipe(daemon.config, raw, "--recipient", OURS)[0] == 0
    assert len(_messages(db_url)) == 1


def test_without_a_daemon_the_pipe_records_the_message_itself(
    ticketd: Ticketd, db_url: str
) -> None:
    """No socket (``serve`` not running, or killed and its socket left behind): the pipe
    loads everything and records the message in its own process, as before."""
    daemon = ticketd(ACCEPT)
    status, said, loaded = _pipe(daemon.config, make_mail(), "--recipient", OURS)
    assert (status, said, loaded) == (0, "", True), said
    stale = daemon.config.parent / "var" / "lmtp.sock"
    stale.parent.mkdir(exist_ok=True)
    stale.touch()  # not a socket anyone listens on
    status, said, loaded = _pipe(daemon.config, make_mail(), "--recipient", OURS)
    assert (status, said, loaded) == (0, "", True)
    assert [source for source, _ in _messages(db_url)] == ["pipe", "pipe"]
