"""Training the tagger: the averaged perceptron's updates, averaging and saving."""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from pii_guard.tagger.features import LABELS, Lexicon, View, all_features, token_texts
from pii_guard.tagger.model import decode
from pii_guard.training.generate import Example, token_labels

__all__ = ["AveragedPerceptron", "train"]


class AveragedPerceptron:
    """Weights plus the running totals that averaging needs (lazy updates by timestamp)."""

    def __init__(self) -> None:
        n = len(LABELS)
        self.weights: dict[str, list[float]] = defaultdict(lambda: [0.0] * n)
        self._totals: dict[str, list[float]] = defaultdict(lambda: [0.0] * n)
        self._stamps: dict[str, list[int]] = defaultdict(lambda: [0] * n)
        self.seen: dict[str, int] = defaultdict(int)
        self.step = 0
        self._features: list[str] = []

    def scores(
        self, padded: Sequence[View], i: int, case: str, prev: int, prev2: int
    ) -> list[float]:
        """Scores from every feature of the token, remembered for ``learn``."""
        self._features = all_features(padded, i, case, LABELS[prev], LABELS[prev2])
        return self.score(self._features)

    def score(self, features: list[str]) -> list[float]:
        scores = [0.0] * len(LABELS)
        weights = self.weights
        for feature in features:
            w = weights.get(feature)
            if w is not None:
                for label, value in enumerate(w):
                    scores[label] += value
        return scores

    def learn(self, truth: int, guess: int) -> None:
        for feature in self._features:
            self.seen[feature] += 1
            weights = self.weights[feature]
            for label, delta in ((truth, 1.0), (guess, -1.0)):
                self._totals[feature][label] += (self.step - self._stamps[feature][label]) * (
                    weights[label]
                )
                self._stamps[feature][label] = self.step
                weights[label] += delta

    def averaged(self, min_weight: float = 0.02, min_seen: int = 5) -> dict[str, list[float]]:
        """The averaged weights, without features too rare or too light to matter.

        A feature the training corrected fewer than five times is mostly one word
        of one example: dropping those keeps the recall and two thirds of the memory.
        """
        out: dict[str, list[float]] = {}
        step = max(self.step, 1)
        for feature, weights in self.weights.items():
            if self.seen[feature] < min_seen:
                continue
            averaged = [
                (self._totals[feature][i] + (step - self._stamps[feature][i]) * w) / step
                for i, w in enumerate(weights)
            ]
            if max(abs(a) for a in averaged) >= min_weight:
                out[feature] = [round(a, 3) for a in averaged]
        return out


def train(
    examples: Sequence[Example], lexicon: Lexicon, epochs: int, seed: int
) -> AveragedPerceptron:
    """Greedy decoding with the model's own previous labels; a mistake updates the weights."""
    model = AveragedPerceptron()
    prepared = []
    for example in examples:
        texts, offsets = token_texts(example.text)
        prepared.append((texts, token_labels(offsets, example.spans)))
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(prepared)
        for texts, gold in prepared:
            model.step += 1
            decode(texts, lexicon, model, model.learn, gold)
    return model


def save(weights: dict[str, list[float]], meta: dict[str, object], path: Path) -> None:
    lines = ["\t".join(("#labels", *LABELS)), "#meta\t" + json.dumps(meta, sort_keys=True)]
    lines += [
        "\t".join((json.dumps(f, ensure_ascii=False), *map(repr, w)))
        for f, w in sorted(weights.items())
    ]
    text = "\n".join(lines) + "\n"
    # No name and mtime=0 in the gzip header: the same training gives the same bytes.
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as handle:
        handle.write(text.encode("utf-8"))
    partial.replace(path)  # a reader never sees half a file
