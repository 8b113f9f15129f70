"""How much work one message may cost the guard, and what was left unread.

Scanning is linear in the text, but a 1 MB body of street-shaped lines still
costs seconds, and a thread busy with it holds up every message behind it.
So a message gets a budget of processor time, shared by its fields; the
guard stops between pieces of a text once it is spent and says how far it
read.  What was not read cannot be vouched for: the caller drops it (with a
note) or refuses the message, by its policy.

Processor time of the scanning thread, not wall time: a budget must not run
out because other threads or processes kept the machine busy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pii_guard.findings import Finding

__all__ = ["UNLIMITED", "UNSCANNED", "ScanBudget", "Scanned"]

# The kind reported for text that was not read: counted and named like the kinds of
# data (an entity code), so replies and audits can say that something was removed.
UNSCANNED = "UNSCANNED"


class ScanBudget:
    """``seconds`` of this thread's processor time from now; ``None`` never runs out."""

    def __init__(
        self, seconds: float | None, clock: Callable[[], float] = time.thread_time
    ) -> None:
        self._clock = clock
        self._ends = None if seconds is None else clock() + seconds

    def spent(self) -> bool:
        return self._ends is not None and self._clock() >= self._ends


UNLIMITED = ScanBudget(None)


@dataclass(frozen=True)
class Scanned:
    """The findings of a text read up to ``read`` (its length when read whole)."""

    findings: list[Finding]
    read: int
    length: int

    @property
    def whole(self) -> bool:
        return self.read >= self.length
