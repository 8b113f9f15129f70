"""What a scan returns, and the sender's identity that is never flagged.

A ``Finding`` carries a type, offsets and a score and nothing else: it can be
logged, stored or shown without carrying the value it points at.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AllowList", "Finding"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of PII: ``text[start:end]`` is of ``entity_type`` with confidence ``score``."""

    entity_type: str
    start: int
    end: int
    score: float

    def overlaps(self, start: int, end: int) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True, slots=True)
class AllowList:
    """The sender's own identity from the roster: a producer signing a mail is not a leak.

    ``repr`` hides the values so an ``AllowList`` can travel through logs and
    tracebacks without carrying a name or a phone number.
    """

    sender_name: str | None = None
    sender_email: str | None = None
    sender_phone: str | None = None
    sender_address: str | None = None

    def __repr__(self) -> str:
        present = [
            name
            for name in ("sender_name", "sender_email", "sender_phone", "sender_address")
            if getattr(self, name)
        ]
        return f"AllowList(<{', '.join(present) or 'empty'}>)"


NO_ALLOW = AllowList()
