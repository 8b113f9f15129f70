"""The harness of the journeys: a real ``ticketd serve`` per database, mail in over SMTP,
mail out read back from the outbound maildir as the recipient's mail client reads it.

One daemon per backend serves the whole folder (``desk``, session-scoped: pytest runs
every SQLite journey, then every PostgreSQL one). Journeys share it, so each one writes
from producers of its own: the auto-reply rules count per recipient address and per
incident, and a second escalation of the same consumer by the same producer is attached
to the first. ``Steps`` collects a journey's broken promises and reports them all at
once, so a failing journey says every step that went wrong, not just the first.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import migrated_database, write_config
from tests.daemon import SECRET_ENV, ForkedProcess, free_port, serving_process, smtp_session
from tests.dns_server import AuthDns

REPO = Path(__file__).resolve().parents[2]
ESCALATIONS = "escalations@exchange.example"
PRODUCER_OPERATIONS = "producer.operations@exchange.example"
OUR_ADDRESSES = (ESCALATIONS, PRODUCER_OPERATIONS)
CASEY = "Casey Caseworker <casey@exchange.example>"
STAFF_MESSAGE_ID_DOMAIN = "BN8PR04MB6211.namprd04.prod.outlook.com"

# The producers' mail comes from another loopback address than the daemon listens on.
CLIENT_SOURCE = ("127.0.0.2", 0)
INCIDENT_NUMBER = re.compile(r"\b\d{6}-\d{7}\b")
REF_TOKEN = re.compile(r"ref:_[0-9A-Za-z]+\._[0-9A-Za-z]+:ref")
DESK_ZONE = ZoneInfo("America/New_York")
MAIL_TIMEOUT = 10.0  # a reply is in the maildir well under a second after the 250
DEAD = ("withheld", "failed", "bounced")  # outbox statuses of mail that will not arrive

MAILBOXES = f"""
[[mailboxes]]
name = "escalations"
address = "{ESCALATIONS}"
team = "escalated_cases"
pii_policy = "redact"
default_type = "enrollment"
{{imap}}
[[mailboxes]]
name = "producer-operations"
address = "{PRODUCER_OPERATIONS}"
team = "producer_operations"
pii_policy = "reject"
default_type = "commission"
"""


# --- the people --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Producer:
    """A roster row; ``phones`` and ``agency`` are the roster's optional columns."""

    npn: str
    name: str
    email: str
    language: str = "en"
    phones: str = ""
    agency: str = ""

    @property
    def sender(self) -> str:
        return f"{self.name} <{self.email}>"

    @property
    def signature(self) -> str:
        """How the producer signs: name, agency and phone, as in the roster."""
        return "\n".join(line for line in (self.name, self.agency, self.phones) if line)


def sam(npn: str, local: str) -> Producer:
    """A Sam of one journey: same person, an address (and NPN) of the journey's own."""
    return Producer(
        npn,
        "Sam Amsung",
        f"{local}@amsung-agency.example",
        phones="410-555-0142",
        agency="Amsung Insurance Agency",
    )


# Everyone in the roster when the desk starts (Nia is imported by her journey).
SAM = sam("7100001", "sam")
SAM_PII = sam("7100002", "sam.pii")
SAM_REJECT = sam("7100003", "sam.reject")
SAM_BOTH = sam("7100004", "sam.both")
SAM_COMMISSION = sam("7100005", "sam.commission")
SAM_CASEWORKER = sam("7100006", "sam.caseworker")
SAM_IMAP = sam("7100007", "sam.imap")
ROSA = Producer(
    "7200001",
    "Rosa Martínez",
    "rosa.martinez@seguros-martinez.example",
    language="es",
    phones="301-555-0199",
    agency="Seguros Martínez",
)
ROSTER = (SAM, SAM_PII, SAM_REJECT, SAM_BOTH, SAM_COMMISSION, SAM_CASEWORKER, ROSA)


def address_of(mailbox: str) -> str:
    return mailbox.rsplit("<", 1)[-1].rstrip(">").strip().lower()


