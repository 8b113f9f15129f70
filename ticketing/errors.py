"""ticketd's own exception tree.

    TicketdError
    ├── ConfigError              config.toml is wrong (every problem, with key paths)
    ├── StorageError             the database cannot be reached or is not migrated
    │   ├── SchemaOutOfDateError
    │   └── StorageFullError     the database's disk is full (SMTP 452, not 451)
    ├── SecretError              a secret the config names cannot be had
    ├── RosterError              a producers file cannot be read at all
    ├── NotFoundError            a user asked for something that does not exist
    ├── PermanentRejection       a message that can never be accepted (SMTP 5xx, exit 65)
    ├── InvalidTransitionError   an incident cannot move to that state from its own
    ├── CounterExhaustedError    the day's incident numbers are used up
    ├── OutboxStateError         an outbox row is not in a state that allows the request
    ├── CalendarError            business hours never open (also a ValueError)
    ├── PiiSetupError            the PII guard cannot start as configured
    ├── HttpEndpointError        an HTTP endpoint (operators', console) cannot listen
    ├── AccountError             a console account cannot be made or changed as asked
    ├── SmtpListenError          the SMTP server cannot listen where [smtp] says
    └── ReplyError               a reply cannot be made (programming or config mistake)
        └── TemplateError        a template cannot be used (file, line, reason)
            └── TemplateSecurityError   a template reached for what the sandbox forbids

The wire's own errors (``mailer/errors.py``: delivery, IMAP, addresses) and
the PII guard's (``pii_guard/errors.py``) are translated where ticketd calls
them, and caught at the edge with these: the CLI prints one line and exits
non-zero.  ``ticketing.pipeline.verdict`` is the one place that decides what
an error means for a message in intake.  Messages
never carry message bodies or PII, only keys, ids and reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AccountError",
    "CalendarError",
    "ConfigError",
    "ConfigProblem",
    "CounterExhaustedError",
    "HttpEndpointError",
    "InvalidTransitionError",
    "NotFoundError",
    "OutboxStateError",
    "PermanentRejection",
    "PiiSetupError",
    "ReplyError",
    "RosterError",
    "SchemaOutOfDateError",
    "SecretError",
    "SmtpListenError",
    "StorageError",
    "StorageFullError",
    "TemplateError",
    "TemplateSecurityError",
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


class PermanentRejection(TicketdError):
    """This message can never be accepted (SMTP 5xx, pipe exit 65); the reason says why."""

    def __init__(self, reason: str, smtp_status: str = "554 5.6.0") -> None:
        super().__init__(reason)
        self.smtp_status = smtp_status


class InvalidTransitionError(TicketdError):
    """The incident cannot move to that state from the one it is in."""


class CounterExhaustedError(TicketdError):
    """Ten million incidents in one day: the number format has no room left."""


class OutboxStateError(TicketdError):
    """The row is not in a state that allows the request (retrying a sent mail)."""


class CalendarError(TicketdError, ValueError):
    """The calendar has no business hours within reach (every day closed)."""


class PiiSetupError(TicketdError):
    """The PII guard cannot start as configured (e.g. a missing spaCy model)."""


class AccountError(TicketdError):
    """A console account cannot be added or changed as asked (says which and why)."""


class HttpEndpointError(TicketdError):
    """The HTTP endpoint cannot listen where ``[observability]`` says (port taken, bad host)."""


class SmtpListenError(TicketdError):
    """The SMTP server cannot listen on ``[smtp] host`` and ``port`` (port taken, bad host)."""


class ReplyError(TicketdError):
    """A reply request cannot be turned into mail (unknown kind, missing data)."""


class TemplateError(ReplyError):
    """A template does not compile or render; ``file`` and ``line`` say where."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        super().__init__(f"{file}:{line}: {message}")


class TemplateSecurityError(TemplateError):
    """The sandbox refused an attribute or call (``__class__``, ``__mro__``, mutation)."""
