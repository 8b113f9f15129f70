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
    """Who is writing and to whom: their own identity in a mail is not a leak.

    ``sender_*`` are the writer's roster identity.  The plural fields hold more
    of the same kind that are never a consumer's data in this conversation: the
    names the writer signs with, the recipient's and the desk's own addresses
    and phones, whole email domains (the desk's), ``terms`` matched as written
    anywhere in the text (the writer's agency, the desk's team names), and the
    writer's ``organisations``.

    ``repr`` hides the values so an ``AllowList`` can travel through logs and
    tracebacks without carrying a name or a phone number.
    """

    sender_name: str | None = None
    sender_email: str | None = None
    sender_phone: str | None = None
    sender_address: str | None = None
    names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    email_domains: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    # the writer's firm (a producer's agency): with their name, address and phones it
    # marks their signature block (``pii_guard.signature``)
    organisations: tuple[str, ...] = ()
    # the mail is written to the desk: the name its opening greeting holds ("Hi Dana,")
    # is a caseworker's; not so in the desk's own mail, written to a producer
    greeting_names_the_desk: bool = False

    def __repr__(self) -> str:
        present = [name for name in self.__slots__ if getattr(self, name)]
        return f"AllowList(<{', '.join(present) or 'empty'}>)"


NO_ALLOW = AllowList()
