"""Train the name and address tagger: ``python -m pii_guard.training``.

    .venv/bin/python -m pii_guard.training [--examples 30000] [--epochs 6] [--seed 7]
                                           [--out pii_guard/tagger/model.tsv.gz]

Generates labelled examples from ``templates.txt`` (``generate.py``), trains
the averaged perceptron on them and writes the weights the guard loads.  A
share of the gazetteer's names is hidden from the lexical features during
training, so that the tagger learns to find names that no list knows from
their shape and context.  The same arguments and Faker version give the same
file, byte for byte.  Prints recall and precision per label on examples
generated apart from the training ones.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from pii_guard.recognizers.gazetteer import load_gazetteer
from pii_guard.tagger.features import Lexicon, token_texts
from pii_guard.tagger.model import MODEL_PATH, TaggerModel, spans
from pii_guard.training.generate import TEMPLATES, Example, Generator, load_templates
from pii_guard.training.perceptron import save, train


def _hidden(lexicon: Lexicon, share: float, seed: int) -> Lexicon:
    """``lexicon`` without a random ``share`` of its given names and surnames."""
    rng = random.Random(seed)
    first = frozenset(w for w in sorted(lexicon.first) if rng.random() >= share)
    last = frozenset(w for w in sorted(lexicon.last) if rng.random() >= share)
    return lexicon.hiding(first, last)


def _evaluate(model: TaggerModel, examples: Sequence[Example], lexicon: Lexicon) -> str:
    gold: Counter[str] = Counter()
    hit: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    for example in examples:
        texts, offsets = token_texts(example.text)
        found = set(spans(texts, offsets, model.tag(texts, lexicon)))
        masked = {(k, i) for k, s, e in found for i in range(s, e)}
        for kind, start, end in example.spans:
            gold[kind] += 1
            hit[kind] += all(
                (kind, i) in masked or example.text[i].isspace() for i in range(start, end)
            )
        for kind, start, end in found:
            predicted[kind] += 1
            hit["p" + kind] += any(k == kind and s < end and start < e for k, s, e in example.spans)
    return ", ".join(
        f"{kind}: recall {hit[kind] / max(gold[kind], 1):.3f} of {gold[kind]}, "
        f"precision {hit['p' + kind] / max(predicted[kind], 1):.3f} of {predicted[kind]}"
        for kind in sorted(gold)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the PII guard's name and address tagger")
    parser.add_argument("--examples", type=int, default=30000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hide", type=float, default=0.3, help="share of names hidden")
    parser.add_argument("--out", default=str(MODEL_PATH))
    parser.add_argument("--check", type=int, default=2000, help="held-out examples scored")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    lexicon = Lexicon.of(load_gazetteer())
    templates = load_templates()
    examples = list(Generator(templates, args.seed).examples(args.examples))
    model = train(examples, _hidden(lexicon, args.hide, args.seed), args.epochs, args.seed)
    meta = {
        "examples": args.examples,
        "epochs": args.epochs,
        "seed": args.seed,
        "hide": args.hide,
        "templates": len(templates),
        "templates_sha256": hashlib.sha256(TEMPLATES.read_bytes()).hexdigest(),
        "faker": version("faker"),
    }
    weights = model.averaged()
    save(weights, meta, Path(args.out))
    held_out = list(Generator(templates, args.seed + 1000).examples(args.check))
    final = TaggerModel(weights.items(), meta)
    print(
        f"trained on {args.examples} examples in {time.perf_counter() - started:.0f} s; "
        f"{len(weights)} features -> {args.out}"
    )
    print("held-out synthetic:", _evaluate(final, held_out, lexicon))
    return 0


if __name__ == "__main__":
    sys.exit(main())
