"""Tokens and their features: what the name and address tagger sees of a text.

A token is a word (letters and digits, with inner apostrophes and hyphens),
a line break or one punctuation mark.  Its features are plain strings: the
word and its neighbours, their shapes and endings, and what the word lists
say of them (a known given name or surname, a street or unit word, a
function or desk word, how common the word is in English).  The name lists
are the gazetteer the rules already load; the English word list is a small
file beside this module (``vocabulary.txt.gz``).

Only *candidates* are tagged: capitalised or upper-case words, numbers, and
lower-case words the lists know; other lower-case words and punctuation are
``O`` unless the token before them was tagged (an address goes on over a
comma or a line break, a name over an initial's dot).  That keeps a 2 KB
message at a few dozen scored tokens.
"""

from __future__ import annotations

import bisect
import gzip
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pii_guard.errors import PiiEngineError
from pii_guard.recognizers.gazetteer import Gazetteer
from pii_guard.recognizers.street_words import (
    COMPOUND_ENDINGS,
    PREFIX_WORDS,
    SUFFIX_WORDS,
    UNIT_WORDS,
)

__all__ = [
    "EDGE",
    "HOUSE_NUMBER_SHAPES",
    "LABELS",
    "VOCABULARY_PATH",
    "Lexicon",
    "View",
    "all_features",
    "candidates",
    "casing",
    "everyday",
    "label_features",
    "pair_features",
    "token_texts",
    "unit_features",
    "views",
]

LABELS = ("O", "PER", "ADDR")
_TOKEN = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*|\n|[^\w\s]")
_SENTENCE_END = frozenset(".!?:;\n\"'(>*-")
VOCABULARY_PATH = Path(__file__).with_name("vocabulary.txt.gz")
_KNOWN_MAX = 10_000  # views of distinct tokens kept (a few MB)
# Numbers of up to five digits may be a house number, six a postal code; longer ones
# are identifiers.  "ad": a short number with a letter ("12B").
HOUSE_NUMBER_SHAPES = frozenset(("d1", "d2", "d3", "d4", "d5", "ad"))
_NUMBER_CANDIDATES = frozenset(("d1", "d2", "d3", "d4", "d5", "d6"))
_CANDIDATE_SHAPES = frozenset(("Xx", "XX", "X", "xX", "Xx-", "ad"))


def token_texts(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The tokens' texts and their ``(start, end)`` offsets."""
    matches = list(_TOKEN.finditer(text))
    return [m.group() for m in matches], [m.span() for m in matches]


def _plain(fragments: Sequence[str]) -> frozenset[str]:
    """The street-word lists are regex fragments: ``str\\.`` -> ``str``."""
    return frozenset(f.replace("\\", "").rstrip(".") for f in fragments)


@dataclass(frozen=True)
class Lexicon:
    """The word lists behind the lexical features (lower case)."""

    first: frozenset[str]
    last: frozenset[str]
    common: frozenset[str]
    never: frozenset[str]
    street_after: frozenset[str] = _plain(SUFFIX_WORDS)
    street_before: frozenset[str] = _plain(PREFIX_WORDS)
    street_endings: tuple[str, ...] = tuple(_plain(COMPOUND_ENDINGS))
    units: frozenset[str] = _plain(UNIT_WORDS)
    vocabulary: Vocabulary = field(default_factory=lambda: Vocabulary((), ""))
    _known: dict[str, View] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, gazetteer: Gazetteer) -> Lexicon:
        return cls(
            gazetteer.first,
            gazetteer.last,
            gazetteer.common,
            gazetteer.never,
            vocabulary=_vocabulary(),
        )

    def hiding(self, first: frozenset[str], last: frozenset[str]) -> Lexicon:
        """This lexicon with other name lists (training hides some names)."""
        return replace(self, first=first, last=last, _known={})

    def view(self, token: str) -> View:
        """The token's view, cached: the same words come back in every message."""
        view = self._known.get(token)
        if view is None:
            if len(self._known) > _KNOWN_MAX:  # a daemon sees words without end
                self._known.clear()
            lower = token.lower()
            word_shape, classes = shape(token), self.classes(lower)
            view = View(
                lower + "\0" + word_shape,
                lower,
                word_shape,
                classes,
                is_candidate(word_shape, classes),
            )
            self._known[token] = view
        return view

    def classes(self, lower: str) -> str:
        """A short code of what the lists say of ``lower`` ("fl": given name and surname)."""
        code = self.vocabulary.get(lower, "")
        if lower in self.first:
            code += "f"
        if lower in self.last:
            code += "l"
        if lower in self.common:
            code += "c"
        if lower in self.never:
            code += "n"
        if lower in self.street_after or lower in self.street_before:
            code += "s"
        elif len(lower) > 6 and lower.endswith(self.street_endings):
            code += "e"
        if lower in self.units:
            code += "u"
        return code or "-"


@dataclass(frozen=True)
class Vocabulary:
    """Sorted words and their frequency bands: half the memory of a dict, in every process."""

    words: tuple[str, ...]
    bands: str

    def get(self, word: str, default: str = "") -> str:
        at = bisect.bisect_left(self.words, word)
        found = at < len(self.words) and self.words[at] == word
        return self.bands[at] if found else default


