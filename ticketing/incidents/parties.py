"""Who is writing: a producer from the roster, a caseworker (staff), or a stranger.

Intake decides it (``pipeline/identify.py``); the replies and the resolution
mail address the same party.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ticketing.store.models import Producer

__all__ = ["Identity"]


@dataclass(frozen=True)
class Identity:
    """Who wrote: a producer from the roster, a caseworker (staff), or an unknown address."""

    address: str | None
    producer_id: int | None = None
    name: str = ""
    language: str = "en"
    is_staff: bool = False
    # the From: passed sender authentication (pipeline/authenticate.py): only then may
    # the address act as the producer or caseworker it names
    authenticated: bool = False
    # the roster row identify read (not attached to any session): replies name the producer
    producer: Producer | None = field(default=None, compare=False, repr=False)

    @property
    def is_producer(self) -> bool:
        return self.producer_id is not None
