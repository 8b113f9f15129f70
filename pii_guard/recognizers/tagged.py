"""PERSON and ADDRESS findings from the trained tagger (``pii_guard.tagger``).

The rules find what has a context or a list behind it and score it; the
tagger adds what only a statistical model sees: a name no list knows in a
place where names stand ("says Iwase", "Follow up with Satsita Umkhayev",
"Usamov and Bowers were"), a lower-case name, an address in a script or a
layout the street patterns do not cover.  Its findings are weak on purpose
(``TAGGED_SCORE``): redacted, and counted, but never on their own enough to
make a ``reject`` mailbox refuse a message.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from pii_guard.entities import ADDRESS, PERSON
from pii_guard.findings import Finding
from pii_guard.recognizers.gazetteer import PARTICLES
from pii_guard.recognizers.names import PLACE_WORDS, names_a_firm
from pii_guard.recognizers.postal import CALENDAR_WORDS
from pii_guard.tagger.features import Lexicon, everyday, token_texts
from pii_guard.tagger.model import TaggerModel, spans

__all__ = ["TAGGED_SCORE", "TaggerRecognizer"]

TAGGED_SCORE = 0.5
_ENTITY = {"PER": PERSON, "ADDR": ADDRESS}
_CALENDAR = frozenset(CALENDAR_WORDS)
_NAME_WORD = re.compile(r"[^\W\d_]\.?|[^\W\d_](?:[^\W\d_]|['\u2019-](?=[^\W\d_]))*\.?")
_NOT_ADDRESS = re.compile(r"[`;<=*{}\\^~$%@!_\[\]\ufffd]")  # code, base64, binary
_DECIMAL = re.compile(r"\d\.\d")
_LINE_WORDS = 8  # an address line is short; a longer one is prose
_NUMBERS = re.compile(r"\d+")
_WORDS = re.compile(r"[^\W\d_]+")


class TaggerRecognizer:
    name = "TaggerRecognizer"

    def __init__(self, model: TaggerModel, lexicon: Lexicon) -> None:
        self.model = model
        self.lexicon = lexicon

    def analyze(self, text: str, entities: Collection[str]) -> list[Finding]:
        if PERSON not in entities and ADDRESS not in entities:
            return []
        texts, offsets = token_texts(text)
        labels = self.model.tag(texts, self.lexicon)
        return [
            Finding(_ENTITY[label], start, end, TAGGED_SCORE)
            for label, start, end in spans(texts, offsets, labels)
            if _ENTITY[label] in entities
            and _plausible(label, text[start:end], self.lexicon)
            and not (
                label == "PER"
                and (names_a_firm(text, end) or self._ends_in_a_word(text[start:end]))
            )
        ]

    def _ends_in_a_word(self, value: str) -> bool:
        """An everyday word that is no name closes it: "Grace Period", "Zoom", "Token"."""
        words = _WORDS.findall(value)
        classes = self.lexicon.view(words[-1]).classes if words else ""
        if everyday(classes):
            return True
        return len(words) == 1 and "w" in classes and "f" not in classes and "l" not in classes


def _plausible(label: str, value: str, lexicon: Lexicon) -> bool:
    """What a name or an address looks like, whatever the model thought.

    A name is words of letters (an initial with its dot, ``O'Brien``,
    ``Soo-jin``), one of them at least two letters long, none mixing cases
    like a key or a hash (``RrQNbJwn``).
    """
    if label == "PER":
        return _name_like(value.replace(",", " ").split(" "))
    return _address_like(value, lexicon)


def _address_like(value: str, lexicon: Lexicon) -> bool:
    """A number and a place word, short lines, no code, version or sentence.

    Not "8", "65-year-old", "ABA 021000021", "0490 39 07 81-Office" (more
    numbers than words), "Suite 200, Building 3" (units only), "Python 2.0"
    (a version), "553 Invalid recipient" or "0 hours, 0" (everyday words
    only), nor a paragraph of prose.
    """
    words = _WORDS.findall(value)
    if not words or words[0].lower() in _CALENDAR or len(value) > 300:
        return False  # "Apr 2, 2025", "Page 2"
    if _NOT_ADDRESS.search(value) or _DECIMAL.search(value):
        return False
    if any(len(_WORDS.findall(line)) > _LINE_WORDS for line in value.splitlines()):
        return False
    numbers = len(_NUMBERS.findall(value))
    classes = [lexicon.view(w).classes for w in words]
    places = [w for w, c in zip(words, classes, strict=True) if "u" not in c]
    named = any(
        not everyday(c) or "s" in c or "e" in c or "c" in c or w.lower() in PLACE_WORDS
        for w, c in zip(words, classes, strict=True)
    )
    return 0 < numbers <= len(words) + 1 and named and any(_street_word(w) for w in places)


def _name_like(words: list[str]) -> bool:
    """Letters only; lower-case words only as particles beside capitalised ones."""
    words = [w for w in words if w]
    if any(w[0].isupper() for w in words) and any(
        w[0].islower() and w not in PARTICLES for w in words
    ):
        return False  # "Zoom links"
    if not words or len(words) > 5 or all(len(w.rstrip(".")) < 2 for w in words):
        return False
    if len(words) == 1 and words[0].isupper() and len(words[0]) <= 4:
        return False  # an acronym: "SSN", "HMO"
    for word in words:
        capitals = sum(c.isupper() for c in word)
        if not _NAME_WORD.fullmatch(word) or (capitals > 2 and not word.isupper()):
            return False
    return True


def _street_word(word: str) -> bool:
    """Three letters or more, four when all capitals: not "pm" (5pm) nor "ABA"."""
    return len(word) >= 4 or (len(word) == 3 and not word.isupper())
