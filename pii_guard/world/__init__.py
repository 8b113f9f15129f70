"""The desk's world: places, carriers, agencies, hospitals and employers producers name.

Producer mail is full of capitalised words that are no consumer: the carrier
("Kaiser said…"), the county or town ("Havre de Grace", "Prince Frederick",
"Glen Burnie"), the hospital ("Johns Hopkins"), the employer.  Name lists know
many of their words as names, and the tagger learnt that a capitalised pair
is usually a person, so without this list they are redacted, and a caseworker
loses where the consumer lives and which carrier dropped them.

The lists are data (``places.txt``, ``organisations.txt``: one phrase a line,
``[section]`` lines, ``#`` comments), so they grow without code changes.  A
finding wholly inside one of these phrases is dropped, with two exceptions:
- an honorific or a role word right before the phrase makes it a person
  ("Mrs. Hopkins", "client Laurel");
- a one-word phrase that the name lists also know ("Frederick", "Laurel",
  "Hopkins") is a place or a firm only after a preposition ("moved to
  Frederick", "works at Hopkins") or before a state ("Laurel, MD"), unless
  its section is authoritative: a carrier or an agency is never a person.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources

__all__ = ["STAFFED", "DeskWorld", "load_world"]

# Words as the phrases are compared: letters and digits, an apostrophe kept inside
# ("George's"), everything else a separator; "Saint"/"St." and "Mount"/"Mt." as one.
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?")
_SAME = {"saint": "st", "mount": "mt", "fort": "ft"}
_GAP = re.compile(r"[ \t.,'\u2019&-]{0,4}")
_REACH = 60  # characters around a finding where a phrase holding it may start or end
_GLUE = re.compile(r"(?:[ \t,/&-]|\band\b|\bor\b|\by\b|\bo\b)*")
# Sections whose one-word phrases are never a person, even where a list knows the word
_AUTHORITATIVE = frozenset({"carriers", "agencies", "software", "holidays", "languages"})
# Sections of offices and firms: a person "at" one works there
_OFFICES = frozenset({"carriers", "agencies", "hospitals", "employers"})
# Offices whose people a producer deals with: a person "at" one is their staff, while
# "Maria at Hopkins" may be a patient and "Maria at Giant" an employee
STAFFED = frozenset({"carriers", "agencies"})
# What puts a one-word place or firm in its role: a preposition before, a state after.
_PREPOSITION = frozenset(
    [
        "at",
        "in",
        "to",
        "from",
        "near",
        "of",
        "with",
        "by",
        "for",
        "through",
        "via",
        "into",
        "outside",
        "around",
        "en",
        "de",
        "desde",
        "a",
        "para",
        "por",
        "con",
        "cerca",
    ]
)
_STATE_AFTER = re.compile(
    r"[ \t]*,?[ \t]*(?:md|maryland|va|dc|de|pa|wv)\b|[ \t]+(?:county|counties|co\.)"
)
_PERSON_BEFORE = re.compile(
    r"(?:\b(?:mr|mrs|ms|miss|mx|dr|sr|sra|srta|señor|señora|don|doña)\.?"
    r"|\b(?:client|clienta|cliente|consumer|member|spouse|wife|husband|son|daughter|child"
    r"|mother|father|mom|dad|patient|applicant|enrollee|dependent|esposo|esposa|hijo|hija"
    r"|madre|padre|named|nombre)\b[ \t]*[,:]?)[ \t]*\Z"
)


@functools.lru_cache(maxsize=8192)  # the same few hundred words come back in every text
def _key(word: str) -> str:
    word = word.lower().replace("\u2019", "'")
    # a possessive is the name itself: "Prince George's" and a finding "Prince George"
    word = word[:-2] if word.endswith("'s") else word.replace("'", "")
    return _SAME.get(word, word)


def _words(text: str, start: int = 0, end: int | None = None) -> Iterator[re.Match[str]]:
    return _WORD.finditer(text, start, len(text) if end is None else end)


@dataclass(frozen=True)
class _Phrase:
    words: tuple[str, ...]
    section: str

    @property
    def authoritative(self) -> bool:
        return self.section in _AUTHORITATIVE


@dataclass(frozen=True)
class DeskWorld:
    """The phrases, indexed by their first word."""

    phrases: dict[str, tuple[_Phrase, ...]]
    words: frozenset[str]  # every word of every phrase: most findings hold one that is not

    def covers(self, text: str, start: int, end: int, is_name: Callable[[str], bool]) -> bool:
        """True when ``text[start:end]`` lies inside one of the phrases, in its role.

        ``is_name``: whether the name lists know a (lower-cased) word as a name.
        Only the words of the finding's line, up to a phrase's length before it, are
        read: a finding costs a few dictionary lookups, whatever the text's size.
        """
        if not all(_key(m.group()) in self.words for m in _words(text, start, end)):
            return False  # the usual case, and a cheap one: "Maria Gonzalez", "12 Main St"
        low, high = max(0, start - _REACH), min(len(text), end + _REACH)
        line_start = text.rfind("\n", low, start) + 1  # (searched only within reach)
        line_end = text.find("\n", end, high)
        line_end = high if line_end < 0 else line_end
        tokens = list(_words(text, max(line_start, low), line_end))
        covered_to = start  # phrases side by side cover a finding together
        for index, token in enumerate(tokens):
            if token.start() > covered_to:
                break
            for phrase in self.phrases.get(_key(token.group()), ()):
                reach = _match_end(text, tokens, index, phrase.words)
                if reach > covered_to and self._in_role(
                    text, token.start(), reach, phrase, is_name
                ):
                    if reach >= end:
                        return True
                    covered_to = _past_glue(text, reach)
                    break
        return False

    def names_an_office(self, text: str, at: int, sections: frozenset[str] = _OFFICES) -> bool:
        """A carrier, an agency, a hospital or an employer starts at ``at``
        ("CareFirst", "the LDSS"): a person "at" one of them works there."""
        tokens = list(_words(text, at, min(len(text), at + 120)))
        if not tokens or tokens[0].start() != at:
            return False
        phrases = self.phrases.get(_key(tokens[0].group()), ())
        return any(
            p.section in sections and _match_end(text, tokens, 0, p.words) > 0 for p in phrases
        )

    def _in_role(
        self, text: str, start: int, end: int, phrase: _Phrase, is_name: Callable[[str], bool]
    ) -> bool:
        if _PERSON_BEFORE.search(text[max(0, start - 24) : start]):
            return False
        if phrase.authoritative or len(phrase.words) > 1 or not is_name(phrase.words[0]):
            return True
        before = text[max(0, start - 16) : start].split()
        preposition = bool(before) and before[-1].lower() in _PREPOSITION
        return preposition or bool(_STATE_AFTER.match(text.lower(), end))


def _past_glue(text: str, at: int) -> int:
    """Past the blanks, commas and conjunctions after a phrase ("Creole, French")."""
    glue = _GLUE.match(text, at)
    return glue.end() if glue else at


def _match_end(text: str, tokens: list[re.Match[str]], index: int, words: tuple[str, ...]) -> int:
    """Where ``words`` end when they are read from ``tokens[index]`` on, else -1; only
    blanks and light punctuation may stand between them ("St. Mary's", "Lutherville-Timonium")."""
    if index + len(words) > len(tokens):
        return -1
    for offset, word in enumerate(words):
        token = tokens[index + offset]
        if _key(token.group()) != word:
            return -1
        if offset and _GAP.fullmatch(text, tokens[index + offset - 1].end(), token.start()) is None:
            return -1
    return tokens[index + len(words) - 1].end()


@functools.cache
def load_world() -> DeskWorld:
    """Read the shipped lists once per process."""
    index: dict[str, list[_Phrase]] = {}
    for name in ("places.txt", "organisations.txt"):
        for phrase in _read(resources.files(__package__).joinpath(name).read_text("utf-8")):
            index.setdefault(phrase.words[0], []).append(phrase)
    words = frozenset(w for found in index.values() for phrase in found for w in phrase.words)
    return DeskWorld({first: _longest_first(found) for first, found in index.items()}, words)


def _longest_first(phrases: list[_Phrase]) -> tuple[_Phrase, ...]:
    return tuple(sorted(phrases, key=lambda p: -len(p.words)))


def _read(content: str) -> Iterator[_Phrase]:
    section = ""
    for raw in content.splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line[1 : line.index("]")]
        elif line and not line.startswith("#"):
            words = tuple(_key(m.group()) for m in _words(line))
            if words:
                yield _Phrase(words, section)
