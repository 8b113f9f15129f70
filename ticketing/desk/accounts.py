"""Console accounts: the staff directory's people who sign in, with argon2 password hashes.

An account belongs to a person of the staff directory (``[staff] people``, whose
name, team and role it takes) or to an address ``[staff]`` lists (then the name
and role are given).  Nobody else gets one: the console acts as staff does.
Passwords are hashed with argon2id (argon2-cffi's defaults); a hash made with
weaker parameters than today's is replaced at the next sign-in.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from mailer.addresses import normalize_address
from mailer.errors import InvalidAddressError
from ticketing.config.desk_schema import StaffConfig
from ticketing.errors import AccountError, NotFoundError
from ticketing.store.audit import audit
from ticketing.store.models import ConsoleUser, utcnow

__all__ = [
    "MIN_PASSWORD",
    "ROLES",
    "Account",
    "Role",
    "account_by_address",
    "account_by_id",
    "add_account",
    "check_password",
    "disable_account",
    "list_accounts",
    "set_password",
]

Role = Literal["caseworker", "lead", "admin"]
ROLES: tuple[Role, ...] = ("caseworker", "lead", "admin")  # each may do what those before may
MIN_PASSWORD = 12
_MAX_PASSWORD = 1024  # argon2 hashes any length; a megabyte "password" is an attack
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the address has no account, so a wrong address costs what a wrong
    password does and the time of the answer does not tell which addresses exist (made
    on first use: a hash costs a tenth of a second, which no other command should pay)."""
    return _HASHER.hash("not a password of anyone's")


@dataclass(frozen=True)
class Account:
    """A console user as the console sees them (never the hash)."""

    id: int
    address: str
    name: str
    role: Role
    team: str | None
    disabled: bool
    has_password: bool

    @property
    def actor(self) -> str:
        """Who the audit trail names: the person and their address."""
        return f"{self.name} <{self.address}>"

    def may(self, role: Role) -> bool:
        """Whether this account's role is ``role`` or above it."""
        return ROLES.index(self.role) >= ROLES.index(role)


def _account(user: ConsoleUser) -> Account:
    assert user.id is not None
    return Account(
        id=user.id,
        address=user.address,
        name=user.name,
        role=cast(Role, user.role),
        team=user.team,
        disabled=user.disabled,
        has_password=bool(user.password_hash),
    )


def _address(text: str) -> str:
    try:
        return normalize_address(text)
    except InvalidAddressError:
        raise AccountError(f"{text!r} is not one email address") from None


def _user(session: Session, address: str) -> ConsoleUser:
    user = session.exec(select(ConsoleUser).where(ConsoleUser.address == _address(address))).first()
    if user is None:
        raise NotFoundError(f"no console account for {address}")
    return user


def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > _MAX_PASSWORD:
        raise AccountError(f"a password has at most {_MAX_PASSWORD} characters")
    return _HASHER.hash(password)


@dataclass(frozen=True)
class _Who:
    name: str
    role: Role
    team: str | None


def _directory_entry(
    staff: StaffConfig, address: str, name: str | None, role: Role | None, team: str | None
) -> _Who:
    """Name, role and team: from the staff directory when it lists the person (options may
    not contradict it), else as given for an address ``[staff]`` lists."""
    person = staff.person(address)
    if person is not None:
        given = {"name": name, "role": role, "team": team}
        listed = {"name": person.name, "role": person.role, "team": person.team}
        clash = [k for k, v in given.items() if v is not None and v != listed[k]]
        if clash:
            raise AccountError(
                f"{address} is in [staff] people with another {', '.join(clash)}: "
                "change the staff directory, not the account"
            )
        return _Who(person.name, person.role, person.team)
    if not staff.is_staff(address):
        raise AccountError(
            f"{address} is not staff: add them to [staff] people (or addresses, domains) "
            "in the config first"
        )
    if not name:
        raise AccountError(f"{address} is not in [staff] people: give their name (--name)")
    return _Who(name, role or "caseworker", team)


def add_account(
    session: Session,
    staff: StaffConfig,
    address: str,
    *,
    actor: str,
    password: str | None = None,
    name: str | None = None,
    role: Role | None = None,
    team: str | None = None,
) -> Account:
    """A new console account for a person of the staff directory; audited, never the hash.
    Without a password the person signs in only through the trusted proxy."""
    address = _address(address)
    if session.exec(select(ConsoleUser).where(ConsoleUser.address == address)).first():
        raise AccountError(f"{address} has a console account already")
    who = _directory_entry(staff, address, name, role, team)
    hashed = _hash(password) if password is not None else None
    user = ConsoleUser(
        address=address, name=who.name, role=who.role, team=who.team, password_hash=hashed
    )
    session.add(user)
    session.flush()
    audit(session, "console_user_added", actor=actor, detail={"user": address, "role": who.role})
    return _account(user)


def set_password(session: Session, address: str, password: str, *, actor: str) -> Account:
    """Replace an account's password, and sign it out everywhere (its sessions end)."""
    from ticketing.desk.sign_in import end_sessions  # sessions know accounts, not the reverse

    user = _user(session, address)
    user.password_hash = _hash(password)
    user.updated_at = utcnow()
    end_sessions(session, _account(user).id)
    audit(session, "console_password_set", actor=actor, detail={"user": user.address})
    return _account(user)


def disable_account(
    session: Session, address: str, *, actor: str, disabled: bool = True
) -> Account:
    """Disable (or enable again) an account; a disabled one's sessions end at once."""
    from ticketing.desk.sign_in import end_sessions

    user = _user(session, address)
    user.disabled = disabled
    user.updated_at = utcnow()
    if disabled:
        end_sessions(session, _account(user).id)
    kind = "console_user_disabled" if disabled else "console_user_enabled"
    audit(session, kind, actor=actor, detail={"user": user.address})
    return _account(user)


def list_accounts(session: Session) -> list[Account]:
    users = session.exec(select(ConsoleUser).order_by(ConsoleUser.address)).all()
    return [_account(u) for u in users]


def account_by_id(session: Session, user_id: int) -> Account | None:
    user = session.get(ConsoleUser, user_id)
    return _account(user) if user is not None else None


def account_by_address(session: Session, address: str) -> Account | None:
    try:
        return _account(_user(session, address))
    except (NotFoundError, AccountError):
        return None


def check_password(session: Session, address: str, password: str) -> Account | None:
    """The enabled account whose password this is, else ``None`` (the same work either way).
    A hash made with older parameters is upgraded on the way."""
    try:
        user = _user(session, address)
    except (NotFoundError, AccountError):
        user = None
    stored = user.password_hash if user is not None else None
    try:
        _HASHER.verify(stored or _dummy_hash(), password[:_MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return None
    if user is None or stored is None or user.disabled:
        return None
    if _HASHER.check_needs_rehash(stored):
        user.password_hash = _HASHER.hash(password)
    return _account(user)
