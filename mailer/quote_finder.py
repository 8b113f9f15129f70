"""quotequail's ``unwrap``, asked only when some line of the text could start history.

quotequail tries each of its ~40 reply and forward patterns on every line, alone and
joined with the next (a wrapped attribution): most of the CPU a plain message costs in
reply parsing, although most messages hold no history at all.  One alternation of the
same patterns, tried the same way, says whether any line could match; with no such line,
no ``>`` quote and no header block, quotequail's answer is ``None`` and is not asked for.
Its answer is unchanged: the check is quotequail's own first step, coarsened
(``tests/test_reply_text.py`` holds the two to the same answers on the corpus).

The patterns and helpers are quotequail's internals: the version is pinned below 0.6.
"""

from __future__ import annotations

import re

import quotequail
from quotequail import _internal, _patterns

__all__ = ["unwrap"]

_ANY_PATTERN = re.compile("|".join(f"(?:{p.pattern})" for p in _patterns.COMPILED_PATTERNS))


def unwrap(text: str) -> dict[str, str] | None:
    """``quotequail.unwrap(text)``; ``None`` at once when no line could start history."""
    return quotequail.unwrap(text) if may_hold_history(text) else None


def may_hold_history(text: str) -> bool:
    """Whether a line of ``text`` starts what quotequail's search looks for: a reply or
    forward pattern (on the line or the line joined with the next), a ``>`` quote or a
    block of known headers."""
    lines = text.split("\n")
    return any(line.strip() and _starts_history(lines, n, line) for n, line in enumerate(lines))


def _starts_history(lines: list[str], n: int, line: str) -> bool:
    if line.startswith(">"):
        return True
    for wrapped in range(_patterns.MAX_WRAP_LINES):
        joined = _internal.join_wrapped_lines(lines[n : n + 1 + wrapped])
        if joined.startswith(">"):
            joined = joined[1:].strip()
        if not joined:
            break
        if _ANY_PATTERN.match(joined.strip()):
            return True
    if _patterns.HEADER_RE.match(line) is None:
        return False
    headers, _ = _internal.extract_headers(lines[n:], _patterns.MAX_WRAP_LINES)
    least: int = _patterns.MIN_HEADER_LINES
    return len(headers) >= least
