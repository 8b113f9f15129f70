"""Logging for the daemon and the CLI: stderr, and no third-party chatter that
could carry addresses or message text."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "configure_logging", "quiet_libraries", "set_log_format"]

# Loggers of libraries that write message data (addresses, header text, tracebacks
# of parsing errors) at levels we would otherwise show.  Set on the libraries' own
# loggers, these hold whatever ``[logging] level`` says (it sets the root's): with
# DEBUG, imapclient would log every fetched message whole.
_QUIET = {
    "alembic": logging.WARNING,
    "mail.log": logging.WARNING,  # aiosmtpd: every command at INFO, data at DEBUG
    "mail.debug": logging.WARNING,  # aiosmtpd: its debugging handler, PROXY headers
    "imapclient": logging.INFO,  # every command and response (messages whole) at DEBUG
    "tnefparse": logging.ERROR,  # a warning for every odd property of a damaged winmail.dat
    "flufl.bounce": logging.CRITICAL,  # detector tracebacks quote header values
    # every run of every timed job at INFO; the jobs log their own failures (server/jobs.py)
    "apscheduler": logging.WARNING,
}


_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int | str = logging.INFO) -> None:
    logging.basicConfig(
        level=level,
        format=_TEXT_FORMAT,
        stream=sys.stderr,
    )
    quiet_libraries()


def quiet_libraries() -> None:
    """Raise the levels of the libraries that would log message data or chatter."""
    for name, floor in _QUIET.items():
        logging.getLogger(name).setLevel(floor)


class JsonFormatter(logging.Formatter):
    """One JSON object per line for log collectors: the same text as the plain format
    (ids and incident numbers, never bodies), with time, level and logger as fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def set_log_format(style: str) -> None:
    """Switch the root handlers to ``"json"`` or back to ``"text"`` once the config is read."""
    formatter = JsonFormatter() if style == "json" else logging.Formatter(_TEXT_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