# --- mail as the clients write it --------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    """A message as its reader's mail client parses it."""

    message: EmailMessage
    name: str = ""

    @classmethod
    def parse(cls, raw: bytes, name: str = "") -> Mail:
        return cls(message_from_bytes(raw, policy=policy.default), name)

    @property
    def text(self) -> str:
        """The text/plain part, as the reader sees it."""
        body = self.message.get_body(("plain",))
        text = "" if body is None else str(body.get_content())
        return text.replace("\r\n", "\n")

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"] or "").strip()

    @property
    def sent_at(self) -> datetime:
        header = self.message["Date"]
        when = getattr(header, "datetime", None) if header is not None else None
        return (when or datetime.now(UTC)).astimezone(DESK_ZONE)

    def addresses(self, header: str) -> list[str]:
        values = self.message[header]
        if values is None:
            return []
        return [a.addr_spec.lower() for a in values.addresses]

    @property
    def from_address(self) -> str | None:
        found = self.addresses("From")
        return found[0] if found else None

    @property
    def reply_to(self) -> list[str]:
        return self.addresses("Reply-To")

    @property
    def token(self) -> str | None:
        found = REF_TOKEN.search(self.text)
        return found.group(0) if found else None

    def names(self, number: str) -> bool:
        return number in self.text


def compose(
    sender: str,
    to: str,
    subject: str,
    body: str,
    *,
    cc: str | None = None,
    headers: dict[str, str] | None = None,
    message_id_domain: str | None = None,
) -> bytes:
    """A new message as a mail client sends it (CRLF, a fresh Message-ID, today's Date)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC).astimezone(DESK_ZONE))
    message["Message-ID"] = make_msgid(domain=message_id_domain or _client_domain(sender))
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes(policy=policy.SMTP)


def _client_domain(sender: str) -> str:
    """The right-hand side of a client's Message-IDs: the sender's domain, except for the
    desk's own people, whose Microsoft 365 mailboxes write ``…prod.outlook.com`` ids."""
    domain = address_of(sender).split("@")[-1]
    return STAFF_MESSAGE_ID_DOMAIN if domain == "exchange.example" else domain


def _thread_headers(original: Mail) -> dict[str, str]:
    references = " ".join(
        part for part in (str(original.message["References"] or ""), original.message_id) if part
    )
    return {"In-Reply-To": original.message_id, "References": references}


def _answer_to(original: Mail) -> str:
    """Where a client sends a reply: the Reply-To, else the From."""
    header = original.message["Reply-To"] or original.message["From"]
    return str(header)


def _base_subject(subject: str) -> str:
    return re.sub(r"^(?:(?:re|aw|fw|fwd|rv)\s*:\s*)+", "", subject, flags=re.IGNORECASE)


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def outlook_reply(
    sender: str, original: Mail, body: str, *, to: str | None = None, cc: str | None = None
) -> bytes:
    """Outlook: "RE:", the original under "-----Original Message-----" and its header
    block, not quoted line by line."""
    when = original.sent_at
    sent = f"{when:%A, %B} {when.day}, {when.year} {when.hour % 12 or 12}:{when:%M %p}"
    header_block = (
        "-----Original Message-----\n"
        f"From: {original.message['From']}\n"
        f"Sent: {sent}\n"
        f"To: {original.message['To']}\n"
        + (f"Cc: {original.message['Cc']}\n" if original.message["Cc"] else "")
        + f"Subject: {original.subject}\n"
    )
    return compose(
        sender,
        to or _answer_to(original),
        "RE: " + _base_subject(original.subject),
        f"{body}\n\n{header_block}\n{original.text}",
        cc=cc,
        headers=_thread_headers(original),
    )


def gmail_reply(sender: str, original: Mail, body: str, *, lang: str = "en") -> bytes:
    """Gmail: "Re:", an attribution line naming the original's sender, "> " quoting."""
    when = original.sent_at
    clock = f"{when.hour % 12 or 12}:{when:%M %p}"
    attribution = (
        f"El {_ES_DAYS[when.weekday()]}, {when.day} {_ES_MONTHS[when.month - 1]} {when.year}"
        f" a las {when.hour}:{when:%M}, {original.message['From']} escribió:"
        if lang == "es"
        else f"On {when:%a, %b} {when.day}, {when.year} at {clock} "
        f"{original.message['From']} wrote:"
    )
    return _quoting_reply(sender, original, body, attribution)


