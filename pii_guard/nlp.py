"""The statistical side: an installed spaCy model's PERSON entities through Presidio.

Only used when ``[pii] spacy_model`` is set, and only then imported: importing
Presidio or spaCy costs 1.5-2 s of start-up, which the offline pipeline (our
recognizers over raw text) does not need.  Presidio's default engine
downloads ``en_core_web_lg`` on first use; a mail daemon must not reach the
network, so the model is loaded here (never downloaded) and handed to
Presidio's ``SpacyNlpEngine`` already loaded.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import spacy
from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer
from spacy.language import Language

from pii_guard.entities import PERSON
from pii_guard.errors import PiiEngineError
from pii_guard.findings import Finding

__all__ = ["SpacyNer", "load_spacy_ner"]

# Only people come from a statistical NER; patterns serve everything else better.
_IGNORED_LABELS = [
    "CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP",
    "ORDINAL", "ORG", "PERCENT", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART",
]  # fmt: skip


def load_spacy_ner(model: str) -> SpacyNer | None:
    """The NER recognizer of installed ``model``; None when the pipeline has no NER."""
    nlp = _load_spacy(model)
    if "ner" not in nlp.pipe_names:
        return None
    return SpacyNer(_LoadedSpacyEngine(nlp, model))


def _load_spacy(model: str) -> Language:
    if not (spacy.util.is_package(model) or Path(model).is_dir()):
        raise PiiEngineError(
            f"[pii] spacy_model {model!r} is not installed on this host; install it "
            "(docs/pii.md) or remove the key to use the offline pipeline"
        )
    try:
        return spacy.load(model)
    except (OSError, ValueError) as exc:
        raise PiiEngineError(f"[pii] spacy_model {model!r} cannot be loaded: {exc}") from exc


class _LoadedSpacyEngine(SpacyNlpEngine):
    """Presidio's spaCy engine around a pipeline already loaded: ``load`` never downloads."""

    def __init__(self, nlp: Language, name: str) -> None:
        super().__init__(
            models=[{"lang_code": "en", "model_name": name}],
            ner_model_configuration=NerModelConfiguration(labels_to_ignore=_IGNORED_LABELS),
        )
        self.nlp = {"en": nlp}  # type: ignore[assignment]  # the base declares None

    def load(self) -> None:
        """Loaded in ``__init__``."""


class SpacyNer:
    """Presidio's ``SpacyRecognizer`` over the model's entities, as one of our recognizers."""

    name = "SpacyRecognizer"

    def __init__(self, engine: SpacyNlpEngine) -> None:
        self._engine = engine
        self._recognizer = SpacyRecognizer(supported_entities=[PERSON])

    def analyze(self, text: str, entities: Collection[str]) -> list[Finding]:
        if PERSON not in entities:
            return []
        artifacts = self._engine.process_text(text, "en")
        return [
            Finding(str(r.entity_type), int(r.start), int(r.end), float(r.score))
            for r in self._recognizer.analyze(text, [PERSON], artifacts)
        ]
