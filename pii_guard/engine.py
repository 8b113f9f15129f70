"""``PiiGuard``: the recognizers, built once per process, and the allow rules.

Building is the slow part (the name lists: a few tenths of a second; a
configured spaCy model: seconds), scanning the fast one (a few milliseconds
per message), so the daemon builds once and shares the guard.  Recognizers
hold no per-call state, so one guard may serve several threads; processes,
not threads, add speed.  Presidio and spaCy are imported only when a spaCy
model is configured (``pii_guard.nlp``).
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Sequence

from pii_guard.allow import Allowance
from pii_guard.budget import UNLIMITED, ScanBudget, Scanned
from pii_guard.chunks import CHUNK_OVERLAP, CHUNK_SIZE, chunks
from pii_guard.entities import PERSON
from pii_guard.findings import NO_ALLOW, AllowList, Finding
from pii_guard.propagate import same_names
from pii_guard.recognizers.address import ADDRESS_RULES
from pii_guard.recognizers.base import Recognizer, RuleRecognizer
from pii_guard.recognizers.contact import CONTACT_RULES
from pii_guard.recognizers.dates import DateOfBirthRecognizer
from pii_guard.recognizers.fields import LabelledFieldRecognizer
from pii_guard.recognizers.gazetteer import Gazetteer, load_gazetteer
from pii_guard.recognizers.names import NameRecognizer, past_initial
from pii_guard.recognizers.numbers import NUMBER_RULES
from pii_guard.recognizers.postal import PostalRecognizer
from pii_guard.recognizers.spelled import SpelledNumberRecognizer
from pii_guard.recognizers.tables import TableRecognizer
from pii_guard.recognizers.tables import settle as settle_tables
from pii_guard.recognizers.tagged import TaggerRecognizer
from pii_guard.redaction import redact_text
from pii_guard.settings import GuardSettings
from pii_guard.tagger.features import Lexicon
from pii_guard.tagger.model import TaggerModel

__all__ = ["PiiGuard"]

log = logging.getLogger(__name__)

OFFLINE_MODEL = "offline (patterns and name lists, no spaCy model)"

_MONTHS = frozenset(
    [
        "jan",
        "feb",
        "mar",
        "apr",
        "may",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ]
)

# A capitalised word and one blank, right before a name found.
_GIVEN_BEFORE = re.compile(r"(?<![\w'\u2019-])([A-Z][a-z]+)[ ]\Z")
_GIVEN_REACH = 20
# "Surname, " / ", Given" of a name written surname first, at the head of a line (after
# bullets and a label) or of a cell
_HEAD = r"(?:^|[\t|;]|[ ]{2})[ \t>*\u2022-]*(?:[^\W\d_][\w ()./'-]{0,30}:[ \t]*)?"
_NAME_RUN = r"[A-Z][\w'\u2019-]+(?:[ ][A-Z][\w'\u2019-]+){0,2}"
_SURNAME_BEFORE = re.compile(rf"{_HEAD}(?P<words>{_NAME_RUN}),[ \t]*\Z", re.MULTILINE)
_GIVEN_AFTER = re.compile(
    rf",[ \t]*(?P<words>{_NAME_RUN}(?:[ ][A-Z]\.?)?)[ \t]*(?=$|[\t|;(]|[ ]{{2}})", re.MULTILINE
)
_HEAD_BEFORE = re.compile(rf"{_HEAD}\Z", re.MULTILINE)
_SURNAME_REACH = 60
# What may stand between two parts of one name (on one line).
_NAME_GAP = re.compile(
    r"[ \t]*(?:(?:[A-Z]\.?|de|del|la|las|los|van|von|der|da|di|du|le|el|y|bin|bint|al|dos|das"
    r"|\"[^\"\n]{1,24}\"|\u201c[^\u201d\n]{1,24}\u201d|\([^)\n]{1,24}\))[ \t]+)*"
)

# A finding this sure covers what lies inside it, whatever those inner scores.
_SURE = 0.7


class PiiGuard:
    """Finds PII in text and redacts it; build with ``PiiGuard.build(settings)``."""

    def __init__(
        self,
        recognizers: Sequence[Recognizer],
        settings: GuardSettings,
        model: str,
        chunking: tuple[int, int] = (CHUNK_SIZE, CHUNK_OVERLAP),
    ) -> None:
        self._recognizers = tuple(recognizers)
        self._entities = list(settings.entities)
        self.settings = settings
        self.model = model
        self.chunking = chunking
        # what a name found may be carried as, judged once per process, not once per scan
        gazetteer = load_gazetteer()
        self._carried_words = (_carried_word(gazetteer), _everyday(gazetteer))
        self._given_names = gazetteer.first

    def __repr__(self) -> str:
        return f"PiiGuard(model={self.model!r})"

    @property
    def recognizers(self) -> tuple[str, ...]:
        """The names of the recognizers in use (the statistical NER shows as SpacyRecognizer)."""
        return tuple(r.name for r in self._recognizers)

    @classmethod
    def build(
        cls,
        settings: GuardSettings | None = None,
        chunking: tuple[int, int] = (CHUNK_SIZE, CHUNK_OVERLAP),
    ) -> PiiGuard:
        """Build the engine once per process; ``PiiEngineError`` when it cannot be built.

        ``chunking``: characters a piece of a long text owns, and how many more it
        reads on each side (``pii_guard.chunks``).
        """
        settings = settings or GuardSettings()
        # Presidio logs surrounding words at DEBUG: at the daemon's DEBUG that would be PII.
        logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)
        recognizers = _recognizers()
        if settings.spacy_model is not None:
            recognizers.extend(_statistical(settings.spacy_model))
        model = settings.spacy_model or OFFLINE_MODEL
        guard = cls(recognizers, settings, model, chunking)
        log.info("PII guard ready (NLP: %s)", model)
        return guard

    def budget(self) -> ScanBudget:
        """A new budget for one message, as the settings say, starting now."""
        return ScanBudget(self.settings.scan_budget_seconds)

    def scan(self, text: str, allow: AllowList = NO_ALLOW) -> list[Finding]:
        """The findings in ``text`` at or above their redact threshold, in text order."""
        return self.scan_within(text, UNLIMITED, allow).findings

    def scan_within(self, text: str, budget: ScanBudget, allow: AllowList = NO_ALLOW) -> Scanned:
        """``scan``, stopping between pieces once ``budget`` is spent.

        A long text is scanned in overlapping pieces: memory stays bounded by
        the piece, not the text, and values across a border are still found.
        The result says how far the text was read: every finding that starts
        before that point is there, nothing after it was looked at.
        """
        if not text.strip():
            return Scanned([], len(text), len(text))
        allowance = Allowance(allow, self.settings.allow_terms)
        findings: list[Finding] = []
        for chunk in chunks(len(text), *self.chunking):
            if budget.spent():
                return Scanned(_in_order(findings), chunk.own_start, len(text))
            piece = text[chunk.start : chunk.end]
            found = allowance.filter(piece, self._over_threshold(piece))
            found = _drop_contained(found + allowance.filter(piece, self._carried(piece, found)))
            found = _joined_names(piece, found, self._given_names, self._carried_words[0])
            findings += [_moved(f, chunk.start) for f in found if chunk.owns(f.start + chunk.start)]
        return Scanned(_in_order(findings), len(text), len(text))

    def _over_threshold(self, text: str) -> list[Finding]:
        redact_at = self.settings.redact_at
        return [f for f in self._analyze(text) if f.score >= redact_at(f.entity_type)]

    def _carried(self, text: str, found: list[Finding]) -> list[Finding]:
        """The other occurrences of the names found (``pii_guard.propagate``)."""
        if PERSON not in self._entities:
            return []
        return [
            f
            for f in same_names(text, found, *self._carried_words)
            if f.score >= self.settings.redact_at(f.entity_type)
        ]

    def redact(self, text: str, findings: Sequence[Finding]) -> str:
        """``text`` with each finding replaced by ``[REDACTED:TYPE]``."""
        return redact_text(text, findings)

    def _analyze(self, text: str) -> list[Finding]:
        # Presidio's AnalyzerEngine would add lemma context, duplicate removal and
        # an allow-list pass (about 1 ms a message); ours judge context per rule and
        # the guard resolves overlaps and allowed identifiers itself.
        found = [
            finding
            for recognizer in self._recognizers
            for finding in recognizer.analyze(text, self._entities)
        ]
        # a pasted table is read cell by cell: no finding may swallow a row's Person ID
        return settle_tables(text, found)


def _recognizers() -> list[Recognizer]:
    gazetteer = load_gazetteer()
    lexicon = Lexicon.of(gazetteer)
    return [
        RuleRecognizer("IdentifierRecognizer", NUMBER_RULES),
        RuleRecognizer("ContactRecognizer", CONTACT_RULES),
        RuleRecognizer("AddressRecognizer", ADDRESS_RULES),
        PostalRecognizer(gazetteer.never),
        DateOfBirthRecognizer(),
        TableRecognizer(),
        LabelledFieldRecognizer(gazetteer),
        SpelledNumberRecognizer(),
        NameRecognizer(gazetteer, _english(lexicon), _very_common(lexicon)),
        TaggerRecognizer(TaggerModel.load(), lexicon),
    ]


def _very_common(lexicon: Lexicon) -> Callable[[str], bool]:
    """Whether a lower-cased word is among English's commonest (wordfreq's Zipf 5 and up)."""
    return lambda word: lexicon.vocabulary.get(word) == "V"


def _english(lexicon: Lexicon) -> Callable[[str], bool]:
    """Whether a lower-cased word is in the tagger's English word list (wordfreq's)."""
    return lambda word: bool(lexicon.vocabulary.get(word))


def _carried_word(gazetteer: Gazetteer) -> Callable[[str], bool]:
    spanish = gazetteer.spanish_stop_words
    return lambda word: not gazetteer.is_never(word) and word not in spanish


def _everyday(gazetteer: Gazetteer) -> Callable[[str], bool]:
    return lambda word: word in gazetteer.common or word in _MONTHS


def _statistical(model: str) -> list[Recognizer]:
    """The configured spaCy model's NER; imported here so the offline guard never loads spaCy."""
    from pii_guard.nlp import load_spacy_ner  # 1.5-2 s of imports

    ner = load_spacy_ner(model)
    return [] if ner is None else [ner]


