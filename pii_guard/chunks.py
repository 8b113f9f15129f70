"""Bounded pieces of a long text, so that a huge message costs bounded memory per step.

Every recognizer copies the text it reads (lower-cased folds, match lists),
and some look back or ahead for context: scanning a 25 MB body in one go
holds several copies of it at once.  The guard scans pieces instead.  Each
piece *owns* ``size`` characters and reads ``overlap`` more on both sides,
so a value that straddles a border, and the context words before it, are
seen whole; a finding is kept only by the piece that owns its start, so it
is reported once and judged with the context on both of its sides.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["CHUNK_OVERLAP", "CHUNK_SIZE", "Chunk", "chunks"]

CHUNK_SIZE = 32_000  # characters a piece owns: a 2 KB message is one piece
CHUNK_OVERLAP = 2_000  # longer than any value with its context (a postal block is < 500)


@dataclass(frozen=True, slots=True)
class Chunk:
    """``text[start:end]`` is read; findings starting in ``[own_start, own_end)`` are kept."""

    start: int
    end: int
    own_start: int
    own_end: int

    def owns(self, offset: int) -> bool:
        """Whether a finding starting at ``offset`` (in the whole text) belongs here."""
        return self.own_start <= offset < self.own_end


def chunks(length: int, size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> Iterator[Chunk]:
    """The pieces of a text of ``length`` characters, in order."""
    if size <= 0 or overlap < 0:
        raise ValueError("chunk size must be positive and overlap not negative")
    own_start = 0
    while True:
        own_end = min(length, own_start + size)
        yield Chunk(max(0, own_start - overlap), min(length, own_end + overlap), own_start, own_end)
        if own_end >= length:
            return
        own_start = own_end
