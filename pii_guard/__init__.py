"""The PII guard: find, redact or reject consumers' personal data in text.

Knows nothing about email: callers pass text fields and get findings (types,
offsets, scores; never values), redacted copies and a pass/redact/reject
decision.  Build one ``PiiGuard`` per process.
"""

from __future__ import annotations

from pii_guard.budget import UNLIMITED, UNSCANNED, ScanBudget, Scanned
from pii_guard.engine import PiiGuard
from pii_guard.entities import ALL_ENTITIES
from pii_guard.errors import PiiEngineError, PiiGuardError
from pii_guard.findings import NO_ALLOW, AllowList, Finding
from pii_guard.mime import is_scannable
from pii_guard.policy import UNREAD_NOTE, Action, GuardOutcome, Policy, evaluate, kept_text
from pii_guard.redaction import findings_in_piece
from pii_guard.settings import GuardSettings

__all__ = [
    "ALL_ENTITIES",
    "NO_ALLOW",
    "UNLIMITED",
    "UNREAD_NOTE",
    "UNSCANNED",
    "Action",
    "AllowList",
    "Finding",
    "GuardOutcome",
    "GuardSettings",
    "PiiEngineError",
    "PiiGuard",
    "PiiGuardError",
    "Policy",
    "ScanBudget",
    "Scanned",
    "evaluate",
    "findings_in_piece",
    "is_scannable",
    "kept_text",
]
