"""Replace findings with ``[REDACTED:TYPE]``, merging spans that overlap."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from pii_guard.findings import Finding

__all__ = ["findings_in_piece", "merge_overlapping", "redact_text"]

_CRLF = re.compile("\r\n")


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


def findings_in_piece(text: str, piece: str, findings: Sequence[Finding]) -> list[Finding] | None:
    """``findings`` of ``text`` moved onto ``piece``: one stretch of ``text``, found once,
    with its CRLFs read as LFs (how a message's new text is cut from its text); None
    when ``piece`` is no such stretch.

    The findings were judged in the whole text's context, so ``piece`` redacted by them
    says what the whole stored text says about the same words; a finding across an end
    of the stretch keeps its part inside."""
    dropped = [match.start() for match in _CRLF.finditer(text)]  # each CR read away
    lines = text.replace("\r\n", "\n") if dropped else text
    at = lines.find(piece)
    if not piece or at < 0 or lines.find(piece, at + 1) >= 0:
        return None
    moved = []
    for finding in findings:
        start = max(finding.start - bisect_left(dropped, finding.start), at) - at
        end = min(finding.end - bisect_left(dropped, finding.end), at + len(piece)) - at
        if start < end:
            moved.append(Finding(finding.entity_type, start, end, finding.score))
    return moved
