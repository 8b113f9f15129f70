"""What is never PII here: the desk's own identifiers, public contact points, the sender.

System identifiers are found as spans first; a finding that overlaps one is
dropped.  Spans are narrow (the number after "NPN", not the sentence) so an
allowed identifier cannot shelter a neighbouring SSN.  Public phone numbers
and addresses are compared by value, so any formatting of the hotline passes.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence

from pii_guard import entities as E
from pii_guard.findings import AllowList, Finding
from pii_guard.recognizers.base import fold
from pii_guard.recognizers.checksums import digits
from pii_guard.recognizers.gazetteer import load_gazetteer, word_before

__all__ = ["PUBLIC_EMAILS", "PUBLIC_PHONES", "Allowance"]

PUBLIC_PHONES = frozenset({"8442246761"})
PUBLIC_EMAILS = frozenset({"mhbe.producers@maryland.gov", "mhc.trainingsupport@maryland.gov"})

_ID_GAP = r"[\s:#.,]*(?:(?:is|was|number|no|num|nbr|es|of)\b[\s:#.,]*){0,2}"
_PID_NPN = re.compile(
    r"(?:\bpids?|\bperson\s+ids?|\bnpns?|\bnational\s+producer\s+numbers?)"
    + _ID_GAP
    + r"(?P<v>\d{1,10}(?:\s*(?:,|and|&|/)\s*\d{1,10})*)"
)
# All run on the folded (lower-cased) text: case-insensitive flags cost five times more.
# (literals, pattern): a pattern runs only when one of its literals is in the text, and
# patterns open with a digit class rather than \b so that the engine skips non-digits fast.
_SYSTEM_SPANS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    # incident numbers YYMMDD-NNNNNNN and ref tokens
    (("-",), re.compile(r"\d(?<!\d\d)\d{5}-\d{7}(?!\d)")),
    (("ref:_",), re.compile(r"ref:_[a-z0-9]+\._[a-z0-9]+:ref")),
    # Person IDs and NPNs name the value that follows (lists of them too)
    (("pid", "person", "npn", "national"), _PID_NPN),
    # money, form names, times, timestamps, UUIDs
    (("$",), re.compile(r"(?:us)?\$\s?\d[\d,]*(?:\.\d{1,2})?")),
    (("usd", "dollar"), re.compile(r"(?<![\d,.])\d[\d,]*(?:\.\d{2})?\s?(?:usd|dollars)\b")),
    (
        ("1095", "1094", "1040", "8962", "8965", "w2", "w-2", "1099"),
        re.compile(r"\b(?:1095|1094|1040|8962|8965|w-?2|1099)-?[a-c]?\b(?:-?[a-z]{1,3})?"),
    ),
    ((":",), re.compile(r"\d(?<![\w]\d)\d?:\d{2}(?::\d{2}(?:\.\d+)?)?\s?(?:[ap]\.?m\.?)?")),
    (
        (":",),
        re.compile(
            r"\d(?<![\w]\d)\d{3}-\d{2}-\d{2}[t ]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?"
            r"(?:z|[+-]\d{2}:?\d{2})?"
        ),
    ),
    (
        ("-",),
        re.compile(
            r"[0-9a-f](?<![\w][0-9a-f])[0-9a-f]{7}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}"
            r"-[0-9a-f]{12}\b"
        ),
    ),
)
_NAME_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
# Starting only where a run of address characters starts: from inside one, a failed
# match would re-read the rest of the run from each character (quadratic on a long word).
_EMAIL = re.compile(r"(?<![\w.+'-])[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")


class Allowance:
    """The allow rules for one scan: system spans of the text plus the sender's identity."""

    def __init__(self, allow: AllowList, terms: Sequence[str] = ()) -> None:
        phones = (allow.sender_phone, *allow.phones)
        emails = (allow.sender_email, *allow.emails)
        names = (allow.sender_name, *allow.names)
        self.phones = PUBLIC_PHONES | {_phone_key(p) for p in phones if p}
        self.emails = PUBLIC_EMAILS | {e.strip().lower() for e in emails if e}
        self.domains = frozenset(d.strip().lower().lstrip("@") for d in allow.email_domains)
        self.terms = tuple(t.lower() for t in (*terms, *allow.terms) if t.strip())
        self.address = _squash(allow.sender_address or "")
        self.name_words = frozenset(
            w.lower() for name in names if name for w in _NAME_WORD.findall(name)
        )

    def filter(self, text: str, findings: Iterable[Finding]) -> list[Finding]:
        findings = list(findings)
        if not findings:
            return []
        spans = _SpanIndex(system_spans(text) + self._term_spans(text) + self._email_spans(text))
        return [f for f in findings if not spans.overlaps(f) and not self._is_sender(text, f)]

    def _email_spans(self, text: str) -> list[tuple[int, int]]:
        """Allowed addresses shelter what lies inside them ("casey" in casey@desk)."""
        if "@" not in text:
            return []
        return [m.span() for m in _EMAIL.finditer(text) if self._allowed_email(m.group())]

    def _allowed_email(self, value: str) -> bool:
        value = value.lower()
        return value in self.emails or value.rpartition("@")[2] in self.domains

    def _term_spans(self, text: str) -> list[tuple[int, int]]:
        # str.find, not a pattern a term: a conversation allows some thirty terms (team
        # names, the words for kinds of data) and most are in no given text.
        lowered = text.lower()
        spans = []
        for term in self.terms:
            at = lowered.find(term)
            while at >= 0:
                spans.append((at, at + len(term)))
                at = lowered.find(term, at + 1)
        return spans

    def _is_sender(self, text: str, finding: Finding) -> bool:
        value = text[finding.start : finding.end]
        kind = finding.entity_type
        if kind == E.PHONE_NUMBER:
            return _phone_key(value) in self.phones
        if kind == E.EMAIL_ADDRESS:
            return self._allowed_email(value)
        if kind == E.PERSON and self.name_words:
            return self._is_sender_name(value, word_before(text, finding.start))
        if kind == E.ADDRESS and self.address:
            squashed = _squash(value)
            return bool(squashed) and (squashed in self.address or self.address in squashed)
        return False

    def _is_sender_name(self, value: str, before: str) -> bool:
        """Made of the sender's name words, once the greeting or function words a span may
        have swallowed are set aside ("Hola Rosa Martinez", "Estimada Sra. Adeyemi").

        Only words no list knows as a name are set aside, so "Will Martinez" is not
        Rosa Martinez; a span of such words alone must itself be the sender's words.
        """
        words = [w.lower() for w in _NAME_WORD.findall(value)]
        fillers = load_gazetteer().fillers(words, before)
        core = {w for w, filler in zip(words, fillers, strict=True) if not filler}
        return bool(words) and (core or set(words)) <= self.name_words


class _SpanIndex:
    """Allowed spans sorted by start, with the furthest end so far: an overlap test is a
    binary search, so a long text with many identifiers and findings stays linear-ish."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        spans.sort()
        self.starts = [start for start, _ in spans]
        self.reach: list[int] = []
        furthest = -1
        for _, end in spans:
            furthest = max(furthest, end)
            self.reach.append(furthest)

    def overlaps(self, finding: Finding) -> bool:
        before = bisect.bisect_left(self.starts, finding.end)  # spans starting before its end
        return before > 0 and self.reach[before - 1] > finding.start


def system_spans(text: str) -> list[tuple[int, int]]:
    """Where the desk's own identifiers and other never-PII tokens are in ``text``."""
    spans: list[tuple[int, int]] = []
    lower = fold(text)
    for literals, pattern in _SYSTEM_SPANS:
        if not any(literal in lower for literal in literals):
            continue
        for match in pattern.finditer(lower):
            spans.append(match.span("v") if "v" in pattern.groupindex else match.span())
    return spans


def _phone_key(value: str) -> str:
    number = digits(value)
    return number[1:] if len(number) == 11 and number.startswith("1") else number


def _squash(value: str) -> str:
    return re.sub(r"[\W_]+", "", value.lower())
