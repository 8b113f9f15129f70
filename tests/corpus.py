"""Reading ../shared/corpus/index.csv: the real-world messages and their expected results."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    rel: str
    source: str
    category: str
    expected: str

    @property
    def is_message(self) -> bool:
        return not self.expected.startswith("[body-only")

    def expected_addresses(self) -> set[str]:
        """Failed recipients the source project's tests assert, where they say so."""
        found: set[str] = set()
        for group in re.findall(r"failure set == \{([^}]*)\}", self.expected):
            found |= {a.strip().lower() for a in group.split(",") if "@" in a}
        found |= {a.lower() for a in re.findall(r"address=([^\s,;)]+@[^\s,;)]+)", self.expected)}
        return found


def corpus_files(shared: Path) -> list[CorpusFile]:
    root = shared / "corpus"
    with (root / "index.csv").open(encoding="utf-8") as handle:
        return [
            CorpusFile(
                root / row["path"], row["path"], row["source"], row["category"], row["expected"]
            )
            for row in csv.DictReader(handle)
        ]
