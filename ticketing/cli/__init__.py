"""The ``ticketd`` command line."""

from ticketing.cli.app import main

__all__ = ["main"]
