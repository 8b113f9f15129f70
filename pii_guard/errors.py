"""The PII guard's exceptions.

    PiiGuardError
    └── PiiEngineError     the engine cannot be built (a configured spaCy model is missing, ...)

Messages name models, settings and entity types, never the text scanned: an
exception may end up in a log line, and the text is exactly what must not.
"""

from __future__ import annotations

__all__ = ["PiiEngineError", "PiiGuardError"]


class PiiGuardError(Exception):
    """Base class of every error the PII guard raises on purpose."""


class PiiEngineError(PiiGuardError):
    """The scanning engine cannot be built or used as configured."""
