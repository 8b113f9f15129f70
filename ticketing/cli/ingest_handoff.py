"""``ticketd ingest``, fast: hand the message to the running daemon over its LMTP socket.

An MTA's pipe starts ``ticketd ingest`` once a message.  Importing the whole
command line, the configuration schema, the database layer and the PII guard
takes a second or more of CPU before the message is even read; behind a busy
Postfix, twenty such processes at once brought a 2-core host to 1 msg/s.  The
daemon (``ticketd serve``, which must run beside the pipe anyway: it sends the
replies and keeps the timers) has all of that loaded, and listens for LMTP on
``[lmtp] socket``.  So this module, which imports only the standard library,
reads the one key it needs, speaks LMTP to that socket (``XFORWARD`` passes the
client the MTA names, for SPF) and turns the daemon's reply into the pipe's exit
status, with the same contract as the slow path (``ticketing/intake/pipe.py``):
0 recorded, 65 never acceptable, 75 try again later.

Whenever it cannot be sure the daemon took the message in its charge — no
socket, no daemon, a command line it does not know, a config it cannot read —
it declines *before* sending the message, and ``ingest`` records it itself.
Once the message is sent, it never falls back: a lost connection is 75 (the
MTA sends it again, and a message already committed is a duplicate, a no-op).
"""

from __future__ import annotations

import os
import re
import smtplib
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HandOff", "hand_off", "parse_ingest"]

EX_OK, EX_DATAERR, EX_TEMPFAIL = 0, 65, 75
DEFAULT_SOCKET = "var/lmtp.sock"  # [lmtp] socket's default (ticketing/config/schema.py)
_TIMEOUT_SECONDS = 300.0  # the daemon answers after its commit; an MTA's pipe waits longer
_LINE_ENDS = re.compile(rb"\r\n|\r(?!\n)|\n")
_VALUED = {"--mailbox", "--recipient", "--client-address", "--helo", "--sender"}


@dataclass(frozen=True)
class HandOff:
    """What the pipe's command line says, when the fast path can take it."""

    config: Path | None
    source: str
    recipients: tuple[str, ...]
    client_address: str | None = None
    helo: str | None = None
    sender: str = ""


def parse_ingest(argv: list[str]) -> HandOff | None:
    """``argv`` (without the program) as an ``ingest`` the daemon can take, else ``None``:
    another command, ``--help``, ``--json`` or ``--mailbox`` (the daemon names mailboxes by
    address), no ``--recipient``, or anything this parser does not know."""
    config, rest = _global_options(argv)
    if not rest or rest[0] != "ingest":
        return None
    options: dict[str, list[str]] = {}
    sources: list[str] = []
    words = iter(rest[1:])
    for word in words:
        name, equals, value = word.partition("=")
        if name in _VALUED:
            found = value if equals else next(words, None)
            if found is None:
                return None
            options.setdefault(name, []).append(found)
        elif word.startswith("-") and word != "-":
            return None
        else:
            sources.append(word)
    if "--mailbox" in options or "--recipient" not in options or len(sources) > 1:
        return None
    return HandOff(
        config=config,
        source=sources[0] if sources else "-",
        recipients=tuple(options["--recipient"]),
        client_address=_last(options, "--client-address"),
        helo=_last(options, "--helo"),
        sender=_last(options, "--sender") or "",
    )


def _global_options(argv: list[str]) -> tuple[Path | None, list[str]]:
    """``--config PATH`` before the command (the only global option a pipe passes)."""
    if argv[:1] == ["--config"] and len(argv) > 1:
        return Path(argv[1]), argv[2:]
    if argv and argv[0].startswith("--config="):
        return Path(argv[0].partition("=")[2]), argv[1:]
    return None, argv


def _last(options: dict[str, list[str]], name: str) -> str | None:
    values = options.get(name)
    return values[-1] if values else None


def lmtp_socket(config: Path | None) -> Path | None:
    """The daemon's ``[lmtp] socket`` as ``serve`` resolves it, or ``None`` when the file
    cannot be read here (the slow path will say why) or there is no socket."""
    path = config or _from_environment()
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        if config is not None or os.environ.get("TICKETD_CONFIG"):
            return None  # a file asked for by name must exist: the slow path says so
        return _absolute(Path.cwd(), DEFAULT_SOCKET)  # the embedded defaults
    except (OSError, tomllib.TOMLDecodeError):
        return None
    section = document.get("lmtp", {})
    value = section.get("socket", DEFAULT_SOCKET) if isinstance(section, dict) else None
    if not isinstance(value, str) or not value:
        return None
    return _absolute(path.absolute().parent, value)


def _from_environment() -> Path:
    return Path(os.environ.get("TICKETD_CONFIG") or "config.toml")


