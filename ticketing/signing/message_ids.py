"""Our Message-IDs: ``<tkd1.<incident>.<nonce>.<tag>@<domain>>``.

A reply names the message it answers in ``In-Reply-To``/``References``.  When
that message is one of ours, its Message-ID carries the incident number and an
HMAC tag under the ref-token secret (``[security] token_secret_env``), so the
matching stage can trust it without a database look-up, and a sender cannot
point a reply at another incident by inventing a Message-ID: changing the
number, the nonce or the tag breaks the tag.  Mail not about an incident
(``unknown_sender``) carries ``0`` and verifies to ``None``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

from ticketing.incidents.numbering import INCIDENT_NUMBER

__all__ = [
    "MESSAGE_ID_PREFIX",
    "find_signed_incident",
    "is_our_message_id",
    "make_message_id",
    "message_ids_in",
    "verify_message_id",
]

MESSAGE_ID_PREFIX = "<tkd1."

_DOMAIN_SEPARATOR = b"ticketd-msgid-v1"
_NO_INCIDENT = "0"
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_NONCE_DIGITS = 10  # 51 bits: unique among every id we will ever make
_TAG_DIGITS = 13  # 64 bits of HMAC-SHA256
_SHAPE = re.compile(
    r"<?tkd1\.(0|[0-9]{6}-[0-9]{7})\.([0-9a-z]{10})\.([0-9a-z]{13})@[A-Za-z0-9.-]+>?"
)
_ANY_ID = re.compile(r"<[^<>\s]+>")


def _b36(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 36)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def _tag(secret: bytes, number: str, nonce: str) -> str:
    message = b"\0".join((_DOMAIN_SEPARATOR, number.encode(), nonce.encode()))
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return _b36(int.from_bytes(digest[:8], "big"), _TAG_DIGITS)


def make_message_id(incident_number: str | None, secret: bytes, domain: str) -> str:
    """A fresh, unique Message-ID (with angle brackets) naming ``incident_number``."""
    number = incident_number or _NO_INCIDENT
    if number != _NO_INCIDENT and not INCIDENT_NUMBER.fullmatch(number):
        raise ValueError("not an incident number")
    nonce = _b36(secrets.randbits(51), _NONCE_DIGITS)
    return f"{MESSAGE_ID_PREFIX}{number}.{nonce}.{_tag(secret, number, nonce)}@{domain}>"


def verify_message_id(value: str, secret: bytes) -> str | None:
    """The incident number a genuine Message-ID of ours names; ``None`` for anything else."""
    number = _signed_number(value, secret)
    return None if number == _NO_INCIDENT else number


def is_our_message_id(value: str, secret: bytes) -> bool:
    """Whether ``value`` is a genuine Message-ID of ours, about an incident or not (the
    bounce of an ``unknown_sender`` reply returns mail of ours too)."""
    return _signed_number(value, secret) is not None


def _signed_number(value: str, secret: bytes) -> str | None:
    """The number part (``0`` included) of a Message-ID whose tag verifies."""
    match = _SHAPE.fullmatch(value.strip().lower())
    if match is None:
        return None
    number, nonce, tag = match.groups()
    return number if hmac.compare_digest(tag, _tag(secret, number, nonce)) else None


def message_ids_in(header: str) -> list[str]:
    """The ``<...>`` ids in an ``In-Reply-To`` or ``References`` value, in order."""
    return _ANY_ID.findall(header or "")


def find_signed_incident(headers: Iterable[str], secret: bytes) -> str | None:
    """The incident named by the newest genuine id of ours in ``headers``.

    Pass ``In-Reply-To`` first, then ``References``: within ``References`` the
    newest id is the last one, so each header is read from the end.
    """
    for header in headers:
        for candidate in reversed(message_ids_in(header)):
            number = verify_message_id(candidate, secret)
            if number is not None:
                return number
    return None
