"""Stage *guard*: the PII policy of the mailbox, applied before anything is stored.

The pipeline depends on this small protocol, not on Presidio: the daemon
passes the real guard (``pii_guard``), tests may pass another real one.
"""

from __future__ import annotations

from typing import Literal, Protocol

from mailer.parsing import ParsedMessage
from ticketing.pipeline.types import GuardResult, Identity

__all__ = ["NoGuard", "PiiStage"]

Policy = Literal["reject", "redact", "off"]


class PiiStage(Protocol):
    def check(self, policy: Policy, message: ParsedMessage, identity: Identity) -> GuardResult:
        """Decide pass, redact or reject for ``message`` under ``policy``."""
        ...


class NoGuard:
    """Stores everything as it came: the behaviour of ``pii_policy = "off"``."""

    def check(self, policy: Policy, message: ParsedMessage, identity: Identity) -> GuardResult:
        return GuardResult("pass", message.subject, message.text, message.new_text)
