"""Which attachments the guard can read: text it can scan, or nothing."""

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
    """True when content of this MIME type is text the guard can scan.

    Images, PDFs (text layer or not: we do not extract it), office documents
    and archives are not: under a ``redact`` policy they are dropped with a
    note, since what cannot be read cannot be vouched for.
    """
    kind = mime_type.split(";", 1)[0].strip().lower()
    return kind.startswith("text/") or kind in _TEXT_APPLICATIONS or kind.endswith("+xml")
