"""The console in-process: its app on a migrated database, and a signed-in client per role.

    console = console_app(tmp_path, db_url)            # Casey, Lee and Ada have accounts
    client = signed_in(console, "lead")                # a TestClient with Lee's session
    client.post("/incidents/X/notes", data={"csrf": console.csrf(client), "text": "..."})

No daemon, no sockets: Starlette's TestClient calls the app directly.  The staff
directory below is the one the console's accounts come from.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy import update
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.testclient import TestClient

from pii_guard import PiiGuard
from tests.conftest import write_config
from ticketing.config import Config
from ticketing.config.loader import load_config
from ticketing.console.app import build_console
from ticketing.console.context import ConsoleDesk
from ticketing.console.session_cookie import SESSION_COOKIE
from ticketing.desk.accounts import add_account
from ticketing.intake.build import build_composer
from ticketing.outbound.compose import ReplyComposer
from ticketing.outbound.templated import TemplatedReplies
from ticketing.privacy.settings import build_guard
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.models import ConsoleSession, ConsoleUser
from ticketing.templating.template_store import TemplateStore

__all__ = [
    "PASSWORD",
    "PEOPLE",
    "STAFF_TOML",
    "Console",
    "console_app",
    "signed_in",
]

PASSWORD = "a long enough test password"
PEOPLE = {
    "caseworker": ("Casey Caseworker", "casey@exchange.example"),
    "lead": ("Lee Lead", "lee@exchange.example"),
    "admin": ("Ada Admin", "ada@exchange.example"),
}
_PERSON = '  {{ name = "{}", address = "{}", team = "escalated_cases", role = "{}" }},\n'
STAFF_TOML = (
    "[staff]\npeople = [\n"
    + "".join(_PERSON.format(name, address, role) for role, (name, address) in PEOPLE.items())
    + "]\n"
)
_SECRET = b"console tests' token secret, 32+ bytes long"


@dataclass
class Console:
    """An app and what it runs on, for assertions on the database and the outbox."""

    app: Starlette
    desk: ConsoleDesk
    config: Config
    engine: Engine

    def csrf(self, client: TestClient) -> str:
        """The CSRF token of ``client``'s session (what its pages' forms carry)."""
        token = client.cookies.get(SESSION_COOKIE) or ""
        digest = hashlib.sha256(token.encode()).hexdigest()
        with transaction(self.engine, readonly=True) as session:
            row = session.get(ConsoleSession, digest)
            assert row is not None, "the client is not signed in"
            return row.csrf


def console_app(folder: Path, db_url: str, extra: str = "") -> Console:
    """The console on ``db_url`` with the staff directory above (and ``extra`` TOML merged
    in: give a ``[staff]`` table there to replace it); each person has an account whose
    password is ``PASSWORD``."""
    toml = extra if "[staff]" in extra else STAFF_TOML + extra
    config = load_config(write_config(folder, db_url, toml)).config
    engine = create_db_engine(config.database)
    desk = _desk(config, engine)
    with transaction(engine) as session:
        for person in config.staff.people:
            add_account(session, config.staff, person.address, actor="test")
        # argon2 is slow on purpose (half a second a hash here): one hash of PASSWORD a process
        hashed = update(ConsoleUser).values(password_hash=_password_hash())
        session.exec(hashed)
    return Console(build_console(desk), desk, config, engine)


# Building the templates and the guard takes over a second; tests whose configs compose
# alike share them (the template editor's tests have override folders of their own).
_PARTS: dict[str, tuple[ReplyComposer, TemplateStore, PiiGuard]] = {}
_COMPOSING = {"templates", "pii", "teams", "mailboxes", "staff", "sla", "routing"}


@functools.cache
def _password_hash() -> str:
    return PasswordHasher().hash(PASSWORD)


def _desk(config: Config, engine: Engine) -> ConsoleDesk:
    outbound = config.outbound.model_dump_json(exclude={"maildir"})
    key = config.model_dump_json(include=_COMPOSING) + outbound + config.security.token_org
    if key not in _PARTS:
        composer, store = build_composer(config, engine, _SECRET)
        _PARTS[key] = (composer, store, build_guard(config.pii))
    composer, store, guard = _PARTS[key]
    replies = TemplatedReplies(composer, engine, guard)
    return ConsoleDesk(config, engine, replies, guard, store, _SECRET)


def signed_in(console: Console, role: str) -> TestClient:
    """A client signed in through the form as the person of ``role`` (Casey, Lee, Ada)."""
    client = TestClient(console.app, follow_redirects=False)
    form = client.get("/login")
    token = form.cookies.get("ticketd_login") or client.cookies.get("ticketd_login")
    _, address = PEOPLE[role]
    answer = client.post(
        "/login", data={"address": address, "password": PASSWORD, "csrf": token or ""}
    )
    assert answer.status_code == 303, answer.text
    return client
