"""Phone numbers and email addresses.

Compiled patterns instead of Presidio's phonenumbers-based recognizer (about
11 ms per message here) and its email recognizer (tldextract, which wants the
network for the public suffix list).
"""

from __future__ import annotations

import re

from pii_guard import entities as E
from pii_guard.recognizers.base import Rule, ctx
from pii_guard.recognizers.checksums import digits

__all__ = ["CONTACT_RULES"]

_L = r"(?<![\w+-])"
# A number ends before a letter, a digit or a decimal; "-Fax" after it is a label.
_R = r"(?!\w|-\d|[.,]\d)"

PHONE_CONTEXT = ctx(
    r"phone",
    r"ph",
    r"tel",
    r"telephone",
    r"cell",
    r"cellphone",
    r"mobile",
    r"mob",
    r"fax",
    r"call",
    r"calls",
    r"called",
    r"calling",
    r"text",
    r"reach",
    r"number",
    r"no\.",
    r"desk",
    r"office",
    r"home",
    r"work",
    r"contact",
    r"registered",
    r"answering",
    r"tel[eé]fono",
    r"celular",
    r"n[uú]mero",
    r"llamar",
    r"whatsapp",
)

STRICT_PHONE_CONTEXT = ctx(
    r"phone",
    r"ph",
    r"tel",
    r"telephone",
    r"cell",
    r"mobile",
    r"fax",
    r"call",
    r"reach",
    r"text",
    r"desk",
    r"office",
    r"registered",
    r"answering",
    r"tel[eé]fono",
    r"celular",
    r"whatsapp",
    r"messages\s+to",
    r"sms",
)


def _phone_length(value: str) -> bool:
    return 7 <= len(digits(value)) <= 15


_NANP = (
    _L
    + r"(?P<v>(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}([\s.-]))\d{3}(?(2)\2|[\s.-])\d{4}"
    + r"(?:\s*(?:x|ext\.?)\s*\d{1,5})?)"
    + _R
)
# Digit groups stay on one line: a postal code on the line above is not a prefix.
_INTERNATIONAL = _L + r"(?P<v>(?:\+|00(?=[1-9]))\d(?:[ \t.-]?\(?\d++\)?){1,7})" + _R
# "... 555 0142 office", "...-Fax": the kind of line follows the number.  The
# lookbehind lets a search start only at the first of a run of blanks and dashes:
# without it, asking whether a text holds such a label at all re-reads the run from
# each of its characters (quadratic on a text of "-" lines).
PHONE_AFTER = re.compile(
    r"(?<![\s-])[\s-]*\(?(?:office|fax|mobile|cell|home|work|desk|tel|phone|m|o|h|c|w)\b"
)
_DIGIT_GROUPS = _L + r"(?P<v>\(?\d{2,5}\)?(?:[ \t.-]\d{2,8}){0,4})" + _R

CONTACT_RULES: tuple[Rule, ...] = (
    Rule(E.PHONE_NUMBER, re.compile(_NANP), 0.75, PHONE_CONTEXT, 0.85),
    Rule(
        E.PHONE_NUMBER,
        re.compile(_L + r"(?P<v>1?[2-9]\d{9})" + _R),
        0.4,
        PHONE_CONTEXT,
        0.75,
    ),
    Rule(E.PHONE_NUMBER, re.compile(_INTERNATIONAL), 0.7, PHONE_CONTEXT, 0.85, _phone_length),
    Rule(
        E.PHONE_NUMBER,
        re.compile(_DIGIT_GROUPS),
        0.0,
        STRICT_PHONE_CONTEXT,
        0.65,
        _phone_length,
        window=25,
        after=PHONE_AFTER,
    ),
    Rule(
        E.EMAIL_ADDRESS,
        re.compile(
            r"(?<![\w.+%'-])(?P<v>[\w][\w.%+'-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
            r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24})(?![\w-])"
        ),
        0.9,
        literal="@",
    ),
)
