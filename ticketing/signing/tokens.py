"""Ref tokens: ``ref:_<org>._<case>:ref``, in the exchange's Salesforce shape.

The case part is the incident number (8 base62 digits) followed by a 64-bit
HMAC-SHA256 tag (11 base62 digits) over the org and that number.  A token
therefore names its incident without a database look-up, and cannot be
guessed, altered or carried to another deployment: verification recomputes
the tag under our secret and compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from ticketing.incidents.numbering import INCIDENT_NUMBER

__all__ = ["TOKEN_PATTERN", "RefTokens"]

TOKEN_PATTERN = re.compile(r"ref:_([0-9A-Za-z]{1,18})\._([0-9A-Za-z]{19}):ref")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_NUMBER_DIGITS = 8
_TAG_DIGITS = 11
_DOMAIN = b"ticketd-ref-v1"


def _b62(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        out.append(_ALPHABET[rem])
    if value:
        raise ValueError("value does not fit")
    return "".join(reversed(out))


def _from_b62(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + _ALPHABET.index(char)
    return value


@dataclass(frozen=True, repr=False)
class RefTokens:
    """Makes and checks ref tokens under one secret (``repr`` hides the secret)."""

    secret: bytes
    org: str

    def _tag(self, org: str, encoded_number: str) -> str:
        message = b"\0".join((_DOMAIN, org.encode(), encoded_number.encode()))
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        return _b62(int.from_bytes(digest[:8], "big"), _TAG_DIGITS)

    def make(self, incident_number: str) -> str:
        """The token for ``incident_number`` (``YYMMDD-NNNNNNN``)."""
        if not INCIDENT_NUMBER.fullmatch(incident_number):
            raise ValueError("not an incident number")
        encoded = _b62(int(incident_number.replace("-", "")), _NUMBER_DIGITS)
        return f"ref:_{self.org}._{encoded}{self._tag(self.org, encoded)}:ref"

    def verify(self, token: str) -> str | None:
        """The incident number a genuine token names; ``None`` for anything else."""
        match = TOKEN_PATTERN.fullmatch(token.strip())
        if match is None:
            return None
        org, case = match.groups()
        encoded, tag = case[:_NUMBER_DIGITS], case[_NUMBER_DIGITS:]
        if not hmac.compare_digest(tag, self._tag(org, encoded)) or org != self.org:
            return None
        digits = f"{_from_b62(encoded):013d}"
        return f"{digits[:6]}-{digits[6:]}" if len(digits) == 13 else None

    def find(self, text: str) -> list[str]:
        """Every token-shaped string in ``text``, in order (verified or not)."""
        return [m.group(0) for m in TOKEN_PATTERN.finditer(text)]
