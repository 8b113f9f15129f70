"""``PiiGuard``: Presidio recognizers and NLP engine, built once per process, and the allow rules.

Building is the slow part (spaCy, the name lists: about a second), scanning
the fast one (a few milliseconds per message), so the daemon builds once and
shares the guard.  Presidio holds no per-call state in our set-up, so one
guard may serve several threads; processes, not threads, add speed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

from pii_guard.allow import Allowance
from pii_guard.entities import PERSON
from pii_guard.findings import NO_ALLOW, AllowList, Finding
from pii_guard.nlp import OFFLINE_MODEL, build_nlp_engine
from pii_guard.recognizers.address import ADDRESS_RULES
from pii_guard.recognizers.base import RuleRecognizer
from pii_guard.recognizers.contact import CONTACT_RULES
from pii_guard.recognizers.dates import DateOfBirthRecognizer
from pii_guard.recognizers.gazetteer import load_gazetteer
from pii_guard.recognizers.names import NameRecognizer
from pii_guard.recognizers.numbers import NUMBER_RULES
from pii_guard.redaction import redact_text
from pii_guard.settings import GuardSettings

__all__ = ["PiiGuard"]

log = logging.getLogger(__name__)

# A finding this sure covers what lies inside it, whatever those inner scores.
_SURE = 0.7


class PiiGuard:
    """Finds PII in text and redacts it; build with ``PiiGuard.build(settings)``."""

    def __init__(
        self,
        nlp_engine: NlpEngine,
        recognizers: Sequence[EntityRecognizer],
        settings: GuardSettings,
        model: str,
    ) -> None:
        self._nlp_engine = nlp_engine
        self._recognizers = tuple(recognizers)
        self._entities = list(settings.entities)
        self.settings = settings
        self.model = model

    def __repr__(self) -> str:
        return f"PiiGuard(model={self.model!r})"

    @property
    def recognizers(self) -> tuple[str, ...]:
        """The names of the recognizers in use (the statistical NER shows as SpacyRecognizer)."""
        return tuple(str(getattr(r, "name", type(r).__name__)) for r in self._recognizers)

    @classmethod
    def build(cls, settings: GuardSettings | None = None) -> PiiGuard:
        """Build the engine once per process; ``PiiEngineError`` when it cannot be built."""
        settings = settings or GuardSettings()
        # Presidio logs surrounding words at DEBUG: at the daemon's DEBUG that would be PII.
        logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)
        nlp_engine, with_ner = build_nlp_engine(settings.spacy_model)
        model = settings.spacy_model or OFFLINE_MODEL
        guard = cls(nlp_engine, _recognizers(with_ner=with_ner), settings, model)
        log.info("PII guard ready (NLP: %s)", model)
        return guard

    def scan(self, text: str, allow: AllowList = NO_ALLOW) -> list[Finding]:
        """The findings in ``text`` at or above their redact threshold, in text order."""
        if not text.strip():
            return []
        redact_at = self.settings.redact_at
        findings = [_finding(r) for r in self._analyze(text) if r.score >= redact_at(r.entity_type)]
        allowed = Allowance(allow, self.settings.allow_terms).filter(text, findings)
        return sorted(_drop_contained(allowed), key=lambda f: (f.start, f.end))

    def redact(self, text: str, findings: Sequence[Finding]) -> str:
        """``text`` with each finding replaced by ``[REDACTED:TYPE]``."""
        return redact_text(text, findings)

    def _analyze(self, text: str) -> list[RecognizerResult]:
        # Presidio's AnalyzerEngine would add lemma context, duplicate removal and
        # an allow-list pass (about 1 ms a message); ours judge context per rule and
        # the guard resolves overlaps and allowed identifiers itself.
        artifacts = self._nlp_engine.process_text(text, "en")
        return [
            result
            for recognizer in self._recognizers
            for result in recognizer.analyze(text, self._entities, artifacts)
        ]


def _recognizers(*, with_ner: bool) -> list[EntityRecognizer]:
    recognizers: list[EntityRecognizer] = [
        RuleRecognizer("IdentifierRecognizer", NUMBER_RULES),
        RuleRecognizer("ContactRecognizer", CONTACT_RULES),
        RuleRecognizer("AddressRecognizer", ADDRESS_RULES),
        DateOfBirthRecognizer(),
        NameRecognizer(load_gazetteer()),
    ]
    if with_ner:
        recognizers.append(SpacyRecognizer(supported_entities=[PERSON]))
    return recognizers


def _finding(result: RecognizerResult) -> Finding:
    return Finding(str(result.entity_type), int(result.start), int(result.end), float(result.score))


def _drop_contained(findings: Iterable[Finding]) -> list[Finding]:
    """Drop a finding inside a sure or surer one; partial overlaps stay (redaction merges)."""
    ordered = sorted(findings, key=lambda f: (f.start - f.end, -f.score))
    kept: list[Finding] = []
    for finding in ordered:
        if not any(_shelters(k, finding) for k in kept):
            kept.append(finding)
    return kept


def _shelters(outer: Finding, inner: Finding) -> bool:
    inside = outer.start <= inner.start and inner.end <= outer.end
    return inside and (outer.score >= inner.score or outer.score >= _SURE)
