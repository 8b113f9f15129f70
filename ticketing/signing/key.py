"""The secret that signs ref tokens (and later our Message-IDs).

Production sets it in the environment variable named by
``[security] token_secret_env``.  The embedded default, meant for a first run on
a laptop, falls back to a random secret generated once into
``[security] generated_secret_file`` and warns: instances that share a
database must share the secret, which a generated file does not do.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from pathlib import Path

from ticketing.config import SecurityConfig
from ticketing.errors import SecretError

__all__ = ["MIN_SECRET_LENGTH", "load_signing_secret"]

log = logging.getLogger(__name__)
MIN_SECRET_LENGTH = 32


def load_signing_secret(config: SecurityConfig, *, generate: bool = True) -> bytes:
    """The token secret from the environment, else from the generated file (made on first
    use only when ``generate``: ``ticketd ingest`` reads the daemon's, never makes its own,
    whose tokens nothing else would verify)."""
    value = os.environ.get(config.token_secret_env, "")
    if value:
        if len(value) < MIN_SECRET_LENGTH:
            raise SecretError(
                f"{config.token_secret_env} must be at least {MIN_SECRET_LENGTH} characters"
            )
        _warn_if_another_secret_waits(config, value.encode())
        return value.encode()
    if not config.generated_secret_file:
        raise SecretError(f"environment variable {config.token_secret_env} is not set")
    log.warning(
        "%s is not set; using the generated secret in %s (not for several instances)",
        config.token_secret_env,
        config.generated_secret_file,
    )
    return _generated_secret(Path(config.generated_secret_file), config, generate)


def _warn_if_another_secret_waits(config: SecurityConfig, secret: bytes) -> None:
    """A generated file beside a secret in the environment is what a process without that
    variable (an MTA's pipe: Postfix passes no environment) signs with: its tokens would
    not verify here.  Said at every start, until one of the two goes."""
    path = config.generated_secret_file
    try:
        other = Path(path).read_bytes().strip() if path else secret
    except OSError:
        return
    if other != secret:
        log.warning(
            "%s is set but %s holds another secret: a process without the variable "
            "(ticketd ingest under Postfix) signs with the file, and its ref tokens do not "
            "verify here; remove the file or put the same secret in it",
            config.token_secret_env,
            path,
        )


def _generated_secret(path: Path, config: SecurityConfig, generate: bool) -> bytes:
    if not path.exists():
        if not generate:
            raise SecretError(
                f"{config.token_secret_env} is not set and {path} does not exist yet "
                "(`ticketd serve` creates it)"
            )
        _create_secret_file(path)
    try:
        value = path.read_bytes().strip()
    except OSError as exc:
        raise SecretError(f"cannot read {path}: {exc.strerror}") from None
    if len(value) < MIN_SECRET_LENGTH:
        raise SecretError(f"{path} holds a secret shorter than {MIN_SECRET_LENGTH} characters")
    return value


def _create_secret_file(path: Path) -> None:
    """Write a new secret atomically; a concurrent creator's file wins, ours is dropped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_urlsafe(48).encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
