"""Postal addresses in any Latin-script country: a street line, then the rest of the block.

A street line is a street-type word with a name and a house number in one of
the orders Europe and the Americas write them ("Via Roma 131", "Snellmaninkatu
55", "Rákóczi út 66", "31 Rue de la Paix", "ul. Słowicza 10", "12 Main St"),
or a US military box ("Unit 5477 Box 8244 / DPO AP 15730").  From there the
block is followed, on the same line after a comma or on the next lines
(quoted with ``>`` or not), through units, postal codes, places and
countries, so "Apt. 022 / ESPOO / Finland 23221" is redacted with its street.
A line that is not one of those ends the block: a greeting or a sentence is
never swallowed.  The line right above a block, when it reads like a name,
is its addressee (a PERSON finding).

Speed: every street line holds a house number, so the patterns are tried only
at numbers that could be one (not dates, amounts, times or long identifiers)
with a street's word beside them, a few times each, never across the whole
message; and back from a number only as far as a line ending with it could
start (its words hold no digits: past a flat's and a building's number it ends).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

from faker.providers.address.en_US import Provider as UsProvider

from pii_guard.entities import ADDRESS, PERSON
from pii_guard.findings import Finding
from pii_guard.recognizers.address import ADDRESS_CONTEXT, STREET_LINE
from pii_guard.recognizers.base import fold, has_context, word_tree
from pii_guard.recognizers.gazetteer import ORG_WORDS, words
from pii_guard.recognizers.street_words import (
    COMPOUND_ENDINGS,
    PREFIX_WORDS,
    SUFFIX_WORDS,
    UNIT_WORDS,
)

__all__ = ["PostalRecognizer"]

_UPPER = "A-ZÀ-ÖØ-Þ\u0100-\u024f"
# (no unit word is the start of another that fits: "fl" is one only before a non-letter)
_UNIT_WORD = rf"(?i:{word_tree(UNIT_WORDS)})(?:\.|(?![^\W\d_]))"
# A capitalised word (or an initial, or d'/l' before one), never a unit word ("Apt").
_CAP = (
    rf"(?=[{_UPPER}dl])(?!{_UNIT_WORD})"  # the cheap test first: this runs at every position
    rf"(?:[{_UPPER}]\.|(?:[dDlL]['\u2019])?[{_UPPER}][^\W\d_]*+(?:['\u2019-][^\W\d_]+)*+(?!\d))"
)
_PARTICLE = (
    r"(?:de|la|le|les|del|della|delle|dei|di|da|do|dos|das|du|des|van|von|der|den|het"
    r"|al|el|y|i|e|of|the|au|aux|sur|am|an|im|zum|zur)"
)
# Words of a line stand one or two blanks apart: a tab, a bar or a wider gap is a table's
# column break, and a line never runs across one ("4410 Harford Rd\t552031").
_BLANK = "[ \u00a0]{1,2}"
_NAME = rf"{_CAP}(?:{_BLANK}(?:{_PARTICLE}{_BLANK})*{_CAP}){{0,3}}"
_NUMBER = r"\d{1,5}[A-Za-z]?(?:[-/]\d{1,4}[A-Za-z]?)?(?![\w-])\.?"
# A flat or a building number before the line ("Apt. 117 5720 Skoanveien 226").
_LEAD = rf"(?:(?=[A-Za-z]){_UNIT_WORD} ?#? ?\d{{1,5}}[A-Za-z]?,?{_BLANK})?(?:\d{{1,6}}{_BLANK})?"


def _alternation(items: list[str], *, capitalised_only: frozenset[str] = frozenset()) -> str:
    """Each word as written, capitalised or not; some only capitalised (they are English too).

    ``items`` are pattern fragments (``str\\.``).  Where more pattern follows the words,
    it opens with a blank or a word's end, so no word fits where a longer one does ("via",
    "viale"); elsewhere (``_WORD_AFTER``) only whether one fits counts.
    """
    forms: set[str] = set()
    for item in items:
        word = item.replace("\\.", ".")
        forms.add(word[0].upper() + word[1:])
        if item not in capitalised_only:
            forms.add(word)
    return word_tree(forms)


# English words among the prefixes: only capitalised ("sent via Email 2 times").
_ENGLISH_PREFIXES = words("via place route plaza avenue boulevard cours ronda largo carrera")
_PREFIX = _alternation(PREFIX_WORDS, capitalised_only=_ENGLISH_PREFIXES)
_SUFFIX = _alternation(SUFFIX_WORDS)
_COMPOUND = "(?:" + "|".join(COMPOUND_ENDINGS) + ")"

# Street lines that end with their house number, and those that start with it (or
# with a military box): the first are searched back from a number, the second tried
# at the number and at the few words before it.
_ENDING_WITH_NUMBER = (
    rf"{_NAME}{_BLANK}{_SUFFIX}{_BLANK}{_NUMBER}",  # Trenerys gate 232
    rf"(?:{_CAP}{_BLANK}){{0,2}}[{_UPPER}][^\W\d_]+{_COMPOUND}{_BLANK}{_NUMBER}",  # …katu 55
    rf"{_PREFIX}{_BLANK}(?:(?:{_PARTICLE}|{_CAP}){_BLANK}){{0,4}}{_CAP},?{_BLANK}{_NUMBER}",
)
_STARTING_WITH_NUMBER = (
    rf"{_NUMBER},?{_BLANK}{_PREFIX}{_BLANK}(?:(?:{_PARTICLE}|{_CAP}){_BLANK}){{0,4}}{_CAP}",
    rf"{_NUMBER}{_BLANK}(?:{_CAP}{_BLANK}){{0,2}}[{_UPPER}][^\W\d_]+{_COMPOUND}(?![\w])",
    STREET_LINE,  # the US order: 12 Main St
)
_MILITARY = (
    r"(?i:(?:unit|psc|cmr)[ \t]+\d{3,5},?[ \t]+box[ \t]+\d{1,5}[\s,>]+(?:apo|fpo|dpo)"
    r"[ \t]+a[aep][ \t]+\d{5})"
    rf"|(?:USNS|USNV|USS|USCGC)[ \t]+{_CAP}(?:[ \t]+{_CAP})?[\s,>]+FPO[ \t]+A[AEP][ \t]+\d{{5}}"
)
# One pattern per kind of line, tried only when the word before the number can end
# that kind: a street word, a glued ending, or a capitalised name.
_ENDS_WITH_SUFFIX, _ENDS_WITH_COMPOUND, _ENDS_WITH_NAME = (
    re.compile(rf"(?<![\w.-]){_LEAD}(?:{line})\Z") for line in _ENDING_WITH_NUMBER
)
_STARTS_AT = re.compile(
    rf"(?<![\w.-])(?:(?P<m>{_MILITARY})|{_LEAD}(?:"
    + "|".join(_STARTING_WITH_NUMBER)
    + r"))(?![\w])"
)
# Dates are name-and-number shaped ("Apr 2, 2012", "On May 2"): never a street.
CALENDAR_WORDS = sorted(
    words(
        """jan feb mar apr may jun jul aug sep sept oct nov dec january february march april
        june july august september october november december enero febrero marzo abril mayo
        junio julio agosto septiembre octubre noviembre diciembre ene abr ago dic lun mié mie
        jue vie sáb sab dom lunes martes miércoles miercoles jueves viernes sábado sabado
        domingo on mon tue wed thu fri sat sun
        monday tuesday wednesday thursday friday saturday sunday release version page item step
        error section room tier level year week day no"""
    ),
    key=lambda w: (-len(w), w),  # longest first: "sept" before "sep"
)
_CALENDAR = rf"(?!(?i:{word_tree(CALENDAR_WORDS)})(?![^\W\d_]))"
# A name and a number with no street word ("Edeby 55"), or a US street with a rarer
# USPS suffix ("52 Trajanka Forks"): an address only when a unit or a postal code follows.
_USPS = _alternation(sorted({s.lower() for s in UsProvider.street_suffixes}))
# (the name's cheap first test before the calendar's long one: most starts fail it)
_BARE_NAME = re.compile(rf"(?<![\w.-]){_LEAD}(?=[{_UPPER}dl]){_CALENDAR}{_NAME}{_BLANK}{_NUMBER}\Z")
# What introduces an address in a sentence, on the folded text ("She lives at Edeby 55").
_PHRASE = (
    r"(?:address(?:\s+is)?|lives?\s+(?:at|on)|living\s+at|moved\s+to|resides?\s+at"
    r"|located\s+at|direcci[oó]n|domicilio|vive\s+en)"
)
_ADDRESS_PHRASE = re.compile(_PHRASE)
_ADDRESS_PHRASE_BEFORE = re.compile(_PHRASE + r"[\s:,]*\Z")
_BARE_US = re.compile(
    rf"(?<![\w.-])(?:\d{{1,6}}{_BLANK})?{_NUMBER}{_BLANK}(?:{_CAP}{_BLANK}){{1,3}}{_USPS}(?![\w])"
)

# Every street line holds a house number: the full patterns run only around numbers
# that could be one (not dates, amounts, times, phone groups or long identifiers).
_HOUSE_NUMBER = re.compile(
    r"(?<![\w$.,:/(-])(?:\d{1,5}[-/]\d{1,4}[A-Za-z]?(?![\w/-])|\d{1,6}[A-Za-z]?(?![\w/:)-]|[.,]\d))"
)
# ... beside a street's or a place's word: what the word before a number may be.
_UNITS = frozenset(UNIT_WORDS)
_SUFFIXES = frozenset(w.replace("\\.", "") for w in SUFFIX_WORDS)
_COMPOUNDS = tuple(COMPOUND_ENDINGS)
_WORD_AFTER = re.compile(rf"\.?,?[ \t]+(?:[{_UPPER}]|{_PREFIX}|{_UNIT_WORD}|\d)")
_REACH = 70  # characters before a house number that a street line may take
_BACK = 32  # characters before a number where a line starting with it may begin ("Apt. 1 ")
# words before the number of the longest line that ends with a name: a flat, "#", its
# number and a building number, a street word, four names or particles, the name
_NAME_LINE_WORDS = 10
# The text before a house number, read backwards (Python's patterns only read forwards),
# as far as a street line ending with that number could go.  Its words hold no digits:
# only its lead does, a building's number and a flat's right before that ("Apt. 117
# 5720 Skoanveien 226"), so a line cannot start before the second run of digits back,
# nor the third when those two stand together.
_LINE_BACKWARDS = re.compile(r"\D*(?:\d+(?:[ \t]+,?[A-Za-z]?\d+)?\D*)?")
# ... and a line that ends with a name no further back than its most words (each run of
# blanks whole, possessively: split in two, one would count as two words).
_NAME_LINE_BACKWARDS = re.compile(
    rf"(?:[^ \t]*+[ \t]++){{{_NAME_LINE_WORDS - 1}}}[^ \t]*+(?=[ \t])"
)
_INDENT = re.compile(r"[ \t>]*")
_WORDS = re.compile(r"[^\W\d_]+")
# Firm and plan words, less those that also name places ("United Kingdom", "Church St").
_FIRM_WORDS = ORG_WORDS - words(
    "united county church college university school hospital clinic department dept foundation"
)
# The words before a number that a line through it may open with: a number, a flat's
# word ("Apt. 1 12 Main St") or a military unit's, the only ways ``_STARTS_AT`` begins.
_LINE_OPENER = re.compile(rf"(?<![\w.'-])(?=\d|(?i:unit|psc|cmr)|US|(?=[A-Za-z]){_UNIT_WORD})")

_POSTCODE = (
    r"(?:(?:[A-Z]{1,2}-)?\d{4,6}(?:-\d{3,4})?|\d{2}-\d{3}|[A-Z]{1,2}\d[A-Z\d]?[ \t]\d[A-Z]{2}"
    r"|[A-Z]\d[A-Z][ \t]\d[A-Z]\d|\d{3}[ \t]\d{2})(?![\w-])"
)
_UNIT = rf"{_UNIT_WORD} {{0,2}}#? {{0,2}}[A-Za-z0-9][\w-]{{0,7}}(?![\w])"
_PLACE = (
    rf"(?:(?P<code1>{_POSTCODE}){_BLANK})?(?P<place>{_NAME})(?:,?{_BLANK}[A-Z]{{2,3}}\.?(?![\w]))?"
    rf"(?:,?{_BLANK}(?P<code2>{_POSTCODE}))?"
)
_SEGMENT = re.compile(rf"(?P<unit>{_UNIT})|{_PLACE}|(?P<code>{_POSTCODE})")
# The parts other than a place: where no place may go on, the block goes on with one of these.
_UNIT_OR_CODE = re.compile(rf"{_UNIT}|{_POSTCODE}")
_SAME_LINE = r"\.?,?(?: {1,2}(?![ \t|])|(?![ \t|]))"  # never across a column break
_NEXT_LINE = r"\.?[ \t]*,?[ \t]*\r?\n(?:[ \t>]*\r?\n)?(?:[ \t]*>)*[ \t]*(?:,[ \t]*)?"
# Between two parts of a block: the next line when there is one, else the same line on.
_GAP = re.compile(f"{_NEXT_LINE}|{_SAME_LINE}")
_LINE_END = re.compile(r"[ \t]*(?:[,.;:?!)]|\r?\n|$)")
# Capitalised words that open a sentence or a sign-off, never a place in a block.
_NOT_PLACE = words(
    """thanks thank regards best sincerely cheers hi hello dear please note sent from subject
    re fw fwd the i we my our your his her their this that it is are was also and or but if
    when phone tel fax email cell mobile client member call let can could would should will
    monday tuesday wednesday thursday friday saturday sunday"""
)
_MAX_SEGMENTS = 5
# one person, or two sharing the mail ("ABUL HOSSAIN & NASRIN AKTER", "Ana Paz y Luis Vega")
_ADDRESSEE = re.compile(
    rf"(?:^|\n)[ \t>]*(?P<v>{_CAP}(?:[ \t]+{_CAP}){{0,3}}"
    rf"(?:[ \t]+(?:&|and|y)[ \t]+{_CAP}(?:[ \t]+{_CAP}){{1,3}})?)[ \t,]*\r?\Z"
)
# three groups of four digits or more in a row: a tracking or card number, not an address
_DIGIT_GROUPS = re.compile(r"\d{4,}[ \t]+\d{4,}[ \t]+\d{4,}")
_ADDRESSEE_SCORE = 0.55
_ALONE, _BLOCK, _CONTEXT, _MILITARY_SCORE = 0.7, 0.8, 0.9, 0.85


class PostalRecognizer:
    """ADDRESS findings for street lines of many countries and the postal block after them,
    and PERSON findings for the addressee: a line of capitalised words right above a block.

    ``never`` holds words that are never part of a name (the gazetteer's): with the
    firm and plan words they keep "Producer Support Team" above an office's address
    from being taken for a person.
    """

    name = "PostalRecognizer"

    def __init__(self, never: frozenset[str] = frozenset()) -> None:
        self.never = never | _NOT_PLACE

    def analyze(self, text: str, entities: Collection[str]) -> list[Finding]:
        if ADDRESS not in entities:
            return []
        page = _Page(text, fold(text))
        found: dict[tuple[int, int], Finding] = {}
        for number, before, after in _house_numbers(text):
            for match, bare in _street_lines(page, number, (before, after)):
                finding = self._judge(page, match, bare=bare)
                if finding is not None:
                    found.setdefault((finding.start, finding.end), finding)
        addresses = list(found.values())
        if PERSON not in entities:
            return addresses
        return addresses + [n for a in addresses if (n := self._addressee(text, a.start))]

    def _addressee(self, text: str, start: int) -> Finding | None:
        """The line right above an address block when it reads like a person's name."""
        line_start = text.rfind("\n", 0, start) + 1
        # (matched, not sliced: on a long line of blocks a slice would copy the line each time)
        if _INDENT.fullmatch(text, line_start, start) is None:
            return None  # the block starts mid-line: no line of its own above it
        above = _ADDRESSEE.search(text, max(0, line_start - 80), max(0, line_start - 1))
        if above is None:
            return None
        value = above.group("v")
        # two people are a full name each: "Harbor Title & Escrow" is a firm
        sides = re.split(r"[ \t]+(?:&|and|y)[ \t]+", value)
        names = [w for side in sides for w in side.split()]
        if any(len(side.split()) < 2 for side in sides) or _names_a_firm(value):
            return None
        if any(w.lower() in self.never for w in names):
            return None
        return Finding(PERSON, above.start("v"), above.end("v"), _ADDRESSEE_SCORE)

    def _judge(self, page: _Page, match: re.Match[str], *, bare: bool) -> Finding | None:
        end, segments, postal = page.block_end(match.end())
        start, lower = match.start(), page.lower
        if bare and (_names_a_firm(match.group()) or not (postal or _introduced(lower, start))):
            return None  # "Gold 1000, Kaiser Permanente Silver 2500" is a plan list
        if not bare and "m" in match.re.groupindex and match.group("m"):
            return Finding(ADDRESS, start, end, _MILITARY_SCORE)
        if _DIGIT_GROUPS.search(page.text, start, end):
            return None  # "USPS 9400 1118 9922 3301": a tracking number, no house and code
        context = has_context(ADDRESS_CONTEXT, lower, max(0, start - 40), start)
        score = _CONTEXT if context else _BLOCK if segments else _ALONE
        return Finding(ADDRESS, start, end, score)


@dataclass
class _Page:
    """One text being read, its folded copy, and what is already known of it: up to
    where start positions have been tried, and the postal blocks and parts followed."""

    text: str
    lower: str
    tried_until: int = 0
    blocks: dict[int, tuple[int, int, bool]] = field(default_factory=dict)
    parts: dict[tuple[int, bool], re.Match[str] | None] = field(default_factory=dict)

    def block_end(self, position: int) -> tuple[int, int, bool]:
        """``_block_end`` of ``position``, followed once however many lines ask."""
        if position not in self.blocks:
            self.blocks[position] = _block_end(position, _segments(self.part, position))
        return self.blocks[position]

    def part(self, position: int, after_unit: bool) -> re.Match[str] | None:
        """``_next_part``, read once: the blocks after neighbouring numbers share their
        parts ("DOB 21201, DOB 21201, ..." is one long block read from each number)."""
        key = (position, after_unit)
        if key not in self.parts:
            self.parts[key] = _next_part(self.text, position, after_unit)
        return self.parts[key]


def _introduced(lower: str, start: int) -> bool:
    """An address phrase ends right before ``start``: "lives at", "address:", "moved to"."""
    return _ADDRESS_PHRASE_BEFORE.search(lower, max(0, start - 40), start) is not None


def _house_numbers(text: str) -> Iterator[tuple[re.Match[str], tuple[re.Pattern[str], ...], bool]]:
    """Numbers that could be a house number, the kinds of street line that may end
    with them, and whether a street's word follows them (a line may start with
    them, or with the few words before them)."""
    for match in _HOUSE_NUMBER.finditer(text):
        start = match.start()
        before = _lines_ending_here(text, start)
        after = _WORD_AFTER.match(text, match.end()) is not None
        if before or after:
            yield match, before, after


def _lines_ending_here(text: str, start: int) -> tuple[re.Pattern[str], ...]:
    """The kinds of street line that the word right before ``start`` can end: a street
    word ("gate", "Street"), a glued ending ("Snellmaninkatu"), a capitalised name
    ("Roma", "Roma,").  A unit word ends none ("Apt 1"), so a run of them costs no
    search back, and a run of names costs one pattern instead of three."""
    line = text[max(0, start - 40) : start]
    if not line.endswith((" ", "\t")):
        return ()
    tokens = line[line.rfind("\n") + 1 :].rsplit(None, 1)
    word = tokens[-1].rstrip(".,") if tokens else ""
    lower = word.lower()
    if not word or lower in _UNITS:
        return ()
    kinds = []
    if lower in _SUFFIXES:
        kinds.append(_ENDS_WITH_SUFFIX)
    if lower.endswith(_COMPOUNDS):
        kinds.append(_ENDS_WITH_COMPOUND)
    if word[0].isupper() or word[:2].lower() in ("d'", "l'", "d\u2019", "l\u2019"):
        kinds.append(_ENDS_WITH_NAME)
    return tuple(kinds)


def _street_lines(
    page: _Page, number: re.Match[str], sides: tuple[tuple[re.Pattern[str], ...], bool]
) -> Iterator[tuple[re.Match[str], bool]]:
    """The street lines (and whether bare) that end or start with ``number``.

    Anchoring at the number keeps the patterns off most of the text: they are
    tried a few times per number instead of at every position of the message.
    A line that starts at a position reads the same whichever number led there,
    so each position is tried once: numbers come in text order and each looks back
    the same distance, so what lies before ``page.tried_until`` was in an earlier
    number's reach.  In a run of numbers ("1 1 1 ...") the work stays one try per
    position instead of one per nearby number.
    """
    text, lower = page.text, page.lower
    before, after = sides
    start, end = number.span()
    if before:
        # these lines are written with blanks, never across a line break
        line_start = max(start - _REACH, text.rfind("\n", 0, start) + 1)
        backwards = text[line_start:start][::-1]
        reach = start - _length_back(backwards)
        # where several kinds could end here, the one that starts first is the line
        lines = (p.search(text, _reach_of(p, backwards, reach, start), end) for p in before)
        street = min((m for m in lines if m is not None), key=_start, default=None)
        if street is not None:
            yield street, False
        # a name and a number only where a postal part follows or an address phrase leads
        if _ENDS_WITH_NAME in before and (
            page.block_end(end)[2] or _ADDRESS_PHRASE.search(lower, max(0, start - 60), start)
        ):
            bare = _BARE_NAME.search(text, reach, end)
            if bare is not None:
                yield bare, True
    if after:
        since = max(start - _BACK, page.tried_until)
        starts = [m.start() for m in _LINE_OPENER.finditer(text, since, start)]
        if start >= page.tried_until:
            starts.append(start)
        page.tried_until = start + 1
        for position in starts:
            for pattern in (_STARTS_AT, _BARE_US):
                match = pattern.match(text, position)
                if match is not None:
                    yield match, pattern is _BARE_US


def _length_back(backwards: str) -> int:
    """How many characters before a house number a street line ending with it may take;
    ``backwards``: its line before it, reversed."""
    lead = _LINE_BACKWARDS.match(backwards)  # (it always matches: every part may be empty)
    return len(backwards) if lead is None else lead.end()


def _reach_of(pattern: re.Pattern[str], backwards: str, reach: int, start: int) -> int:
    """Where a line of ``pattern``'s kind ending at ``start`` may begin: a line that ends
    with a name is at most ``_NAME_LINE_WORDS`` words long, so a search on a line of short
    words ("Via Roma Via Roma ... 1") need not try every one of them.  ``backwards``: the
    line before ``start``, reversed."""
    if pattern is not _ENDS_WITH_NAME:
        return reach
    # (counted from ``reach`` on only: words before it cannot move the start past it)
    words = _NAME_LINE_BACKWARDS.match(backwards, 0, start - reach)
    return reach if words is None else start - words.end()


def _start(match: re.Match[str]) -> int:
    return match.start()


def _names_a_firm(value: str) -> bool:
    """A carrier, plan or office word: "CareFirst BlueChoice Gold 1000" is no street."""
    return any(word.lower() in _FIRM_WORDS for word in _WORDS.findall(value))


def _block_end(position: int, segments: Iterator[re.Match[str]]) -> tuple[int, int, bool]:
    """Where the postal block after a street line ends, its parts, and whether one is postal.

    A unit or a postal code is what makes a name and a number an address.
    """
    end, count, postal = position, 0, False
    for segment in segments:
        end, count = segment.end(), count + 1
        postal = postal or any(segment.group("unit", "code", "code1", "code2"))
        if count == _MAX_SEGMENTS:
            break
    return end, count, postal


def _segments(
    part: Callable[[int, bool], re.Match[str] | None], position: int
) -> Iterator[re.Match[str]]:
    """The unit, postal-code, place and country parts that follow ``position``, each
    found by ``part(position, after_unit)``."""
    after_unit = False
    while (segment := part(position, after_unit)) is not None:
        after_unit = segment.group("unit") is not None
        position = segment.end()
        yield segment


def _next_part(text: str, position: int, after_unit: bool) -> re.Match[str] | None:
    """The part of a postal block that continues it at ``position``, if one does."""
    gap = _GAP.match(text, position)
    if gap is None:
        return None
    if _no_place_here(gap.group(), after_unit) and not _UNIT_OR_CODE.match(text, gap.end()):
        return None  # (the usual case after a number in a sentence: asked more cheaply)
    segment = _SEGMENT.match(text, gap.end())
    if segment is None or not _acceptable(text, segment, gap.group(), after_unit):
        return None
    return segment


def _no_place_here(gap: str, after_unit: bool) -> bool:
    """Whether ``_acceptable`` turns down any place after ``gap``: on the same line, with no
    comma and no unit before it ("Rosa 12 Main St", not "12 Main St, Rosario")."""
    return "\n" not in gap and "," not in gap and not after_unit


def _acceptable(text: str, segment: re.Match[str], gap: str, after_unit: bool) -> bool:
    """Whether a part continues the block rather than open a sentence or a paragraph.

    A place needs a comma, a line of its own or a unit before it; a part on a
    new line must end there (or at a clause's punctuation) unless it is a place with
    its postal code; after a blank line only a postal code carries on.
    """
    postal = any(segment.group("code", "code1", "code2"))
    if gap.count("\n") > 1 and not postal:
        return False
    place = segment.group("place")
    if place is not None:
        same_line = "\n" not in gap
        if (
            same_line
            and "," not in gap
            and not (after_unit and (postal or _ends_line(text, segment)))
        ):
            return False  # (asked first: the cheaper way to turn down most places)
        if any(word.lower() in _NOT_PLACE for word in place.split()) or _names_a_firm(place):
            return False
    placed = postal and place is not None  # "1062 Budapest", not digits that run on
    return "\n" not in gap or placed or _ends_line(text, segment)


def _ends_line(text: str, segment: re.Match[str]) -> bool:
    """The part ends its line, or a clause (asked only where it matters)."""
    return _LINE_END.match(text, segment.end()) is not None
