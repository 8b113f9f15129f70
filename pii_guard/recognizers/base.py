"""The recognizer interface, and a recognizer driven by a table of rules.

``Recognizer`` is the shape of Presidio's ``EntityRecognizer.analyze`` without
its NLP artifacts: the offline recognizers read raw text, and importing
``presidio_analyzer`` at all pulls in spaCy and every predefined recognizer
(about 1.5-2 s of start-up), so the offline pipeline does not import it.
Presidio's own ``PatternRecognizer`` scores the whole match and raises scores
with context words found by lemma; here a bare number is ambiguous (nine
digits may be an SSN, a routing number or nothing), so each rule says what the
value is worth alone and what it is worth when a context phrase precedes it
closely.  A rule whose bare score is 0 needs its context.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from pii_guard.findings import Finding

__all__ = [
    "CARRIER_NAMES",
    "Recognizer",
    "Rule",
    "RuleRecognizer",
    "ctx",
    "fold",
    "has_context",
    "word_tree",
]

# The carriers sold on the exchange and Maryland's Medicaid MCOs, as producers write them
# (folded, lower case): their names label their members' numbers ("UHC ID", "Kaiser #").
CARRIER_NAMES = (
    r"kaiser|kp|carefirst|aetna|uhc|unitedhealthcare|united|cigna|wellpoint|amerigroup"
    r"|delta(?:\s+dental)?|bluechoice|humana|molina|priority\s+partners"
    r"|maryland\s+physicians\s+care|mpc|jai(?:\s+medical(?:\s+systems)?)?"
    r"|medstar(?:\s+family\s+choice)?"
)


class Recognizer(Protocol):
    """What the guard runs: findings of the wanted entity types in raw text."""

    @property
    def name(self) -> str: ...

    def analyze(self, text: str, entities: Collection[str]) -> list[Finding]: ...


_NOT_AFTER_A_WORD = r"(?<![\w])"


def ctx(*phrases: str) -> re.Pattern[str]:
    """A pattern for any of ``phrases`` (lower case) as whole words, run on ``fold(text)``.

    Matching lower-cased text case-sensitively is about five times faster
    than ``re.IGNORECASE`` in CPython's engine, and context is searched often.
    """
    return re.compile(_NOT_AFTER_A_WORD + "(?:" + "|".join(phrases) + r")(?![\w])")


@cache
def _loose(pattern: re.Pattern[str]) -> re.Pattern[str]:
    r"""A context ``pattern`` without its leading ``(?<![\w])``: it finds a superset, but
    about ten times faster (a leading lookbehind stops the engine from skipping ahead to
    the phrases' first letters), so "any context at all?" asks it first."""
    source = pattern.pattern
    if not source.startswith(_NOT_AFTER_A_WORD):
        return pattern
    return re.compile(source.removeprefix(_NOT_AFTER_A_WORD), pattern.flags)


# letters of words read so far -> what may follow ("" ends a word)
_Tree = dict[str, "_Tree"]


def word_tree(words: Iterable[str]) -> str:
    """A pattern for any of ``words`` that branches letter by letter ("a(?:pt|partment)").

    It matches the same words as ``a|b|...``, but the engine tries one branch per first
    letter instead of each word in turn: without a flag it skips a wrong word on its first
    letter, under ``(?i:`` it enters every one, at every place the pattern is tried.  It
    tries a longer word before a shorter one it starts with ("floor" before "fl"), so where
    both could fit, the caller's pattern must let only one of them ("fl" before a letter
    never fits a word's end), or not care which (a lookahead).
    """
    tree: _Tree = {}
    for word in sorted(words):  # the same pattern in every process
        node = tree
        for letter in word:
            node = node.setdefault(letter, {})
        node[""] = {}
    return "(?:" + _branches(tree) + ")"


def _branches(node: _Tree) -> str:
    branches = [re.escape(letter) + _branches(rest) for letter, rest in node.items() if letter]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


def has_context(pattern: re.Pattern[str], lower: str, start: int, end: int) -> bool:
    """Whether a phrase of ``pattern`` (a ``ctx`` pattern) stands in ``lower[start:end]``.

    Asked of the loose pattern first: on a window of text with no phrase at all, the
    usual case, that answers at half the cost.
    """
    return (
        _loose(pattern).search(lower, start, end) is not None
        and pattern.search(lower, start, end) is not None
    )


def fold(text: str) -> str:
    """``text`` lower-cased with every offset unchanged: ``İ`` (U+0130), the one character
    that grows when lowered, is kept as it is (lowering around it, not one character at a
    time in Python: a text full of them was the guard's slowest)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "\u0130".join(part.lower() for part in text.split("\u0130"))


@dataclass(frozen=True)
class Rule:
    """``pattern`` finds candidates (group ``v`` is the value when present)."""

    entity: str
    pattern: re.Pattern[str]
    score: float
    context: re.Pattern[str] | None = None
    context_score: float = 0.0
    validate: Callable[[str], bool] | None = None
    window: int = 40
    after: re.Pattern[str] | None = None  # context that may follow the value instead
    literal: str = ""  # a character every match contains: without it the pattern is skipped

    def matches(self, text: str) -> Iterator[tuple[int, int, float]]:
        lower = fold(text)
        if self.applies(lower):
            yield from self.judge(text, lower, self.pattern.finditer(text))

    def applies(self, lower: str) -> bool:
        """False when the rule needs a context phrase and the (folded) text has none at all."""
        if self.literal and self.literal not in lower:
            return False
        return self.score > 0.0 or self._any_context(lower)

    def judge(
        self, text: str, lower: str, candidates: Iterable[re.Match[str]]
    ) -> Iterator[tuple[int, int, float]]:
        """Score the matches of this rule's pattern; the caller may share one scan."""
        valued = "v" in self.pattern.groupindex
        for match in candidates:
            start, end = match.span("v") if valued else match.span()
            score = self._score(lower, start, end)
            if score > 0.0 and (self.validate is None or self.validate(text[start:end])):
                yield start, end, score

    def _any_context(self, lower: str) -> bool:
        return any(p is not None and context_in(lower, p) for p in (self.context, self.after))

    def _score(self, lower: str, start: int, end: int) -> float:
        if self.context is not None and has_context(
            self.context, lower, max(0, start - self.window), start
        ):
            return max(self.score, self.context_score)
        if self.after is not None and self.after.match(lower, end):
            return max(self.score, self.context_score)
        return self.score


_SEEN = threading.local()  # this thread's last folded text, and which contexts it holds


def context_in(lower: str, pattern: re.Pattern[str]) -> bool:
    """Whether the folded text holds ``pattern`` anywhere, asked once per text: thirty rules
    share a dozen context patterns, and each used to search the whole text again."""
    memo: tuple[str, dict[re.Pattern[str], bool]] | None = getattr(_SEEN, "memo", None)
    if memo is None or memo[0] is not lower:
        memo = (lower, {})
        _SEEN.memo = memo
    found = memo[1].get(pattern)
    if found is None:
        found = _loose(pattern).search(lower) is not None and pattern.search(lower) is not None
        memo[1][pattern] = found
    return found


class RuleRecognizer:
    """Runs its rules over the raw text; spaCy's tokens are not needed for patterns."""

    def __init__(self, name: str, rules: Sequence[Rule]) -> None:
        self.name = name
        self.rules = tuple(rules)

    def analyze(self, text: str, entities: Collection[str]) -> list[Finding]:
        wanted = set(entities)
        lower = fold(text)
        scans: dict[re.Pattern[str], list[re.Match[str]]] = {}
        results: list[Finding] = []
        for rule in self.rules:
            if rule.entity not in wanted or not rule.applies(lower):
                continue
            if rule.pattern not in scans:  # several rules share a shape (nine digits)
                scans[rule.pattern] = list(rule.pattern.finditer(text))
            results.extend(
                Finding(rule.entity, start, end, score)
                for start, end, score in rule.judge(text, lower, scans[rule.pattern])
            )
        return results
