"""The NLP side of Presidio: an installed spaCy model when configured, else none at all.

Presidio's default engine downloads ``en_core_web_lg`` on first use; a mail
daemon must not reach the network, so the engine is built here and handed to
Presidio already loaded.  Without a model the project's offline recognizers
work on the raw text and need no tokens: running even a blank spaCy tokenizer
and Presidio's per-token artifacts costs more than all the patterns together
(about 2.5 ms of a 2 KB message), so the offline engine returns empty
artifacts.  Our recognizers judge context themselves, so Presidio's lemma
based context enhancer has nothing to do either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import spacy
from presidio_analyzer.nlp_engine import (
    NerModelConfiguration,
    NlpArtifacts,
    NlpEngine,
    SpacyNlpEngine,
)
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

from pii_guard.errors import PiiEngineError

__all__ = ["OFFLINE_MODEL", "OfflineNlpEngine", "build_nlp_engine"]

OFFLINE_MODEL = "offline (patterns and name lists, no spaCy model)"

# Only people come from a statistical NER; patterns serve everything else better.
_IGNORED_LABELS = [
    "CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP",
    "ORDINAL", "ORG", "PERCENT", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART",
]  # fmt: skip


def build_nlp_engine(model: str | None) -> tuple[NlpEngine, bool]:
    """The engine for ``model`` (None: offline) and whether it brings a PERSON NER."""
    if model is None:
        return OfflineNlpEngine(), False
    nlp = _load_spacy(model)
    return _LoadedSpacyEngine(nlp, model), "ner" in nlp.pipe_names


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


class OfflineNlpEngine(NlpEngine):
    """No linguistic processing: every recognizer of the offline pipeline reads raw text."""

    def __init__(self) -> None:
        self._vocab = Vocab()
        self._artifacts = self._empty("en")  # nothing reads them: one shared empty set

    def load(self) -> None:
        """Nothing to load."""

    def is_loaded(self) -> bool:
        return True

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        return self._artifacts

    def process_batch(
        self,
        texts: Iterable[str],
        language: str,
        batch_size: int = 1,
        n_process: int = 1,
        **kwargs: Any,
    ) -> Iterator[tuple[str, NlpArtifacts]]:
        for text in texts:
            yield str(text), self._artifacts

    def is_stopword(self, word: str, language: str) -> bool:
        return False

    def is_punct(self, word: str, language: str) -> bool:
        return False

    def get_supported_entities(self) -> list[str]:
        return []

    def get_supported_languages(self) -> list[str]:
        return ["en"]

    def _empty(self, language: str) -> NlpArtifacts:
        return NlpArtifacts(
            entities=[],
            tokens=Doc(self._vocab, words=[]),
            tokens_indices=[],
            lemmas=[],
            nlp_engine=self,
            language=language,
        )