def _in_order(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.start, f.end))


def _moved(finding: Finding, offset: int) -> Finding:
    if not offset:
        return finding
    return Finding(finding.entity_type, finding.start + offset, finding.end + offset, finding.score)


def _joined_names(
    text: str,
    findings: list[Finding],
    given: Collection[str] = frozenset(),
    name_word: Callable[[str], bool] = lambda word: False,
) -> list[Finding]:
    """Parts of one name found apart become one finding with what stands between them
    (blanks, an initial, a particle, a nickname in quotes): "Cheikh Ndiaye", "Yokasta M.
    Pimentel", "Maria de la Luz".  Redacted apart, the pieces between would be left.  A
    name takes the ``given`` name right before it that no recognizer would take alone,
    being also a word ("Will Whitman", "Grant Hunter"), and, written surname first at
    the head of a line or a cell, the other half of it ("PORTILLO AYALA, KEVIN J.",
    "Grant, Major D."): words ``name_word`` accepts."""
    ordered = sorted(findings, key=lambda f: (f.start, f.end))
    joined: list[Finding] = []
    for finding in ordered:
        if finding.entity_type == PERSON:  # with the initial or "Jr." that closes it
            start = _given_start(text, finding.start, given)
            start, end = _surname_first(text, start, past_initial(text, finding.end), name_word)
            finding = Finding(PERSON, start, past_initial(text, end), finding.score)
        last = joined[-1] if joined else None
        if (
            last is not None
            and last.entity_type == finding.entity_type == PERSON
            and last.end <= finding.start
            and _NAME_GAP.fullmatch(text, last.end, finding.start)
        ):
            joined[-1] = Finding(PERSON, last.start, finding.end, max(last.score, finding.score))
        else:
            joined.append(finding)
    return joined


