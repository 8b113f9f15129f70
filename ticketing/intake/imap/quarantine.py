"""A shared mailbox's quarantine folder: what the poller set aside, and why.

The poller moves there what intake refused (``refused``), what the PII guard
rejected (``pii-rejected``) and what failed ``[intake] defect_attempts`` times
(``defect``).  The reason travels with the message as an IMAP keyword
(``ticketd-defect``) where the server keeps keywords of our own (its
PERMANENTFLAGS include ``\\*``: Dovecot does, Exchange Online does not); the log
has it either way.  Nothing here reads a message's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailer.imap_client import ImapMailbox, MessageSummary
from ticketing.config import ImapConfig

__all__ = [
    "HeldMessage",
    "held_messages",
    "purge_held",
    "quarantine_keyword",
    "release_held",
]

_PREFIX = "ticketd-"
_REASONS = ("refused", "pii-rejected", "defect")


def quarantine_keyword(reason: str) -> str:
    """The keyword that says why a message was quarantined (an IMAP atom)."""
    return _PREFIX + reason


@dataclass(frozen=True)
class HeldMessage:
    uid: int
    arrived: datetime | None  # INTERNALDATE: when it reached the mailbox
    size: int
    reason: str  # "" when the server keeps no keywords


def held_messages(
    conn: ImapMailbox, imap: ImapConfig, uids: list[int] | None = None
) -> list[HeldMessage]:
    """The messages in the quarantine folder (``uids`` of them only, when given)."""
    conn.ensure_folder(imap.quarantine_folder)
    conn.select(imap.quarantine_folder, readonly=True)
    found = conn.summaries(conn.undeleted_uids() if uids is None else uids)
    return [_held(summary) for summary in found]


def _held(summary: MessageSummary) -> HeldMessage:
    reasons = sorted(k.removeprefix(_PREFIX) for k in summary.keywords if k.startswith(_PREFIX))
    return HeldMessage(summary.uid, summary.internaldate, summary.size, ", ".join(reasons))


def release_held(conn: ImapMailbox, imap: ImapConfig, uids: list[int]) -> list[int]:
    """Move ``uids`` back to the inbox, for another try; those that were there."""
    keywords, present = _present(conn, imap, uids)
    if keywords:
        for reason in _REASONS:
            conn.set_keyword(present, quarantine_keyword(reason), on=False)
    conn.move(present, imap.folder)
    return present


def purge_held(conn: ImapMailbox, imap: ImapConfig, uids: list[int]) -> list[int]:
    """Delete ``uids`` from the quarantine folder for good; those that were there."""
    _, present = _present(conn, imap, uids)
    conn.expunge(present)
    return present


def _present(conn: ImapMailbox, imap: ImapConfig, uids: list[int]) -> tuple[bool, list[int]]:
    """Select the quarantine folder for changes: whether it keeps keywords, and which of
    ``uids`` are in it."""
    conn.ensure_folder(imap.quarantine_folder)
    status = conn.select(imap.quarantine_folder)
    wanted = set(uids)
    return status.keywords, [uid for uid in conn.undeleted_uids() if uid in wanted]