def apple_reply(sender: str, original: Mail, body: str, *, lang: str = "en") -> bytes:
    """Apple Mail: "Re:", "On <date>, at <time>, <sender> wrote:", "> " quoting."""
    when = original.sent_at
    attribution = (
        f"El {when.day} {_ES_MONTHS[when.month - 1]} {when.year}, a las {when:%H:%M}, "
        f"{original.message['From']} escribió:"
        if lang == "es"
        else f"On {when:%b} {when.day}, {when.year}, at {when:%H:%M}, "
        f"{original.message['From']} wrote:"
    )
    return _quoting_reply(sender, original, body, attribution)


def _quoting_reply(sender: str, original: Mail, body: str, attribution: str) -> bytes:
    """The reply Gmail and Apple Mail write: "Re:", the attribution, "> " quoting."""
    return compose(
        sender,
        _answer_to(original),
        "Re: " + _base_subject(original.subject),
        f"{body}\n\n{attribution}\n\n{_quoted(original.text)}\n",
        headers=_thread_headers(original),
    )


def edited_subject_reply(sender: str, original: Mail, subject: str, body: str) -> bytes:
    """A reply whose subject the producer rewrote and whose client kept no In-Reply-To:
    only the ref token in the quoted text ties it to its incident."""
    return compose(
        sender,
        _answer_to(original),
        subject,
        f"{body}\n\n-----Original Message-----\nSubject: {original.subject}\n\n{original.text}",
    )


_ES_DAYS = ("lun", "mar", "mié", "jue", "vie", "sáb", "dom")
_ES_MONTHS = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic")


def incident_in(smtp_text: str) -> str | None:
    """The incident number a 250 names, if any."""
    found = INCIDENT_NUMBER.search(smtp_text)
    return found.group(0) if found else None


# --- the desk: one ``ticketd serve`` -----------------------------------------------------------


