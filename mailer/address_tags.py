"""Signed sub-addresses: ``<local>+<kind>-<payload>-<mac>@<domain>``.

One grammar for every address ticketd hands out to be written back to: the
return path of each outbound mail (kind ``b``, VERP: the payload is the outbox
row, so a bounce says which mail it returns without being parsed), and later
the desk's reply and note addresses.

    kind     1-8 lower-case letters or digits
    payload  the bytes, in lower-case base32 (RFC 4648, no ``=`` padding)
    mac      the first 10 bytes (80 bits) of HMAC-SHA256 over the kind, the payload
             and the base address, in lower-case base32 (16 characters)

Everything after the ``+`` survives a mail system that folds case and is
allowed in an unquoted local part, so the tagged address still reaches the
base mailbox (``mailer/recipients.py`` strips ``+tag``).  A tag changed in any
character, moved to another base address or made under another secret does not
verify; the comparison is constant-time.  RFC 5321 allows 64 characters of
local part: payloads stay small (a row id is 1-5 bytes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

from mailer.errors import AddressTagError

__all__ = [
    "BOUNCE",
    "MAX_LOCAL_PART",
    "Tagged",
    "return_path",
    "returned_number",
    "tag",
    "untag",
]

BOUNCE = "b"
MAX_LOCAL_PART = 64  # RFC 5321 section 4.5.3.1.1

_DOMAIN_SEPARATOR = b"ticketd-tag-v1"
_MAC_BYTES = 10
_KIND = re.compile(r"[a-z0-9]{1,8}")
_TAG = re.compile(r"([a-z0-9]{1,8})-([a-z2-7]*)-([a-z2-7]{16})")
_MAX_NUMBER_BYTES = 8


@dataclass(frozen=True)
class Tagged:
    """A tagged address whose MAC verified: the address it was made from, its kind and
    payload (``address`` is the tagged address itself, lower-case)."""

    address: str
    base: str
    kind: str
    payload: bytes


def tag(address: str, kind: str, payload: bytes | str, secret: bytes) -> str:
    """``address`` with a signed ``+kind-payload-mac`` tag; ``AddressTagError`` when the
    kind is not in the grammar, the secret is empty or the local part would pass 64."""
    if not _KIND.fullmatch(kind):
        raise AddressTagError("a tag kind is 1-8 lower-case letters or digits")
    if not secret:
        raise AddressTagError("a tag needs a secret")
    data = payload.encode() if isinstance(payload, str) else payload
    base = address.strip().lower()
    local, at, domain = base.rpartition("@")
    if not at or not local or not domain:
        raise AddressTagError("not an address")
    tagged = f"{local}+{kind}-{_b32(data)}-{_mac(secret, kind, data, base)}"
    if len(tagged) > MAX_LOCAL_PART:
        raise AddressTagError(f"tagged local part longer than {MAX_LOCAL_PART} characters")
    return f"{tagged}@{domain}"


def untag(address: str, secret: bytes) -> Tagged | None:
    """The tag of ``address`` when it is one of ours (any case); ``None`` for an untagged,
    malformed or forged address, or one signed with another secret."""
    lowered = address.strip().strip("<>").lower()
    local, at, domain = lowered.rpartition("@")
    base_local, plus, suffix = local.rpartition("+")
    found = _TAG.fullmatch(suffix)
    if not (at and plus and base_local and domain and found and secret):
        return None
    kind, encoded, mac = found.groups()
    payload = _from_b32(encoded)
    if payload is None:
        return None
    base = f"{base_local}@{domain}"
    if not hmac.compare_digest(mac, _mac(secret, kind, payload, base)):
        return None
    return Tagged(lowered, base, kind, payload)


def return_path(sender: str, number: int, secret: bytes) -> str:
    """The VERP return path of the mail numbered ``number`` (an outbox row), from
    ``sender``: a bounce to it names that mail."""
    if number < 0:
        raise AddressTagError("a return path carries a number from 0")
    width = max(1, (number.bit_length() + 7) // 8)
    return tag(sender, BOUNCE, number.to_bytes(width, "big"), secret)


def returned_number(tagged: Tagged) -> int | None:
    """The mail number a verified return path carries; ``None`` for another kind of tag."""
    if tagged.kind != BOUNCE or not 0 < len(tagged.payload) <= _MAX_NUMBER_BYTES:
        return None
    return int.from_bytes(tagged.payload, "big")


def _mac(secret: bytes, kind: str, payload: bytes, base: str) -> str:
    message = b"\0".join((_DOMAIN_SEPARATOR, kind.encode(), payload, base.encode()))
    return _b32(hmac.new(secret, message, hashlib.sha256).digest()[:_MAC_BYTES])


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _from_b32(text: str) -> bytes | None:
    """The bytes of ``text``; ``None`` unless it is exactly how ``_b32`` writes them, so one
    payload has one spelling."""
    try:
        data = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None
    return data if _b32(data) == text else None
