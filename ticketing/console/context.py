"""What every console page works with: the config, the database, the clocks, the mail.

``ticketd serve`` builds one ``ConsoleDesk`` from the parts it already runs (the
same composer, guard and templates as intake); tests build one from a config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from pii_guard import PiiGuard
from ticketing.config import Config
from ticketing.desk.actions import Desk
from ticketing.intake.build import build_composer, signing_secret
from ticketing.outbound.templated import TemplatedReplies
from ticketing.privacy.settings import build_guard
from ticketing.sla.clocks import SlaClocks
from ticketing.templating.template_store import TemplateStore

__all__ = ["ConsoleDesk", "console_desk"]


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class ConsoleDesk:
    """The desk's services as the console's pages use them."""

    config: Config
    engine: Engine
    replies: TemplatedReplies  # ``replies.batch()`` orders mail; compose after the commit
    guard: PiiGuard
    templates: TemplateStore
    secret: bytes = field(repr=False)
    # Wakes the outbox dispatcher after a commit that ordered mail (serve passes its own).
    mail_ordered: Callable[[], None] = _nothing

    @property
    def clocks(self) -> SlaClocks:
        return SlaClocks.from_config(self.config.sla)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.config.sla.timezone)

    @property
    def actions(self) -> Desk:
        """The desk's actions (``ticketing.desk.actions``) on this console's services."""
        return Desk(self.engine, self.config, self.clocks, lambda: self.replies)


def console_desk(config: Config, engine: Engine, secret: bytes | None = None) -> ConsoleDesk:
    """A desk of its own (tests, tools): the templates, guard and composer built here."""
    secret = signing_secret(config, secret)
    composer, store = build_composer(config, engine, secret)
    guard = build_guard(config.pii)
    replies = TemplatedReplies(composer, engine, guard)
    return ConsoleDesk(config, engine, replies, guard, store, secret)
