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

    @classmethod
    def of_producer(cls, address: str, producer: Producer) -> Identity:
        """A roster producer, authenticated, writing from ``address``."""
        return cls(
            address,
            producer.id,
            producer.name,
            producer.language,
            authenticated=True,
            producer=producer,
        )

    @property
    def is_producer(self) -> bool:
        return self.producer_id is not None

    def own_names(self, display_name: str) -> tuple[str, ...]:
        """The names this party writes under that are no consumer's: the roster name and
        the ``From:`` display name, only for an authenticated producer or caseworker.
        Anyone else may sign a message with whatever name they like, a consumer's too,
        and then that name, in the body as well, must be redacted like any other."""
        if self.authenticated and (self.is_producer or self.is_staff):
            return tuple(n for n in (self.name, display_name) if n)
        return ()
