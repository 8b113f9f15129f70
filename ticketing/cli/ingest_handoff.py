"""``ticketd ingest``, fast: hand the message to the running daemon over its LMTP socket.

An MTA's pipe starts ``ticketd ingest`` once a message.  Importing the whole
command line, the configuration schema, the database layer and the PII guard
takes a second or more of CPU before the message is even read; behind a busy
Postfix, twenty such processes at once brought a 2-core host to 1 msg/s.  The
daemon (``ticketd serve``, which must run beside the pipe anyway: it sends the
replies and keeps the timers) has all of that loaded, and listens for LMTP on
``[lmtp] socket``.  So this module reads the one key it needs, speaks LMTP to
that socket (``XFORWARD`` passes the client the MTA names, for SPF) and turns
the daemon's reply into the pipe's exit status, with the same contract as the
slow path (``ticketing/intake/pipe.py``): 0 recorded, 65 never acceptable, 75
try again later.

It imports ``os``, ``sys``, ``socket`` and ``tomllib`` and nothing else — not
``smtplib`` (email, ssl, hmac: half the pipe's CPU), not ``pathlib``, not
``dataclasses`` — because every millisecond here is paid once a message, in a
new process, beside an MTA that may run several at once.  The LMTP spoken is
the little a client needs (RFC 2033, RFC 5321 replies and dot-stuffing).

Whenever it cannot be sure the daemon took the message in its charge — no
socket, no daemon, a command line it does not know, a config it cannot read —
it declines *before* sending the message, and ``ingest`` records it itself.
Once the message is sent, it never falls back: a lost connection is 75 (the
MTA sends it again, and a message already committed is a duplicate, a no-op).
"""

from __future__ import annotations

import os
import socket
import sys
import tomllib

__all__ = ["HandOff", "hand_off", "lmtp_socket", "parse_ingest"]

EX_OK, EX_DATAERR, EX_TEMPFAIL = 0, 65, 75
DEFAULT_SOCKET = "var/lmtp.sock"  # [lmtp] socket's default (ticketing/config/schema.py)
_TIMEOUT_SECONDS = 300.0  # the daemon answers after its commit; an MTA's pipe waits longer
_VALUED = frozenset({"--mailbox", "--recipient", "--client-address", "--helo", "--sender"})
_SEVERITY = {EX_OK: 0, EX_DATAERR: 1, EX_TEMPFAIL: 2}


class HandOff:
    """What the pipe's command line says, when the fast path can take it."""

    __slots__ = ("client_address", "config", "helo", "recipients", "sender", "source")

    def __init__(
        self,
        config: str | None,
        source: str,
        recipients: tuple[str, ...],
        client_address: str | None = None,
        helo: str | None = None,
        sender: str = "",
    ) -> None:
        self.config = config
        self.source = source
        self.recipients = recipients
        self.client_address = client_address
        self.helo = helo
        self.sender = sender


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


