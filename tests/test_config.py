"""config.toml: the documented example, the defaults, and every problem reported at once."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ticketing.config import Config, load_config, validate_config
from ticketing.config.loader import resolve_paths
from ticketing.errors import ConfigError

from .conftest import REPO, RunCli


def test_documented_example_is_the_embedded_default() -> None:
    loaded = load_config(REPO / "config.toml")
    assert loaded.config == resolve_paths(Config(), REPO)


def test_example_comments_name_the_default_of_every_scalar_key() -> None:
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    sections = (
        "database",
        "smtp",
        "outbound",
        "security",
        "intake",
        "logging",
        "lifecycle",
        "templates",
        "pii",
        "observability",
        "roster",
        "web",
    )
    for section in (*sections, "staff", "sla"):
        for key, value in data[section].items():
            if isinstance(value, dict):
                continue
            line = next(ln for ln in text.splitlines() if ln.startswith(f"{key} ="))
            assert "# default:" in line, f"[{section}] {key} has no documented default"


def test_problems_are_all_reported_with_key_paths(run_cli: RunCli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[smtp]\nport = "2525"\n\n[frobnicate]\nenabled = true\n\n'
        '[[mailboxes]]\nname = "a"\naddress = "a@example.org"\nteam = "escalated_cases"\n\n'
        '[[mailboxes]]\nname = "b"\naddress = "b@example.org"\nteam = "escalated_cases"\n'
        'pii_policy = "sometimes"\n',
        encoding="utf-8",
    )
    result = run_cli("--config", str(bad), "config", "check")
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert f"ticketd: {bad}: mailboxes[1].pii_policy: must be one of reject, redact, off" in lines
    assert f"ticketd: {bad}: smtp.port: must be an integer" in lines
    assert f"ticketd: {bad}: frobnicate: unknown section" in lines
    assert len(lines) == 3
    assert "Traceback" not in result.err


def test_routing_names_known_types_and_teams() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(
            {"routing": {"teams": {"dental": "escalated_cases", "commission": "billing"}}}, "c.toml"
        )
    lines = str(info.value).splitlines()
    assert "c.toml: routing.teams.commission: unknown team 'billing'" in lines
    assert any(line.startswith("c.toml: routing.teams.dental: unknown case type") for line in lines)


def test_typo_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config({"smtp": {"prot": 25}}, "x.toml")
    assert str(info.value) == "x.toml: smtp.prot: unknown key (did you mean 'port'?)"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"mailboxes": []}, "mailboxes: at least one mailbox is required"),
        ({"smtp": {"port": 70000}}, "smtp.port: must be less than or equal to 65535"),
        ({"smtp": {"tls_cert": "c.pem"}}, "smtp: tls_cert and tls_key must be given together"),
        (
            {"database": {"url": "mysql://x/y"}},
            "database.url: must be a sqlite:// or postgresql:// URL",
        ),
        (
            {"outbound": {"from_address": "not an address"}},
            "outbound.from_address: must be a single email address like desk@example.org",
        ),
        (
            {"mailboxes": [{"name": "a", "address": "a@x.org", "team": "nobody"}]},
            "mailboxes[0].team: unknown team 'nobody' "
            "(known: escalated_cases, producer_operations)",
        ),
        (
            {
                "mailboxes": [
                    {"name": "a", "address": "a@x.org", "team": "escalated_cases"},
                    {"name": "a", "address": "A+x@X.org", "team": "escalated_cases"},
                ]
            },
            "mailboxes[1].name: duplicate mailbox name 'a'",
        ),
        (
            {
                "mailboxes": [
                    {
                        "name": "a",
                        "address": "a@x.org",
                        "team": "escalated_cases",
                        "imap": {"host": "h", "username": "u"},
                    }
                ]
            },
            "mailboxes[0].imap: set exactly one of password_env or oauth2_token_command",
        ),
        (
            {"intake": {"unknown_senders": "drop"}},
            "intake.unknown_senders: must be one of reply, accept",
        ),
        (
            {"teams": {"escalated_cases": {"name": "E", "mailbox": "nope"}}},
            "teams.escalated_cases.mailbox: unknown mailbox 'nope' "
            "(known: escalations, producer-operations)",
        ),
        (
            {
                "teams": {
                    "escalated_cases": {"name": "E", "mailbox": "producer-operations"},
                    "producer_operations": {"name": "P"},
                }
            },
            "teams.escalated_cases.mailbox: mailbox 'producer-operations' belongs to team "
            "'producer_operations'",
        ),
    ],
)
def test_each_problem_is_named(raw: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(raw, "c.toml")
    assert f"c.toml: {expected}" in str(info.value).splitlines()


def test_duplicate_address_ignores_case_and_subaddress() -> None:
    raw = {
        "mailboxes": [
            {"name": "a", "address": "desk@x.org", "team": "escalated_cases"},
            {"name": "b", "address": "Desk+tag@X.org", "team": "escalated_cases"},
        ]
    }
    with pytest.raises(ConfigError, match=r"mailboxes\[1\].address: duplicate mailbox address"):
        validate_config(raw, "c.toml")


def test_invalid_toml_names_file_and_position(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[smtp]\nport = \n", encoding="utf-8")
    result = run_cli("--config", str(path), "config", "check")
    assert result.code == 1
    assert result.err.startswith(f"ticketd: {path}: invalid TOML:")
    assert "line 2" in result.err


def test_explicit_missing_file_is_an_error(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "nope.toml"), "config", "check")
    assert result.code == 1
    assert result.err == f"ticketd: {tmp_path / 'nope.toml'}: file not found\n"


def test_config_from_environment_variable(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.toml"
    path.write_text("[smtp]\nport = 2626\n", encoding="utf-8")
    monkeypatch.setenv("TICKETD_CONFIG", str(path))
    assert load_config().config.smtp.port == 2626
    assert run_cli("config", "check").out.startswith(f"{path}: OK")


def test_no_file_means_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TICKETD_CONFIG", raising=False)
    loaded = load_config()
    assert loaded.path is None
    assert loaded.config.database.url == f"sqlite:///{tmp_path / 'var' / 'ticketd.db'}"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "ticketd.toml"
    path.parent.mkdir()
    path.write_text('[outbound]\nmaildir = "spool/sent"\n', encoding="utf-8")
    config = load_config(path).config
    assert config.outbound.maildir == str(tmp_path / "etc" / "spool" / "sent")
    assert config.database.url == f"sqlite:///{tmp_path / 'etc' / 'var' / 'ticketd.db'}"


def test_secret_named_in_config_must_be_in_environment(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELAY_PASSWORD", raising=False)
    path = tmp_path / "c.toml"
    path.write_text(
        '[outbound]\ntransport = "smtp"\nusername = "u"\npassword_env = "RELAY_PASSWORD"\n',
        encoding="utf-8",
    )
    result = run_cli("--config", str(path), "config", "check")
    assert result.code == 1
    assert "outbound.password_env: environment variable RELAY_PASSWORD is not set" in result.err
    monkeypatch.setenv("RELAY_PASSWORD", "s3cret")
    assert run_cli("--config", str(path), "config", "check").code == 0


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(ValueError):
        config.smtp.port = 25  # type: ignore[misc]


def test_check_json_for_scripts(run_cli: RunCli, tmp_path: Path) -> None:
    import json

    bad = tmp_path / "bad.toml"
    bad.write_text('[logging]\nlevel = "LOUD"\n', encoding="utf-8")
    result = run_cli("--config", str(bad), "config", "check", "--json")
    assert result.code == 1
    assert json.loads(result.out) == {
        "ok": False,
        "source": str(bad),
        "problems": [
            {"key": "logging.level", "message": "must be one of DEBUG, INFO, WARNING, ERROR"}
        ],
    }
    good = run_cli("--config", str(REPO / "config.toml"), "config", "check", "--json")
    assert json.loads(good.out)["ok"] is True


def test_each_team_speaks_through_one_of_its_mailboxes() -> None:
    boxes = [
        {"name": "intake", "address": "in@x.org", "team": "escalated_cases"},
        {"name": "desk", "address": "desk@x.org", "team": "escalated_cases"},
    ]
    teams = {"escalated_cases": {"name": "E"}, "quiet": {"name": "Q"}}
    first = validate_config({"mailboxes": boxes, "teams": teams}, "c.toml")
    box = first.team_mailbox("escalated_cases")
    assert box is not None and box.name == "intake"
    assert first.team_mailbox("quiet") is None
    teams["escalated_cases"] = {"name": "E", "mailbox": "desk"}
    named = validate_config({"mailboxes": boxes, "teams": teams}, "c.toml")
    box = named.team_mailbox("escalated_cases")
    assert box is not None and box.name == "desk"
