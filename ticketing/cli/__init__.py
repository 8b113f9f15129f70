"""The ``ticketd`` command line.

``main`` first offers an MTA's ``ingest`` to the running daemon (``ingest_handoff``: the
standard library only, a tenth of a second); everything else, and an ``ingest``
the daemon cannot take, loads the whole command line (``app``).
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    from ticketing.cli.ingest_handoff import hand_off, parse_ingest

    job = parse_ingest(sys.argv[1:] if argv is None else argv)
    status = hand_off(job) if job is not None else None
    if status is not None:
        sys.exit(status)
    from ticketing.cli.app import main as run_command

    run_command(argv)
