"""Reading shared mailboxes over IMAP (one poller thread per mailbox)."""

from ticketing.imap.poller import MailboxPoller, imap_settings
from ticketing.imap.service import PollerGroup, start_pollers

__all__ = ["MailboxPoller", "PollerGroup", "imap_settings", "start_pollers"]