def _global_options(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--config PATH`` before the command (the only global option a pipe passes)."""
    if argv[:1] == ["--config"] and len(argv) > 1:
        return argv[1], argv[2:]
    if argv and argv[0].startswith("--config="):
        return argv[0].partition("=")[2], argv[1:]
    return None, argv


def _last(options: dict[str, list[str]], name: str) -> str | None:
    values = options.get(name)
    return values[-1] if values else None


def lmtp_socket(config: str | None) -> str | None:
    """The daemon's ``[lmtp] socket`` as ``serve`` resolves it, or ``None`` when the file
    cannot be read here (the slow path will say why) or there is no socket."""
    path = config or os.environ.get("TICKETD_CONFIG") or "config.toml"
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        if config is not None or os.environ.get("TICKETD_CONFIG"):
            return None  # a file asked for by name must exist: the slow path says so
        return _absolute(os.getcwd(), DEFAULT_SOCKET)  # the embedded defaults
    except (OSError, tomllib.TOMLDecodeError):
        return None
    section = document.get("lmtp", {})
    value = section.get("socket", DEFAULT_SOCKET) if isinstance(section, dict) else None
    if not isinstance(value, str) or not value:
        return None
    return _absolute(os.path.dirname(os.path.abspath(path)), value)


def _absolute(base: str, value: str) -> str:
    path = os.path.expanduser(value)
    return path if os.path.isabs(path) else os.path.join(base, path)


class _Declined(Exception):
    """The daemon cannot take this message here: record it in this process instead."""


class _Lost(Exception):
    """The connection failed or said something that is not LMTP, once the message was
    on its way: the MTA keeps it."""


def hand_off(job: HandOff) -> int | None:
    """Deliver ``job``'s message to the daemon; its exit status, or ``None`` when the fast
    path declined before the message was sent."""
    socket_path = lmtp_socket(job.config)
    if socket_path is None:
        return None
    try:
        client = _Lmtp.connect(socket_path)
    except (OSError, _Lost, _Declined):
        return None
    try:
        try:
            _forward_the_client(client, job)
            raw = _read(job.source)  # only now: once read, stdin is not there for the slow path
        except (_Declined, _Lost):
            return None
        except OSError as exc:
            return None if job.source != "-" else _lost(exc)
        try:
            return _deliver(client, job, raw)
        except (OSError, _Lost) as exc:
            return _lost(exc)
    finally:
        client.quit()


def _read(source: str) -> bytes:
    """The message; a file that cannot be read is the slow path's to report."""
    if source == "-":
        return sys.stdin.buffer.read()
    with open(source, "rb") as handle:
        return handle.read()


def _forward_the_client(client: _Lmtp, job: HandOff) -> None:
    """``XFORWARD`` the client the MTA names; without it the daemon would judge the
    message as from nobody in particular (no SPF), so a daemon that does not offer it
    to us is declined."""
    attributes = [f"ADDR={_xtext(job.client_address)}"] if job.client_address else []
    if job.helo:
        attributes.append(f"HELO={_xtext(job.helo)}")
    if not attributes:
        return
    if "XFORWARD" not in client.extensions:
        raise _Declined
    if client.command(f"XFORWARD {' '.join(attributes)}")[0] != 250:
        raise _Declined


def _xtext(value: str) -> str:
    """RFC 3461 xtext: ``+`` , ``=``, spaces and controls as ``+XX``."""
    return "".join(f"+{ord(c):02X}" if c in "+=" or not 33 <= ord(c) <= 126 else c for c in value)


def _deliver(client: _Lmtp, job: HandOff, raw: bytes) -> int:
    """The envelope, then DATA: the worst of the per-recipient replies decides."""
    code, text = client.command(f"MAIL FROM:<{job.sender}>")
    if code != 250:
        return _said(code, text)
    refused: list[tuple[int, str]] = []
    accepted = 0
    for address in job.recipients:
        code, text = client.command(f"RCPT TO:<{address}>")
        if code in (250, 251):
            accepted += 1
        else:
            refused.append((code, text))
    if not accepted:
        return _said(*refused[0])
    code, text = client.command("DATA")
    if code != 354:
        return _said(code, text)
    client.send_message(raw)
    worst = EX_OK
    for _ in range(accepted):  # one reply per accepted recipient (RFC 2033 §4.2)
        worst = max(worst, _said(*client.reply()), key=_SEVERITY.__getitem__)
    return worst


def _said(code: int, text: str) -> int:
    """The daemon's reply as the pipe's exit status, with its line on stderr when it is not
    a 250 (the MTA keeps it as the delivery status)."""
    if 200 <= code < 300:
        return EX_OK
    if 500 <= code < 600:
        print(f"ticketd: rejected: {code} {text}", file=sys.stderr)
        return EX_DATAERR
    print(f"ticketd: temporary failure: {code} {text}", file=sys.stderr)
    return EX_TEMPFAIL


def _lost(error: Exception) -> int:
    """Connection or input lost midway: the MTA keeps the message and tries again."""
    why = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    print(f"ticketd: temporary failure: {why or type(error).__name__}", file=sys.stderr)
    return EX_TEMPFAIL


class _Lmtp:
    """An LMTP client session on a Unix socket: commands, replies, a message."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._file = sock.makefile("rb")
        self.extensions: set[str] = set()

    @classmethod
    def connect(cls, path: str) -> _Lmtp:
        """Connected and greeted (LHLO); ``_Declined`` when the daemon is not taking mail."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(_TIMEOUT_SECONDS)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        client = cls(sock)
        if client.reply()[0] != 220:
            client.quit()
            raise _Declined
        code, text = client.command(f"LHLO {socket.gethostname() or 'localhost'}")
        if code != 250:
            client.quit()
            raise _Declined
        client.extensions = {line.split(" ", 1)[0].upper() for line in text.split("\n")}
        return client

    def command(self, line: str) -> tuple[int, str]:
        self._sock.sendall(line.encode("utf-8", "surrogateescape") + b"\r\n")
        return self.reply()

    def reply(self) -> tuple[int, str]:
        """One reply, its lines' texts joined by newlines (RFC 5321 §4.2)."""
        lines: list[str] = []
        while True:
            line = self._file.readline(4096)
            if len(line) < 4 or not line[:3].isdigit() or line[3:4] not in (b" ", b"-"):
                raise _Lost("the daemon's reply is not LMTP" if line else "connection closed")
            lines.append(line[4:].decode("utf-8", "replace").rstrip("\r\n"))
            if line[3:4] == b" ":
                return int(line[:3]), "\n".join(lines)

    def send_message(self, raw: bytes) -> None:
        """The message, each line ended by CRLF and dot-stuffed, then the final dot.

        An MTA's pipe hands over lines ended by LF; on the wire they end in CRLF, or the
        daemon would read a whole message as one line too long.  The dedup key reads CRLF
        as LF: a message sent again by the other path is the same message."""
        lines = raw.replace(b"\r\n", b"\n").split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        stuffed = (b"." + line if line.startswith(b".") else line for line in lines)
        self._sock.sendall(b"".join(line + b"\r\n" for line in stuffed) + b".\r\n")

    def quit(self) -> None:
        try:
            self._sock.sendall(b"QUIT\r\n")
            self._file.readline(4096)
        except OSError:
            pass
        finally:
            self._file.close()
            self._sock.close()
