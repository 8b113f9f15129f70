"""Government, health-plan and financial identifiers.

Distinctive shapes (a dashed SSN, an MBI, a Maryland licence, a Luhn-valid
card) score high on their own; bare digit runs that many identifiers share
score low (redacted, not rejected) unless a context phrase names them.  A
business label right before a number (``order``, ``case #``, ``confirmation``)
or a machine's punctuation around it (``SFS:(…)(…)``) says it is no one's.
The last digits of an SSN, a card or an account are a finding of that type
when the words before them say so: ``SSN ending 4321``, ``xxx-xx-4321``,
``last 4 of her social 4321``, ``tarjeta con terminación 4321``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from pii_guard import entities as E
from pii_guard.recognizers.base import CARRIER_NAMES, Rule, ctx
from pii_guard.recognizers.checksums import aba_ok, digits, luhn_ok, ssn_structure_ok
from pii_guard.recognizers.nonpersonal import IdRule, labelled, machine_token

__all__ = ["NUMBER_RULES"]

_L = r"(?<![\w-])"  # no word character or dash just before
_R = r"(?![\w-]|\.\d)"  # ... or just after


def _opening(chars: str) -> str:
    """``(?P<v>`` and a first character from ``chars``, the _L test placed after it: a
    pattern that starts with a character class lets the regex engine skip ahead quickly,
    one that starts with a look-behind is tried at every position.  Worth it for rare
    first characters (digits, capitals: 3-4 times faster), not for any letter."""
    return rf"(?P<v>{chars}(?<![\w-]{chars})"


_DIGIT = _opening(r"\d")

SSN_CONTEXT = ctx(
    r"ssn?s?",
    r"ss\s?#",
    r"s\.s\.?(?:n\.?)?",
    r"social(?:\s+security)?",
    r"seguro\s+social",
    r"soc\.?\s*sec\.?",
)
ITIN_CONTEXT = ctx(r"itins?", r"taxpayer\s+identification", r"tin")
MEDICAID_CONTEXT = ctx(
    r"medicaid",
    r"medical\s+assistance",
    r"ma",
    r"mmis",
    r"recipient",
    r"mchp",
    r"medicaid\s+id",
)
MEMBER_CONTEXT = ctx(
    r"member",
    r"subscriber",
    r"policy",
    r"contract",
    r"id\s+card",
    r"insurance\s+id",
    r"carefirst",
    r"kaiser",
    r"aetna",
    r"cigna",
    r"united\s*health\w*",
    r"uhc",
    r"wellpoint",
    r"amerigroup",
    r"caresource",
    r"optimum",
    r"group",
    r"insured",
    r"plan\s+id",
    r"id",
)
MBI_CONTEXT = ctx(r"mbi", r"medicare")
DL_CONTEXT = ctx(
    r"driver'?s?",
    r"drivers",
    r"licen[cs]es?",
    r"dl",
    r"d\.l\.",
    r"mva",
    r"licencia",
    r"state\s+id",
)
BANK_CONTEXT = ctx(
    r"account",
    r"acct\.?",
    r"a/c",
    r"checking",
    r"savings",
    r"bank",
    r"cuenta",
    r"iban",
)
ABA_CONTEXT = ctx(r"routing", r"aba", r"rtn", r"transit", r"ruta")
CARD_CONTEXT = ctx(
    r"cards?",
    r"visa",
    r"master\s?card",
    r"amex",
    r"american\s+express",
    r"discover",
    r"tarjeta",
    r"cc",
    r"debit",
    r"credit",
)


def _card_like(value: str) -> bool:
    """Luhn-valid, issued by a card network (2-6) and not one repeated digit."""
    number = digits(value)
    return number[0] in "23456" and len(set(number)) > 1 and luhn_ok(number)


def _itin(value: str) -> bool:
    number = digits(value)
    middle = int(number[3:5])
    return number.startswith("9") and (50 <= middle <= 65 or 70 <= middle <= 99) and middle != 93


def _not_itin(value: str) -> bool:
    return not _itin(value)


def _weak_ssn(value: str) -> bool:
    return ssn_structure_ok(value) and not aba_ok(value)


def _mixed(value: str) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


_PHONE_SHAPE = re.compile(r"\d{3}-\d{3}-\d{4}|\d{2}-\d{7}")  # a phone; an EIN (52-2287104)


def _dl_like(value: str) -> bool:
    """Five digits or more, and not a phone number or an employer ID beside an MVA's name."""
    return sum(c.isdigit() for c in value) >= 5 and not _PHONE_SHAPE.fullmatch(value)


def _eleven_digits(value: str) -> bool:
    return len(digits(value)) == 11


def _bank_digits(value: str) -> bool:
    return 6 <= len(digits(value)) <= 17


# --- The last digits of an identifier ---------------------------------------------------
# What announces them ("ending in", "last 4 of", "terminación", "últimos cuatro") ...
_LAST_PHRASE = ctx(
    r"ending(?:\s+(?:in|with))?",
    r"end(?:s|ed)?\s+(?:in|with)",
    r"ends",
    r"last\s*(?:4|four)(?:\s+digits)?",
    r"ssn\s?4",
    r"terminaci[oó]n",
    r"terminad[oa]\s+en",
    r"termina\s+en",
    r"[uú]ltimos\s+(?:4|cuatro)(?:\s+d[ií]gitos)?",
)
# ... and the kind word that names what they end: the nearest one before them wins.
_KIND = re.compile(
    r"(?<![\w])(?:"
    r"(?P<MEDICAID_ID>medicaid(?:\s+(?:id|card|number))?|ma\s+(?:id|number)|mchp)"
    r"|(?P<MEMBER_ID>member\s+(?:id|card|number)|subscriber(?:\s+id)?|(?:id|insurance)\s+card"
    r"|miembro)"
    r"|(?P<US_ITIN>itin)"
    r"|(?P<US_SSN>ssn|ss\s?#|ss|s\.s\.(?:n\.)?|social(?:\s+security)?(?:\s+number)?"
    r"|seguro\s+social|soc\.?\s*sec\.?)"
    r"|(?P<CREDIT_CARD>(?:credit|debit)(?:\s+card)?|cards?|visa|master\s?card|amex"
    r"|american\s+express|discover|tarjeta|cc)"
    r"|(?P<US_BANK_NUMBER>(?:bank\s+)?account|acct\.?|a/c|checking|savings|bank|cuenta)"
    r")(?![\w])"
)
# Every _LAST_PHRASE holds one of these (not "end" alone: "pending", "attended").
_LAST_LITERALS = (
    " ending",
    "\nending",
    "(ending",
    "ends in",
    " ends ",
    "ended in",
    "end in",
    "ends with",
    "ended with",
    "end with",
    "last 4",
    "last4",
    "last four",
    "ssn4",
    "ssn 4",
    "termin",
    "últim",
    "ultim",
)
_LAST_GAP = 45  # characters between the phrase and the digits ("of her social security number")
_KIND_BEFORE = 30  # characters before the phrase where its kind word may stand
_NO_GAP = re.compile(r"[\d\n]")
LAST_FOUR = re.compile(_opening(r"\d") + r"\d{3})(?![\w/-]|[.,]\d)")
# A masked identifier: "xxx-xx-4321", "***-**-4321", "**** **** **** 4321", "XXXXX4321".
_MASK = "[xX*\u2022#]"
MASKED = re.compile(
    rf"(?P<v>{_MASK}(?<![\w*\u2022#]{_MASK}){_MASK}++(?:[ -]{_MASK}{{2,}}+){{0,3}}[ -]?\d{{4}})"
    r"(?![\w-]|[.,]\d)"
)
_MASK_GROUPS = re.compile(_MASK + "+")
_LAST_SURE, _LAST_GUESS = 0.85, 0.45
_LISTED_LAST = re.compile(r"(?<![\w-])\d{4}[ \t]*(?:,|/|&|and|or|y|o)[ \t]*\Z")


def _kind_before(lower: str, start: int, end: int) -> str | None:
    """The entity named by the last kind word in ``lower[start:end]``."""
    kind = None
    for match in _KIND.finditer(lower, max(0, start), end):
        kind = match.lastgroup
    return kind


def last_four(lower: str, start: int) -> tuple[str, float] | None:
    """What four digits at ``start`` are the end of, and how sure: a phrase ("ending in",
    "last 4 of") right before them and the nearest kind word before or inside it."""
    phrase = None
    for match in _LAST_PHRASE.finditer(lower, max(0, start - _LAST_GAP - 25), start):
        if start - match.end() <= _LAST_GAP and not _NO_GAP.search(lower, match.end(), start):
            phrase = match
    if phrase is None:
        # the next of a list: "last four of SSN are 9983 and 9982"
        listed = _LISTED_LAST.search(lower, max(0, start - 12), start)
        return last_four(lower, listed.start()) if listed else None
    kind = _kind_before(lower, phrase.start() - _KIND_BEFORE, start)
    if kind is not None:
        return kind, _LAST_SURE
    if phrase.group().startswith(("last", "últimos", "ultimos", "ssn")):
        return E.US_SSN, _LAST_GUESS  # "last 4: 4321" on this desk is an SSN's
    return None


def masked(lower: str, start: int, end: int) -> tuple[str, float] | None:
    """What a masked identifier is: named by a kind word shortly before, else by its
    layout (3-2-4 is an SSN's, 4-4-4-4 a card's)."""
    kind = _kind_before(lower, start - _KIND_BEFORE - 15, start)
    if kind is not None:
        return kind, _LAST_SURE
    groups = tuple(len(g) for g in _MASK_GROUPS.findall(lower, start, end))
    if groups in ((3, 2), (5,)):
        return E.US_SSN, _LAST_SURE
    if groups in ((4, 4, 4), (12,), (4, 6)):
        return E.CREDIT_CARD, _LAST_SURE
    return None


_MEMO = threading.local()  # this thread's last text and what its last digits are


def _typed(lower: str, start: int, end: int, is_masked: bool) -> tuple[str, float] | None:
    """``masked`` or ``last_four``, read once per value for the rules of every entity: the
    rules of one text run one after the other on the same folded text."""
    memo: tuple[str, dict[tuple[int, bool], tuple[str, float] | None]] | None
    memo = getattr(_MEMO, "memo", None)
    if memo is None or memo[0] is not lower:
        memo = (lower, {})
        _MEMO.memo = memo
    key = (start, is_masked)
    if key not in memo[1]:
        memo[1][key] = masked(lower, start, end) if is_masked else last_four(lower, start)
    return memo[1][key]


@dataclass(frozen=True)
class LastDigits(Rule):
    """Four digits (or a masked number) that end an identifier of this rule's entity."""

    def applies(self, lower: str) -> bool:
        if self.pattern is MASKED:
            return any(c in lower for c in "x*#\u2022")
        # the phrases' literals first: a search of the text for them costs more
        return any(w in lower for w in _LAST_LITERALS) and self._any_context(lower)

    def _score(self, lower: str, start: int, end: int) -> float:
        typed = _typed(lower, start, end, self.pattern is MASKED)
        if typed is None or typed[0] != self.entity or machine_token(lower, start, end):
            return 0.0
        return typed[1]


_LAST_DIGIT_RULES = tuple(
    LastDigits(entity, pattern, 0.0, _LAST_PHRASE)
    for pattern in (LAST_FOUR, MASKED)
    for entity in (
        E.US_SSN,
        E.US_ITIN,
        E.CREDIT_CARD,
        E.US_BANK_NUMBER,
        E.MEDICAID_ID,
        E.MEMBER_ID,
    )
)

# Digits alone after a carrier's label: "Member ID 123456789", "MRN 4455667", "subscriber #".
_MEMBER_LABELS = (
    r"member\s*(?:id|#|no\.?|number|num)",
    r"members?",
    r"mrn",
    r"medical\s+record(?:\s+(?:number|no\.?|#))?",
    r"subscriber(?:\s*(?:id|#|no\.?|number))?",
    r"n[uú]mero\s+de\s+(?:miembro|afiliado|socio|suscriptor)",
    r"(?:id|identificaci[oó]n)\s+de\s+(?:miembro|afiliado|suscriptor)",
    r"miembro",
    r"policy\s*(?:id|#|no\.?|number)",
    r"insurance\s+id",
    r"insurance\s+card(?:\s*(?:id|#|no\.?|number))?",
    r"(?:dental|vision|sub)\s*(?:id|#|no\.?|number)",
    r"carrier\s+id",
    # a carrier's own name for it: "Kaiser number 31055829", "UHC ID: 918442073"
    rf"(?:{CARRIER_NAMES})\s*(?:member\s*)?(?:id|#|no\.?|number)",
    # a few words between label and value: "member ID with Delta was", "número de miembro
    # temporal de UHC:"
    r"(?:(?:member|subscriber)\s*(?:id|#|number)|n[uú]mero\s+de\s+miembro|id\s+de\s+miembro)"
    r"(?:\s+(?:with|at|from|for|of|on|in|de|del|en|con|para|temporal|temporary|new|nuevo|old"
    r"|viejo)(?:\s+[a-z&.\-]+){0,3}?)",
)
MEMBER_LABEL = labelled(*_MEMBER_LABELS)
_MEMBER_GATE = (
    "member",
    "dental",
    "vision",
    "sub id",
    "sub #",
    "sub no",
    "sub number",
    "mrn",
    "medical",
    "subscriber",
    "miembro",
    "policy",
    "insurance",
    "carrier",
    "kaiser",
    "carefirst",
    "aetna",
    "uhc",
    "united",
    "cigna",
    "wellpoint",
    "amerigroup",
    "delta",
    "bluechoice",
    "humana",
    "molina",
    "priority",
    "physicians",
    "mpc",
    "jai",
    "medstar",
)

_LABEL_LETTERS = frozenset({"id", "no", "nr", "num", "nbr", "mrn", "ma", "dl"})


_CARRIERS = (
    r"kaiser|carefirst|aetna|uhc|unitedhealthcare|united\s+healthcare|cigna|wellpoint"
    r"|amerigroup|priority\s+partners|maryland\s+physicians\s+care|jai\s+medical|medstar"
)
_MEMBER_NEAR = ctx(r"member", r"subscriber", r"afiliad[oa]", r"miembro", _CARRIERS)
# in the same stretch, what makes a number someone else's: the producer's NPN or licence,
# a firm's tax ID, a payment card
_NOT_A_MEMBERS = ctx(
    r"npn",
    r"licen[cs]e",
    r"licencia",
    r"fein",
    r"ein",
    r"tax\s+id",
    r"credit",
    r"debit",
    r"visa",
    r"mastercard",
    r"amex",
    r"routing",
    r"account",
    r"acct",
    r"cuenta",
)


@dataclass(frozen=True)
class NearCarrierRule(IdRule):
    """An ``IdRule`` whose context may stand a sentence away, unless something nearer
    says the number is another kind (``_NOT_A_MEMBERS``)."""

    def _score(self, lower: str, start: int, end: int) -> float:
        if _NOT_A_MEMBERS.search(lower, max(0, start - self.window), start):
            return 0.0
        return super()._score(lower, start, end)


_CARRIER_AFTER = re.compile(
    rf"[ \t]*[(,]?[ \t]*(?:(?:de|del|with|at|from|for|con)[ \t]+)?(?:{_CARRIERS})\b"
)


# A producer's own insurance licence, named beside their NPN or their agency ("My NPN is
# 15776402 and MD license 2204519", "Our agency's Maryland license is 3000412937"), unless
# a driver's licence is meant
_PRODUCER_LICENCE = ctx(
    r"npn",
    r"agency'?s?",
    r"agencia",
    r"producer'?s?",
    r"productor",
    r"insurance",
    r"seguros",
    r"mia",
    r"(?:my|our|mi|nuestra)\s+(?:\w+\s+)?licen[cs](?:e|ia)",
)
_DRIVING = ctx(r"driver'?s?", r"drivers", r"dl", r"d\.l\.", r"mva", r"conducir", r"manejar")
_LICENCE_REACH = 60


@dataclass(frozen=True)
class DriverLicenceRule(IdRule):
    """An ``IdRule`` for a licence named by context: not the producer's own insurance
    licence (``_PRODUCER_LICENCE`` beside it and no word of driving)."""

    def _score(self, lower: str, start: int, end: int) -> float:
        low, high = max(0, start - _LICENCE_REACH), end + _LICENCE_REACH
        if _PRODUCER_LICENCE.search(lower, low, high) and not _DRIVING.search(lower, low, high):
            return 0.0
        return super()._score(lower, start, end)


def _not_a_phone(value: str) -> bool:
    """Not a phone number written without separators (the number on the back of the card
    is the carrier's): ten digits, or eleven."""
    return len(digits(value)) not in (10, 11)


def _member_digits(value: str) -> bool:
    """Five to fifteen digits in all, the groups after the first of two digits or more
    (not "123456789 1 of 2"); not the exchange's own policy number, which a 1095-A
    prints as "2024-0881375-01"."""
    groups = re.split(r"[ -]", value)
    if _MARKETPLACE_POLICY.fullmatch(value):
        return False
    return 5 <= len(digits(value)) <= 15 and all(len(g) >= 2 for g in groups[1:])


_MARKETPLACE_POLICY = re.compile(r"20\d{2}-\d{5,8}-\d{2}")


def _prefixed_groups(value: str) -> bool:
    """A prefix with a letter in it (not a label's "ID"), then seven digits or more."""
    prefix = value.split(None, 1)[0].split("-", 1)[0]
    letters = any(c.isalpha() for c in prefix)
    return letters and prefix.lower() not in _LABEL_LETTERS and len(digits(value)) >= 7


def _not_a_label(value: str) -> bool:
    """The letters are the ID's, not its label's own ("member ID 123456789")."""
    return value[:-1].split(None, 1)[0].split("-", 1)[0].lower() not in _LABEL_LETTERS


# "219-09-9999", "219 09 9999", "219.09.9999", and with an en or em dash, spaced or not
_D3_2_4 = _DIGIT + r"\d{2}([- .]|[ ]?[\u2013\u2014][ ]?)\d{2}\2\d{4})" + _R
_D9 = _DIGIT + r"\d{8})" + _R
# One compiled object per shape: the recognizer scans each shape once for all its rules.
D3_2_4 = re.compile(_D3_2_4)
D9 = re.compile(_D9)
_MBI_A = "[AC-HJKMNP-RT-Yac-hjkmnp-rt-y]"  # no S, L, O, I, B, Z
_MBI_AN = "[AC-HJKMNP-RT-Yac-hjkmnp-rt-y0-9]"
_MBI = (
    _opening("[1-9]")
    + rf"{_MBI_A}{_MBI_AN}\d([- ]?){_MBI_A}{_MBI_AN}\d\2{_MBI_A}{{2}}\d{{2}})"
    + _R
)

NUMBER_RULES: tuple[Rule, ...] = (
    *_LAST_DIGIT_RULES,
    # SSN: dashed or spaced is distinctive; nine bare digits need "ss#" or similar.
    IdRule(E.US_SSN, D3_2_4, 0.85, SSN_CONTEXT, 0.95, _not_itin, shape=True),
    IdRule(E.US_SSN, D9, 0.4, SSN_CONTEXT, 0.9, _weak_ssn),
    IdRule(E.US_SSN, D9, 0.0, SSN_CONTEXT, 0.9),
    # ITIN: 9xx with a middle group the IRS assigns.
    IdRule(E.US_ITIN, D3_2_4, 0.85, ITIN_CONTEXT, 0.95, _itin, shape=True),
    IdRule(E.US_ITIN, D9, 0.5, ITIN_CONTEXT, 0.95, _itin),
    # Maryland Medicaid (Medical Assistance) numbers are 11 digits.
    IdRule(E.MEDICAID_ID, re.compile(_DIGIT + r"\d{10})" + _R), 0.45, MEDICAID_CONTEXT, 0.9),
    IdRule(
        E.MEDICAID_ID,
        re.compile(_L + r"(?P<v>(?=[A-Za-z]{0,13}\d)[A-Za-z0-9]{8,14})" + _R),
        0.0,
        MEDICAID_CONTEXT,
        0.8,
        _dl_like,
    ),
    # Written in groups after its label: "Medicaid 1234 5678 901", "MA# 12345 678901".
    IdRule(
        E.MEDICAID_ID,
        re.compile(_DIGIT + r"\d{2,5}(?:[ -]\d{2,7}){1,3})" + _R),
        0.0,
        MEDICAID_CONTEXT,
        0.9,
        _eleven_digits,
        window=30,
    ),
    # Digits alone right after a carrier's label, whole or in groups: "102948377-01",
    # "1234-5678-90", "4455 6677 01"
    IdRule(
        E.MEMBER_ID,
        re.compile(_DIGIT + r"\d{1,14}(?:[ -]\d{1,7}){0,4})" + _R),
        0.0,
        MEMBER_LABEL,
        0.85,
        _member_digits,
        gate=_MEMBER_GATE,
    ),
    # A carrier's number near its card or its carrier in a sentence: "the member number on
    # the temporary card they mailed is 918442073", "Her UHC card says 918442073", "el ID
    # 918442073 de CareFirst", "ID: 918442073 (CareFirst)"
    NearCarrierRule(
        E.MEMBER_ID,
        re.compile(_DIGIT + r"\d{6,14}(?:-\d{1,3})?)" + _R),
        0.0,
        _MEMBER_NEAR,
        0.7,
        _not_a_phone,
        window=60,
        after=_CARRIER_AFTER,
        gate=(*_MEMBER_GATE, "afiliad"),
    ),
    # A letter prefix set apart from the digits after a label: "Member ID: XEH 884207913".
    IdRule(
        E.MEMBER_ID,
        re.compile(_opening("[A-Z]") + r"[A-Z]{0,3}[ -]\d{6,12})" + _R),
        0.0,
        MEMBER_LABEL,
        0.85,
        _not_a_label,
        gate=_MEMBER_GATE,
    ),
    # A card's prefix and its digits in groups after a label: "JXM 800 341 226 01",
    # "3MK 0041 9920", "YRP 447 210 998"
    IdRule(
        E.MEMBER_ID,
        re.compile(_opening("[A-Z0-9]") + r"[A-Z0-9]{1,3}(?:[ -]\d{2,6}){2,5})" + _R),
        0.0,
        MEMBER_LABEL,
        0.85,
        _prefixed_groups,
        gate=_MEMBER_GATE,
    ),
    # Carrier member IDs: a short letter prefix and digits; any alphanumeric after "member ID".
    IdRule(
        E.MEMBER_ID,
        re.compile(_opening("[A-Z]") + r"[A-Z]{0,3}\d{6,12})" + _R),
        0.5,
        MEMBER_CONTEXT,
        0.85,
    ),
    IdRule(
        E.MEMBER_ID,
        re.compile(_L + r"(?P<v>(?=[A-Za-z]{0,15}\d)[A-Za-z0-9]{6,16})" + _R),
        0.0,
        ctx(r"member", r"subscriber", r"insurance\s+id", r"policy"),
        0.8,
        _mixed,
        window=25,
    ),
    # Medicare Beneficiary Identifier: 11 characters in a fixed letter/digit layout.
    IdRule(E.MEDICARE_MBI, re.compile(_MBI), 0.85, MBI_CONTEXT, 0.95),
    # After "Medicare" or "MBI", the 4-3-4 layout is enough, whatever the letters.
    IdRule(
        E.MEDICARE_MBI,
        re.compile(
            _opening("[1-9]") + r"[A-Za-z0-9]{3}([- ]?)[A-Za-z0-9]{3}\2[A-Za-z0-9]{4})" + _R
        ),
        0.0,
        MBI_CONTEXT,
        0.85,
        _mixed,
        window=30,
    ),
    # Maryland licence: a letter and 12 digits, often dashed in groups of three.
    IdRule(
        E.US_DRIVER_LICENSE,
        re.compile(_L + r"(?P<v>[A-Za-z]([- ]?)\d{3}\2\d{3}\2\d{3}\2\d{3})" + _R),
        0.75,
        DL_CONTEXT,
        0.95,
    ),
    DriverLicenceRule(
        E.US_DRIVER_LICENSE,
        re.compile(
            _L + r"(?P<v>(?=[A-Za-z-]{0,18}\d)[A-Za-z0-9][A-Za-z0-9-]{3,17}[A-Za-z0-9])" + _R
        ),
        0.0,
        DL_CONTEXT,
        0.8,
        _dl_like,
        window=30,
    ),
    # Bank accounts only with context; routing numbers carry a checksum.
    IdRule(
        E.US_BANK_NUMBER,
        re.compile(_DIGIT + r"[\d -]{4,20}\d)" + _R),
        0.0,
        BANK_CONTEXT,
        0.85,
        _bank_digits,
        window=40,
    ),
    IdRule(E.ABA_ROUTING_NUMBER, D9, 0.3, ABA_CONTEXT, 0.9, aba_ok),
    IdRule(E.ABA_ROUTING_NUMBER, D9, 0.0, ABA_CONTEXT, 0.7),
    # Payment cards: 13-19 digits, grouped or not, Luhn-valid.
    IdRule(
        E.CREDIT_CARD,
        re.compile(_DIGIT + r"(?:[ -]?\d){12,18})" + _R),
        0.85,
        CARD_CONTEXT,
        0.95,
        _card_like,
    ),
    # After "card", any long digit run is taken for a card number, Luhn or not.
    IdRule(
        E.CREDIT_CARD,
        re.compile(_DIGIT + r"(?:[ -]?\d){11,18})" + _R),
        0.0,
        CARD_CONTEXT,
        0.7,
        window=25,
    ),
)