@dataclass
class Desk:
    """A running ``ticketd serve``: its config, SMTP port and outbound maildir."""

    backend: str
    db_url: str
    config: Path
    port: int
    maildir: Path
    folder: Path
    commands: CommandLine
    dns: AuthDns
    env: dict[str, str] = field(default_factory=dict)
    process: ForkedProcess | None = None
    _parsed: dict[str, Mail] = field(default_factory=dict)

    # -- mail in

    def send_mail(
        self,
        raw: bytes,
        *,
        sender: str | None = None,
        rcpts: Sequence[str] | None = None,
        signed: bool = True,
    ) -> tuple[int, str]:
        """One SMTP session from 127.0.0.2: the first refusal, or the reply to DATA.
        The envelope defaults to what an MX would use: the From address, and our
        mailboxes among To and Cc in their order.  ``signed``: DKIM-signed by the From
        domain, as the writer's mail system does (``signed=False``: a forger's mail)."""
        if signed:
            raw = self.signed(raw)
        mail = Mail.parse(raw)
        envelope_from = sender if sender is not None else (mail.from_address or "")
        if rcpts is None:
            listed = mail.addresses("To") + mail.addresses("Cc")
            rcpts = [a for a in listed if a in OUR_ADDRESSES]
        return smtp_session(
            self.port, raw, envelope_from, rcpts, helo="mail.brokers.example", source=CLIENT_SOURCE
        )

    def signed(self, raw: bytes) -> bytes:
        """``raw`` DKIM-signed by its From domain, whose key the desk's DNS publishes."""
        return self.dns.sign_as_author(raw)

    # -- mail out

    def mails_to(self, address: str) -> list[Mail]:
        """Every mail in the outbound maildir to ``address``, in the order written."""
        address = address_of(address)
        files = [p for sub in ("new", "cur") for p in (self.maildir / sub).glob("*") if p.is_file()]
        files.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
        found = []
        for path in files:
            mail = self._parsed.get(path.name)
            if mail is None:
                mail = self._parsed[path.name] = Mail.parse(path.read_bytes(), path.name)
            if address in mail.addresses("To"):
                found.append(mail)
        return found

    def mail_for(
        self,
        address: str,
        count: int,
        timeout: float = MAIL_TIMEOUT,
        *,
        incident: str | None = None,
        what: str = "",
        queued: bool = True,
    ) -> list[Mail]:
        """Wait until the maildir holds ``count`` mails to ``address``; all of them, parsed.

        ``queued``: whatever causes the mail is committed already (a 250, a finished
        command), so its outbox row exists; once the outbox holds fewer mails to
        ``address`` that may still go out than ``count``, waiting is pointless. A
        failure says what did come and what the outbox (and the incident's history,
        when given) say about the missing mail."""
        start = time.monotonic()
        next_look = start + 1.0
        while True:
            mails = self.mails_to(address)
            now = time.monotonic()
            if len(mails) >= count or now > start + timeout:
                break
            if queued and now > next_look:
                next_look = now + 1.0
                live = [r for r in self.outbox_to(address) if r["status"] not in DEAD]
                if len(live) < count:
                    break
            time.sleep(0.05)
        if len(mails) < count:
            raise AssertionError(
                f"{what or 'mail'}: {count} mail(s) to {address} expected, "
                f"{len(mails)} arrived in {time.monotonic() - start:.0f} s "
                f"{[m.subject for m in mails]}; " + self.diagnose(address, incident)
            )
        return mails

    def diagnose(self, address: str, incident: str | None = None) -> str:
        if self.process is not None and self.process.poll() is not None:
            return f"ticketd serve exited {self.process.returncode}: {self.folder / 'serve.log'}"
        rows = [
            {k: r[k] for k in ("kind", "status", "reason") if r.get(k) is not None}
            for r in self.outbox_to(address)
        ]
        said = f"outbox rows to {address}: {rows}"
        if incident:
            events = [
                {"kind": e["kind"], "detail": e.get("detail")}
                for e in self.show(incident).get("events", [])
                if re.search(r"suppress|withh|blocked|fail", e["kind"])
            ]
            said += f"; {incident} history on replies: {events}"
        return said

    # -- the command line

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``ticketd --config <desk> ARGS`` in a process of its own; a failure (when
        ``check``) is an AssertionError naming the command and its last stderr line."""
        result = self.commands.run(["--config", str(self.config), *args], self.env)
        if check and result.returncode != 0:
            raise AssertionError(
                f"ticketd {' '.join(args)} exited {result.returncode}: "
                f"{result.stderr.strip().splitlines()[-1:] or result.stdout.strip()}"
            )
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def show(self, number: str) -> dict[str, Any]:
        return dict(self.cli_json("incidents", "show", number))

    def outbox_to(self, address: str) -> list[dict[str, Any]]:
        """The outbox rows to ``address``, oldest first."""
        rows = self.cli_json("outbox", "list", "--limit", "10000")
        mine = [r for r in rows if str(r.get("to", "")).lower() == address_of(address)]
        return sorted(mine, key=lambda r: r["id"])

    def import_producers(self, *producers: Producer) -> None:
        path = self.folder / f"roster-{uuid.uuid4().hex[:8]}.csv"
        path.write_text(roster_csv(producers), encoding="utf-8")
        self.cli("producers", "import", str(path))


def roster_csv(producers: Sequence[Producer]) -> str:
    rows = ["npn,name,email,language,phones,agency"]
    rows += [f"{p.npn},{p.name},{p.email},{p.language},{p.phones},{p.agency}" for p in producers]
    return "\n".join(rows) + "\n"


def desk_config(folder: Path, db_url: str, port: int, nameserver: str, imap: str = "") -> Path:
    """The journeys' configuration: SMTP on ``port``, replies into ``folder/sent``, sender
    authentication against the private DNS at ``nameserver``; worker processes as shipped
    (a worker a core, each message answered once a worker has committed it)."""
    return write_config(
        folder,
        db_url,
        f"""
[smtp]
port = {port}
workers = "auto"
[outbound]
transport = "maildir"
maildir = "{folder / "sent"}"
poll_interval_seconds = 1
[observability]
http_port = 0
[staff]
addresses = ["{address_of(CASEY)}"]
[authentication]
nameservers = ["{nameserver}"]
"""
        + MAILBOXES.format(imap=imap),
    )


@contextmanager
def running_desk(
    commands: CommandLine,
    backend: str,
    db_url: str,
    folder: Path,
    roster: Sequence[Producer],
    dns: AuthDns,
    imap: str = "",
    env: dict[str, str] | None = None,
) -> Iterator[Desk]:
    """Configure, import ``roster``, start ``ticketd serve``; SIGTERM at the end.
    ``env`` is what the daemon's configuration needs besides the token secret (it is
    also set in the test's own environment, which ``serve`` inherits)."""
    port = free_port()
    config = desk_config(folder, db_url, port, dns.nameserver, imap)
    desk = Desk(backend, db_url, config, port, folder / "sent", folder, commands, dns, env or {})
    if roster:
        desk.import_producers(*roster)
    with serving_process(config, port, folder / "serve.log") as proc:
        desk.process = proc
        yield desk
        assert proc.poll() is None, f"ticketd serve died: see {folder / 'serve.log'}"


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def backend(request: pytest.FixtureRequest) -> str:
    """The tests' ``backend``, session-wide here: one desk per database serves every journey."""
    return str(request.param)


