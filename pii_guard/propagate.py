"""A name found once is a name everywhere in the same text.

Producers introduce a consumer once with context ("My client Selamawit
Tesfaye", "Mark Ellison is the primary") and then write the first name
alone ("Selamawit DOB: 03/09/1990", "Mark's member ID", "Only Faith shows as
covered").  Alone, without a list or context behind it, such a word is not
found; but the same text has already said it is a name.  So every other
capitalised occurrence of a word of a PERSON finding becomes a finding too.

A word that is also an everyday word or a month ("Mark", "Faith", "June",
"Will") is carried over only where it reads as a name: mid-sentence, or
before a possessive or a verb of people, and never before a number ("June
5").  Function and greeting words are never carried.  One pass over the
capitalised words of the text: the cost does not grow with the number of
names found.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Iterable

from pii_guard.entities import PERSON
from pii_guard.findings import Finding

__all__ = ["PROPAGATED_SCORE", "same_names"]

PROPAGATED_SCORE = 0.5  # redacted and counted; never alone enough to refuse a message
_NAME_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_CAPITALISED = re.compile(r"(?<![\w@.])[A-ZÀ-ÖØ-Þ][^\W\d_]*(?:['\u2019-][^\W\d_]+)*")
_POSSESSIVE = ("'s", "\u2019s")
# What makes an everyday word a name where it stands.
_NAME_AFTER = re.compile(
    r"(?:['\u2019]s\b|[ \t]+(?:is|was|has|had|and|called|said|says|lives|lived|needs|wants"
    r"|shows|retired|works|worked|moved|paid|got|received|applied|signed|died|passed|dob"
    r"|DOB|tiene|vive|es|y)\b)"
)
_NUMBER_AFTER = re.compile(r"[ \t]*,?[ \t]*\d")
_SENTENCE_END = ".!?:;\n>-*•\t"


def same_names(
    text: str,
    findings: Iterable[Finding],
    carried: Callable[[str], bool],
    everyday: Callable[[str], bool],
) -> list[Finding]:
    """The other capitalised occurrences in ``text`` of the words of its PERSON findings.

    ``carried(word)``: whether a lower-cased word may be carried at all (not a function,
    greeting or desk word); ``everyday(word)``: whether it is also an everyday word or a
    month, carried only where it reads as a name.
    """
    findings = list(findings)
    words = _name_words(text, findings, carried)
    if not words:
        return []
    spans = sorted((f.start, f.end) for f in findings)
    starts, reach = [s for s, _ in spans], list(itertools.accumulate((e for _, e in spans), max))
    found: list[Finding] = []
    for match in _CAPITALISED.finditer(text):
        word = _without_possessive(match.group())
        start, end = match.start(), match.start() + len(word)
        lowered = word.lower()
        if lowered not in words or _inside(starts, reach, start, end):
            continue
        if everyday(lowered) and not _reads_as_a_name(text, start, end):
            continue
        found.append(Finding(PERSON, start, end, PROPAGATED_SCORE))
    return found


def _name_words(text: str, findings: list[Finding], carried: Callable[[str], bool]) -> set[str]:
    words: set[str] = set()
    for finding in findings:
        if finding.entity_type != PERSON:
            continue
        for whole in _NAME_WORD.findall(text, finding.start, finding.end):
            whole = _without_possessive(whole)
            # a double surname's parts are written alone too ("Oyelaran-Moss", "Moss")
            parts = [whole, *whole.split("-")] if "-" in whole else [whole]
            words.update(word.lower() for word in parts if _carried(word, carried))
    return words


def _carried(word: str, carried: Callable[[str], bool]) -> bool:
    acronym = word.isupper() and len(word) <= 4  # "SEP", "HMO"
    return len(word) > 1 and word[0].isupper() and not acronym and carried(word.lower())


def _without_possessive(word: str) -> str:
    return word[:-2] if word[-2:] in _POSSESSIVE else word


def _inside(starts: list[int], reach: list[int], start: int, end: int) -> bool:
    """Some finding holds ``start``-``end``: of those starting at or before it, the one
    reaching furthest reaches its end (a binary search, not a look at each)."""
    before = bisect.bisect_right(starts, start)
    return before > 0 and reach[before - 1] >= end


def _reads_as_a_name(text: str, start: int, end: int) -> bool:
    if _NUMBER_AFTER.match(text, end):
        return False  # "June 5", "May 2025"
    if _NAME_AFTER.match(text, end):
        return True
    before = text[max(0, start - 4) : start].rstrip(" \t\"'(")
    return bool(before) and before[-1] not in _SENTENCE_END
