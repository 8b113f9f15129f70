"""Where the token secret comes from."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ticketing.config import SecurityConfig
from ticketing.errors import SecretError
from ticketing.signing.key import load_signing_secret


def test_environment_variable_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOKEN_SECRET_X", "s" * 32)
    config = SecurityConfig(
        token_secret_env="TOKEN_SECRET_X", generated_secret_file=str(tmp_path / "f")
    )
    assert load_signing_secret(config) == b"s" * 32
    assert not (tmp_path / "f").exists()


def test_short_secret_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_SECRET_X", "hunter2")
    with pytest.raises(SecretError) as info:
        load_signing_secret(SecurityConfig(token_secret_env="TOKEN_SECRET_X"))
    assert "hunter2" not in str(info.value)
    assert "TOKEN_SECRET_X must be at least 32 characters" in str(info.value)


def test_generated_secret_is_private_stable_and_warned(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("TOKEN_SECRET_X", raising=False)
    path = tmp_path / "var" / "token_secret"
    config = SecurityConfig(token_secret_env="TOKEN_SECRET_X", generated_secret_file=str(path))
    first = load_signing_secret(config)
    assert load_signing_secret(config) == first
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "TOKEN_SECRET_X is not set" in caplog.text
    assert first.decode() not in caplog.text


def test_no_fallback_means_the_variable_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKEN_SECRET_X", raising=False)
    config = SecurityConfig(token_secret_env="TOKEN_SECRET_X", generated_secret_file=None)
    with pytest.raises(SecretError, match="environment variable TOKEN_SECRET_X is not set"):
        load_signing_secret(config)


def test_a_reader_never_makes_its_own_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``ticketd ingest`` (``generate=False``) reads the daemon's generated secret and
    never makes one: its tokens would verify nowhere else."""
    monkeypatch.delenv("TOKEN_SECRET_X", raising=False)
    path = tmp_path / "token_secret"
    config = SecurityConfig(token_secret_env="TOKEN_SECRET_X", generated_secret_file=str(path))
    with pytest.raises(SecretError, match="does not exist yet"):
        load_signing_secret(config, generate=False)
    assert not path.exists()
    made = load_signing_secret(config)
    assert load_signing_secret(config, generate=False) == made


def test_a_secret_in_the_environment_beside_another_in_the_file_is_warned(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "token_secret"
    path.write_text("f" * 40 + "\n", encoding="utf-8")
    config = SecurityConfig(token_secret_env="TOKEN_SECRET_X", generated_secret_file=str(path))
    monkeypatch.setenv("TOKEN_SECRET_X", "f" * 40)
    load_signing_secret(config)
    assert "holds another secret" not in caplog.text
    monkeypatch.setenv("TOKEN_SECRET_X", "e" * 40)
    assert load_signing_secret(config) == b"e" * 40
    assert "TOKEN_SECRET_X is set but" in caplog.text and "holds another secret" in caplog.text
    assert "e" * 40 not in caplog.text and "f" * 40 not in caplog.text
