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


def load_signing_secret(config: SecurityConfig) -> bytes:
    """The token secret from the environment, else from the generated file."""
    value = os.environ.get(config.token_secret_env, "")
    if value:
        if len(value) < MIN_SECRET_LENGTH:
            raise SecretError(
                f"{config.token_secret_env} must be at least {MIN_SECRET_LENGTH} characters"
            )
        return value.encode()
    if not config.generated_secret_file:
        raise SecretError(f"environment variable {config.token_secret_env} is not set")
    log.warning(
        "%s is not set; using the generated secret in %s (not for several instances)",
        config.token_secret_env,
        config.generated_secret_file,
    )
    return _generated_secret(Path(config.generated_secret_file))


def _generated_secret(path: Path) -> bytes:
    if not path.exists():
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
