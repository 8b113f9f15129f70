"""A private Dovecot for the IMAP tests: its own config folder, loopback ports,
any user name with one password, started and stopped by the tests (never the system service).

``make test`` installs Dovecot with apt-get where it can (tests/services.sh);
without it the IMAP tests skip, and fail under TICKETD_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from imapclient import IMAPClient

from tests.daemon import free_port

if TYPE_CHECKING:
    from ticketing.intake.imap.poller import MailboxPoller

__all__ = ["PASSWORD", "DovecotServer", "dovecot_binary"]

# Every user name logs in with this password (a static passdb): a test picks a fresh
# name and so gets an empty mailbox of its own.
PASSWORD = "secret"

_PASSWORD_DB = """passdb {{
  driver = static
  args = password={password}
}}"""
# XOAUTH2: Dovecot asks a token introspection endpoint (RFC 7662) whether a token is valid
_OAUTH2_DB = """passdb {{
  driver = oauth2
  args = {root}/oauth2.conf.ext
}}"""
_OAUTH2_SETTINGS = """introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = {ssl}
{ssl_files}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
mail_location = maildir:{root}/mail/%u
first_valid_uid = {uid}
mail_uid = {uid}
mail_gid = {gid}
default_login_user = {login_user}
default_internal_user = {internal_user}
{passdb}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
    )


def _mail_owner() -> tuple[int, int, str, str]:
    """Dovecot will not deliver as root: as root, mail belongs to ``nobody``."""
    if os.geteuid() != 0:
        user = pwd.getpwuid(os.geteuid()).pw_name
        return os.geteuid(), os.getegid(), user, user
    nobody = pwd.getpwnam("nobody")
    internal = "dovecot" if _user_exists("dovecot") else "nobody"
    login = "dovenull" if _user_exists("dovenull") else "nobody"
    return nobody.pw_uid, nobody.pw_gid, login, internal


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class DovecotServer:
    def __init__(
        self,
        root: Path,
        cert: Path | None = None,
        key: Path | None = None,
        *,
        introspection_url: str | None = None,
        extra: str = "",
    ) -> None:
        """A server with a static password, or (``introspection_url``) XOAUTH2 only."""
        self.root = root
        self._introspection_url = introspection_url
        self._extra = extra  # more settings, e.g. a narrower imap_capability
        self.port = free_port()
        self.tls_port = free_port() if cert else 0
        self.tls = cert is not None
        self._cert, self._key = cert, key
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        uid, gid, login, internal = _mail_owner()
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chown(self.root / "mail", uid, gid)
        ssl_files = f"ssl_cert = <{self._cert}\nssl_key = <{self._key}" if self._cert else ""
        oauth = self._introspection_url
        if oauth:
            (self.root / "oauth2.conf.ext").write_text(_OAUTH2_SETTINGS.format(url=oauth))
        passdb = _OAUTH2_DB if oauth else _PASSWORD_DB
        (self.root / "dovecot.conf").write_text(
            _CONFIG.format(
                root=self.root,
                ssl="yes" if self.tls else "no",
                ssl_files=ssl_files,
                uid=uid,
                gid=gid,
                login_user=login,
                internal_user=internal,
                port=self.port,
                tls_port=self.tls_port,
                mechanisms="xoauth2 oauthbearer" if oauth else "plain login",
                passdb=passdb.format(root=self.root, password=PASSWORD),
            )
            + self._extra
        )

    def start(self) -> None:
        binary = dovecot_binary()
        if binary is None:
            raise RuntimeError("Dovecot is not installed: `make services` installs it")
        self._proc = subprocess.Popen(
            [binary, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: stop() ends every child too
        )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                error = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"dovecot exited: {error} {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        if self._proc is None:
            return
        group = os.getpgid(self._proc.pid)
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # sessions a master restart would not keep
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None
        self._wait_port_free()

    def _wait_port_free(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    time.sleep(0.1)
            except OSError:
                return

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def shared_mailbox_toml(dovecot: DovecotServer, user: str, extra: str = "") -> str:
    """The ``escalations`` mailbox of a daemon config, read over IMAP from ``user``'s INBOX
    on ``dovecot`` (the password in ``TICKETD_TEST_IMAP_PASSWORD``); ``extra``: more keys
    of its ``[mailboxes.imap]`` table."""
    return f"""[[mailboxes]]
name = "escalations"
address = "escalations@exchange.example"
team = "escalated_cases"
pii_policy = "redact"
[mailboxes.imap]
host = "127.0.0.1"
port = {dovecot.port}
tls = "none"
username = "{user}"
password_env = "TICKETD_TEST_IMAP_PASSWORD"
{extra}"""


@contextlib.contextmanager
def inbox_session(dovecot: DovecotServer, user: str) -> Iterator[IMAPClient]:
    """The test's own IMAP session on ``user``'s INBOX (selected), logged out at the end."""
    client = IMAPClient("127.0.0.1", dovecot.port, ssl=False)
    client.login(user, PASSWORD)
    client.select_folder("INBOX")
    try:
        yield client
    finally:
        client.logout()


def folder_count(client: IMAPClient, folder: str) -> int:
    """Messages in ``folder`` now (0 when it does not exist yet)."""
    client.noop()  # STATUS of the selected folder is only as fresh as the session's view
    if not client.folder_exists(folder):
        return 0
    return int(client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])


def poll_round(poller: MailboxPoller) -> int:
    """One round of ``poller`` on a connection of its own: the messages it handled."""
    conn = poller.connect(poller._settings)
    try:
        poller.prepare(conn)
        return poller.poll_once(conn)
    finally:
        conn.close()
