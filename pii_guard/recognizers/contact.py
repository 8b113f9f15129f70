"""Phone numbers and email addresses.

Compiled patterns instead of Presidio's phonenumbers-based recognizer (about
11 ms per message here) and its email recognizer (tldextract, which wants the
network for the public suffix list).  A number after a business label (``case
#4455667788``, ``Error code 2147942402``) or glued into a machine's header is no
phone (``nonpersonal.py``), and a Message-ID (``Message-ID: <…@….outlook.com>``,
``References:``) is no one's mailbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pii_guard import entities as E
from pii_guard.recognizers.base import Rule, ctx
from pii_guard.recognizers.checksums import digits
from pii_guard.recognizers.nonpersonal import IdRule

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

# The headers that carry Message-IDs, or a folded line of such IDs, before "<".
_ID_TOKENS = r"(?:<[^<>\s]*>[ \t,]*)"
_MESSAGE_ID_LINE = re.compile(
    r"[ \t>]*(?:(?:message-id|in-reply-to|references|resent-message-id)[ \t]*:[ \t]*"
    rf"{_ID_TOKENS}*|{_ID_TOKENS}+)<\Z"
)
_LINE_REACH = 400  # characters before an address where its header may start
_MACHINE_DIGITS = 10  # a local part with this many digits was written by a mail server


def _opening_bracket(lower: str, start: int) -> int:
    """Where the "<" opening the token that holds ``start`` stands ("<CAHk=x@…"); -1 if none."""
    opening = lower.rfind("<", max(0, start - 64), start)
    if opening < 0 or any(c.isspace() or c == ">" for c in lower[opening:start]):
        return -1
    return opening


@dataclass(frozen=True)
class EmailRule(Rule):
    """An email address, unless it is a Message-ID: in angle brackets on a header line
    that carries them (or a folded line of them), or with a server's run of digits."""

    def _score(self, lower: str, start: int, end: int) -> float:
        if lower[end : end + 1] == ">" and (opening := _opening_bracket(lower, start)) >= 0:
            local = lower[opening + 1 : lower.find("@", start, end)]
            if sum(c.isdigit() for c in local) >= _MACHINE_DIGITS:
                return 0.0
            line = max(0, opening - _LINE_REACH, lower.rfind("\n", 0, opening) + 1)
            if _MESSAGE_ID_LINE.match(lower, line, opening + 1):
                return 0.0
        return super()._score(lower, start, end)


CONTACT_RULES: tuple[Rule, ...] = (
    IdRule(E.PHONE_NUMBER, re.compile(_NANP), 0.75, PHONE_CONTEXT, 0.85),
    IdRule(
        E.PHONE_NUMBER,
        re.compile(_L + r"(?P<v>1?[2-9]\d{9})" + _R),
        0.4,
        PHONE_CONTEXT,
        0.75,
    ),
    IdRule(E.PHONE_NUMBER, re.compile(_INTERNATIONAL), 0.7, PHONE_CONTEXT, 0.85, _phone_length),
    IdRule(
        E.PHONE_NUMBER,
        re.compile(_DIGIT_GROUPS),
        0.0,
        STRICT_PHONE_CONTEXT,
        0.65,
        _phone_length,
        window=25,
        after=PHONE_AFTER,
    ),
    EmailRule(
        E.EMAIL_ADDRESS,
        re.compile(
            r"(?<![\w.+%'-])(?P<v>[\w][\w.%+'-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
            r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24})(?![\w-])"
        ),
        0.9,
        literal="@",
    ),
)
