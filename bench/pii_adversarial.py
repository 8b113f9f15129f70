"""The PII guard's cost on text built to be slow, against its cost on ordinary mail.

    .venv/bin/python bench/pii_adversarial.py [--shared ../shared] [--search 1500] [--seed 11]

Issue 21 asks for the cost per KB of adversarial text to stay within 5x of
ordinary mail.  *Ordinary*: the producer mail of ``pii/dev.jsonl`` and the
reply bodies of the corpus, joined and cut into 2 KB pieces.  *Adversarial*:
2 KB and 32 KB (one whole scan piece) of a short unit repeated — the kinds the
issue measured ("1 ", "12 Main Street", "Apt 1"), the ones earlier searches
found (a line of dashes, "A'A'A", a name on every line, a short name before
every number) — and then a seeded random search over units of one to four
tokens, so that what is measured is the worst the search can find rather than
only what we thought of.  Prints milliseconds of processor time (this
thread's: other load on the machine does not count, as for the guard's own
budget) per 2 KB and the ratio to ordinary mail; values never.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pii_guard import PiiGuard

PIECE = 2048
KNOWN = (
    "1 ",
    "12 Main Street ",
    "Apt 1 ",
    "1, ",
    "1\t",
    "-\n",
    "'A",
    "Maria\n",
    "Jan, ",
    "İ 21201\n",
    "Via Roma 1 ",
    "USNS 2020, ",
    "0 St Via ",
    "Ed 0\t",  # a short given name before every number
    "123-45-6789 ",
    "a@b.co ",
    "a" * 999 + "@",  # long words where an address could end
)
# one readable string of tokens, split, rather than a hundred quoted ones
TOKENS = (
    *(  # noqa: SIM905
        "1 12 123 12345 Main Street St Apt Apt. Via Roma gate Maria Lopez the of de la , . - / #"
        " MD 21201 Box Unit DOB SSN born on at lives 01/02/2003 410 555-0100 ( ) : x Calle Rue"
        " katu FPO AA USNS Dr. Mr son wife ID member 0 A1 ' A' O'Neil Baltimore, ssn dob @ a@b"
        " x.y http://a 1- -1 1. Jan 2020 ext +1 00 tel Person ID: = < > &amp; María José İ ß"
    ).split(),
    "\n",
    "\n> ",
    "\t",
    "  ",
    "\u200b",
)


def _ordinary(shared: Path) -> list[str]:
    texts = [json.loads(line)["text"] for line in (shared / "pii" / "dev.jsonl").open()]
    corpus = shared / "corpus"
    for folder in ("email_reply_parser/test/emails", "email_reply_trimmer/test/emails"):
        texts += [p.read_text(errors="replace") for p in sorted((corpus / folder).glob("*.txt"))]
    joined = "\n\n".join(t for t in texts if len(t) < 50_000)
    return [joined[i : i + PIECE] for i in range(0, len(joined) - PIECE, PIECE)]


def _repeated(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _ms(guard: PiiGuard, text: str, rounds: int = 1) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.thread_time()
        guard.redact(text, guard.scan(text))
        best = min(best, time.thread_time() - start)
    return best * 1000


def _shown(unit: str) -> str:
    return repr(unit) if len(unit) <= 20 else repr(unit[:8] + "…" + unit[-8:])


def _random_units(seed: int, count: int) -> Iterable[str]:
    rng = random.Random(seed)
    for _ in range(count):
        joiner = rng.choice(("", " "))
        words = [rng.choice(TOKENS) for _ in range(rng.randint(1, 4))]
        yield joiner.join(words) + rng.choice((" ", "\n", ", ", "")) or " "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    shared = Path(__file__).resolve().parent.parent.parent / "shared"
    parser.add_argument("--shared", type=Path, default=shared)
    parser.add_argument("--search", type=int, default=1500, help="random units to try")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    guard = PiiGuard.build()
    guard.scan("warm up: 12 Main Street, Baltimore MD 21201")
    pieces = _ordinary(args.shared)
    ordinary = statistics.mean(_ms(guard, p, rounds=7) for p in pieces)
    print(f"ordinary mail: {ordinary:.1f} ms per 2 KB ({len(pieces)} pieces)")
    worst = 0.0
    print("known units:      ms/2KB  ratio   ms/2KB at 32 KB")
    for unit in KNOWN:
        small = _ms(guard, _repeated(unit, PIECE), rounds=7)
        large = _ms(guard, _repeated(unit, 16 * PIECE), rounds=2) / 16
        worst = max(worst, small, large)
        print(f"  {_shown(unit):22} {small:6.1f} {small / ordinary:6.1f}x {large:8.1f}")
    found = sorted(
        ((_ms(guard, _repeated(u, PIECE)), u) for u in _random_units(args.seed, args.search)),
        reverse=True,
    )[:5]
    print(f"random search ({args.search} units, seed {args.seed}), worst five, re-timed:")
    for _, unit in found:
        timed = _ms(guard, _repeated(unit, PIECE), rounds=7)
        worst = max(worst, timed)
        print(f"  {_shown(unit):22} {timed:6.1f} {timed / ordinary:6.1f}x")
    print(f"worst: {worst:.1f} ms per 2 KB = {worst / ordinary:.1f}x ordinary (target 5x)")


if __name__ == "__main__":
    main()
