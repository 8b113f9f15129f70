"""Logging for the daemon and the CLI: stderr, and no third-party chatter that
could carry addresses or message text."""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging"]

# Loggers of libraries that write message data (addresses, header text, tracebacks
# of parsing errors) at levels we would otherwise show.
_QUIET = {
    "alembic": logging.WARNING,
    "mail.log": logging.WARNING,  # aiosmtpd: every command at INFO, data at DEBUG
    "flufl.bounce": logging.CRITICAL,  # detector tracebacks quote header values
}


def configure_logging(level: int | str = logging.INFO) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name, floor in _QUIET.items():
        logging.getLogger(name).setLevel(floor)
