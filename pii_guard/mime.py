"""Which attachments are text the guard can scan as they are."""

from __future__ import annotations

__all__ = ["is_scannable"]

_TEXT_APPLICATIONS = frozenset(
    {
        "application/json",
        "application/xml",
        "application/csv",
        "application/x-csv",
        "application/ld+json",
        "application/rtf",
        "application/x-yaml",
        "application/yaml",
        "message/rfc822",
        "message/delivery-status",
    }
)


def is_scannable(mime_type: str) -> bool:
    """True when content of this MIME type is text the guard can scan as it is.

    Images, archives, PDFs and office documents are not text: the caller reads
    what it can of them into text first (ticketd: forwarded mail, PDF text
    layers, Word and Excel, ``ticketing/pipeline/attachments.py``) and drops
    the rest with a note, since what cannot be read cannot be vouched for.
    ``message/rfc822`` counts as text here; ticketd parses it as mail instead.
    """
    kind = mime_type.split(";", 1)[0].strip().lower()
    return kind.startswith("text/") or kind in _TEXT_APPLICATIONS or kind.endswith("+xml")
