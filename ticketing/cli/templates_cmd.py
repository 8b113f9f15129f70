"""``ticketd templates``."""

from __future__ import annotations

import click

__all__ = ["templates_group"]


@click.group("templates")
def templates_group() -> None:
    """Admin tools for the auto-reply templates."""
