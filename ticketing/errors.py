"""ticketd's own exception tree.

    TicketdError
    ├── ConfigError            config.toml is wrong (every problem, with key paths)
    ├── StorageError           the database cannot be reached or is not migrated
    │   ├── SchemaOutOfDateError
    │   └── StorageFullError   the database's disk is full (SMTP 452, not 451)
    ├── SecretError            a secret the config names cannot be had
    ├── RosterError            a producers file cannot be read at all
    └── NotFoundError          a user asked for something that does not exist

Lower libraries' errors are translated at the boundary (``raise ... from exc``)
and caught at the edge: the CLI prints one line and exits non-zero.  Messages
never carry message bodies or PII, only keys, ids and reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "NotFoundError",
    "RosterError",
    "SchemaOutOfDateError",
    "SecretError",
    "StorageError",
    "StorageFullError",
    "TicketdError",
]


class TicketdError(Exception):
    """Base class of every error ticketd raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration: the key path (``mailboxes[1].team``) and why."""

    key: str
    message: str

    def render(self, source: str) -> str:
        return f"{source}: {self.key}: {self.message}" if self.key else f"{source}: {self.message}"


class ConfigError(TicketdError):
    """The configuration cannot be used; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(p.render(source) for p in problems))


class StorageError(TicketdError):
    """The database cannot be used right now (unreachable, locked, misconfigured)."""


class StorageFullError(StorageError):
    """The database's disk (or quota) is full: retrying helps only once an operator frees space,
    so SMTP says so with 452 4.3.1 rather than the generic 451."""


class SchemaOutOfDateError(StorageError):
    """The database schema is not at the version this code needs: run ``ticketd init``."""


class SecretError(TicketdError):
    """A secret named by the configuration is missing or unusable."""


class RosterError(TicketdError):
    """A producers roster file cannot be read at all (not: a single bad row)."""


class NotFoundError(TicketdError):
    """The thing asked for (an incident number, a mailbox name) does not exist."""
