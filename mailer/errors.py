"""The wire's exception tree: ``mailer`` depends on nothing of ticketd's domain.

    MailerError
    ├── InvalidAddressError          not a single plain email address (also a ValueError)
    ├── AddressTagError              an address cannot carry that tag (also a ValueError)
    ├── DeliveryError                an outbound mail could not be handed over
    │   ├── TemporaryDeliveryError   try again later (4xx, timeout, no STARTTLS)
    │   │   └── RelayUnavailableError    the relay cannot be reached at all
    │   └── PermanentDeliveryError   never retry (5xx for the recipient or the message)
    ├── ImapError                    the IMAP server could not be reached or refused
    │   └── ImapAuthError            login failed, or no credential could be obtained
    └── DocumentError                an attached document cannot be read (encrypted, damaged,
        │                            too large, a zip bomb): its reason, never its content
        └── ReadingStopped           the caller's time ran out while reading it

Messages carry SMTP codes, IMAP phrases and short reasons, never addresses or
message content.  ``ticketing`` translates them at its own boundary (the CLI
prints one line; the outbox and the pollers decide whether to retry).
"""

from __future__ import annotations

__all__ = [
    "AddressTagError",
    "DeliveryError",
    "DocumentError",
    "ImapAuthError",
    "ImapError",
    "InvalidAddressError",
    "MailerError",
    "PermanentDeliveryError",
    "ReadingStopped",
    "RelayUnavailableError",
    "TemporaryDeliveryError",
]


class MailerError(Exception):
    """Base class of every error the wire raises on purpose."""


class InvalidAddressError(MailerError, ValueError):
    """The text is not a single plain email address."""


class AddressTagError(MailerError, ValueError):
    """A tag that cannot be made: a kind outside the grammar, no secret, or a local part
    that would pass RFC 5321's 64 characters."""


class DeliveryError(MailerError):
    """A mail could not be handed over; subclasses say whether to retry."""


class TemporaryDeliveryError(DeliveryError):
    """The relay or the disk may accept it later."""


class RelayUnavailableError(TemporaryDeliveryError):
    """No connection to the relay: the other mails of this round would fail the same way."""


class PermanentDeliveryError(DeliveryError):
    """The relay refused the recipient or the message for good."""


class ImapError(MailerError):
    """The server could not be reached or refused an operation: reconnect later."""


class ImapAuthError(ImapError):
    """Login failed, or no credential could be obtained (the token command failed)."""


class DocumentError(MailerError):
    """An attached document cannot be read; the message is a short reason in words
    ("encrypted", "damaged", "a zip bomb"), never a word of the document."""


class ReadingStopped(DocumentError):
    """The caller's time for the message ran out before the document was read."""
