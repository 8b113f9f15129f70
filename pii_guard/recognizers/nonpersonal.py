"""Numbers that are no one's: a business label right before them, or a machine's token.

Nine or ten bare digits are an SSN or a phone number only by their shape, and a
label written right before them says what they are instead: ``Order number
5551234567``, ``case #4455667788``, ``Error code 2147942402``, ``confirmación
987654321``.  Mail servers write long digit runs into the headers a producer
pastes with a message (``SFS:(13230040)(4022899009)``, ``ARA:13230040|366016``)
and into Message-IDs (``<1234567890123456.JavaMail.x@host>``): tokens glued to
other tokens by punctuation, never typed by a person.  Both tests look at a few
characters beside the value only, so they cost nothing on long texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pii_guard.recognizers.base import Rule

__all__ = ["IdRule", "business_label", "labelled", "machine_token"]

# After a label: "#", ":", "number", "is" ... up to the value.
LABEL_GAP = r"[\s:#.=-]*(?:(?:is|was|es|era|number|num|nbr|no\.?|n[uú]mero|#)\b[\s:#.=-]*){0,2}"

_BUSINESS_WORDS = (
    r"order|orders|confirmation|confirmations|conf|case|cases|ticket|tkt|reference|ref"
    r"|tracking|transaction|txn|invoice|incident|error|err|code|version|ver|build|release"
    r"|request|req|receipt|submission|batch|job|port|page|issue|bug|commit|line|row|claim"
    r"|application|app|exit|status|http|kb|sr|pr|pedido|orden|confirmaci[oó]n|caso|referencia"
    r"|folio|solicitud|recibo|factura|c[oó]digo|versi[oó]n|reclamo"
    # a firm's own numbers: its employer ID, a producer's insurance licence, an invoice
    r"|fein|ein|inv|(?:insurance|producer|agent|agency|resident|non-resident)"
    r"\s+licen[cs]e(?:\s+(?:number|no\.?|#))?|usps|tracking"
)
_BUSINESS_LABEL = re.compile(
    rf"(?<![\w])(?:{_BUSINESS_WORDS})(?:\s+(?:id|number|num|nbr|no\.?|#|code))?{LABEL_GAP}\Z"
)


def labelled(*phrases: str) -> re.Pattern[str]:
    """A context pattern (folded text) for ``phrases`` written right before a value: only a
    label's punctuation and words ("#", ":", "number", "is") may stand between."""
    return re.compile(r"(?<![\w])(?:" + "|".join(phrases) + r")" + LABEL_GAP + r"\Z")


def business_label(lower: str, start: int) -> bool:
    """A business label (order, case, confirmation, error, version ...) ends right before
    ``start`` in the folded text."""
    return _BUSINESS_LABEL.search(lower, max(0, start - 40), start) is not None


# The rest of an address's local part: the digits are inside a mail or Message-ID token.
_LOCAL_PART_REST = re.compile(r"[\w.$+%=-]{0,64}@")


def machine_token(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` is glued by punctuation to a machine's other tokens: a group of a
    header's list (``)(4022899009)(``, ``:13230040|``, ``|38070700018;``) or part of a
    mail or Message-ID address (``<1234567890123456.JavaMail...@host>``)."""
    before, after = text[start - 1 : start], text[end : end + 1]
    if not before or not after:
        return False
    if before == "(" and after == ")":
        return text[start - 2 : start - 1] in (")", ":") or text[end + 1 : end + 2] == "("
    if "|" in (before, after):
        return before in "|:;(" and after in "|;)"
    if after in ".@$=" and (before in "<.=$" or before.isspace()):
        return _LOCAL_PART_REST.match(text, end) is not None
    return False


@dataclass(frozen=True)
class IdRule(Rule):
    """A ``Rule`` whose value is no one's inside a machine's token (``SFS:(…)(…)``), nor,
    unless ``shape`` (its shape alone is distinctive), after a business label."""

    shape: bool = False
    # for a label context: words one of which the text must hold (substring tests: far
    # cheaper than a search of the text for the label itself)
    gate: tuple[str, ...] = ()

    def applies(self, lower: str) -> bool:
        if not self.gate:
            return super().applies(lower)
        return any(word in lower for word in self.gate)

    def _score(self, lower: str, start: int, end: int) -> float:
        score = super()._score(lower, start, end)
        if score and (
            machine_token(lower, start, end) or (not self.shape and business_label(lower, start))
        ):
            return 0.0
        return score
