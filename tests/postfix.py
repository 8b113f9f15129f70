"""A private Postfix for the tests of ticketd behind an MTA: its own config, queue and data
folders under a temporary folder, an SMTP listener on a free loopback port, the mailbox
domain routed to one transport (ticketd's SMTP, LMTP, or a ``pipe`` to ``ticketd ingest``),
its log in a file of its own.  Started and stopped by the tests (never the system service,
which ``make services`` leaves stopped and disabled; port 25 is never used).

What a second instance needs, beside the system's (which may not even be configured):
``postfix -c DIR`` names its config folder, and as root no ``alternate_config_directories``
entry in /etc/postfix/main.cf is asked for.  Its main.cf names its own ``queue_directory``
(root's, which ``postfix start`` fills with the queue folders) and ``data_directory``
(the ``mail_owner``'s), keeps Debian's ``mail_owner`` and ``setgid_group``, and logs
through the ``postlog`` service to ``maillog_file`` (Postfix 3.4 and later) under the
temporary folder, which ``maillog_file_prefixes`` must allow.  Its master.cf runs nothing
chrooted (a chroot would need copies of the system's files in the queue folder).  Mail to
any other domain (the bounces it would send) stays in its queue, deferred by the ``retry``
transport: nothing leaves the instance, and a bounce is seen in the queue.

``make test`` installs Postfix with apt-get where it can (tests/services.sh); without it,
or without root (``postfix start`` needs it), the Postfix tests skip, and fail under
TICKETD_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.daemon import free_port, smtp_session, wait_for_port

__all__ = [
    "MAILBOX_DOMAIN",
    "OUTSIDE_CLIENT",
    "PostfixServer",
    "Queued",
    "master_entry",
    "other_users_venv",
    "postfix_binary",
    "service_user",
    "settings_named",
]

MAILBOX_DOMAIN = "exchange.example"
# A producer's mail system: another loopback address than the ones Postfix and ticketd use.
OUTSIDE_CLIENT = ("127.0.0.2", 0)
_BIN = Path("/usr/sbin")

_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = mta.ticketd-test.example
mydomain = ticketd-test.example
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# the producers' mail systems (OUTSIDE_CLIENT) are not ours: they may only send to our domain
mynetworks = 127.0.0.1/32
relay_domains = {domain}
transport_maps = inline:{{ {domain}={transport} }}
# nothing leaves this instance: mail elsewhere (a bounce to its sender) waits in the queue
default_transport = retry:no-mail-leaves-the-test-instance
alias_maps =
alias_database =
local_recipient_maps =
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_host_lookup = native
biff = no
{settings}
"""

