"""Configuration: the schema of ``config.toml`` and its loader."""

from ticketing.config.auth_schema import AuthenticationConfig, LimitsConfig
from ticketing.config.loader import LoadedConfig, environment_problems, load_config, validate_config
from ticketing.config.schema import (
    Config,
    DatabaseConfig,
    ImapConfig,
    IntakeConfig,
    MailboxConfig,
    OutboundConfig,
    SecurityConfig,
    SmtpConfig,
    TeamConfig,
)

__all__ = [
    "AuthenticationConfig",
    "Config",
    "DatabaseConfig",
    "ImapConfig",
    "IntakeConfig",
    "LimitsConfig",
    "LoadedConfig",
    "MailboxConfig",
    "OutboundConfig",
    "SecurityConfig",
    "SmtpConfig",
    "TeamConfig",
    "environment_problems",
    "load_config",
    "validate_config",
]
