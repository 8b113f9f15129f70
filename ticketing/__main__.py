"""``python -m ticketing`` is ``ticketd``."""

from ticketing.cli import main

main()
