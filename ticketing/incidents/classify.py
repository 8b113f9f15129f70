"""What a new escalation is about: its type and the Person IDs it names.

The exchange's own subject format (``Escalated Case: Enrollment.PID #:174097``)
decides when present; otherwise keywords in the subject, then the body.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ticketing.config.case_types import CASE_TYPES

__all__ = ["detect_type", "person_ids", "priority_of"]

_EXCHANGE_SUBJECT = re.compile(
    r"Escalated\s+Case:\s*(?P<label>[A-Za-z0-9 -]+?)\s*\.\s*PID", re.IGNORECASE
)
_KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("form_1095a", re.compile(r"\b1095[\s-]?A\b", re.IGNORECASE)),
    ("commission", re.compile(r"\bcommissions?\b", re.IGNORECASE)),
    ("termination", re.compile(r"\bterminat(e|ed|ion|ing)\b", re.IGNORECASE)),
    ("determination", re.compile(r"\b(determination|eligibility)\b", re.IGNORECASE)),
    ("system_error", re.compile(r"\b(system\s+error|error\s+message|glitch)\b", re.IGNORECASE)),
    ("enrollment", re.compile(r"\b(enrol(l)?(ment|ed|ing)?)\b", re.IGNORECASE)),
)
# A label (singular or plural) and the Person IDs after it, in the ways producers list
# them: "PID #:174097", "Person IDs 174201, 174202 and 174203", "PIDs 174301/174302",
# "PID #: 174401, 174402 & 174403".
_ID = r"#?\s*\d{4,12}\b"
_LIST_GAP = r"\s*(?:,\s*(?:and\s+|y\s+)?|/|&|;|\band\b|\bor\b|\by\b)\s*"
_PERSON_IDS = re.compile(
    r"\b(?:PIDs?|Person\s*IDs?|Person\s*ID['\u2019]s)\b\s*"
    r"(?:#|Nos?\.?|numbers?)?\s*[:#]?\s*"
    rf"(?P<ids>{_ID}(?:{_LIST_GAP}{_ID})*)",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d{4,12}")
_LABELS = {re.sub(r"[\s-]", "", t.label).lower(): t.key for t in CASE_TYPES.values()}


def detect_type(subject: str, text: str) -> str | None:
    """The case type key, or ``None`` when nothing says (the mailbox default applies)."""
    exchange = _EXCHANGE_SUBJECT.search(subject)
    if exchange:
        found = _LABELS.get(re.sub(r"[\s-]", "", exchange.group("label")).lower())
        if found:
            return found
    for where in (subject, text[:4000]):
        for key, pattern in _KEYWORDS:
            if pattern.search(where):
                return key
    return None


def person_ids(subject: str, text: str) -> list[str]:
    """Person IDs after ``PID``/``Person ID`` (or a list of them after ``PIDs``/``Person
    IDs``), subject first, each once."""
    found = [
        number
        for where in (subject, text[:20000])
        for listed in _PERSON_IDS.finditer(where)
        for number in _DIGITS.findall(listed.group("ids"))
    ]
    return list(dict.fromkeys(found))


def priority_of(subject: str, text: str, keywords: Sequence[str]) -> str:
    """``high`` when a configured keyword appears as a whole word, else ``normal``."""
    if not keywords:
        return "normal"
    pattern = r"\b(" + "|".join(re.escape(k) for k in keywords) + r")\b"
    return "high" if re.search(pattern, f"{subject}\n{text[:4000]}", re.IGNORECASE) else "normal"
