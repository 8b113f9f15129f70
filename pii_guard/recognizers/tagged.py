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
from pii_guard.recognizers.gazetteer import (
    GREETING_PAIRS,
    ORG_WORDS,
    PARTICLES,
    WORD_BEFORE_READ,
    Gazetteer,
    load_gazetteer,
    word_before,
)
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
# a postal code, not opening the span: "11526 Αθήνα", "111 51", "SW1A 1AA" (not a year)
_POSTAL_CODE = re.compile(
    r"\S\s*\b(?:(?!(?:19|20)\d\d\b)\d{4,6}|\d{3}[ -]\d{2}|\d{2}-\d{3}"
    r"|[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}|[A-Z]\d[A-Z] \d[A-Z]\d)\b"
)
_LONG_NUMBER = re.compile(r"\d{7}")  # no house number, postal code or ZIP+4 has seven digits
_DECIMAL = re.compile(r"\d\.\d")
_LINE_WORDS = 8  # an address line is short; a longer one is prose
_NUMBERS = re.compile(r"\d+")
_PHONE = re.compile(r"(?:\b1[-. ])?\(?\b\d{3}\)?[-. ]\d{3}[-. ]\d{4}\b")
_WORDS = re.compile(r"[^\W\d_]+")
_NEXT_LOWER_WORD = re.compile(r"[ \t]+([a-zà-ÿñ]+)\b")
# Spanish words the street lists also hold ("al": Arabic streets): never a street in Spanish
_SPANISH_FUNCTION = frozenset(["al", "del", "de", "la", "el", "en"])
_SPANISH_MARKERS = frozenset(
    [
        "que",
        "los",
        "las",
        "del",
        "por",
        "para",
        "con",
        "una",
        "pero",
        "está",
        "esta",
        "tiene",
        "su",
        "sus",
        "el",
        "la",
        "de",
        "en",
        "no",
        "se",
    ]
)
_ENGLISH_MARKERS = frozenset(
    ["the", "and", "you", "that", "with", "for", "this", "have", "is", "was", "are", "her", "his"]
)
_SPAN_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
# the second words of two-word greetings: only before one does the word before a span matter
_GREETING_ENDS = frozenset(second for _, second in GREETING_PAIRS)
# What judging a span reads after it: a possessive, blanks and the next word with the
# character that ends it (before it: the word that ``word_before`` reads).
_AFTER_READ = re.compile(r"(?:['\u2019]s)?[ \t]*\S*.?", re.DOTALL)
# a span as judged: its label, its text and what was read before and after it
_Seen = tuple[str, str, str, str]


