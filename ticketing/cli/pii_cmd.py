"""``ticketd pii``."""

from __future__ import annotations

import click

__all__ = ["pii_group"]


@click.group("pii")
def pii_group() -> None:
    """Scan or redact text with the PII guard."""
