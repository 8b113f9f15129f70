"""Reading shared mailboxes over IMAP (one poller thread per mailbox)."""
