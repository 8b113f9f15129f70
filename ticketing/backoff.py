"""How every background job waits after a failure: doubling pauses, capped.

The IMAP pollers, the intake workers and the daemon's timed jobs all back off
the same way; a success starts over from the first pause.  (The outbox keeps
its own stored delay per mail: a formula over attempts, written to the row.)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass
class Backoff:
    first: float = 1.0
    cap: float = 30.0
    failures: int = 0

    def failed(self) -> float:
        """One more failure in a row; the pause to wait before the next try."""
        self.failures += 1
        return min(self.first * 2.0 ** (self.failures - 1), self.cap)

    def succeeded(self) -> None:
        self.failures = 0
