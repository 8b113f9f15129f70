"""Email address normalisation shared by configuration, the roster and intake.

Addresses are compared case-insensitively everywhere in ticketd (mailbox
routing, the producers roster), so they are stored in one canonical form.
"""

from __future__ import annotations

import re
from email.utils import parseaddr

from mailer.errors import InvalidAddressError

__all__ = ["MAX_ADDRESS", "InvalidAddressError", "base_address", "normalize_address"]

MAX_ADDRESS = 254

_ADDR_SPEC = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$"
)


def normalize_address(text: str) -> str:
    """Return ``text`` as a lower-case ``local@domain`` address.

    Accepts a bare address or a display form (``Name <a@b>``); rejects
    anything that is not exactly one address, so a roster or config value
    cannot smuggle in a list.
    """
    _name, addr = parseaddr(text.strip())
    if not addr or not _ADDR_SPEC.match(addr) or ".." in addr or _too_long(addr):
        raise InvalidAddressError("not a valid email address")
    return addr.lower()


def _too_long(addr: str) -> bool:
    """Longer than SMTP can carry (RFC 5321 4.5.3.1: a local part of 64 octets, a path of
    256 with its brackets): no mail could reach it, and no column is made for it."""
    return len(addr) > MAX_ADDRESS or len(addr.rpartition("@")[0]) > 64


def base_address(address: str) -> str:
    """Strip a ``+tag`` sub-address: ``desk+urgent@x`` -> ``desk@x``."""
    local, _, domain = address.partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"
