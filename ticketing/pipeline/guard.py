"""Stage *guard*: the PII policy of the mailbox, applied before anything is stored.

The pipeline depends on this small protocol, not on Presidio: the daemon
passes the real guard (``pii_guard``), tests may pass another real one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol

from mailer.parsing import ParsedMessage
from ticketing.pipeline.types import GuardResult, Identity

__all__ = ["NoGuard", "PiiStage", "Policy", "strictest"]

Policy = Literal["reject", "redact", "off"]
_STRICTNESS: dict[Policy, int] = {"off": 0, "redact": 1, "reject": 2}


def strictest(policies: Iterable[Policy]) -> Policy:
    """reject > redact > off: a message that reached several mailboxes is held to the
    strictest promise any of them makes (``off`` when there is none)."""
    return max(policies, key=_STRICTNESS.__getitem__, default="off")


class PiiStage(Protocol):
    def check(self, policy: Policy, message: ParsedMessage, identity: Identity) -> GuardResult:
        """Decide pass, redact or reject for ``message`` under ``policy``."""
        ...


class NoGuard:
    """Stores everything as it came: the behaviour of ``pii_policy = "off"``."""

    def check(self, policy: Policy, message: ParsedMessage, identity: Identity) -> GuardResult:
        return GuardResult("pass", message.subject, message.text, message.new_text)
