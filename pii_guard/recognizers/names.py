"""Person names without a downloaded model: gazetteer, honorifics and context.

Runs of capitalised words are candidates.  A run is a name when an honorific
or a role word ("client", "spouse", "cliente", "(primary)") stands beside
it, or when its words are known given names and surnames.  Lower-case names
("the consumer, jonathan mills") count only right after a role word and when
the gazetteer knows them.  Scores say how sure: both parts known or context
present is enough to reject; one part known only redacts.

Speed: role words and honorifics are found by one scan of the text each, and
capitalised regions by a third; the Python loop only sees those.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from pii_guard.entities import PERSON
from pii_guard.findings import Finding
from pii_guard.recognizers.base import fold
from pii_guard.recognizers.gazetteer import ORG_WORDS, Gazetteer, greeting_pairs, words
from pii_guard.recognizers.gazetteer import PARTICLES as _PARTICLES

__all__ = ["PLACE_WORDS", "NameRecognizer", "names_a_firm", "past_initial"]

_TOKEN = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_UPPER = "A-ZÀ-ÖØ-Þ\u0100-\u024f"  # Latin capitals (Extended-A/B mix cases: checked later)
_WORD_REST = r"(?:[^\W\d_]|['\u2019.-])*"
_FAMILY = re.compile(rf"[Tt]he[ \t]+(?P<v>[{_UPPER}][a-zà-ÿ]+?)(?:es|s)\b")
# a household by its surname: "the Fairbanks household", "the Gutierrez-Lamb family",
# "la familia Batres"
_HOUSEHOLD = re.compile(
    rf"\b(?:[Tt]he[ \t]+(?P<v>[{_UPPER}][\w'\u2019-]+)[ \t]+(?:household|family|kids|children)"
    rf"|[Ll]a[ \t]+familia[ \t]+(?P<w>[{_UPPER}][\w'\u2019-]+))\b"
)
_TWO_INITIALS = re.compile(rf"[{_UPPER}]\.[ \t]?[{_UPPER}]\.")
# a consumer by initials after a role: "Client K.M. (PID 380014)", "client initials G.O.S."
_INITIALS = re.compile(
    r"\b(?:clients?|consumers?|members?|enrollees?|applicants?|initials|cliente|clienta"
    rf"|iniciales)[ \t:]+(?P<v>[{_UPPER}]\.(?:[ \t]?[{_UPPER}]\.){{1,3}})",
    re.IGNORECASE,
)
_MONTHS = words("jan feb mar apr jun jul aug sep sept oct nov dec")
_PARTICLE = r"(?:van|von|de|del|della|da|di|du|la|las|los|le|bin|bint|ibn|al|vda\.?|viuda)[ \t]+"
# an Arabic article joined to the surname: "Noor al-Tamimi", "Hassan el-Sayed"
_JOINED_ARTICLE = r"(?:al|el|ul)-"
_REGION = re.compile(
    rf"[{_UPPER}](?<![^\W\d_][{_UPPER}]){_WORD_REST}"
    # "Ana de la Fuente", "Marta Guzmán vda. de Orellana", "Yusuf al-Tamimi"
    rf"(?:[ \t]+(?:{_PARTICLE}){{0,2}}(?:{_JOINED_ARTICLE})?[{_UPPER}]{_WORD_REST})*"
)
_ARTICLE_JOINED = re.compile(rf"{_JOINED_ARTICLE}[{_UPPER}]")
_POSSESSIVE = ("'s", "\u2019s")
_SPACE = re.compile(r"[ \t]+")
_INITIAL_GAP = re.compile(r"\.?[ \t]+")
_ROLE = (
    r"clients?|consumers?|customers?|applicants?|co-applicant|members?|enrollees?|subscribers?"
    r"|beneficiar(?:y|ies)|spouse|wife|husband|partner|child|children|kids?|son|daughter"
    r"|dependents?|dependants?|primary|household|patient|mother|father|mom|dad|parents?"
    r"|guardian|grandmother|grandfather|sister|brother|insured|policyholder|tax\s+filer"
    r"|names?|named|called|cliente|clienta|clientes|esposo|esposa|hijo|hija|madre|padre"
    r"|nombre|llamad[oa]|se\s+llama|miembro|solicitante|contact\s+person|emergency\s+contact"
    r"|contact(?=\s*:)|contacto(?=\s*:)"
    r"|baby|toddler|twins?|triplets|step(?:son|daughter)|grand(?:son|daughter|child)|niece"
    r"|nephew|aunt|uncle|goes\s+by|a\.?k\.?a\.?|nickname|beb[ée]|reci[ée]n\s+nacid[oa]"
    r"|niet[oa]|t[ií][oa]|sobrin[oa]|herman[oa]|abuel[oa]|suegr[oa]|apodo"
    # ("prima" is a premium in insurance Spanish, no cousin)
    r"|nuera|yerno|cu[ñn]ad[oa]|primo|padrastro|madrastra|hijastr[oa]|ahijad[oa]|bisniet[oa]"
    r"|(?:daughter|son|mother|father|sister|brother)-in-law|step(?:mother|father|mom|dad)"
    r"|cousin|god(?:son|daughter)|grand(?:ma|pa|mother|father)|fianc[ée]e?"
)
# Role words, honorifics and what may follow a name are matched on the folded text.
_ROLE_WORD = re.compile(r"\b(?:" + _ROLE + r")\b")
_ROLE_GAP = re.compile(r"[\s,:;()'\"-]*(?:(?:is|was|es|de)\b[\s,:]*)?")
_HONORIFIC = re.compile(
    r"\b(?:mr|mrs|ms|miss|mx|dr|sr|sra|srta|señor|señora|señorita|don|doña)\.?[ \t]+"
)
_AFTER = re.compile(
    r"\s*[(,-]\s*(?:" + _ROLE + r"|age|aged|edad|dob|\d{1,3}\s*(?:yo|y/o|years|años|anos))\b"
)
# A consumer's identifiers right after a name: "4. Grace Oyelaran - PID 302006".
_IDS_AFTER = re.compile(
    r"[ \t]*[(,:-][ \t]*(?:dob|d\.o\.b|ssn|pid|person[ \t]+id|member[ \t]+id|medicaid)\b"
)
# What a person does right after their name, and what is said to or of them right
# before it: a lone known name there is a person ("Catherine is", "said Maslin").
_PREDICATE = re.compile(
    r"[ \t]+(?:is|was|has|had|will|would|can|could|did|does|lives|lived|began|begins|said"
    r"|says|told|tells|asked|asks|wrote|writes|works|worked|wants|wanted|needs|needed"
    r"|moved|went|came|got|gave|called|calls|replied|answered|agreed|signed|paid|died"
    r"|turned|turns|aged|lost|started|finished|graduated|married|divorced|enrolled|qualifies"
    r"|were|are|dijo|vive|tiene|es|cumpli[óo]|perdi[óo]|naci[óo])\b"
)
# A word listed beside a name: ", " or "and" between ("Usamov and Bowers").
_LISTED_WORD = rf"(?P<v>[{_UPPER}][^\W\d_]+(?:['\u2019-][^\W\d_]+)*)"
_LISTED_GLUE = ("and", "or", "&", "y", "e", "und")
_LISTED_GAP = rf"(?:[ \t]*,[ \t]*|[ \t]+(?:{'|'.join(_LISTED_GLUE)})[ \t]+)"
_LISTED_AFTER = re.compile(rf"{_LISTED_GAP}{_LISTED_WORD}\b")
_LISTED_BEFORE = re.compile(rf"\b{_LISTED_WORD}{_LISTED_GAP}\Z")
# Verbs only people do: capitalised words no list knows are a name before one.
_PERSON_VERB = re.compile(
    r"[ \t]+(?:lives|lived|began|said|says|told|asked|wrote|works|worked|replied|answered"
    r"|agreed|signed|died|moved|dijo|vive)\b"
)
_LEAD_WORD = re.compile(
    r"\b(?:said|says|asked|asks|told|tells|thanks|thank\s+you|dear|hi|hello|hey|hola"
    r"|good\s+(?:morning|afternoon|evening)|estimad[oa]|querid[oa]|gracias|saludos|cordiales"
    r"|regards|sincerely|atentamente|cordialmente"
    r"|buen[oa]s\s+(?:d[ií]as|tardes|noches)|dijo|pregunt[óo]"
    r"|meet|met|ask|tell|contact|name\?)[ \t]*,?[ \t]*\Z"
)
_LOWER_WORDS = re.compile(r"[a-zà-ÿ][a-zà-ÿ'-]+(?:[ \t]+[a-zà-ÿ][a-zà-ÿ'-]+){0,2}")
_LOWER_NAMES = re.compile(
    r"[\s,:]+(?:is\s+|named\s+)?(?P<v>[a-zà-ÿ][a-zà-ÿ'-]+(?:[ \t]+[a-zà-ÿ][a-zà-ÿ'-]+){0,2})"
)
# A run ending in a street word is a street name, not a person ("Philip Bypass").
PLACE_WORDS = words(
    """street st road rd avenue ave lane ln drive dr court ct boulevard blvd way place pl
    bridge bypass loop square sq terrace circle parkway pkwy highway hwy pike trail row
    crescent close gardens park hill hills heights village station center centre plaza"""
)
# What follows a name with a possessive, and what only a person has.
_POSSESSED = re.compile(r"['\u2019]s[ \t]+([^\W_][\w-]*)")
_PERSONAL_NOUNS = words(
    """ssn social dob birthday application app plan coverage card policy enrollment account
    income premium daughter son wife husband spouse kids children child baby mother father
    mom dad brother sister address phone email number id medicaid renewal case claim
    household dependents tax taxes doctor 1095 1095-a return refund aptc medicare
    eligibility determination notice letter license passport paperwork documents"""
)
_HONORIFICS = words("don doña dona sr sra srta mr mrs ms dr")
# what closes a name: a middle initial ("Tariq J."), a generation ("Sow Jr.", "King III")
_CLOSING_INITIAL = re.compile(
    rf"(?:[ \t]+[{_UPPER}]\.|,?[ \t]+Sr\.?)(?=[ \t]*(?:$|[\r\n,;()]))"
    # "Jr." and numerals close a name wherever it stands ("Romeo Dela Cruz Jr. and ...")
    r"|,?[ \t]+Jr\.?(?![\w])|[ \t]+(?:II|III|IV)\b",
    re.MULTILINE,
)
_SURNAME_COMMA = re.compile(r",[ \t]*")
_LINE_LABEL = re.compile(r"[ \t>*\u2022-]*(?:[^\W\d_][\w ()./-]{0,30}:)?[ \t]*")
_NICK_WORD = rf"[{_UPPER}][^\W\d_]+(?:[-'][^\W\d_]+)*"
# (opening with a capital, not a look-behind: the engine skips to the capitals)
_NICKNAMED = re.compile(
    rf"{_NICK_WORD}[ \t]+(?:\"{_NICK_WORD}\"|\u201c{_NICK_WORD}\u201d"
    rf"|\({_NICK_WORD}\)|'{_NICK_WORD}')[ \t]+{_NICK_WORD}"
)
# a month: "Jan 2026", "May 5", "Jan-Oct 2025" (any dash)
_DATE_AFTER = re.compile(r"[ \t]*,?[ \t]*\d|[ \t]*[\u2013\u2014/-][ \t]*(?:\d|[a-z]{3})")
_NEXT_WORD = re.compile(r"(['\u2019]s)?[ \t]+([^\W\d_]+)")
_NAMED_PLACES = words("county hospital clinic university college school church park bridge")
_OPENERS = " \t\r\n\"'(*>-"
_PARAGRAPH = re.compile(r"\n[ \t\r>]*\n")
_CONTEXT, _BOTH_KNOWN, _ONE_KNOWN, _SINGLE = 0.85, 0.8, 0.55, 0.4
_UNKNOWN_PAIR = 0.45  # capitalised words in no list, then a verb of people: redact only
_ONE_KNOWN_LOWER = 0.5


class _Token(NamedTuple):  # (a tuple: made for every capitalised word, and cheap to make)
    text: str
    start: int
    end: int
    # worked out once: every test of a run asks for them
    lower: str
    is_initial: bool

    @classmethod
    def of(cls, text: str, start: int, end: int) -> _Token:
        return cls(text, start, end, text.lower(), len(text) == 1 and text.isupper())


@dataclass(frozen=True)
class _Context:
    """Where role words end and honorifics end in one text."""

    text: str
    lower: str
    role_ends: list[int]
    honorific_ends: frozenset[int]

    @classmethod
    def of(cls, text: str) -> _Context:
        lower = fold(text)
        roles = [m.end() for m in _ROLE_WORD.finditer(lower)]
        return cls(text, lower, roles, frozenset(m.end() for m in _HONORIFIC.finditer(lower)))

    def role_before(self, start: int) -> bool:
        """A role word, then only punctuation or "is", right before ``start``."""
        index = bisect.bisect_right(self.role_ends, start) - 1
        if index < 0:
            return False
        gap = _ROLE_GAP.match(self.lower, self.role_ends[index], start)
        return gap is not None and gap.end() == start

    def about_a_person(self, start: int, end: int) -> bool:
        """A verb of people right after, or a greeting or a speech verb right before."""
        return bool(_PREDICATE.match(self.lower, end) or _led_by_a_word(self.lower, start, 16))

    def sentence_start(self, start: int) -> bool:
        """After a full stop, or after a blank line: a paragraph opens a sentence even when
        the line above ends with a comma ("Dear Rosa,\n\nLe escribimos")."""
        window = self.text[max(0, start - 12) : start]
        before = window.rstrip(_OPENERS)
        if _PARAGRAPH.search(window, len(before)):
            return True
        return not before or before[-1] in ".!?:;\n"


def names_a_firm(text: str, end: int) -> bool:
    """A firm or plan word right after a name ("Rose Hill Clinic"), or a place named
    after a person ("Prince George's County"; but "Kim Tran's Medicaid" is hers)."""
    following = _NEXT_WORD.match(text, end)
    if following is None:
        return False
    word = following.group(2).lower()
    return word in _NAMED_PLACES if following.group(1) else word in ORG_WORDS


class NameRecognizer:
    """PERSON findings from capitalised runs, honorifics, role words and the gazetteer."""

    name = "NameRecognizer"

    def __init__(
        self,
        gazetteer: Gazetteer,
        english: Callable[[str], bool] | None = None,
        very_common: Callable[[str], bool] | None = None,
    ) -> None:
        self.gazetteer = gazetteer
        # whether a (lower-cased) word is an English word ("results", "eligibility"), and one
        # of its commonest ("said", "will")
        self.english = english or (lambda word: False)
        self.very_common = very_common or (lambda word: False)

    def analyze(self, text: str, entities: Collection[str]) -> list[Finding]:
        if PERSON not in entities:
            return []
        context = _Context.of(text)
        found = [
            *self._capitalised(context),
            *self._lower_case(context),
            *self._honoured_lower_case(context),
            *_nicknamed(text),
            *self._families(text),
            *self._households(text),
            *_initials(text),
        ]
        found += self._listed_with(text, found)
        return [
            Finding(PERSON, start, past_initial(text, end), score)
            for start, end, score in _surname_first(text, found)
        ]

    def _listed_with(
        self, text: str, found: list[tuple[int, int, float]]
    ) -> list[tuple[int, int, float]]:
        """Known names listed with a name already found: "Eklund, Michael and Hodge"."""
        spans = {(start, end) for start, end, _ in found}
        more: list[tuple[int, int, float]] = []
        for start, end, _ in found:
            after = _LISTED_AFTER.match(text, end)
            before = _listed_before(text, start)
            for match in (after, before):
                if match is None or (match.start("v"), match.end("v")) in spans:
                    continue
                word = match.group("v").lower()
                # given names that are words count here too: "Faith and Joy are twins"
                if word in self.gazetteer.first or self.gazetteer.is_surname(word):
                    spans.add((match.start("v"), match.end("v")))
                    more.append((match.start("v"), match.end("v"), _ONE_KNOWN))
        return more

    def _capitalised(self, context: _Context) -> Iterator[tuple[int, int, float]]:
        for run in _runs(context.text, self._name_shaped):
            if any(t.lower in ORG_WORDS for t in run) or self._firm_after(context.text, run):
                continue
            if all(t.text.isupper() for t in run) and any(
                self._plain_word(t.lower)
                for t in run
                if not t.is_initial and t.lower not in _PARTICLES
            ):
                continue  # a line in capitals: "IDENTITY PROOFING (EXPERIAN) AND", not an initial
            tokens = self._trim(run)
            if not tokens:
                if self._word_named_by_role(context, run):
                    yield run[0].start, run[0].end, _ONE_KNOWN  # "her son Will"
                continue
            tokens = self._greeted_given_names(context, run, tokens) + tokens
            score = self._score(context, tokens)
            if len(tokens) == 1 and len(run) > 1 and score <= _SINGLE:
                continue  # the rest of "Kaiser Permanente": part of a name of a firm
            if score:
                yield tokens[0].start, _with_middle_initial(context.text, run, tokens), score

    @staticmethod
    def _firm_after(text: str, run: list[_Token]) -> bool:
        """A firm's word after the run ("Delmarva health underwriters", "Rose Hill Clinic");
        in lower case after a full name it is what the sentence says of the person ("my
        wife Parveen Akhter Chowdhury insurance stop")."""
        if not names_a_firm(text, run[-1].end):
            return False
        following = _NEXT_WORD.match(text, run[-1].end)
        return len(run) == 1 or following is None or not following.group(2)[:1].islower()

    def _name_shaped(self, token: _Token) -> bool:
        word = token.text
        if not word[0].isupper():
            return word in _PARTICLES or _ARTICLE_JOINED.match(word) is not None
        if len(word) > 1 and word.isupper():  # "VDA. DE RIVAS": particles in capitals too
            return token.lower in _PARTICLES or self._capitals_shaped(token.lower)
        return True

    def _capitals_shaped(self, lower: str) -> bool:
        """A word in capitals that may be part of a name ("NASRIN AKTER", "OYELARAN-MOSS" on a
        letter's address block): a name the lists know, or five letters or more that
        English does not know; not an acronym ("SEP", "APTC") nor an English word."""
        gaz = self.gazetteer
        known = gaz.knows(lower) and not gaz.is_never(lower)
        if len(lower) <= 4:
            return known and lower in gaz.last  # "CHEN", "LIU", "TRAN", not "SEP"
        return known or not self.english(lower.split("-")[0])

    def _trim(self, run: list[_Token]) -> list[_Token]:
        never = self.gazetteer.is_never
        run = run[_greeting_head(run) :]
        # "Enrollee Md Rafiqul Islam": a role word heading the run is its context, no name
        while run and (
            never(run[0].lower)
            or run[0].is_initial
            or run[0].text in _PARTICLES
            or (_ROLE_WORD.fullmatch(run[0].lower) is not None and self._names_after(run[1:]))
        ):
            run = run[1:]
        while run and (never(run[-1].lower) or run[-1].is_initial or run[-1].text in _PARTICLES):
            run = run[:-1]
        return run

    def _names_after(self, rest: list[_Token]) -> bool:
        """Words that may be a name after a role word: not "Household Income Verification"."""
        return not all(self._plain_word(t.lower) for t in rest if not t.is_initial)

    def _word_named_by_role(self, context: _Context, run: list[_Token]) -> bool:
        """A given name that is also a word ("Will", "May"), alone right after a role word."""
        word = run[0]
        return (
            len(run) == 1 and word.lower in self.gazetteer.first and context.role_before(word.start)
        )

    def _greeted_given_names(
        self, context: _Context, run: list[_Token], tokens: list[_Token]
    ) -> list[_Token]:
        """Given names that are also words ("Will", "May"), trimmed off the front, rejoin
        the name after a greeting or an honorific: "Hola Will Bishop", "Sra. May Tan"."""
        head = run[: run.index(tokens[0])]
        given: list[_Token] = []
        while head and head[-1].lower in self.gazetteer.first:
            given.insert(0, head.pop())
        if not given:
            return []
        start = given[0].start
        if start in context.honorific_ends or _led_by_a_word(context.lower, start, 24):
            return given
        # "Will Johnson lost coverage": before a surname the word is the given name
        if all(not t.is_initial and self.gazetteer.is_surname(t.lower) for t in tokens):
            return given
        return []

    def _score(self, context: _Context, tokens: list[_Token]) -> float:
        words = [t.lower for t in tokens if not t.is_initial]
        named = [w for w in words if w not in _PARTICLES]  # "Yesenia Marisol Portillo de Funes"
        if len(named) > 4 or words[-1] in PLACE_WORDS:
            return 0.0
        gaz = self.gazetteer
        first, last = gaz.is_first(words[0]), len(words) > 1 and gaz.is_last(words[-1])
        start, end = tokens[0].start, tokens[-1].end
        if start in context.honorific_ends:
            return _CONTEXT
        if context.role_before(start) or _AFTER.match(context.lower, end):
            if len(words) == 1 and self.english(words[0]) and not gaz.knows(words[0]):
                return 0.0  # "Household Summary", "Client Portal": a heading
            if (
                len(words) > 1
                and not any(map(gaz.knows, words))
                and all(map(self._plain_word, words))
            ):
                return 0.0  # "Household Income Verification", not "client Joy Castle"
            return _CONTEXT if first or last or len(words) > 1 else _ONE_KNOWN
        if _IDS_AFTER.match(context.lower, end) and not all(map(self._plain_word, words)):
            return _CONTEXT  # not "Eligibility Results - PID 503388": a heading
        if len(words) > 1:
            if first and last:
                return _BOTH_KNOWN
            if first or last:
                return _ONE_KNOWN
            return _UNKNOWN_PAIR if _PERSON_VERB.match(context.lower, end) else 0.0
        return self._lone_word_score(context, tokens, words[0], first)

    def _lone_word_score(
        self, context: _Context, tokens: list[_Token], word: str, first: bool
    ) -> float:
        """One word (and initials) with no honorific or role beside it: a name only where
        people are."""
        gaz, start, end = self.gazetteer, tokens[0].start, tokens[-1].end
        if tokens[0].text.isupper():
            return 0.0  # "ABA" is an acronym
        if word in gaz.function_words:
            return 0.0  # "¿Lo subimos?", "De: MHBE", "Wenn": a name only with context, above
        if _DATE_AFTER.match(context.lower, end):
            return 0.0  # "Jan 2026", "May 5": a month
        if (first or gaz.is_surname(word)) and context.about_a_person(start, end):
            return _ONE_KNOWN
        if self._owns_something(context, word, end):
            return _ONE_KNOWN
        if first and not context.sentence_start(start) and word not in _MONTHS:
            return _SINGLE  # a lone known given name mid-sentence (not "on Jan invoice")
        return 0.0

    def _plain_word(self, word: str) -> bool:
        """An English or Spanish word no name list knows as a name ("Eligibility", "Pago")."""
        gaz = self.gazetteer
        if gaz.plain_spanish(word):
            return True
        return self.english(word) and not gaz.is_first(word) and not gaz.is_surname(word)

    def _families(self, text: str) -> Iterator[tuple[int, int, float]]:
        """A family by its name: "the Johnsons", "the Nguyens" (a known surname)."""
        if "he " not in text:
            return
        for match in _FAMILY.finditer(text):
            if text[match.start() - 1 : match.start()].isalpha():
                continue  # "bathe", "Clothes"
            stem = match.group("v").lower()
            surname = (
                stem[:-1] if stem.endswith("e") and not self.gazetteer.is_surname(stem) else stem
            )
            if self.gazetteer.is_surname(surname) or self.gazetteer.is_surname(stem):
                yield match.start("v"), match.end(), _ONE_KNOWN

    def _households(self, text: str) -> Iterator[tuple[int, int, float]]:
        """A household by its surname ("the Fairbanks household"): any surname-shaped word
        that is no everyday word, no firm's and no place's ("the Medicaid household")."""
        if (
            "amil" not in text
            and "ousehold" not in text
            and "children" not in text
            and "kids" not in text
        ):
            return
        for match in _HOUSEHOLD.finditer(text):
            group = "v" if match.group("v") else "w"
            word = match.group(group).lower()
            if match.group(group).isupper():
                continue  # "the APTC household"
            if word in ORG_WORDS or word in PLACE_WORDS or self._plain_word(word):
                continue
            if self.english(word) and not self.gazetteer.knows(word):
                continue
            yield match.start(group), match.end(group), _ONE_KNOWN

    def _owns_something(self, context: _Context, word: str, end: int) -> bool:
        """A known name with a possessive: "Nguyen's application", "Priya's daughter".  A
        given name that is also a word counts only before what people have ("Summer's SSN",
        not "Summer's end")."""
        owned = _POSSESSED.match(context.lower, end)
        if owned is None:
            return False
        if self.gazetteer.is_first(word) or self.gazetteer.is_surname(word):
            return True
        return word in self.gazetteer.first and owned.group(1) in _PERSONAL_NOUNS

    def _lower_case(self, context: _Context) -> Iterator[tuple[int, int, float]]:
        gaz = self.gazetteer
        for role_end in context.role_ends:
            match = _LOWER_NAMES.match(context.text, role_end)
            if match is None:
                continue
            words = match.group("v").split()
            first = words[0]
            if first in gaz.spanish_stop_words or first in _HONORIFICS:
                continue  # "esposa del cliente", "clientes con la renovación", "cliente don"
            if gaz.is_first(first):
                count = 1
            elif self._everyday_given_name(words):
                count = 2  # "client june whitaker", "client hope delacroix"
            else:
                continue
            while count < len(words) and gaz.is_last(words[count]):
                count += 1
            start = match.start("v")
            score = _BOTH_KNOWN if count > 1 else _ONE_KNOWN_LOWER
            yield start, _real_end(context.text, start, words[:count]), score

    def _honoured_lower_case(self, context: _Context) -> Iterator[tuple[int, int, float]]:
        """A name in lower case after an honorific: "my client mrs. gonzalez", "la señora
        alvarado" (a word the name lists know, not a function word)."""
        for end in context.honorific_ends:
            match = _LOWER_WORDS.match(context.text, end)
            if match is None:
                continue
            words = match.group().split()
            count = 0
            while count < len(words) and self._lower_surname(words[count]):
                count += 1
            if count:
                yield end, _real_end(context.text, end, words[:count]), _ONE_KNOWN_LOWER

    def _lower_surname(self, word: str) -> bool:
        """A surname in lower case: listed, no everyday word ("young"), no function word, and
        not one of English's commonest words ("mrs. said")."""
        gaz = self.gazetteer
        if not gaz.is_surname(word) or word in gaz.spanish_stop_words:
            return False
        return word not in gaz.function_words and not self.very_common(word)

    def _everyday_given_name(self, words: list[str]) -> bool:
        """A given name that is also an everyday word ("june", "hope", "will") is a name
        after a role when a surname follows it: one the lists know, or a word English does
        not have ("client will call": no surname)."""
        gaz = self.gazetteer
        if len(words) < 2 or words[0] not in gaz.first or gaz.is_never(words[0]):
            return False
        second = words[1]
        if gaz.is_never(second) or second in gaz.spanish_stop_words:
            return False
        return gaz.is_last(second) or not self.english(second)


def _with_middle_initial(text: str, run: list[_Token], tokens: list[_Token]) -> int:
    """Where the name ends: after the initial and its full stop that close it ("Tariq J.",
    "Yokasta M."), which trimming left out; else after its last word."""
    end = tokens[-1].end
    following = run[run.index(tokens[-1]) + 1 :]
    if (
        following
        and following[0].is_initial
        and text[following[0].end : following[0].end + 1] == "."
    ):
        after = text[following[0].end + 1 : following[0].end + 2]
        if not after or after in " \t\r\n,;)":
            return following[0].end + 1
    return end


def past_initial(text: str, end: int) -> int:
    """Past the middle initial that closes a name ("Tariq J.", "Nakia R."), if one does."""
    initial = _CLOSING_INITIAL.match(text, end)
    return initial.end() if initial else end


def _surname_first(text: str, found: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """ "Coleman, Tariq J." on a labelled line ("Primary: Coleman, Tariq J."): the surname and
    the given name found apart are one name, the comma between them too."""
    ordered = sorted(found)
    merged: list[tuple[int, int, float]] = []
    for start, end, score in ordered:
        if (
            merged
            and _SURNAME_COMMA.fullmatch(text, merged[-1][1], start)
            and _labelled_line(text, merged[-1][0])
        ):
            first = merged.pop()
            merged.append((first[0], max(end, first[1]), max(score, first[2])))
        else:
            merged.append((start, end, score))
    return merged


def _labelled_line(text: str, start: int) -> bool:
    """Only a label ("Primary:", "Spouse:", "- ") or nothing before ``start`` on its line."""
    line = text[text.rfind("\n", 0, start) + 1 : start]
    return _LINE_LABEL.fullmatch(line) is not None


def _initials(text: str) -> Iterator[tuple[int, int, float]]:
    if _TWO_INITIALS.search(text) is None:  # (case-sensitive, from a class: quick to rule out)
        return
    for match in _INITIALS.finditer(text):
        yield match.start("v"), match.end("v"), _CONTEXT


def _nicknamed(text: str) -> Iterator[tuple[int, int, float]]:
    """A name with its nickname in quotes or brackets between given name and surname
    ("Oluwaseun \"Seun\" Bakare", "Gerald (Gerry) Hutchins"): only people are written so."""
    if '"' not in text and "(" not in text and "\u201c" not in text:
        return
    for match in _NICKNAMED.finditer(text):
        if not text[match.start() - 1 : match.start()].isalpha():  # a word's start
            yield match.start(), match.end(), _CONTEXT


def _led_by_a_word(lower: str, start: int, reach: int) -> bool:
    """A greeting or a speech verb (``_LEAD_WORD``) ends in the ``reach`` characters before
    ``start``.  Each ends with a letter (or "name?") before the blanks and comma it may
    take: without one there, nothing is searched."""
    before = lower[max(0, start - reach) : start].rstrip(" \t,")
    if not before or not (before[-1].isalpha() or before[-1] == "?"):
        return False
    return _LEAD_WORD.search(lower, start - reach, start) is not None


def _listed_before(text: str, start: int) -> re.Match[str] | None:
    """The word listed right before ``start``: searched back only when a comma or a
    conjunction ends the text before it (as ``_LISTED_GAP`` must), which most do not."""
    window = max(0, start - 40)
    last = text[window:start].rstrip(" \t").rsplit(None, 1)
    if not last or not (last[-1].endswith(",") or last[-1] in _LISTED_GLUE):
        return None
    return _LISTED_BEFORE.search(text, window, start)


def _greeting_head(run: list[_Token]) -> int:
    """How many tokens a run opens with that are a greeting whose words may be names too
    ("Good Day", "Buenos Dias"): one-word greetings are never-names, trimmed anyway."""
    if len(run) < 2:
        return 0  # one word is no pair
    pairs = greeting_pairs([t.lower for t in run[:4]])
    return pairs.index(False) if False in pairs else len(pairs)


def _real_end(text: str, start: int, words: list[str]) -> int:
    """The end offset of ``words`` read from ``text`` at ``start`` (any run of blanks between)."""
    position = start
    for word in words:
        position = text.index(word, position) + len(word)
    return position


def _runs(text: str, keep: Any) -> Iterator[list[_Token]]:
    """Maximal runs of name-shaped tokens separated by blanks (or an initial's dot).

    A compiled pattern finds the regions of capitalised words first, so the
    Python loop sees a few dozen tokens instead of every word of the message.
    """
    for region in _REGION.finditer(text):
        start, end = region.span()
        word = _TOKEN.fullmatch(text, start, end)
        if word is None:
            yield from _region_runs(text, start, end, keep)
        elif keep(token := _Token.of(word.group(), start, end)):  # one word: the usual region
            yield [_without_possessive(token)]


def _without_possessive(token: _Token) -> _Token:
    """The token without its "'s" ("Kim Tran's Medicaid": the name ends before it)."""
    if token.text[-2:] in _POSSESSIVE:
        return _Token.of(token.text[:-2], token.start, token.end - 2)
    return token


def _region_runs(text: str, start: int, end: int, keep: Any) -> Iterator[list[_Token]]:
    run: list[_Token] = []
    for match in _TOKEN.finditer(text, start, end):
        token = _Token.of(match.group(), match.start(), match.end())
        if not keep(token):
            if run:
                yield run
            run = []
            continue
        if run and not _joined(text, run[-1], token):
            yield run
            run = []
        if token.text[-2:] in _POSSESSIVE:  # "Kim Tran's Medicaid": the name ends here
            run.append(_without_possessive(token))
            yield run
            run = []
            continue
        run.append(token)
    if run:
        yield run


def _joined(text: str, previous: _Token, token: _Token) -> bool:
    gap = text[previous.end : token.start]
    if previous.is_initial or previous.lower == "vda":  # "Tariq J. Coleman", "vda. de"
        return _INITIAL_GAP.fullmatch(gap) is not None
    return _SPACE.fullmatch(gap) is not None