def _surname_first(
    text: str, start: int, end: int, name_word: Callable[[str], bool]
) -> tuple[int, int]:
    """A name's span with the surname before it or the given names after it, across the
    comma of a "Surname, Given" at the head of a line or a cell."""
    before = _SURNAME_BEFORE.search(text, max(0, start - _SURNAME_REACH), start)
    if before and _names_only(before.group("words"), name_word):
        return before.start("words"), end
    after = _GIVEN_AFTER.match(text, end)
    at_head = _HEAD_BEFORE.search(text, max(0, start - _SURNAME_REACH), start) is not None
    if after and at_head and _names_only(after.group("words"), name_word):
        return start, after.end("words")
    return start, end


def _names_only(words: str, name_word: Callable[[str], bool]) -> bool:
    return all(name_word(word.lower()) for word in re.findall(r"[^\W\d_]+", words))


def _given_start(text: str, start: int, given: Collection[str]) -> int:
    before = _GIVEN_BEFORE.search(text, max(0, start - _GIVEN_REACH), start)
    return before.start() if before and before.group(1).lower() in given else start


def _drop_contained(findings: Iterable[Finding]) -> list[Finding]:
    """Drop a finding inside a sure or surer one; partial overlaps stay (redaction merges).

    Longest first, so every finding that could hold one is judged before it.  Only
    kept findings that start at most ``longest`` characters before a finding can
    hold it: looking at those alone keeps a text made of thousands of findings
    ("Maria" on every line) from costing a comparison of each with each.
    """
    ordered = sorted(findings, key=lambda f: (f.start - f.end, -f.score))
    kept: list[Finding] = []  # by start
    starts: list[int] = []  # their starts, searched without a key function per step
    longest = 0
    for finding in ordered:
        low = bisect_left(starts, finding.start - longest)
        high = bisect_right(starts, finding.start)
        if not any(_shelters(k, finding) for k in kept[low:high]):
            kept.insert(high, finding)  # after those that start where it does
            starts.insert(high, finding.start)
            longest = max(longest, finding.end - finding.start)
    return kept


def _shelters(outer: Finding, inner: Finding) -> bool:
    inside = outer.start <= inner.start and inner.end <= outer.end
    return inside and (outer.score >= inner.score or outer.score >= _SURE)
