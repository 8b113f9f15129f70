"""The errors of the auto-reply package.

    TicketdError
    └── ReplyError                 a reply cannot be made (programming or config mistake)
        └── TemplateError          a template cannot be used (file, line, reason)
            └── TemplateSecurityError   a template reached for something the sandbox forbids

Messages name template files, lines and kinds, never rendered text or data.
"""

from __future__ import annotations

from ticketing.errors import TicketdError

__all__ = ["ReplyError", "TemplateError", "TemplateSecurityError"]


class ReplyError(TicketdError):
    """A reply request cannot be turned into mail (unknown kind, missing data)."""


class TemplateError(ReplyError):
    """A template does not compile or render; ``file`` and ``line`` say where."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        super().__init__(f"{file}:{line}: {message}")


class TemplateSecurityError(TemplateError):
    """The sandbox refused an attribute or call (``__class__``, ``__mro__``, mutation)."""
