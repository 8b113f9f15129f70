"""Refusing mail while the disk runs low, before a full disk stops the database too.

The spool and a SQLite database usually share one filesystem.  If the spool
kept accepting mail until the disk was full (a database outage, a burst the
workers cannot drain), the database could no longer record what is already
queued.  So, like Postfix's ``queue_minfree``, the SMTP front keeps a reserve:
a message that would leave less than ``minimum`` bytes free is refused with a
452, which senders retry, and accepted again once space comes back.  A full
disk remains the last line of defence (``ticketing.intake.smtp``: 452 as well).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["INSUFFICIENT_STORAGE", "StorageReserve"]

log = logging.getLogger(__name__)

INSUFFICIENT_STORAGE = "452 4.3.1 Insufficient system storage, please try again later"

_MIB = 1 << 20


class StorageReserve:
    """Bytes to keep free on the filesystems that hold ``paths`` (0: no reserve)."""

    def __init__(self, paths: Iterable[str | Path], minimum: int) -> None:
        self.paths = tuple(dict.fromkeys(Path(p) for p in paths))
        self.minimum = minimum
        self._low: Path | None = None  # the folder short of space, while one is

    def admits(self, size: int = 0) -> bool:
        """Whether a message of ``size`` bytes leaves the reserve free on every path."""
        if self.minimum <= 0:
            return True
        for path in self.paths:
            free = _free_bytes(path)
            if free is not None and free - size < self.minimum:
                self._report_low(path, free)
                return False
        self._report_recovered()
        return True

    def free_space(self) -> dict[Path, int | None]:
        """Free bytes under each watched folder now (``None``: its filesystem is unreadable)."""
        return {path: _free_bytes(path) for path in self.paths}

    def _report_low(self, path: Path, free: int) -> None:
        if self._low is None:
            log.warning(
                "storage reserve reached: %d MiB free under %s, reserve %d MiB "
                "([smtp] min_free_space): refusing mail with 452 until space is freed",
                free // _MIB,
                path,
                self.minimum // _MIB,
            )
        self._low = path

    def _report_recovered(self) -> None:
        if self._low is not None:
            log.warning("storage reserve free again under %s: accepting mail", self._low)
            self._low = None


def _free_bytes(path: Path) -> int | None:
    """Free bytes for this user on ``path``'s filesystem (its nearest existing parent's)."""
    for candidate in itertools.chain((path,), path.parents):
        try:
            stats = os.statvfs(candidate)
        except FileNotFoundError:
            continue
        except OSError:
            return None  # unreadable: the write itself will say what is wrong
        return stats.f_bavail * stats.f_frsize
    return None
