"""Pass, redact or reject: the per-mailbox policy applied to a message's text fields.

``reject`` refuses a message when any finding reaches its reject threshold;
findings that only reach the redact threshold (a weak name-only hit) make it
``redact`` instead, so a producer is not bounced on a guess.  ``redact``
stores redacted copies whenever anything reaches the redact threshold.
``off`` scans nothing.

What the message's scan budget did not reach (``pii_guard.budget``) is never
kept: ``redact`` stores the part that was read, with a note in place of the
rest; ``reject`` refuses the message, whose content it cannot vouch for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from pii_guard.budget import UNLIMITED, UNSCANNED, ScanBudget, Scanned
from pii_guard.engine import PiiGuard
from pii_guard.findings import NO_ALLOW, AllowList, Finding

__all__ = ["UNREAD_NOTE", "Action", "GuardOutcome", "Policy", "evaluate", "kept_text"]

Policy = Literal["reject", "redact", "off"]
Action = Literal["pass", "redact", "reject"]

# In place of what was not read, in the stored copy a caseworker reads.
# One line, so that a subject stays one line too.
UNREAD_NOTE = (
    "[{:,} more characters were not kept: they could not be checked for personal data"
    " in the time one message may take]"
)


@dataclass(frozen=True)
class GuardOutcome:
    """The decision, redacted copies of every field, and finding counts per entity type.

    ``fields`` holds every field given, redacted where it had findings;
    ``counts`` maps entity type to number of findings (what may be stored), and
    ``UNSCANNED`` to the number of fields not read to their end; ``unscanned``
    maps those fields to the characters left unread.  The repr leaves the field
    texts out.
    """

    action: Action
    fields: dict[str, str] = field(repr=False)
    counts: dict[str, int]
    findings: dict[str, list[Finding]] = field(default_factory=dict, repr=False)
    unscanned: dict[str, int] = field(default_factory=dict)


def evaluate(
    guard: PiiGuard,
    policy: Policy,
    fields: Mapping[str, str],
    allow: AllowList = NO_ALLOW,
    budget: ScanBudget = UNLIMITED,
) -> GuardOutcome:
    """Scan every field within ``budget`` and decide per ``policy``; ``off`` passes
    without scanning."""
    if policy == "off":
        return GuardOutcome("pass", dict(fields), {})
    scans = {name: guard.scan_within(text, budget, allow) for name, text in fields.items()}
    findings = {name: scan.findings for name, scan in scans.items()}
    every = [f for found in findings.values() for f in found]
    counts = dict(Counter(f.entity_type for f in every))
    unscanned = {name: s.length - s.read for name, s in scans.items() if not s.whole}
    if unscanned:
        counts[UNSCANNED] = len(unscanned)
    redacted = {name: kept_text(guard, text, scans[name]) for name, text in fields.items()}
    action = _action(guard, policy, every, bool(unscanned))
    return GuardOutcome(action, redacted, counts, findings, unscanned)


def kept_text(guard: PiiGuard, text: str, scan: Scanned) -> str:
    """``text`` redacted; cut where the scan stopped, with a note saying so."""
    if scan.whole:
        return guard.redact(text, scan.findings)
    read = [replace(f, end=min(f.end, scan.read)) for f in scan.findings]
    kept = guard.redact(text[: scan.read], read).removesuffix("\r")  # a cut CRLF
    gap = " " if kept and not kept.endswith(("\n", " ", "\t")) else ""
    return kept + gap + UNREAD_NOTE.format(scan.length - scan.read)


def _action(guard: PiiGuard, policy: Policy, findings: list[Finding], unread: bool) -> Action:
    if unread:
        return "reject" if policy == "reject" else "redact"
    if not findings:
        return "pass"
    settings = guard.settings
    if policy == "reject" and any(f.score >= settings.reject_at(f.entity_type) for f in findings):
        return "reject"
    return "redact"
