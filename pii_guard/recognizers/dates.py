"""Dates of birth, and only those: business dates (effective, due, paid on) are kept.

A date is a birth date when a birth phrase ("DOB", "born", "fecha de
nacimiento", ...) stands shortly before it with no business word
("effective", "paid", ...) in between, or when it continues a list of such
dates.  A full date with an old year and no context at all is a weak hit:
redacted, never enough to reject; a dotted one (``17.11.2009``: a release, a
build, a European log line) needs its context.  A birth is named in many ways:
``F. nac.``, ``had a baby on``, ``newborn``, ``gave birth``, ``cumpleaños``,
``dio a luz``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection

from pii_guard.entities import DATE_OF_BIRTH
from pii_guard.findings import Finding
from pii_guard.recognizers.base import ctx, fold

__all__ = ["DateOfBirthRecognizer"]

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
    r"|enero|febrero|marzo|abril|mayo|junio|julio|agosto|sep?tiembre|octubre|noviembre"
    r"|diciembre|ene|abr|ago|dic)\.?"  # (and Spanish abbreviations: "7 ene. 1980", "5/ago/2015")
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]|20)\d{2}"
_DATE = re.compile(
    r"(?<![\w/.-])(?:"
    r"\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})"
    r"|\d{4}[/.-]\d{1,2}[/.-]\d{1,2}"
    rf"|{_MONTH}\s+{_DAY},?\s+{_YEAR}"
    rf"|{_DAY}\s+(?:of\s+|de\s+)?{_MONTH},?\s+(?:de\s+|del\s+)?{_YEAR}"
    rf"|{_DAY}([/.-]){_MONTH}\1(?:{_YEAR}|\d{{2}})"  # "14-Feb-1980", "08/marzo/1972"
    # spoken Spanish: "5 de mayo del 77", "12 del 12 del 1990"
    rf"|{_DAY}\s+de\s+{_MONTH}\s+del?\s+\d{{2}}"
    r"|\d{1,2}\s+del?\s+\d{1,2}\s+del?\s+(?:\d{4}|\d{2})"
    rf"|{_MONTH},?\s+(?:de\s+)?{_YEAR}"
    r"|(?:19|20)\d{6}"
    r")(?![\w/-]|\.\d)",
)  # run on the folded text: month names are lower case
_NEEDS_CONTEXT = re.compile(
    rf"^(?:{_MONTH},?\s+(?:de\s+)?{_YEAR}|\d{{8}}|\d{{1,4}}\.\d{{1,2}}\.\d{{2,4}})$"
)
_FULL_YEAR = re.compile(r"(?:1[89]|20)\d{2}(?!\d)")

BIRTH_CONTEXT = ctx(
    r"dob",
    r"d\.o\.b\.?",
    r"dobs",
    r"date\s+of\s+birth",
    r"dates\s+of\s+birth",
    r"birth\s*date",
    r"birthdates?",
    r"birthday",
    r"born",
    r"b\.",
    r"fecha\s+de\s+nacimiento",
    r"nacid[oa]s?",
    r"(?<!acta\sde\s)(?<!certificado\sde\s)(?<!partida\sde\s)nacimiento",
    r"f\.\s?de\s+nac\.?",
    r"f\.?\s?nac\.?",
    r"fec(?:ha)?\.?\s+(?:de\s+)?nac\.?",
    r"nac\.?",
    r"fdn",
    r"age\s+and\s+dob",
    r"birth(?!\s+certificate)",
    r"new\s?born",
    r"newborns",
    r"had\s+(?:a|her|the|their|his)\s+(?:baby|child|son|daughter)",
    r"baby\s+(?:was\s+)?born",
    r"gave\s+birth",
    r"cumplea[nñ]os",
    r"naci[oó]",
    r"dio\s+a\s+luz",
    r"tuvo\s+(?:a\s+)?(?:un|una|el|la|su)\s+(?:beb[eé]|hij[oa]|niñ[oa])",
    r"reci[eé]n\s+nacid[oa]s?",
)
BUSINESS_CONTEXT = ctx(
    r"effective",
    r"eff\.?",
    r"terminat\w*",
    r"termed",
    r"term",
    r"ended",
    r"ends?",
    r"due",
    r"paid",
    r"payments?",
    r"cancel+ed",
    r"cancel\w*",
    r"as\s+of",
    r"since",
    r"through",
    r"thru",
    r"until",
    r"renew\w*",
    r"received",
    r"submitted",
    r"sent",
    r"issued",
    r"filed",
    r"deadline",
    r"coverage",
    r"enrolled",
    r"enrollment",
    r"applied",
    r"notice",
    r"dated",
    r"expir\w*",
    r"completed",
    r"closed",
    r"opened",
    r"scheduled",
    r"report\w*",
    r"updated",
    r"uploaded",
    r"requested",
    r"vigencia",
    r"report[óo]",
    r"reportamos",
    r"subi\w*",
    r"envi\w*",
    r"solicit\w*",
    r"efectiv\w*",
    r"pag\w*",
    r"venc\w*",
)
_WEEKDAY = re.compile(r"\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s*$")
_TIME = re.compile(r",?\s*(?:at\s+)?\d{1,2}:\d{2}")
# (a correction lists too: "her dob is 7/4/59 not 7/4/95", "says 2/14/2015 and it should
# be 2/4/2015", "dice 3/4/85 pero debe ser 4/3/85")
_LIST_GAP = re.compile(
    r"^[\s,;(]*(?:and|y|&|or|o|not|no|ni|nor|instead\s+of|rather\s+than|vs\.?|but|pero)?"
    r"[\s,;]*(?:(?:it|that|this|the\s+(?:correct|right)\s+one|la\s+correcta|lo\s+correcto)"
    r"\s+)?(?:should\s+(?:be|read|say)|must\s+be|is\s+(?:actually|really)|is"
    r"|debe\s+ser|deber[ií]a\s+ser|es)?[\s,;:)]*$"
)
# a year alone after a birth: "born 2016", "born in 1958", "nacido en 1985", "b. 1958"
_BIRTH_YEAR = re.compile(
    r"\b(?:born|b\.|nacid[oa]|naci[oó])[ \t]+(?:in[ \t]+|en[ \t]+(?:el[ \t]+)?(?:año[ \t]+)?)?"
    r"((?:19|20)\d{2})(?![\d/-]|\.\d|,?[ \t]*(?:at|a\s+las)\b)"
)
# a day and month without the year right after a birth, or the birthday a consumer turns
# an age on: "born march 2", "nació el 3 de febrero", "turns 65 on June 3"
_BIRTH_DAY = re.compile(
    r"\b(?:born|b\.|nacid[oa]|naci[oó]|birthday(?:[ \t]+is)?|cumplea[nñ]os(?:[ \t]+es)?"
    r"|turns[ \t]+\d{1,3}|cumple[ \t]+\d{1,3}(?:[ \t]+años)?)[ \t]+(?:on[ \t]+|el[ \t]+)?"
    rf"(?P<v>{_MONTH}[ \t]+{_DAY}|{_DAY}[ \t]+(?:of[ \t]+|de[ \t]+)?{_MONTH})"
    r"(?![\w/]|,?[ \t]*(?:de[ \t]+|del[ \t]+)?\d)"
)
_FULL_MONTH_DOT = re.compile(r"[^\W\d_]{5,}\.\Z")
_WINDOW = 60
_STRONG, _WEAK = 0.9, 0.45


class DateOfBirthRecognizer:
    """Birth dates in English and Spanish writing, in most numeric and written forms."""

    name = "DateOfBirthRecognizer"

    def __init__(self, weak_before_year: int | None = None) -> None:
        self.weak_before_year = weak_before_year or dt.date.today().year - 12

    def analyze(self, text: str, entities: Collection[str]) -> list[Finding]:
        if DATE_OF_BIRTH not in entities:
            return []
        results: list[Finding] = []
        prev_end, prev_birth = 0, False
        lower = fold(text)
        for match in _DATE.finditer(lower):
            start, end = match.span()
            score = self._score(lower, start, match.group(), prev_end, prev_birth)
            if score:
                results.append(Finding(DATE_OF_BIRTH, start, end, score))
            prev_end, prev_birth = end, score == _STRONG
        taken = [(f.start, f.end) for f in results]
        for pattern, group in ((_BIRTH_YEAR, 1), (_BIRTH_DAY, "v")):
            for match in pattern.finditer(lower):
                start, end = match.span(group)
                if lower.endswith(".", start, end) and _FULL_MONTH_DOT.search(lower, start, end):
                    end -= 1  # "el 3 de febrero.": the sentence's full stop
                if not any(s <= start < e for s, e in taken):
                    results.append(Finding(DATE_OF_BIRTH, start, end, _STRONG))
        return results

    def _score(self, text: str, start: int, value: str, prev_end: int, prev_birth: bool) -> float:
        window_start = max(prev_end, start - _WINDOW)
        birth = _last(BIRTH_CONTEXT, text, window_start, start)
        business = _last(BUSINESS_CONTEXT, text, window_start, start)
        if (
            birth >= 0
            and business < birth
            and not _REPORTED.search(text, max(0, birth - 24), birth)
        ):
            return _STRONG
        if prev_birth and _LIST_GAP.match(text[prev_end:start]):
            return _STRONG
        if business >= 0 or _NEEDS_CONTEXT.match(value) or _timestamp(text, start, value):
            return 0.0
        year = _FULL_YEAR.search(value)
        return _WEAK if year and int(year.group()) <= self.weak_before_year else 0.0


def _timestamp(lower: str, start: int, value: str) -> bool:
    """A mail header's date ("Mon, 25 Jul 2006 10:22"): a weekday before or a time after."""
    end = start + len(value)
    return bool(_WEEKDAY.search(lower, max(0, start - 12), start) or _TIME.match(lower, end))


# "reported the birth in the portal on 10/24/2025": the date of the report, not the birth
_REPORTED = re.compile(
    r"\b(?:report\w*|notif\w*|register\w*|record\w*|submit\w*|upload\w*|added|add"
    r"|report[óo]|reportamos|reportaron|registr\w*|agreg\w*|subi\w*)\b[\w\s']{0,14}\Z"
)


def _last(pattern: re.Pattern[str], text: str, start: int, end: int) -> int:
    """Where the last match of ``pattern`` in ``text[start:end]`` begins; -1 when none."""
    position = -1
    for match in pattern.finditer(text, start, end):
        position = match.start()
    return position
