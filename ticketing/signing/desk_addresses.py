"""The desk's reply and note addresses: a mailbox's address with a signed ``+tag``.

A desk copy's ``Reply-To`` is ``<mailbox>+r-<incident>-<mac>@<domain>``: hitting
Reply in any mail program writes to ticketd about that incident, which sends
the caseworker's words on to the producer once they pass the PII guard.  Mail to
``<mailbox>+n-<incident>-<mac>@<domain>`` is an internal note.  The tag is the
grammar of ``mailer/address_tags.py`` (the payload is the incident's row id), so
a forged, altered or foreign tag verifies as nothing and attaches nothing; the
address still reaches the mailbox (``+tag`` is stripped for routing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from mailer.address_tags import tag, untag
from mailer.errors import AddressTagError

__all__ = ["DeskRoute", "DeskUse", "desk_address", "desk_route"]

DeskUse = Literal["reply", "note"]
_KINDS: dict[DeskUse, str] = {"reply": "r", "note": "n"}
_USES = {kind: use for use, kind in _KINDS.items()}
_MAX_ID_BYTES = 8


@dataclass(frozen=True)
class DeskRoute:
    """A verified desk address: what it is for, the incident (row id), the mailbox's address."""

    use: DeskUse
    incident_id: int
    mailbox_address: str


def desk_address(mailbox_address: str, use: DeskUse, incident_id: int, secret: bytes) -> str | None:
    """The ``use`` address of the incident at ``mailbox_address``; ``None`` when the tag would
    not fit in the local part (a mailbox local part over about 45 characters)."""
    width = max(1, (incident_id.bit_length() + 7) // 8)
    try:
        return tag(mailbox_address, _KINDS[use], incident_id.to_bytes(width, "big"), secret)
    except AddressTagError:
        return None


def desk_route(addresses: Iterable[str], secret: bytes) -> DeskRoute | None:
    """The first of ``addresses`` that is a desk address signed under ``secret``."""
    for address in addresses:
        tagged = untag(address, secret)
        if tagged is None or tagged.kind not in _USES:
            continue
        if 0 < len(tagged.payload) <= _MAX_ID_BYTES:
            incident_id = int.from_bytes(tagged.payload, "big")
            return DeskRoute(_USES[tagged.kind], incident_id, tagged.base)
    return None
