"""Government, health-plan and financial identifiers.

Distinctive shapes (a dashed SSN, an MBI, a Maryland licence, a Luhn-valid
card) score high on their own; bare digit runs that many identifiers share
score low (redacted, not rejected) unless a context phrase names them.
"""

from __future__ import annotations

import re

from pii_guard import entities as E
from pii_guard.recognizers.base import Rule, ctx
from pii_guard.recognizers.checksums import aba_ok, digits, luhn_ok, ssn_structure_ok

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


def _dl_like(value: str) -> bool:
    return sum(c.isdigit() for c in value) >= 5


def _bank_digits(value: str) -> bool:
    return 6 <= len(digits(value)) <= 17


_D3_2_4 = _DIGIT + r"\d{2}([- .])\d{2}\2\d{4})" + _R
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
    # SSN: dashed or spaced is distinctive; nine bare digits need "ss#" or similar.
    Rule(E.US_SSN, D3_2_4, 0.85, SSN_CONTEXT, 0.95, _not_itin),
    Rule(E.US_SSN, D9, 0.4, SSN_CONTEXT, 0.9, _weak_ssn),
    Rule(E.US_SSN, D9, 0.0, SSN_CONTEXT, 0.9),
    # ITIN: 9xx with a middle group the IRS assigns.
    Rule(E.US_ITIN, D3_2_4, 0.85, ITIN_CONTEXT, 0.95, _itin),
    Rule(E.US_ITIN, D9, 0.5, ITIN_CONTEXT, 0.95, _itin),
    # Maryland Medicaid (Medical Assistance) numbers are 11 digits.
    Rule(E.MEDICAID_ID, re.compile(_DIGIT + r"\d{10})" + _R), 0.45, MEDICAID_CONTEXT, 0.9),
    Rule(
        E.MEDICAID_ID,
        re.compile(_L + r"(?P<v>(?=[A-Za-z]{0,13}\d)[A-Za-z0-9]{8,14})" + _R),
        0.0,
        MEDICAID_CONTEXT,
        0.8,
        _dl_like,
    ),
    # Carrier member IDs: a short letter prefix and digits; any alphanumeric after "member ID".
    Rule(
        E.MEMBER_ID,
        re.compile(_opening("[A-Z]") + r"[A-Z]{0,3}\d{6,12})" + _R),
        0.5,
        MEMBER_CONTEXT,
        0.85,
    ),
    Rule(
        E.MEMBER_ID,
        re.compile(_L + r"(?P<v>(?=[A-Za-z]{0,15}\d)[A-Za-z0-9]{6,16})" + _R),
        0.0,
        ctx(r"member", r"subscriber", r"insurance\s+id", r"policy"),
        0.8,
        _mixed,
        window=25,
    ),
    # Medicare Beneficiary Identifier: 11 characters in a fixed letter/digit layout.
    Rule(E.MEDICARE_MBI, re.compile(_MBI), 0.85, MBI_CONTEXT, 0.95),
    # After "Medicare" or "MBI", the 4-3-4 layout is enough, whatever the letters.
    Rule(
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
    Rule(
        E.US_DRIVER_LICENSE,
        re.compile(_L + r"(?P<v>[A-Za-z]([- ]?)\d{3}\2\d{3}\2\d{3}\2\d{3})" + _R),
        0.75,
        DL_CONTEXT,
        0.95,
    ),
    Rule(
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
    Rule(
        E.US_BANK_NUMBER,
        re.compile(_DIGIT + r"[\d -]{4,20}\d)" + _R),
        0.0,
        BANK_CONTEXT,
        0.85,
        _bank_digits,
        window=40,
    ),
    Rule(E.ABA_ROUTING_NUMBER, D9, 0.3, ABA_CONTEXT, 0.9, aba_ok),
    Rule(E.ABA_ROUTING_NUMBER, D9, 0.0, ABA_CONTEXT, 0.7),
    # Payment cards: 13-19 digits, grouped or not, Luhn-valid.
    Rule(
        E.CREDIT_CARD,
        re.compile(_DIGIT + r"(?:[ -]?\d){12,18})" + _R),
        0.85,
        CARD_CONTEXT,
        0.95,
        _card_like,
    ),
    # After "card", any long digit run is taken for a card number, Luhn or not.
    Rule(
        E.CREDIT_CARD,
        re.compile(_DIGIT + r"(?:[ -]?\d){11,18})" + _R),
        0.0,
        CARD_CONTEXT,
        0.7,
        window=25,
    ),
)