_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
lmtp      unix  - - n -  - lmtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
{services}
"""


def postfix_binary() -> str | None:
    return shutil.which("postfix") or (
        str(_BIN / "postfix") if (_BIN / "postfix").exists() else None
    )


@dataclass(frozen=True)
class Queued:
    """One message in the queue, as ``postqueue -j`` lists it."""

    queue_id: str
    queue_name: str  # active, deferred, hold, incoming, maildrop
    sender: str  # "" for a delivery status notification (a bounce)
    recipients: tuple[str, ...]
    reasons: tuple[str, ...]  # why each recipient waits (empty while not tried yet)

    @classmethod
    def of(cls, entry: dict[str, Any]) -> Queued:
        listed: list[dict[str, Any]] = entry.get("recipients", [])
        return cls(
            queue_id=str(entry["queue_id"]),
            queue_name=str(entry["queue_name"]),
            sender=str(entry["sender"]),
            recipients=tuple(str(r["address"]) for r in listed),
            reasons=tuple(str(r.get("delay_reason", "")) for r in listed),
        )

    @property
    def deferred(self) -> bool:
        """Tried and put back for a later try (not a message still on its first way)."""
        return self.queue_name == "deferred" and any(self.reasons)


class PostfixServer:
    """A private Postfix under ``root`` that relays ``domain`` to ``transport``
    (``smtp:[127.0.0.1]:PORT``, ``lmtp:unix:/path``, ``lmtp:inet:127.0.0.1:PORT``, or the
    name of a service of ``services`` followed by ``:``); ``services`` are more master.cf
    lines, ``settings`` more main.cf lines."""

    def __init__(
        self,
        root: Path,
        transport: str,
        *,
        domain: str = MAILBOX_DOMAIN,
        services: str = "",
        settings: str = "",
    ) -> None:
        self.root = root
        self.config_dir = root / "config"
        self.port = free_port()
        self._main = _MAIN_CF.format(
            root=root, domain=domain, transport=transport, settings=settings
        )
        self._master = _MASTER_CF.format(port=self.port, services=services)
        self._running = False

    # -- the instance

    def start(self) -> None:
        binary = postfix_binary()
        if binary is None:
            raise RuntimeError("Postfix is not installed: `make services` installs it")
        self._write_config()
        self._postfix("start")
        self._running = True
        self._wait_listening()

    def stop(self) -> None:
        """Stop the master and every process it started (its pipes among them)."""
        if not self._running:
            return
        master = self._master_pid()
        self._postfix("stop")
        if master is not None:
            _wait_gone(master)
        self._running = False

    def _write_config(self) -> None:
        self.root.chmod(0o755)  # the mail owner and the pipe's user pass through it
        for sub in ("config", "queue", "data"):
            (self.root / sub).mkdir(exist_ok=True)
        owner = pwd.getpwnam("postfix")
        os.chown(self.root / "data", owner.pw_uid, owner.pw_gid)
        (self.config_dir / "main.cf").write_text(self._main, encoding="utf-8")
        (self.config_dir / "master.cf").write_text(self._master, encoding="utf-8")

    def _postfix(self, command: str) -> None:
        result = self._run(_BIN / "postfix", "-c", str(self.config_dir), command)
        if result.returncode != 0:
            raise RuntimeError(f"postfix {command}: {result.stderr.strip()} {self.log()}")

    def _run(self, program: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(program), *args], capture_output=True, text=True, timeout=60, check=False
        )

    def _master_pid(self) -> int | None:
        path = self.root / "queue" / "pid" / "master.pid"
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _wait_listening(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"postfix did not listen on {self.port}: {self.log()}")

    # -- mail in

    def send(self, raw: bytes, sender: str, rcpts: Sequence[str]) -> tuple[int, str]:
        """One SMTP session from a producer's mail system: the first refusal or the reply
        to DATA."""
        return smtp_session(
            self.port, raw, sender, rcpts, helo="mail.brokers.example", source=OUTSIDE_CLIENT
        )

    # -- the queue

    def queue(self) -> list[Queued]:
        """What the queue holds now (``postqueue -j``)."""
        result = self._run(_BIN / "postqueue", "-c", str(self.config_dir), "-j")
        if result.returncode != 0:
            raise RuntimeError(f"postqueue -j: {result.stderr.strip()}")
        return [Queued.of(json.loads(line)) for line in result.stdout.splitlines() if line]

    def flush(self) -> None:
        """Try every deferred message now (``postqueue -f``)."""
        result = self._run(_BIN / "postqueue", "-c", str(self.config_dir), "-f")
        if result.returncode != 0:
            raise RuntimeError(f"postqueue -f: {result.stderr.strip()}")

    def wait_empty(self, timeout: float = 60) -> bool:
        """Until every message left the queue: delivered (False as soon as one bounced)."""
        _poll(lambda: not self.queue() or bool(self.bounces()), timeout)
        return not self.queue() and not self.bounces()

    def wait_deferred(self, timeout: float = 60) -> Queued | None:
        """The first message tried and deferred, once there is one."""
        found: list[Queued] = []

        def deferred() -> bool:
            found[:] = [m for m in self.queue() if m.deferred]
            return bool(found)

        return found[0] if _poll(deferred, timeout) else None

    def bounces(self) -> list[str]:
        """Every sign of a bounce: a notification in the queue, a line of the log."""
        queued = [f"queued notification {m.queue_id}" for m in self.queue() if not m.sender]
        said = [
            line
            for line in self.log(lines=0).splitlines()
            if "status=bounced" in line or "sender non-delivery notification" in line
        ]
        return queued + said

    def log(self, lines: int = 30) -> str:
        """The last ``lines`` lines of its log (every line: 0)."""
        path = self.root / "maillog"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) if lines else text


def _poll(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _wait_gone(pid: int, timeout: float = 20) -> None:
    """Until process ``pid`` has ended (a zombie nobody reaps has ended too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state == "Z":
            return
        time.sleep(0.05)
    raise RuntimeError(f"the Postfix master {pid} did not stop")


# --- the deploy snippets ---------------------------------------------------------------------


def master_entry(text: str, service: str) -> str:
    """The master.cf entry of ``service`` in ``text``: its line and the lines that continue
    it (they start with white space); comments left out."""
    entry: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            if entry:
                break
            continue
        if entry and line[0].isspace():
            entry.append(line)
        elif entry:
            break
        elif line.split()[0] == service:
            entry.append(line)
    if not entry:
        raise ValueError(f"no master.cf entry for {service!r}")
    return "\n".join(entry)


# What Postfix's pipe gives its command, and so all a service's daemon beside it gets: no
# TICKETD_TOKEN_SECRET (both read the secret file of [security] generated_secret_file).
SERVICE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@contextmanager
def serving_as(
    user: pwd.struct_passwd, group: int, command: Path, config: Path, port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``ticketd serve`` (``command``) as ``user`` in ``group`` with the service's
    environment, listening on ``port``, its stderr appended to ``log``; SIGTERM at the end."""
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [str(command), "--config", str(config), "serve"],
            user=user.pw_uid,
            group=group,
            extra_groups=[],
            env=SERVICE_ENV,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def deployed_pipe_entry(master_cf: str, user: str, command: str, config: Path) -> str:
    """The ``ticketd`` pipe service of deploy/postfix/master.cf as written, with ``user``,
    ``command`` and ``config`` in place of ``ticketd``, /opt/ticketd and /etc/ticketd (a
    ``ValueError`` when the file no longer says what is replaced)."""
    entry = master_entry(master_cf, "ticketd")
    for documented, here in (
        ("user=ticketd ", f"user={user} "),
        ("argv=/opt/ticketd/.venv/bin/ticketd ", f"argv={command} "),
        ("--config /etc/ticketd/config.toml ", f"--config {config} "),
    ):
        if documented not in entry:
            raise ValueError(f"deploy/postfix/master.cf no longer says {documented!r}")
        entry = entry.replace(documented, here)
    return entry


def settings_named(text: str, prefix: str) -> str:
    """The main.cf settings in ``text`` whose names start with ``prefix``."""
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    if not lines:
        raise ValueError(f"no main.cf setting starts with {prefix!r}")
    return "\n".join(lines)


# --- the pipe's user and the ticketd it runs -------------------------------------------------


def service_user(name: str) -> pwd.struct_passwd:
    """An unprivileged system user ``name`` (no home, no shell), made if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    made = subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    try:
        return pwd.getpwnam(name)  # made here, or by another test process meanwhile
    except KeyError:
        raise RuntimeError(f"useradd {name}: {made.stderr.strip()}") from None


def other_users_venv(folder: Path, python: str = "/usr/bin/python3") -> Path | None:
    """A ``ticketd`` command any user can run: a venv of the system's ``python`` (as
    deploy/ builds /opt/ticketd) that reads the packages of this test run's environment
    through a .pth file; None when ``python`` is missing or not this Python's version.

    Why not this environment's own interpreter: it may live under a folder other users
    cannot enter (a pyenv Python under /root, mode 0700).  Opening that folder to the
    pipe's user (chmod, an ACL) would change the machine for the whole test session;
    this changes nothing outside ``folder``."""
    if not Path(python).exists():
        return None
    version = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if version.stdout.split() != [str(n) for n in sys.version_info[:2]]:
        return None
    venv = folder / "venv"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, umask=0o022)
    site = Path(sysconfig.get_paths(vars={"base": str(venv)})["purelib"])
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # addsitedir, not a plain path line: the borrowed folder's own .pth files (the
    # editable install of ticketd) are read too
    lines = [f"import site; site.addsitedir({path!r})" for path in sorted(borrowed)]
    packages = site / "ticketd-test-packages.pth"
    packages.write_text("\n".join(lines) + "\n")
    packages.chmod(0o644)
    command = venv / "bin" / "ticketd"
    # the guard of pip's console scripts: a worker process (multiprocessing's spawn)
    # imports this file again, and must not run a second daemon
    command.write_text(
        f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom ticketing.cli import main\n"
        "if __name__ == '__main__':\n    sys.exit(main())\n"
    )
    command.chmod(0o755)
    folder.chmod(0o755)  # the venv within was made with the umask's modes
    return command
