"""Labelled lines: "Recipient's name: FAITH N. OYELARAN-MOSS", "Member ID: 448812903".

A form copied into mail, an intake sheet, a carrier's letter: one value a line, after
a label that says what it is, and a colon or a printout's dot leader ("Name ......
Grace Yoon").  The label is a column name of a pasted table (``tables.column_kind``:
"Name", "Client name", "Nombre", "Member ID", "MRN", "DOB", "Medicaid #"), after a
form's enumerator ("4 ", "B. ") and its owners ("Recipient's spouse's name" is a name).
The value is the rest of the line, up to a run of blanks, a tab, a bar or a semicolon,
and must look like its kind (``tables.plausible``); a name must be made of name-shaped
words, none of them a function or mail word, in any case: the label vouches for "will
grant" and "HOPE WILLIAMS" as no capital letter could.

Only the kinds the other recognizers cannot place without such a label: a person, a
birth date and the identifiers.  Phones, addresses and mailboxes have their own forms,
and an office's are labelled in every signature.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from pii_guard import entities as E
from pii_guard.findings import Finding
from pii_guard.recognizers.gazetteer import PARTICLES, Gazetteer
from pii_guard.recognizers.tables import column_kind, plausible

__all__ = ["LabelledFieldRecognizer"]

_KINDS = frozenset(
    {
        E.PERSON,
        E.DATE_OF_BIRTH,
        E.US_SSN,
        E.US_ITIN,
        E.MEMBER_ID,
        E.MEDICAID_ID,
        E.MEDICARE_MBI,
        E.US_DRIVER_LICENSE,
    }
)
# bullets and quote marks, a form's enumerator ("4 ", "12. ", "B) "), the label, its colon
_LABELLED = re.compile(
    r"^[ \t>*\u2022-]*(?:(?:\d{1,2}|[A-Za-z])[.)]?[ \t]+)?"
    r"(?P<label>[^\W\d_][^:\n\uff1a]{0,39}?)[ \t]*(?:[:\uff1a]|\.{3,}|\u2026+)[ \t]*"
    r"(?P<value>[^\n]*?)[ \t]*(?=\n|\Z|[ \t]{2}|\t|[|;]|[ \t]+[\u2013\u2014-][ \t])",
    re.MULTILINE,
)
# an identifier, in groups ("1234 5678 9012", "000-118-77-204"), each after the first
# with a digit (not "12345 expired")
_IDENTIFIER = re.compile(r"[A-Za-z0-9#]+(?:[ -](?=[A-Za-z]*\d)[A-Za-z0-9]+)*")
_POLICY = re.compile(r"\bpolicy\b", re.IGNORECASE)
_ASIDE = re.compile(r"[ \t]+\([^()\n]*\)[ \t]*\Z")
_SHORT_NAME = re.compile(r"\(([^()]{2,12})\)[ \t]*\Z")
_OWNER = re.compile(r"^(?:[^\W\d_]+['\u2019]s[ \t]+)+")  # "recipient's spouse's "
_NAME_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['\u2019.-](?=[^\W\d_]|\Z|,))*\.?,?")
_SCORE = 0.85


class LabelledFieldRecognizer:
    """The value of a line labelled as a person's name, birth date or identifier."""

    name = "LabelledFieldRecognizer"

    def __init__(self, gazetteer: Gazetteer) -> None:
        self.gazetteer = gazetteer

    def analyze(self, text: str, entities: Collection[str]) -> list[Finding]:
        if ":" not in text and "\uff1a" not in text and "..." not in text and "\u2026" not in text:
            return []
        wanted = _KINDS.intersection(entities)
        results: list[Finding] = []
        for match in _LABELLED.finditer(text):
            kind = _kind(match.group("label"))
            start, end = match.span("value")
            if kind not in (E.PERSON, E.DATE_OF_BIRTH):  # "W123456789 (Kaiser)": the number
                number = _IDENTIFIER.match(text, start, end)
                end = number.end() if number else start
            elif kind == E.PERSON and (aside := _ASIDE.search(text, start, end)):
                end = aside.start()  # 'Yoon, Sang-Hoon ("Sam")': the nickname is its own
            value = text[start:end]
            if kind in wanted and start < end and self._fits(kind, value):
                results.append(Finding(kind, start, end, _SCORE))
        return results

    def _fits(self, kind: str, value: str) -> bool:
        if not plausible(kind, value):
            return False
        if kind != E.PERSON:
            return True
        words = value.split()
        return all(_NAME_WORD.fullmatch(word) for word in words) and not any(
            self._not_a_name(word) for word in words
        )

    def _not_a_name(self, word: str) -> bool:
        lowered = word.strip(".,").lower()
        if lowered in PARTICLES:
            return False  # "MARÍA DE LOS ÁNGELES FUENTES"
        gaz = self.gazetteer
        listed = lowered in gaz.first or lowered in gaz.last
        return lowered in gaz.function_words or (gaz.is_never(lowered) and not listed)


def _kind(label: str) -> str | None:
    """What a label names: as a column would, or past its owners ("Recipient's name").
    A policy number on its own line is the exchange's (a 1095-A's, a notice's)."""
    if _POLICY.search(label):
        return None
    kind = column_kind(label)
    if kind is None:
        owned = _OWNER.sub("", label)
        kind = column_kind(owned) if owned != label else None
    if kind is None and (short := _SHORT_NAME.search(label)):
        kind = column_kind(short.group(1))  # "Número de registro médico (MRN)"
    return kind
