"""Reading ``config.toml``: parse, validate, check, resolve paths.

All problems are collected and reported together (``ConfigError.problems``),
each with its key path, so an operator fixes a file in one pass instead of
one error per restart.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mailer.addresses import base_address
from ticketing.config.case_types import CASE_TYPES
from ticketing.config.schema import Config, MailboxConfig
from ticketing.config.staff_file import read_staff_file
from ticketing.errors import ConfigError, ConfigProblem

__all__ = ["DEFAULT_CONFIG_NAME", "environment_problems", "load_config", "locate_config"]

DEFAULT_CONFIG_NAME = "config.toml"
CONFIG_ENV = "TICKETD_CONFIG"


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration and where it came from (``None``: embedded defaults)."""

    config: Config
    path: Path | None


def locate_config(explicit: Path | None) -> tuple[Path | None, bool]:
    """Which file to read, and whether the user asked for it by name.

    Order: ``--config``, then ``$TICKETD_CONFIG``, then ``./config.toml``.
    Only the implicit ``./config.toml`` may be absent (embedded defaults).
    """
    if explicit is not None:
        return explicit, True
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env), True
    return Path(DEFAULT_CONFIG_NAME), False


def load_config(explicit: Path | None = None) -> LoadedConfig:
    """Load, validate and resolve the configuration; raise ``ConfigError`` on any problem."""
    path, required = locate_config(explicit)
    assert path is not None
    if not path.exists():
        if required:
            raise ConfigError(str(path), [ConfigProblem("", "file not found")])
        return LoadedConfig(resolve_paths(Config(), Path.cwd()), None)
    raw = _read_toml(path)
    config = validate_config(raw, str(path))
    return LoadedConfig(_with_staff_file(resolve_paths(config, path.resolve().parent)), path)


def _with_staff_file(config: Config) -> Config:
    """``config`` with the people of ``[staff] file`` in its staff directory."""
    if config.staff.file is None:
        return config
    people = read_staff_file(Path(config.staff.file), set(config.teams), _problem_from_pydantic)
    staff = config.staff.model_copy(update={"people": (*config.staff.people, *people)})
    return config.model_copy(update={"staff": staff})


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [ConfigProblem("", f"invalid TOML: {exc}")]) from None
    except OSError as exc:
        raise ConfigError(str(path), [ConfigProblem("", f"cannot read: {exc.strerror}")]) from None


def validate_config(raw: Mapping[str, Any], source: str) -> Config:
    """Validate a parsed TOML document; every problem at once in ``ConfigError``."""
    problems: list[ConfigProblem] = []
    config: Config | None = None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_problem_from_pydantic(err) for err in exc.errors())
    problems.extend(_cross_checks(raw))
    if problems:
        raise ConfigError(source, problems)
    assert config is not None
    return config


# --- pydantic errors -> one line each ---------------------------------------------------------


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problem_from_pydantic(err: ErrorDetails) -> ConfigProblem:
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        return ConfigProblem(_key_path(loc), _unknown_key_message(loc, err.get("input")))
    if kind in ("literal_error", "enum"):
        choices = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        return ConfigProblem(_key_path(loc), "must be one of " + ", ".join(choices))
    return ConfigProblem(_key_path(loc), _plain_message(kind, err["msg"]))


_MESSAGES = {
    "missing": "is required",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "tuple_type": "must be an array",
    "list_type": "must be an array",
}


def _plain_message(kind: str, msg: str) -> str:
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    msg = msg.removeprefix("Value error, ")
    msg = msg.replace("String should match pattern", "must match the pattern")
    return msg.replace("Input should be", "must be").replace("String should", "must")


