"""The configuration schema: typed, frozen models for ``config.toml``.

Every default here is the *embedded default*: the root ``config.toml`` of the
repository documents exactly these values (a test holds the two together).
Scalars are strict (a port written as ``"2525"`` is an error, not a guess) and
unknown keys are errors, so a typo never silently falls back to a default.
Relative paths are resolved against the config file's folder by the loader.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from mailer.addresses import normalize_address
from mailer.errors import InvalidAddressError
from ticketing.config.auth_schema import AuthenticationConfig, LimitsConfig
from ticketing.config.desk_schema import LifecycleConfig, RoutingConfig, StaffConfig
from ticketing.config.ops_schema import ObservabilityConfig, RosterConfig
from ticketing.config.pii_schema import PiiConfig
from ticketing.config.sla_schema import SlaConfig
from ticketing.config.templates_schema import TemplatesConfig
from ticketing.config.web_schema import WebConfig

__all__ = [
    "Config",
    "DatabaseConfig",
    "ImapConfig",
    "IntakeConfig",
    "LmtpConfig",
    "LoggingConfig",
    "MailboxConfig",
    "OutboundConfig",
    "SecurityConfig",
    "SmtpConfig",
    "TeamConfig",
]

Port = Annotated[StrictInt, Field(ge=1, le=65535)]
PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
EnvName = Annotated[StrictStr, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
PiiPolicy = Literal["reject", "redact", "off"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _address(value: str) -> str:
    try:
        return normalize_address(value)
    except InvalidAddressError:
        raise ValueError("must be a single email address like desk@example.org") from None


class DatabaseConfig(_Section):
    url: NonEmptyStr = "sqlite:///var/ticketd.db"
    busy_timeout_ms: PositiveInt = 5000


class SmtpConfig(_Section):
    host: NonEmptyStr = "127.0.0.1"
    port: Port = 2525
    max_message_size: PositiveInt = 26_214_400
    max_header_count: PositiveInt = 1000
    tls_cert: StrictStr | None = None
    tls_key: StrictStr | None = None
    # SIGTERM: how long SMTP sessions in the middle of a message may take to finish.
    shutdown_grace_seconds: Annotated[StrictInt, Field(ge=1, le=3600)] = 30
    # Worker processes that record SMTP, LMTP and IMAP mail (``ticketing.intake.workers``):
    # "auto" one a core, N, or 0 (the daemon itself, on one core).  With workers, ``spool``
    # says when SMTP and LMTP hear 250: false, once a worker has committed the message
    # (handed over in memory); true, once it is fsynced into the spool.
    workers: Annotated[StrictInt, Field(ge=0, le=64)] | Literal["auto"] = "auto"
    spool: StrictBool = False
    spool_dir: NonEmptyStr = "var/spool"
    spool_max_attempts: Annotated[StrictInt, Field(ge=1, le=100)] = 5
    # Bytes kept free under the spool and a SQLite database (``mailer.storage``); 0: none.
    min_free_space: Annotated[StrictInt, Field(ge=0)] = 104_857_600
    # Abuse limits of the SMTP front: sessions at once, overall and per client address;
    # a session idle longer than idle_timeout_seconds is closed, and none lasts longer
    # than session_max_seconds (NOOP and RSET cannot keep one open for ever).
    max_sessions: Annotated[StrictInt, Field(ge=1, le=100_000)] = 200
    max_sessions_per_client: Annotated[StrictInt, Field(ge=1, le=100_000)] = 20
    idle_timeout_seconds: Annotated[StrictInt, Field(ge=1, le=3600)] = 60
    session_max_seconds: Annotated[StrictInt, Field(ge=10, le=86_400)] = 900

    @property
    def worker_count(self) -> int:
        """The worker processes to run: ``workers``, with "auto" the cores this process
        may run on."""
        if self.workers == "auto":
            return min(len(os.sched_getaffinity(0)), 64)
        return self.workers

    @property
    def spooled(self) -> bool:
        """Whether SMTP and LMTP mail is spooled (250 before the commit)."""
        return self.spool and self.worker_count > 0


class LmtpConfig(_Section):
    """LMTP intake (Postfix's ``lmtp:`` transport, ``ticketd ingest``): the SMTP intake's
    delivery, limits and drain, spoken as RFC 2033 (``mailer/lmtp_server.py``)."""

    # A Unix socket (mode 0660; relative to the config file's folder); "": none.
    socket: StrictStr = "var/lmtp.sock"
    host: StrictStr = ""  # a TCP listener's address; "": none
    port: Port = 2424


class OutboundConfig(_Section):
    """Outbound mail: where it goes, how it is retried, and the auto-reply limits.

    The retry keys bound how long a mail may wait for a relay that is down;
    the ceiling is per recipient and per hour, high enough that a busy producer
    escalating many clients still gets every acknowledgement.
    """

    transport: Literal["maildir", "smtp"] = "maildir"
    from_address: StrictStr = "escalations@exchange.example"
    maildir: NonEmptyStr = "var/sent"
    host: NonEmptyStr = "127.0.0.1"
    port: Port = 25
    starttls: StrictBool = True
    username: StrictStr | None = None
    password_env: EnvName | None = None
    timeout_seconds: PositiveInt = 30
    message_id_domain: (
        Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")] | None
    ) = None
    auto_reply_ceiling: PositiveInt = 50
    duplicate_window_hours: PositiveInt = 24
    retry_initial_seconds: PositiveInt = 60
    retry_max_seconds: PositiveInt = 3600
    max_age_hours: PositiveInt = 48
    poll_interval_seconds: PositiveInt = 5

    _check_from = field_validator("from_address")(_address)

    @property
    def id_domain(self) -> str:
        """The right-hand side of our Message-IDs: the configured one, else From's domain."""
        return self.message_id_domain or self.from_address.rpartition("@")[2]


class SecurityConfig(_Section):  # names and paths of secrets, never secrets
    token_secret_env: EnvName = "TICKETD_TOKEN_SECRET"  # noqa: S105
    token_org: Annotated[StrictStr, Field(pattern=r"^[0-9A-Za-z]{3,18}$")] = "00Dtkd01"  # noqa: S105
    generated_secret_file: StrictStr | None = "var/token_secret"  # noqa: S105


class IntakeConfig(_Section):
    unknown_senders: Literal["reply", "accept"] = "reply"
    # A message that fails with a defect (not an outage) this many times is set aside:
    # SMTP (workers = 0) answers 554, an IMAP inbox moves it to its quarantine folder.
    defect_attempts: Annotated[StrictInt, Field(ge=1, le=100)] = 3
    # Quarantined mail (spool and IMAP quarantine folders) is deleted after this many
    # days (it may hold personal data nobody screened); 0: kept until purged by hand.
    quarantine_retention_days: Annotated[StrictInt, Field(ge=0, le=3650)] = 14


ImapFolderState = Literal["open", "awaiting_producer", "resolved", "closed"]


class ImapConfig(_Section):
    """A shared mailbox read over IMAP (ticketing/imap).  Folder names use ``/`` as
    the hierarchy separator whatever the server's is; TLS is never dropped silently."""

    host: NonEmptyStr
    port: Port = 993
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    tls_ca_file: StrictStr | None = None
    username: NonEmptyStr
    password_env: EnvName | None = None
    oauth2_token_command: StrictStr | None = None
    folder: NonEmptyStr = "INBOX"
    processed_folder: NonEmptyStr = "ticketd/processed"
    # Where desk copies of the team's mail are put (never polled): docs/desk.md
    desk_folder: NonEmptyStr = "Desk"
    quarantine_folder: NonEmptyStr = "ticketd/quarantine"
    pii_rejected: Literal["quarantine", "expunge"] = "quarantine"
    sent_folder: StrictStr | None = None
    folder_states: dict[NonEmptyStr, ImapFolderState] = Field(default_factory=dict)
    poll_interval: PositiveInt = 60
    idle: StrictBool = True
    batch_size: Annotated[StrictInt, Field(ge=1, le=1000)] = 50
    timeout_seconds: PositiveInt = 60
    reconnect_max_seconds: PositiveInt = 300
    # Sender authentication of mail fetched from this mailbox: "topmost" believes the
    # topmost Authentication-Results (Exchange Online stamps them without authserv-id);
    # trust_internal believes Exchange's marks of mail sent inside the tenant.
    trust_results: Literal["none", "topmost"] = "none"
    trust_internal: StrictBool = False


CaseTypeKey = Literal[
    "enrollment", "determination", "system_error", "termination", "form_1095a", "commission"
]


class MailboxConfig(_Section):
    name: Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    address: StrictStr
    team: NonEmptyStr
    pii_policy: PiiPolicy = "reject"
    default_type: CaseTypeKey = "enrollment"
    imap: ImapConfig | None = None

    _check_address = field_validator("address")(_address)


class TeamConfig(_Section):
    name: NonEmptyStr
    lead: StrictStr | None = None  # SLA level 1 notices
    supervisor: StrictStr | None = None  # SLA level 2 notices
    # The mailbox (by name) that speaks for the team: mail about its incidents comes
    # from it and is answered to it.  Unset: the team's first mailbox.
    mailbox: StrictStr | None = None
    # Where desk copies go when the team's mailbox is not read over IMAP (docs/desk.md).
    desk_address: StrictStr | None = None
    # A producer's follow-up on an assigned incident is also copied to the assignee.
    notify_assignee: StrictBool = False

    @field_validator("lead", "supervisor", "desk_address")
    @classmethod
    def _escalation_address(cls, value: str | None) -> str | None:
        return None if value is None else _address(value)


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"  # json: one object per line, for collectors


def _default_teams() -> dict[str, TeamConfig]:
    return {
        "escalated_cases": TeamConfig(name="MHBE Escalated caseworkers Team"),
        "producer_operations": TeamConfig(name="MHBE Producer Operations Team"),
    }


def _default_mailboxes() -> tuple[MailboxConfig, ...]:
    return (
        MailboxConfig(
            name="escalations",
            address="escalations@exchange.example",
            team="escalated_cases",
            pii_policy="redact",
        ),
        MailboxConfig(
            name="producer-operations",
            address="producer.operations@exchange.example",
            team="producer_operations",
            pii_policy="reject",
            default_type="commission",
        ),
    )


class Config(_Section):
    """The whole daemon configuration, passed explicitly to whatever needs it."""

    database: DatabaseConfig = DatabaseConfig()
    smtp: SmtpConfig = SmtpConfig()
    lmtp: LmtpConfig = LmtpConfig()
    outbound: OutboundConfig = OutboundConfig()
    security: SecurityConfig = SecurityConfig()
    intake: IntakeConfig = IntakeConfig()
    authentication: AuthenticationConfig = AuthenticationConfig()
    limits: LimitsConfig = LimitsConfig()
    logging: LoggingConfig = LoggingConfig()
    templates: TemplatesConfig = TemplatesConfig()
    pii: PiiConfig = PiiConfig()
    routing: RoutingConfig = RoutingConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    staff: StaffConfig = StaffConfig()
    sla: SlaConfig = SlaConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    roster: RosterConfig = RosterConfig()
    web: WebConfig = WebConfig()
    teams: dict[Annotated[str, Field(pattern=r"^[a-z0-9_]+$")], TeamConfig] = Field(
        default_factory=_default_teams
    )
    mailboxes: tuple[MailboxConfig, ...] = Field(default_factory=_default_mailboxes)

    def mailbox(self, name: str) -> MailboxConfig:
        """The mailbox called ``name``; ``KeyError`` when there is none."""
        for mailbox in self.mailboxes:
            if mailbox.name == name:
                return mailbox
        raise KeyError(name)

    def team_mailbox(self, team: str) -> MailboxConfig | None:
        """The mailbox that speaks for ``team`` (``[teams.<key>] mailbox``, else the team's
        first mailbox); ``None`` for a team without one."""
        named = self.teams[team].mailbox if team in self.teams else None
        for mailbox in self.mailboxes:
            if mailbox.name == named if named else mailbox.team == team:
                return mailbox
        return None
