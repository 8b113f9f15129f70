"""Pass, redact or reject: the per-mailbox policy applied to a message's text fields.

``reject`` refuses a message when any finding reaches its reject threshold;
findings that only reach the redact threshold (a weak name-only hit) make it
``redact`` instead, so a producer is not bounced on a guess.  ``redact``
stores redacted copies whenever anything reaches the redact threshold.
``off`` scans nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pii_guard.engine import PiiGuard
from pii_guard.findings import NO_ALLOW, AllowList, Finding

__all__ = ["Action", "GuardOutcome", "Policy", "evaluate"]

Policy = Literal["reject", "redact", "off"]
Action = Literal["pass", "redact", "reject"]


@dataclass(frozen=True)
class GuardOutcome:
    """The decision, redacted copies of every field, and finding counts per entity type.

    ``fields`` holds every field given, redacted where it had findings;
    ``counts`` maps entity type to number of findings (what may be stored).
    The repr leaves the field texts out.
    """

    action: Action
    fields: dict[str, str] = field(repr=False)
    counts: dict[str, int]
    findings: dict[str, list[Finding]] = field(default_factory=dict, repr=False)


def evaluate(
    guard: PiiGuard, policy: Policy, fields: Mapping[str, str], allow: AllowList = NO_ALLOW
) -> GuardOutcome:
    """Scan every field and decide per ``policy``; ``off`` passes without scanning."""
    if policy == "off":
        return GuardOutcome("pass", dict(fields), {})
    findings = {name: guard.scan(text, allow) for name, text in fields.items()}
    every = [f for found in findings.values() for f in found]
    counts = dict(Counter(f.entity_type for f in every))
    redacted = {name: guard.redact(text, findings[name]) for name, text in fields.items()}
    return GuardOutcome(_action(guard, policy, every), redacted, counts, findings)


def _action(guard: PiiGuard, policy: Policy, findings: list[Finding]) -> Action:
    if not findings:
        return "pass"
    settings = guard.settings
    if policy == "reject" and any(f.score >= settings.reject_at(f.entity_type) for f in findings):
        return "reject"
    return "redact"
