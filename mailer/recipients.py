"""Which envelope recipients ticketd accepts: its own mailbox addresses only.

Matching is case-insensitive and allows ``+tag`` sub-addresses, so
``Escalations+urgent@exchange.example`` reaches the ``escalations`` mailbox.
Everything else is refused at RCPT: ticketd is never a relay.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailer.addresses import base_address, normalize_address
from mailer.errors import InvalidAddressError

__all__ = ["RecipientMap"]


class RecipientMap:
    """Maps an envelope recipient to the name of the mailbox it reaches."""

    def __init__(self, mailboxes: Iterable[tuple[str, str]]) -> None:
        self._by_address = {base_address(address.lower()): name for name, address in mailboxes}

    def mailbox_for(self, recipient: str) -> str | None:
        try:
            address = normalize_address(recipient)
        except InvalidAddressError:
            return None
        return self._by_address.get(base_address(address))
