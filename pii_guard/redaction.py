"""Replace findings with ``[REDACTED:TYPE]``, merging spans that overlap."""

from __future__ import annotations

from collections.abc import Iterable

from pii_guard.findings import Finding

__all__ = ["merge_overlapping", "redact_text"]


def merge_overlapping(findings: Iterable[Finding]) -> list[Finding]:
    """Overlapping findings become one covering both; it keeps the type of the surest."""
    merged: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (f.start, -f.end)):
        if merged and finding.start < merged[-1].end:
            last = merged[-1]
            surest = last if last.score >= finding.score else finding
            merged[-1] = Finding(
                surest.entity_type, last.start, max(last.end, finding.end), surest.score
            )
        else:
            merged.append(finding)
    return merged


def redact_text(text: str, findings: Iterable[Finding]) -> str:
    """``text`` with every finding's span replaced by ``[REDACTED:<entity type>]``."""
    parts: list[str] = []
    position = 0
    for finding in merge_overlapping(findings):
        parts.append(text[position : finding.start])
        parts.append(f"[REDACTED:{finding.entity_type}]")
        position = finding.end
    parts.append(text[position:])
    return "".join(parts)