class TaggerRecognizer:
    name = "TaggerRecognizer"

    def __init__(
        self, model: TaggerModel, lexicon: Lexicon, gazetteer: Gazetteer | None = None
    ) -> None:
        self.model = model
        self.lexicon = lexicon
        self.gazetteer = gazetteer or load_gazetteer()
        # the function words of other languages that English does not also use ("a", "no")
        self._foreign_markers = self.gazetteer.function_words - self.gazetteer.never

    def analyze(self, text: str, entities: Collection[str]) -> list[Finding]:
        if PERSON not in entities and ADDRESS not in entities:
            return []
        texts, offsets = token_texts(text)
        labels = self.model.tag(texts, self.lexicon)
        judged: dict[_Seen, tuple[int, int] | None] = {}
        spanish = _not_english(texts, self._foreign_markers)
        found = (
            self._judged(text, *span, judged, spanish) for span in spans(texts, offsets, labels)
        )
        return [f for f in found if f is not None and f.entity_type in entities]

    def _judged(
        self,
        text: str,
        label: str,
        start: int,
        end: int,
        judged: dict[_Seen, tuple[int, int] | None],
        spanish: bool = False,
    ) -> Finding | None:
        """``_finding``, worked out once for spans that read the same in the same
        surroundings (a name on every line): the key holds all that it reads."""
        before = text[max(0, start - WORD_BEFORE_READ) : start]
        after = _AFTER_READ.match(text, end)  # (it always matches: every part may be empty)
        seen = (label, text[start:end], before, after.group() if after else "")
        if seen not in judged:
            finding = self._finding(text, label, start, end, spanish)
            judged[seen] = None if finding is None else (finding.start - start, finding.end - start)
        kept = judged[seen]
        if kept is None:
            return None
        return Finding(_ENTITY[label], start + kept[0], start + kept[1], TAGGED_SCORE)

    def _finding(
        self, text: str, label: str, start: int, end: int, spanish: bool = False
    ) -> Finding | None:
        """The span as a finding, trimmed, or ``None``.  It reads the span, the
        ``WORD_BEFORE_READ`` characters before it (the word a greeting opens with) and
        the word after it (a firm's, a Spanish one): ``_judged`` relies on that."""
        if label == "PER":
            trimmed = self._without_greetings(text, start, end)
            if trimmed is None or names_a_firm(text, trimmed[1]):
                return None
            if any(w.lower() in ORG_WORDS for w in _WORDS.findall(text, *trimmed)):
                return None  # "Arundel Mills Mall", "Clark Construction": a place or a firm
            if self._spanish_pronoun(text, *trimmed, spanish) or self._spanish_phrase(
                text, *trimmed
            ):
                return None
            start, end = trimmed
            if self._ends_in_a_word(text[start:end]):
                return None
            if not self._name_for_its_text(text, start, end, spanish):
                return None
        if not _plausible(label, text[start:end], self.lexicon, spanish):
            return None
        return Finding(_ENTITY[label], start, end, TAGGED_SCORE)

    def _without_greetings(self, text: str, start: int, end: int) -> tuple[int, int] | None:
        """The name without the greeting or the Spanish words the model took with it
        ("Hola Rosa Martinez", "Hemos", "El equipo"): its features know English
        function words, not these.  ``None`` when nothing but them is left."""
        words = list(_SPAN_WORD.finditer(text, start, end))
        lowered = [w.group().lower() for w in words]
        greeted = bool(lowered) and lowered[0] in _GREETING_ENDS  # "[Buenos] Dias Rosa"
        fillers = self.gazetteer.mail_fillers(lowered, word_before(text, start) if greeted else "")
        # a particle closes no name ("Ortega de", "Nadia P. de", "FALTA DE"): it joins a
        # name to the next word, and the model took it with the word before
        particles = [w in PARTICLES for w in lowered]
        if not any(fillers) and not (particles and (particles[0] or particles[-1])):
            return start, end
        edge = [f or p for p, f in zip(particles, fillers, strict=True)]
        if all(edge):
            return None
        first, last = edge.index(False), len(edge) - 1 - edge[::-1].index(False)
        return words[first].start(), words[last].end()

    def _spanish_pronoun(self, text: str, start: int, end: int, spanish: bool) -> bool:
        """A lone Spanish function word that is also a name ("Le", "Su", "Ella") opening a
        Spanish clause: the next word is lower case and, unless the mail is in Spanish,
        no English word ("Le escribimos"; in Spanish mail "Ella dice" too), unlike "Ella
        is" or "Ella:"."""
        if text[start:end].lower() not in self.gazetteer.spanish_stop_words:
            return False
        following = _NEXT_LOWER_WORD.match(text, end)
        if following is None:
            return False
        return spanish or not self.lexicon.vocabulary.get(following.group(1))

    def _spanish_phrase(self, text: str, start: int, end: int) -> bool:
        """Lower-case words with a Spanish function word ("esperar una", "pero contenía"),
        or opening with a name particle ("del hogar", "de la casa"): the model, trained
        on English, took a Spanish phrase for a lower-case name.  Particles inside a
        name ("maria de la cruz") do not count."""
        words = _WORDS.findall(text, start, end)
        if not words or not all(w.islower() for w in words):
            return False
        return words[0] in PARTICLES or any(
            w in self.gazetteer.spanish_stop_words and w not in PARTICLES for w in words
        )

    def _name_for_its_text(self, text: str, start: int, end: int, spanish: bool) -> bool:
        """What the model's name needs where it is weakest.

        - In Spanish mail, a list must know one of its words as a name.
        - In Spanish mail a lower-case name is two known names ("maria lopez"), never a
          phrase like "deja seleccionar" or "con".
        - One lower-case word is a name only when a list knows it and English does not
          use it every day: "his wife nadia", not "the payment link".
        """
        value = text[start:end]
        words = _WORDS.findall(value)
        if all(w.lower() in self.gazetteer.function_words for w in words):
            return False  # "De: MHBE…", "Su", "Lo", "Wenn Sie": the words, not a name
        if all(w.lower() in _CALENDAR for w in words):
            return False  # "Mon, Jan", "June 5"
        if len(words) == 1 and self._plain_english(words[0]):
            return False  # "Summary", "Contact": a heading or a label, no name
        if all(self._plain_spanish(w) for w in words):
            return False  # "Pago duplicado", "Agregar recién nacida": a Spanish subject's words
        if len(words) == 1 and _gerund(words[0]) and not self._holds_a_known_name(value):
            return False  # "Pasting from my export"
        acronyms = any(_acronym(w) and not self.gazetteer.knows(w.lower()) for w in words)
        if acronyms and not self._holds_a_known_name(value):
            return False  # "SEP Verified", "HMO Silver"
        if spanish and not self._holds_a_known_name(value):
            return False
        return not value.islower() or self._lower_case_name(words, spanish)

    def _lower_case_name(self, words: list[str], spanish: bool) -> bool:
        """A lower-case span the model took for a name: in Spanish mail two known names
        ("maria lopez"); elsewhere no everyday English word ("payment link", "line cook"),
        opening with a given name or a word English does not know."""
        if spanish:
            known = [w for w in words if w not in self.gazetteer.spanish_stop_words]
            return len(known) >= 2 and all(self.gazetteer.knows(w) for w in known)
        classes = [self._classes(w) for w in words if len(w) > 1]  # not the initials
        if not classes or any(everyday(c) for c in classes):
            return False
        opening = classes[0]
        if len(classes) == 1:  # "jail", "link": an English word first, a name second
            return ("f" in opening or "l" in opening) and "V" not in opening and "v" not in opening
        english = opening != "-" and any(band in opening for band in "Vvw")
        return not english or ("f" in opening and "V" not in opening)

    def _plain_english(self, word: str) -> bool:
        """An English word ("Summary") that no list knows as a name."""
        classes = self._classes(word)
        return "f" not in classes and "l" not in classes and any(b in classes for b in "Vvw")

    def _plain_spanish(self, word: str) -> bool:
        lowered = word.lower()
        gazetteer = self.gazetteer
        return gazetteer.plain_spanish(lowered) or lowered in gazetteer.spanish_stop_words

    def _holds_a_known_name(self, value: str) -> bool:
        """Some word of it is a given name or a surname the lists know.  Required in Spanish
        mail: the model learnt English, where a capitalised word no list knows is often a
        name, and in Spanish every clause opens with one ("Perdió", "Necesita", "Usó")."""
        return any("f" in c or "l" in c for c in map(self._classes, _WORDS.findall(value)))

    def _classes(self, word: str) -> str:
        return self.lexicon.view(word).classes

    def _ends_in_a_word(self, value: str) -> bool:
        """An everyday word that is no name closes it: "Grace Period", "Zoom", "Token"."""
        words = _WORDS.findall(value)
        classes = self.lexicon.view(words[-1]).classes if words else ""
        if everyday(classes):
            return True
        return len(words) == 1 and "w" in classes and "f" not in classes and "l" not in classes