def _vocabulary() -> Vocabulary:
    """Everyday English words and how common each is (``pii_guard.training.vocabulary``)."""
    try:
        words: list[str] = []
        bands: list[str] = []
        with gzip.open(VOCABULARY_PATH, "rt", encoding="utf-8") as handle:
            for line in handle:
                word, band = line.rstrip("\n").split("\t")
                words.append(word)
                bands.append(band)
        if words != sorted(words):
            raise ValueError("the words are not sorted")
        return Vocabulary(tuple(words), "".join(bands))
    except (OSError, ValueError) as exc:
        raise PiiEngineError(
            f"the tagger's word list cannot be read from {VOCABULARY_PATH}: "
            f"{type(exc).__name__}; rebuild it with: python -m pii_guard.training.vocabulary"
        ) from exc


def shape(word: str) -> str:
    if word == "\n":
        return "NL"
    if word.isdigit():
        return f"d{min(len(word), 7)}"
    if word.isalpha():
        if word.isupper():
            return "X" if len(word) == 1 else "XX"
        if word.islower():
            return "x"
        return "Xx" if word[0].isupper() and word[1:].islower() else "xX"
    if word[0].isalnum():
        if any(c.isdigit() for c in word):  # "12B" may be a house number, "1095-A" may not
            return "ad" if len(word) <= 4 and word.isalnum() else "AD"
        return "Xx-" if word[0].isupper() else "x-"
    return word


@dataclass(frozen=True, slots=True)
class View:
    """One token as the tagger and its neighbours see it; ``key`` names it in caches."""

    key: str
    lower: str
    shape: str
    classes: str
    candidate: bool


EDGE = View("<s>", "<s>", "<s>", "<s>", False)
_NOT_BESIDE = frozenset("/:$%#€£+=@")


def views(tokens: Sequence[str], lexicon: Lexicon) -> list[View]:
    """Each token's view, with two edge views on both sides (token ``i`` at ``i + 2``)."""
    return [EDGE, EDGE, *(lexicon.view(token) for token in tokens), EDGE, EDGE]


def candidates(padded: Sequence[View], case: str) -> list[bool]:
    """Which tokens to score even after an ``O``: not a number in a date, a time or an amount.

    In a text without capitals, any word that is not a function word may be a name.
    """
    out = []
    for i in range(2, len(padded) - 2):
        view = padded[i]
        if case == "l" and view.shape == "x":
            out.append("n" not in view.classes)
        elif view.candidate and view.shape[0] == "d":
            out.append(
                padded[i - 1].lower not in _NOT_BESIDE and padded[i + 1].lower not in _NOT_BESIDE
            )
        else:
            out.append(view.candidate)
    return out


def casing(text: str) -> str:
    """The text's own casing: a lower-case word means less in a text without capitals."""
    return "l" if text.islower() else "u" if text.isupper() else "m"


def everyday(classes: str) -> bool:
    """A common English word (Zipf 4 or more) that no name list holds: "Period", "Zoom"."""
    return ("V" in classes or "v" in classes) and "f" not in classes and "l" not in classes


def is_candidate(word_shape: str, classes: str) -> bool:
    """Worth scoring even when the token before it is ``O`` (numbers: see ``candidates``)."""
    named = "f" in classes or "l" in classes
    if word_shape in ("x", "x-"):
        return "n" not in classes and (named or any(c in classes for c in "seu"))
    if "n" in classes and (not named or "V" in classes):  # "The", "Please", "My", "Can"
        return False
    return word_shape in _CANDIDATE_SHAPES or word_shape in _NUMBER_CANDIDATES


# Features of one token alone, by its place relative to the token being labelled
# (-2 .. +2): a model sums their weights once per word and caches the sums.
def unit_features(view: View, place: int) -> list[str]:
    lower = view.lower
    if place == 0:
        return [
            "b",
            "w=" + lower,
            "s3=" + lower[-3:],
            "s2=" + lower[-2:],
            "p2=" + lower[:2],
            "sh=" + view.shape,
            "c=" + view.classes,
            "c|sh=" + view.classes + "|" + view.shape,
            "len=" + str(min(len(lower), 12)),
        ]
    return [f"w{place:+d}=" + lower, f"c{place:+d}=" + view.classes]


PLACES = (-2, -1, 0, 1, 2)


def pair_features(padded: Sequence[View], i: int, case: str) -> list[str]:
    """Features of token ``i`` (at ``padded[i + 2]``) that join it to its neighbours."""
    p2, p1, view, n1, n2 = padded[i : i + 5]
    word_shape = view.shape
    starts = p1.shape == "<s>" or p1.lower in _SENTENCE_END
    return [
        "bos|sh=" + str(starts) + word_shape,
        "doc|sh=" + case + word_shape,
        "w-1|sh=" + p1.lower + "|" + word_shape,
        "w+1|sh=" + n1.lower + "|" + word_shape,
        "sh-1|sh|sh+1=" + p1.shape + "|" + word_shape + "|" + n1.shape,
        "sh+1|sh+2=" + n1.shape + "|" + n2.shape,
        "sh|sh+1|sh+2=" + word_shape + "|" + n1.shape + "|" + n2.shape,
        "sh-2|sh-1=" + p2.shape + "|" + p1.shape,
        "c-1|c|c+1=" + p1.classes + "|" + view.classes + "|" + n1.classes,
    ]


def label_features(prev: str, prev2: str, word_shape: str) -> list[str]:
    """The features that depend on the labels already given to the tokens before."""
    return ["t-1=" + prev, "t-2|t-1=" + prev2 + "|" + prev, "t-1|sh=" + prev + "|" + word_shape]


def all_features(padded: Sequence[View], i: int, case: str, prev: str, prev2: str) -> list[str]:
    """Every feature of token ``i``: what training updates (the model sums the same)."""
    features = pair_features(padded, i, case)
    for place in PLACES:
        features += unit_features(padded[i + 2 + place], place)
    return features + label_features(prev, prev2, padded[i + 2].shape)
