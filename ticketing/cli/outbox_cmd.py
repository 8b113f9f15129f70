"""``ticketd outbox``."""

from __future__ import annotations

import click

__all__ = ["outbox_group"]


@click.group("outbox")
def outbox_group() -> None:
    """Outbound mail waiting, sent or failed."""
