"""Numbers spelt out a digit at a time: "two one nine, zero nine, nine nine nine nine",
"tres cero uno, cinco cinco cinco, cero uno nueve dos", "dos cuarenta - cinco cinco cinco".

Producers who were told not to send an SSN or a phone number sometimes write it in
words, as if that made it safe.  A run of digit words (and tens: "forty", "cuarenta
y cinco") that makes seven digits or more is read as those digits: nine are an SSN,
seven, ten or eleven a phone number; other lengths are no number the desk knows, and
stay.  Prose has no such runs: "one or two" is two words apart by a word.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from pii_guard import entities as E
from pii_guard.findings import Finding
from pii_guard.recognizers.base import fold

__all__ = ["SpelledNumberRecognizer"]

_UNITS = {
    **dict.fromkeys(("zero", "oh", "cero"), "0"),
    **dict.fromkeys(("one", "uno", "una"), "1"),
    **dict.fromkeys(("two", "dos"), "2"),
    **dict.fromkeys(("three", "tres"), "3"),
    **dict.fromkeys(("four", "cuatro"), "4"),
    **dict.fromkeys(("five", "cinco"), "5"),
    **dict.fromkeys(("six", "seis"), "6"),
    **dict.fromkeys(("seven", "siete"), "7"),
    **dict.fromkeys(("eight", "ocho"), "8"),
    **dict.fromkeys(("nine", "nueve"), "9"),
}
_TENS = {
    **dict.fromkeys(("twenty", "veinte"), "2"),
    **dict.fromkeys(("thirty", "treinta"), "3"),
    **dict.fromkeys(("forty", "cuarenta"), "4"),
    **dict.fromkeys(("fifty", "cincuenta"), "5"),
    **dict.fromkeys(("sixty", "sesenta"), "6"),
    **dict.fromkeys(("seventy", "setenta"), "7"),
    **dict.fromkeys(("eighty", "ochenta"), "8"),
    **dict.fromkeys(("ninety", "noventa"), "9"),
}
_UNIT = "|".join(sorted(_UNITS, key=len, reverse=True))
_TEN = "|".join(sorted(_TENS, key=len, reverse=True))
_TOKEN = rf"(?:(?:{_TEN})(?:[ -](?:y[ ])?(?:{_UNIT}))?|(?:{_UNIT}))"
_SEPARATOR = r"[ \t,.\-\u2013\u2014/]+"
_RUN = re.compile(rf"\b{_TOKEN}(?:{_SEPARATOR}{_TOKEN}){{3,}}\b")
_PARTS = re.compile(rf"(?P<ten>{_TEN})(?:[ -](?:y[ ])?(?P<unit>{_UNIT}))?|(?P<alone>{_UNIT})")
_KINDS = {9: E.US_SSN, 7: E.PHONE_NUMBER, 10: E.PHONE_NUMBER, 11: E.PHONE_NUMBER}
_SCORE = 0.85


class SpelledNumberRecognizer:
    """SSNs and phone numbers written a digit word at a time, in English and Spanish."""

    name = "SpelledNumberRecognizer"

    def analyze(self, text: str, entities: Collection[str]) -> list[Finding]:
        lower = fold(text)
        results: list[Finding] = []
        for run in _RUN.finditer(lower):
            kind = _KINDS.get(len(_digits(run.group())))
            if kind in entities and kind is not None:
                results.append(Finding(kind, run.start(), run.end(), _SCORE))
        return results


def _digits(run: str) -> str:
    """The digits a run spells: a tens word is its tens and a zero, or with the unit
    joined to it ("cuarenta y cinco", "forty-five") the two of them."""
    digits = []
    for token in _PARTS.finditer(run):
        ten, unit = token.group("ten"), token.group("unit")
        if ten is None:
            digits.append(_UNITS[token.group("alone")])
        else:
            digits.append(_TENS[ten] + (_UNITS[unit] if unit else "0"))
    return "".join(digits)