def _gerund(word: str) -> bool:
    return len(word) > 5 and word.lower().endswith("ing")


def _acronym(word: str) -> bool:
    return 1 < len(word) <= 4 and word.isupper()


def _not_english(tokens: list[str], function_words: frozenset[str]) -> bool:
    """More function words of Spanish (or German, French…) than of English's commonest:
    cheap (the tokens are the model's), and enough to know the mail is not in the
    language the model learnt, where a capitalised word opening a clause ("Perdió",
    "Freitag") is no name."""
    foreign = english = 0
    for token in tokens:
        lowered = token.lower()
        foreign += lowered in _SPANISH_MARKERS or lowered in function_words
        english += lowered in _ENGLISH_MARKERS
    return foreign > english


def _plausible(label: str, value: str, lexicon: Lexicon, spanish: bool = False) -> bool:
    """What a name or an address looks like, whatever the model thought.

    A name is words of letters (an initial with its dot, ``O'Brien``,
    ``Soo-jin``), one of them at least two letters long, none mixing cases
    like a key or a hash (``RrQNbJwn``).
    """
    if label == "PER":
        return _name_like(value.replace(",", " ").split(" "))
    return _address_like(value, lexicon, spanish)


def _address_like(value: str, lexicon: Lexicon, spanish: bool = False) -> bool:
    """A number and a place word, short lines, no code, version or sentence.

    Not "8", "65-year-old", "ABA 021000021", "0490 39 07 81-Office" (more
    numbers than words), "Suite 200, Building 3" (units only), "Python 2.0"
    (a version), "553 Invalid recipient" or "0 hours, 0" (everyday words
    only), "al 1-844-224-6761 para" (a phone number is no house number), nor a
    paragraph of prose.
    """
    words = _WORDS.findall(value)
    if not words or words[0].lower() in _CALENDAR or len(value) > 300:
        return False  # "Apr 2, 2025", "Page 2"
    if _NOT_ADDRESS.search(value) or _DECIMAL.search(value) or _LONG_NUMBER.search(value):
        return False  # code, a version, an identifier ("FEIN 52-2287104")
    if any(len(_WORDS.findall(line)) > _LINE_WORDS for line in value.splitlines()):
        return False
    numbers = len(_NUMBERS.findall(_PHONE.sub(" ", value)))
    classes = [lexicon.view(w).classes for w in words]
    places = [w for w, c in zip(words, classes, strict=True) if "u" not in c]
    named = any(
        not everyday(c) or "s" in c or "e" in c or "c" in c or w.lower() in PLACE_WORDS
        for w, c in zip(words, classes, strict=True)
    )
    if not (0 < numbers <= len(words) + 1 and named and any(_street_word(w) for w in places)):
        return False
    streets = [c for w, c in zip(words, classes, strict=True) if w.lower() not in _SPANISH_FUNCTION]
    if any(c in cls for cls in streets for c in "seu") or _POSTAL_CODE.search(value):
        return True
    # Without a street, a unit or a postal code, only words English does not know make a
    # street name ("Nieuwe Baan 473", "Μεγάλη Άμμος 184"): "502 Bad Gateway" and "Firefox
    # 132, Windows 11" are English, and in Spanish mail "40 citas programadas" is Spanish.
    return not spanish and not all(lexicon.vocabulary.get(w.lower()) for w in words)


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