def _unknown_key_message(loc: tuple[int | str, ...], value: object) -> str:
    what = "unknown section" if isinstance(value, dict) and len(loc) == 1 else "unknown key"
    known = _known_keys(loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{what}{hint}"


def _known_keys(parent: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] | None = Config
    for part in parent:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field else None
    return list(model.model_fields) if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# --- checks that span several keys ------------------------------------------------------------


def _tables(raw: Mapping[str, Any], key: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    value = raw.get(key)
    if isinstance(value, list):
        yield from ((i, item) for i, item in enumerate(value) if isinstance(item, Mapping))


def _section(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    return value if isinstance(value, Mapping) else {}


def _cross_checks(raw: Mapping[str, Any]) -> list[ConfigProblem]:
    problems = _mailbox_checks(raw) + _routing_checks(raw) + _team_mailbox_checks(raw)
    problems += _staff_checks(raw)
    problems += _database_checks(_section(raw, "database"))
    smtp = _section(raw, "smtp")
    if ("tls_cert" in smtp) != ("tls_key" in smtp):
        problems.append(ConfigProblem("smtp", "tls_cert and tls_key must be given together"))
    outbound = _section(raw, "outbound")
    if (
        outbound.get("transport") == "smtp"
        and outbound.get("username")
        and not outbound.get("password_env")
    ):
        problems.append(ConfigProblem("outbound.password_env", "is required with a username"))
    return problems


def _mailbox_checks(raw: Mapping[str, Any]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    if "mailboxes" in raw and not raw["mailboxes"]:
        problems.append(ConfigProblem("mailboxes", "at least one mailbox is required"))
    teams = (
        _section(raw, "teams")
        if "teams" in raw
        else {"escalated_cases": 1, "producer_operations": 1}
    )
    seen_names: set[str] = set()
    seen_addresses: set[str] = set()
    for i, box in _tables(raw, "mailboxes"):
        where = f"mailboxes[{i}]"
        name, address, team = box.get("name"), box.get("address"), box.get("team")
        if isinstance(name, str) and name in seen_names:
            problems.append(ConfigProblem(f"{where}.name", f"duplicate mailbox name '{name}'"))
        if isinstance(address, str):
            key = base_address(address.strip().lower())
            if key in seen_addresses:
                problems.append(ConfigProblem(f"{where}.address", "duplicate mailbox address"))
            seen_addresses.add(key)
        if isinstance(team, str) and team not in teams:
            known = ", ".join(sorted(teams)) or "none"
            problems.append(
                ConfigProblem(f"{where}.team", f"unknown team '{team}' (known: {known})")
            )
        problems += _imap_checks(f"{where}.imap", box.get("imap"))
        seen_names.add(str(name))
    return problems


def _team_mailbox_checks(raw: Mapping[str, Any]) -> list[ConfigProblem]:
    """``[teams.<key>] mailbox`` names one of the team's own mailboxes: mail about its
    incidents is answered to it, under that mailbox's PII policy."""
    boxes = (
        {b.get("name"): b.get("team") for _, b in _tables(raw, "mailboxes")}
        if "mailboxes" in raw
        else {"escalations": "escalated_cases", "producer-operations": "producer_operations"}
    )
    problems = []
    for key, team in _section(raw, "teams").items():
        named = team.get("mailbox") if isinstance(team, Mapping) else None
        if not isinstance(named, str):
            continue
        if named not in boxes:
            message = f"unknown mailbox '{named}' (known: {', '.join(map(str, boxes))})"
            problems.append(ConfigProblem(f"teams.{key}.mailbox", message))
        elif boxes[named] != key:
            message = f"mailbox '{named}' belongs to team '{boxes[named]}'"
            problems.append(ConfigProblem(f"teams.{key}.mailbox", message))
    return problems


def _staff_checks(raw: Mapping[str, Any]) -> list[ConfigProblem]:
    """A person of the staff directory belongs to a team that exists."""
    teams = (
        _section(raw, "teams")
        if "teams" in raw
        else {"escalated_cases": 1, "producer_operations": 1}
    )
    people = _section(raw, "staff").get("people")
    problems = []
    for i, person in enumerate(people if isinstance(people, list) else []):
        team = person.get("team") if isinstance(person, Mapping) else None
        if isinstance(team, str) and team not in teams:
            known = ", ".join(sorted(teams)) or "none"
            problems.append(
                ConfigProblem(f"staff.people[{i}].team", f"unknown team '{team}' (known: {known})")
            )
    return problems


def _routing_checks(raw: Mapping[str, Any]) -> list[ConfigProblem]:
    teams = (
        _section(raw, "teams")
        if "teams" in raw
        else {"escalated_cases": 1, "producer_operations": 1}
    )
    routed = _section(_section(raw, "routing"), "teams")
    problems = [
        ConfigProblem(f"routing.teams.{key}", f"unknown case type (known: {', '.join(CASE_TYPES)})")
        for key in routed
        if key not in CASE_TYPES
    ]
    problems += [
        ConfigProblem(f"routing.teams.{key}", f"unknown team '{team}'")
        for key, team in routed.items()
        if isinstance(team, str) and team not in teams
    ]
    return problems


def _imap_checks(where: str, imap: object) -> list[ConfigProblem]:
    if not isinstance(imap, Mapping):
        return []
    problems = []
    has_password, has_oauth = "password_env" in imap, "oauth2_token_command" in imap
    if has_password == has_oauth:
        problems.append(
            ConfigProblem(where, "set exactly one of password_env or oauth2_token_command")
        )
    desk = imap.get("desk_folder", "Desk")
    if isinstance(desk, str) and desk in _read_folders(imap):
        problems.append(
            ConfigProblem(
                f"{where}.desk_folder",
                f"'{desk}' is a folder ticketd reads: desk copies would be read back as mail",
            )
        )
    return problems


def _read_folders(imap: Mapping[str, Any]) -> set[object]:
    """The folders of a mailbox the poller reads or files into: never the desk folder."""
    states = imap.get("folder_states")
    return {
        imap.get("folder", "INBOX"),
        imap.get("sent_folder"),
        imap.get("processed_folder", "ticketd/processed"),
        imap.get("quarantine_folder", "ticketd/quarantine"),
        *(states if isinstance(states, Mapping) else ()),
    }


def _database_checks(database: Mapping[str, Any]) -> list[ConfigProblem]:
    url = database.get("url")
    if not isinstance(url, str) or not url:
        return []
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        return [ConfigProblem("database.url", "is not a database URL")]
    if backend not in ("sqlite", "postgresql"):
        return [ConfigProblem("database.url", "must be a sqlite:// or postgresql:// URL")]
    return []


# --- environment and paths --------------------------------------------------------------------


def environment_problems(config: Config) -> list[ConfigProblem]:
    """Secrets the configuration names in the environment but that are not set there."""
    wanted: list[tuple[str, str]] = []
    if config.outbound.transport == "smtp" and config.outbound.password_env:
        wanted.append(("outbound.password_env", config.outbound.password_env))
    for i, box in enumerate(config.mailboxes):
        if box.imap is not None and box.imap.password_env:
            wanted.append((f"mailboxes[{i}].imap.password_env", box.imap.password_env))
    if config.security.generated_secret_file is None:
        wanted.append(("security.token_secret_env", config.security.token_secret_env))
    return [
        ConfigProblem(key, f"environment variable {name} is not set")
        for key, name in wanted
        if not os.environ.get(name)
    ]


def _absolute(base: Path, value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def _resolve_mailbox(base: Path, box: MailboxConfig) -> MailboxConfig:
    if box.imap is None or box.imap.tls_ca_file is None:
        return box
    imap = box.imap.model_copy(update={"tls_ca_file": _absolute(base, box.imap.tls_ca_file)})
    return box.model_copy(update={"imap": imap})


def resolve_paths(config: Config, base: Path) -> Config:
    """Make every relative path in ``config`` absolute against ``base``."""
    url = make_url(config.database.url)
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:":
        url = url.set(database=_absolute(base, database))
    secret_file = config.security.generated_secret_file
    return config.model_copy(
        update={
            "database": config.database.model_copy(
                update={"url": url.render_as_string(hide_password=False)}
            ),
            "outbound": config.outbound.model_copy(
                update={"maildir": _absolute(base, config.outbound.maildir)}
            ),
            "security": config.security.model_copy(
                update={
                    "generated_secret_file": _absolute(base, secret_file) if secret_file else None
                }
            ),
            "templates": config.templates.model_copy(
                update={
                    "override_dir": _absolute(base, config.templates.override_dir)
                    if config.templates.override_dir
                    else None
                }
            ),
            "mailboxes": tuple(_resolve_mailbox(base, box) for box in config.mailboxes),
            "staff": config.staff.model_copy(
                update={"file": _absolute(base, config.staff.file) if config.staff.file else None}
            ),
            "roster": config.roster.model_copy(
                update={"file": _absolute(base, config.roster.file) if config.roster.file else None}
            ),
            "smtp": config.smtp.model_copy(
                update={
                    "tls_cert": _absolute(base, config.smtp.tls_cert)
                    if config.smtp.tls_cert
                    else None,
                    "tls_key": _absolute(base, config.smtp.tls_key)
                    if config.smtp.tls_key
                    else None,
                    "spool_dir": _absolute(base, config.smtp.spool_dir),
                }
            ),
            "lmtp": config.lmtp.model_copy(
                update={"socket": _absolute(base, config.lmtp.socket) if config.lmtp.socket else ""}
            ),
        }
    )
