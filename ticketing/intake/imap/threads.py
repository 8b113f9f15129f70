"""Running the pollers inside ``ticketd serve``: a thread per IMAP mailbox."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ticketing.config import Config
from ticketing.intake.imap.leadership import leadership_for
from ticketing.intake.imap.poller import MailboxPoller
from ticketing.pipeline.runner import IntakePipeline

__all__ = ["PollerGroup", "start_pollers"]

log = logging.getLogger(__name__)

_JOIN_SECONDS = 30.0


@dataclass
class PollerGroup:
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def stop(self) -> None:
        """Ask every poller to stop and wait for the message in hand to finish."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(_JOIN_SECONDS)
            if thread.is_alive():
                log.warning("IMAP poller %s did not stop in time", thread.name)


def start_pollers(
    config: Config, pipeline: IntakePipeline, after_commit: Callable[[], None] | None = None
) -> PollerGroup:
    group = PollerGroup()
    for box in config.mailboxes:
        if box.imap is None:
            continue
        poller = MailboxPoller(
            box, box.imap, pipeline, leadership_for(pipeline.engine, box.name), after_commit
        )
        thread = threading.Thread(
            target=poller.run, args=(group.stop_event,), name=f"imap-{box.name}", daemon=True
        )
        thread.start()
        group.threads.append(thread)
    return group
