"""A greedy averaged-perceptron tagger: labels tokens ``O``, ``PER`` or ``ADDR``.

Why a perceptron and not a neural NER: a spaCy CNN costs several
milliseconds per 2 KB message on these two cores (the guard's whole budget is
5 ms) and its weights are several megabytes; a linear model over sparse
string features scores a candidate token in a few microseconds, trains from
the repository's own script in about a minute and ships as a file of well
under 2 MB.  Left-to-right decoding with the two previous labels as features
is the classic greedy tagger (Collins 2002; NLTK's and spaCy 1's taggers).

The weights file is written by ``python -m pii_guard.training`` and read
once per process.
"""

from __future__ import annotations

import gzip
import json
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from pii_guard.errors import PiiEngineError
from pii_guard.tagger.features import (
    HOUSE_NUMBER_SHAPES,
    LABELS,
    PLACES,
    Lexicon,
    View,
    candidates,
    casing,
    everyday,
    label_features,
    pair_features,
    unit_features,
    views,
)

__all__ = ["MODEL_PATH", "Scorer", "TaggerModel", "decode", "spans"]

MODEL_PATH = Path(__file__).with_name("model.tsv.gz")
_UNITS_MAX = 20_000  # cached per-word sums (a few MB)
_GAP = 4  # tokens of punctuation between two runs of one entity

# Trims a tagged run: an entity does not start or end on a line break or a comma.
_EDGE_PUNCT = frozenset("\n,;:-'\"()")


class Scorer(Protocol):
    def scores(
        self, padded: Sequence[View], i: int, case: str, prev: int, prev2: int
    ) -> list[float]:
        """One score per label for token ``i`` (at ``padded[i + 2]``), from the tokens
        ``i - 2 .. i + 2`` (``padded[i : i + 5]``) and the two labels before it only."""
        ...


# A window of five tokens and the two labels before it: all that a label depends on.
_Window = tuple[str, str, str, str, str, int, int]


def decode(
    texts: Sequence[str],
    lexicon: Lexicon,
    scorer: Scorer,
    learn: Callable[[int, int], None] | None = None,
    gold: Sequence[int] | None = None,
) -> list[int]:
    """Label the tokens left to right; in training, ``learn(truth, guess)`` hears each mistake.

    Outside training the weights stay put, so a window met again in the same text
    (a line said twice, a list of addresses, text built to be slow) is labelled once:
    the same window gives the same scores, so the labels are those of scoring each.
    """
    labels: list[int] = []
    prev = prev2 = 0
    padded = views(texts, lexicon)
    case = casing("".join(texts))
    labelled: dict[_Window, int] = {}
    for i, candidate in enumerate(candidates(padded, case)):
        if not candidate and prev == 0:
            guess = 0
        elif learn is None:
            guess = _remembered_label(scorer, padded, i, case, (prev, prev2), labelled)
        else:
            guess = _best(scorer.scores(padded, i, case, prev, prev2))
            if gold is not None and guess != gold[i]:
                learn(gold[i], guess)
        labels.append(guess)
        prev2, prev = prev, guess
    return labels


def _remembered_label(
    scorer: Scorer,
    padded: Sequence[View],
    i: int,
    case: str,
    before: tuple[int, int],
    labelled: dict[_Window, int],
) -> int:
    """The best label of token ``i``, scored only the first time its window is met."""
    p2, p1, view, n1, n2 = padded[i : i + 5]
    prev, prev2 = before
    window = (p2.key, p1.key, view.key, n1.key, n2.key, prev, prev2)
    label = labelled.get(window)
    if label is None:
        label = labelled[window] = _best(scorer.scores(padded, i, case, prev, prev2))
    return label


def _best(scores: list[float]) -> int:
    """The label with the highest score; the first of equal ones (``O`` before a name)."""
    return max(range(len(LABELS)), key=scores.__getitem__)


def spans(
    texts: Sequence[str], offsets: Sequence[tuple[int, int]], labels: Sequence[int]
) -> Iterator[tuple[str, int, int]]:
    """``(label, start, end)`` for each run of one label, trimmed of edge punctuation.

    Runs of one label with only punctuation and line breaks between them are one
    entity: the lines of an address block with their quote marks or bullets.
    """
    runs: list[tuple[int, int, int]] = []  # label, first word, last word
    for i, label in enumerate(labels):
        if not label or texts[i] in _EDGE_PUNCT:
            continue
        run_end = runs[-1][2] if runs and runs[-1][0] == label else -1
        # (the token right after the run: no need to look between them)
        if run_end >= 0 and (i == run_end + 1 or _only_punctuation(texts, labels, run_end, i)):
            runs[-1] = (label, runs[-1][1], i)
        else:
            runs.append((label, i, i))
    for label, first, last in runs:
        yield LABELS[label], offsets[first][0], offsets[last][1]


def _only_punctuation(texts: Sequence[str], labels: Sequence[int], last: int, i: int) -> bool:
    if i == last + 2:  # one token between, the usual case: as below, without the ranges
        return bool(labels[last + 1]) or not texts[last + 1][0].isalnum()
    between = range(last + 1, i)
    if all(labels[k] for k in between):
        return True
    return len(between) <= _GAP and all(not texts[k][0].isalnum() for k in between)


