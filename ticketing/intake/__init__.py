"""The ways mail comes in: SMTP (in the daemon or worker processes), the pipe, IMAP."""