@pytest.fixture(scope="session")
def commands(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CommandLine]:
    line = CommandLine(tmp_path_factory.mktemp("cli"))
    yield line
    line.close()


@pytest.fixture(scope="session")
def desk(
    backend: str,
    commands: CommandLine,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    auth_dns: AuthDns,
) -> Iterator[Desk]:
    folder = tmp_path_factory.mktemp(f"desk-{backend}")
    with (
        contextmanager(migrated_database)(backend, folder, request) as url,
        running_desk(commands, backend, url, folder, ROSTER, auth_dns) as running,
    ):
        yield running


# --- the command line --------------------------------------------------------------------------


class CommandLine:
    """Runs ``ticketd`` commands, each in a child process of its own, forked from a helper
    process that imported the command line once: a ``ticketd`` start is 1.4 s of imports,
    and the journeys run some fifty commands. The child runs ``ticketing.cli.main`` (the
    ``ticketd`` entry point) with the command's arguments, its stdout and stderr in files,
    and exits with the command's status; the environment has the token secret."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._count = 0
        with (folder / "server.log").open("ab") as log:
            self._server = subprocess.Popen(
                [sys.executable, "-c", f"from {__name__} import serve_commands; serve_commands()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=REPO,
                env={**os.environ, **SECRET_ENV},
                text=True,
            )

    def run(self, args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        self._count += 1
        out, err = (self.folder / f"{self._count}.{name}" for name in ("out", "err"))
        request = {"args": list(args), "out": str(out), "err": str(err), "env": env}
        server = self._server
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write(json.dumps(request) + "\n")
        server.stdin.flush()
        reply = server.stdout.readline()
        if not reply:
            raise AssertionError(f"the command server died: {self.folder / 'server.log'}")
        code = int(json.loads(reply)["code"])
        return subprocess.CompletedProcess(
            ["ticketd", *args], code, out.read_text(errors="replace"), err.read_text()
        )

    def close(self) -> None:
        assert self._server.stdin is not None and self._server.stdout is not None
        self._server.stdin.close()
        self._server.wait(timeout=30)
        self._server.stdout.close()


def serve_commands() -> None:
    """The helper of ``CommandLine``: one JSON request a line in, one exit status out."""
    import ticketing.cli.app  # noqa: F401  loaded once here, not in every child
    from ticketing.cli import main
    from ticketing.server import daemon  # noqa: F401  serve loads it when it runs: here, once

    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _command(main, request)
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
        sys.stdout.flush()


def _command(main: Callable[[list[str]], None], request: dict[str, Any]) -> NoReturn:
    """In the forked child: what ``ticketd ARGS`` does, then exit with its status."""
    code = 1
    try:
        for fd, path in ((1, request["out"]), (2, request["err"])):
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(handle, fd)
            os.close(handle)
        os.environ.update(request["env"])
        try:
            main(request["args"])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001  reported on the command's stderr
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# --- a journey's expectations ------------------------------------------------------------------


class Steps(AbstractContextManager["Steps"]):
    """Soft checks: every broken step of a journey is reported, in order, when it ends.

    A hard failure inside the block (a mail that never came, a command that failed)
    stops the journey and is reported after the steps that broke before it.
    """

    def __init__(self) -> None:
        self.broken: list[str] = []

    def check(self, ok: object, what: str) -> bool:
        if not ok:
            self.broken.append(what)
        return bool(ok)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if isinstance(error, AssertionError) and self.broken:
            lines = [*self.broken, f"STOPPED: {error}"]
            raise AssertionError(_report(lines)) from error
        if error is None and self.broken:
            raise AssertionError(_report(self.broken))


def _report(lines: list[str]) -> str:
    return f"{len(lines)} broken step(s):\n" + "\n".join(f"  - {line}" for line in lines)