class TaggerModel:
    """Trained weights: feature -> one weight per label.

    Features of a word alone (``unit_features``) are summed once per word and
    place and cached, so scoring a token looks up about a dozen features
    instead of thirty; the sums are exactly those of ``all_features``.  The
    weights sit in one flat array beside a feature -> offset index: a few
    megabytes less than a list per feature, in every process.
    """

    def __init__(
        self, weights: Iterable[tuple[str, Sequence[float]]], meta: dict[str, object]
    ) -> None:
        self.meta = meta
        self._index: dict[str, int] = {}
        self._values = array("d")
        for feature, values in weights:
            self._index[feature] = len(self._values)
            self._values.extend(values)
        self._units: dict[tuple[str, int], tuple[float, float, float]] = {}

    def __len__(self) -> int:
        return len(self._index)

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> TaggerModel:
        """Read ``#labels``, ``#meta`` (JSON) and one line of weights per feature."""
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                labels = handle.readline().rstrip("\n").split("\t")
                meta = json.loads(handle.readline().partition("\t")[2])
                if labels != ["#labels", *LABELS]:
                    raise PiiEngineError(f"{path} was trained for other labels: {labels[1:]}")
                return cls(_weight_lines(handle), meta)
        except (OSError, ValueError, EOFError) as exc:
            raise PiiEngineError(
                f"the name and address tagger's weights cannot be read from {path}: "
                f"{type(exc).__name__}; rebuild them with: python -m pii_guard.training"
            ) from exc

    def scores(
        self, padded: Sequence[View], i: int, case: str, prev: int, prev2: int
    ) -> list[float]:
        features = pair_features(padded, i, case)
        features += label_features(LABELS[prev], LABELS[prev2], padded[i + 2].shape)
        o, per, addr = self._sum(features)
        for place in PLACES:
            uo, uper, uaddr = self._unit(padded[i + 2 + place], place)
            o += uo
            per += uper
            addr += uaddr
        return [o, per, addr]

    def _unit(self, view: View, place: int) -> tuple[float, float, float]:
        key = (view.key, place)
        found = self._units.get(key)
        if found is None:
            if len(self._units) > _UNITS_MAX:
                self._units.clear()
            found = self._units[key] = self._sum(unit_features(view, place))
        return found

    def _sum(self, features: list[str]) -> tuple[float, float, float]:
        o = per = addr = 0.0
        index, values = self._index, self._values
        for feature in features:
            at = index.get(feature)
            if at is not None:
                o += values[at]
                per += values[at + 1]
                addr += values[at + 2]
        return o, per, addr

    def tag(self, texts: Sequence[str], lexicon: Lexicon) -> list[int]:
        labels = decode(texts, lexicon, self)
        return _listed_names(texts, _house_numbers(texts, labels, lexicon), lexicon)


def _weight_lines(lines: Iterable[str]) -> Iterator[tuple[str, list[float]]]:
    """``"feature"<TAB>w<TAB>w<TAB>w``: the feature as a JSON string (it may hold a line break)."""
    for line in lines:
        feature, *values = line.rstrip("\n").split("\t")
        if len(values) != len(LABELS):
            raise ValueError(f"a weights line has {len(values)} values")
        yield json.loads(feature), [float(v) for v in values]


_PER = LABELS.index("PER")
_ADDR = LABELS.index("ADDR")
_LIST_GLUE = frozenset((",", "and", "or", "&", "y", "e", "und", "et"))


def _listed_names(texts: Sequence[str], labels: list[int], lexicon: Lexicon) -> list[int]:
    """A capitalised word beside a name or listed with one is a name too.

    Left to right, the tagger labels the first of a pair before it sees the
    second ("Usamov and Bowers"), and a long unknown surname after a given
    name sometimes falls out ("Tlacuilo Xochiquetzal next week").  A
    capitalised word that no list calls an everyday, function or street
    word joins a name right after it, or across a comma or a conjunction in
    either direction.
    """
    count = len(labels)
    _join_names(texts, labels, lexicon, range(count - 1), 1)  # the next word
    _join_names(texts, labels, lexicon, range(count - 2), 2)  # after a comma or "and"
    _join_names(texts, labels, lexicon, range(count - 1, 1, -1), -2)  # before one
    return labels


def _join_names(
    texts: Sequence[str], labels: list[int], lexicon: Lexicon, names: range, step: int
) -> None:
    """Label ``PER`` each token ``step`` after a name (in the order of ``names``) that is
    listed with it; a token so labelled is a name for the tokens after it."""
    for name in names:
        other = name + step
        # (the labels first: most tokens are no name, and this runs three times a token)
        if labels[name] == _PER and not labels[other] and _listed(texts, name, other, lexicon):
            labels[other] = _PER


def _listed(texts: Sequence[str], name: int, other: int, lexicon: Lexicon) -> bool:
    """Whether token ``other``, beside name ``name`` or across a glue word, is a name too."""
    if abs(other - name) == 2 and texts[(name + other) // 2].lower() not in _LIST_GLUE:
        return False
    view = lexicon.view(texts[other])
    if view.shape not in ("Xx", "XX") or everyday(view.classes):
        return False
    return not any(c in view.classes for c in "cnsu")


_NUMBER_GLUE = frozenset(",.")


def _house_numbers(texts: Sequence[str], labels: list[int], lexicon: Lexicon) -> list[int]:
    """An address run takes the house number and unit word just before it.

    Left to right, the tagger meets "990" before it sees "Brandon Entrance"
    and often leaves the number out; a number, a unit word ("Apt", "Unit")
    or a comma or dot between them joins the address that follows.
    """
    for i in range(len(labels) - 1, 0, -1):
        if labels[i] != _ADDR or labels[i - 1] == _ADDR:
            continue
        k = i - 1
        while k >= 0 and i - k <= 4 and _joins(texts[k], lexicon):
            k -= 1
        for j in range(k + 1, i):
            labels[j] = _ADDR
    return labels


def _joins(text: str, lexicon: Lexicon) -> bool:
    if text in _NUMBER_GLUE:
        return True
    view = lexicon.view(text)
    return view.shape in HOUSE_NUMBER_SHAPES or "u" in view.classes