def _absolute(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


class _Declined(Exception):
    """The daemon cannot take this message here: record it in this process instead."""


def hand_off(job: HandOff) -> int | None:
    """Deliver ``job``'s message to the daemon; its exit status, or ``None`` when the fast
    path declined before the message was sent."""
    socket_path = lmtp_socket(job.config)
    if socket_path is None:
        return None
    try:
        client = _connect(socket_path)
    except _Declined:
        return None
    try:
        _forward_the_client(client, job)
        raw = _read(job.source)  # only now: once read, stdin is not there for the slow path
    except _Declined:
        _quit(client)
        return None
    except OSError as exc:
        _quit(client)
        return None if job.source != "-" else _lost(exc)
    try:
        return _deliver(client, job, raw)
    finally:
        _quit(client)


def _read(source: str) -> bytes:
    """The message; a file that cannot be read is the slow path's to report."""
    if source == "-":
        return sys.stdin.buffer.read()
    return Path(source).read_bytes()


def _connect(socket_path: Path) -> smtplib.LMTP:
    client = smtplib.LMTP(timeout=_TIMEOUT_SECONDS)
    try:
        greeting, _ = client.connect(str(socket_path))
        code, _ = client.ehlo() if greeting == 220 else (greeting, b"")  # LHLO
    except (OSError, smtplib.SMTPException):
        client.close()
        raise _Declined from None
    if code != 250:
        client.close()
        raise _Declined
    return client


def _deliver(client: smtplib.LMTP, job: HandOff, raw: bytes) -> int:
    """The envelope, then DATA: the worst of the per-recipient replies decides."""
    try:
        code, reply = client.mail(job.sender)
        if code != 250:
            return _said(code, reply)
        refused: list[tuple[int, bytes]] = []
        accepted = [a for a in job.recipients if _recipient(client, a, refused)]
        if not accepted:
            return _said(*refused[0])
        return _data(client, raw, len(accepted))
    except smtplib.SMTPResponseException as exc:  # DATA refused before the message
        return _said(exc.smtp_code, exc.smtp_error)
    except (OSError, smtplib.SMTPException) as exc:
        return _lost(exc)


def _forward_the_client(client: smtplib.LMTP, job: HandOff) -> None:
    """``XFORWARD`` the client the MTA names; without it the daemon would judge the
    message as from nobody in particular (no SPF), so a daemon that does not offer it
    to us is declined."""
    attributes = [f"ADDR={_xtext(job.client_address)}"] if job.client_address else []
    if job.helo:
        attributes.append(f"HELO={_xtext(job.helo)}")
    if not attributes:
        return
    if not client.has_extn("xforward"):
        raise _Declined
    try:
        code, _ = client.docmd("XFORWARD", " ".join(attributes))
    except (OSError, smtplib.SMTPException):
        raise _Declined from None
    if code != 250:
        raise _Declined


def _xtext(value: str) -> str:
    """RFC 3461 xtext: ``+`` , ``=``, spaces and controls as ``+XX``."""
    return "".join(f"+{ord(c):02X}" if c in "+=" or not 33 <= ord(c) <= 126 else c for c in value)


def _recipient(client: smtplib.LMTP, address: str, refused: list[tuple[int, bytes]]) -> bool:
    code, reply = client.rcpt(address)
    if code in (250, 251):
        return True
    refused.append((code, reply))
    return False


def _data(client: smtplib.LMTP, raw: bytes, recipients: int) -> int:
    """DATA, then one reply per accepted recipient (RFC 2033); smtplib reads the first.

    An MTA's pipe hands over lines ended by LF; on the wire they end in CRLF (smtplib
    fixes the line ends of text only, never of bytes), or the daemon would read a whole
    message as one line too long.  The dedup key reads CRLF as LF: a message sent
    again by the other path is the same message."""
    code, reply = client.data(_LINE_ENDS.sub(b"\r\n", raw))
    worst = _said(code, reply)
    for _ in range(recipients - 1):
        worst = max(worst, _said(*client.getreply()), key=_severity)
    return worst


def _severity(status: int) -> int:
    return {EX_OK: 0, EX_DATAERR: 1, EX_TEMPFAIL: 2}[status]


def _said(code: int, reply: bytes | str) -> int:
    """The daemon's reply as the pipe's exit status, with its line on stderr when it is not
    a 250 (the MTA keeps it as the delivery status)."""
    if 200 <= code < 300:
        return EX_OK
    said = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    text = said.replace("\n", " ")
    if 500 <= code < 600:
        print(f"ticketd: rejected: {code} {text}", file=sys.stderr)
        return EX_DATAERR
    print(f"ticketd: temporary failure: {code} {text}", file=sys.stderr)
    return EX_TEMPFAIL


def _lost(error: Exception) -> int:
    """Connection or input lost midway: the MTA keeps the message and tries again."""
    why = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
    print(f"ticketd: temporary failure: {why}", file=sys.stderr)
    return EX_TEMPFAIL


def _quit(client: smtplib.LMTP) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()
