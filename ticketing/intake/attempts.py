"""How often each message has failed with a defect, in this process.

A defect (``pipeline/verdict.py``) is retried a bounded number of times, then
the message is set aside and the channel goes on.  The spool counts attempts in
its file names; the channels whose messages carry no count of their own count
here, by a key of the message: SMTP without workers (the sender retries the
same bytes) and an IMAP inbox (the message stays until it is moved).

The memory is bounded (the least recently failed keys are forgotten first) and
a restart starts it again: that costs a poison message a few more tries, never
another message its turn.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["Attempt", "DefectCounts"]

_CAPACITY = 10_000


@dataclass(frozen=True)
class Attempt:
    """A message's defects so far, and whether it is now to be set aside."""

    count: int
    give_up: bool


@dataclass
class _Failures:
    count: int
    recorded_before: int  # how many messages had been recorded when it first failed


class DefectCounts:
    """Defects per message key; safe to share between threads.

    With ``others_first`` a message is given up only when some other message was
    recorded since it first failed: a defect every message meets (a bad release)
    is an outage, and is not answered with a permanent refusal.
    """

    def __init__(self, limit: int, *, others_first: bool = False, capacity: int = _CAPACITY):
        self._limit = limit
        self._others_first = others_first
        self._capacity = capacity
        self._failures: OrderedDict[Hashable, _Failures] = OrderedDict()
        self._recorded = 0
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        return self._limit

    def failed(self, key: Hashable) -> Attempt:
        """Count a defect of ``key``.  One given up is forgotten: should it come back
        (released from a quarantine), it has its attempts again."""
        with self._lock:
            failures = self._failures.pop(key, None) or _Failures(0, self._recorded)
            failures.count += 1
            progress = self._recorded > failures.recorded_before or not self._others_first
            if failures.count >= self._limit and progress:
                return Attempt(failures.count, give_up=True)
            self._failures[key] = failures  # the most recent last
            while len(self._failures) > self._capacity:
                self._failures.popitem(last=False)
            return Attempt(failures.count, give_up=False)

    def recorded(self, key: Hashable | None = None) -> None:
        """A message was recorded (``key``'s, if given: its failures are forgotten)."""
        with self._lock:
            self._recorded += 1
            if key is not None:
                self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)
