"""The everyday-English word list behind the tagger's ``V``/``v``/``w`` word classes.

    .venv/bin/python -m pii_guard.training.vocabulary

"Grace Period", "Zoom" or "Teams" are capitalised like names; how common
the lower-cased word is in English says they are probably not.  The list
is cut from wordfreq (a well-kept package of word frequencies) into a
small file that ships with the guard, so the daemon neither depends on
wordfreq nor loads its tables: ``word<TAB>band`` per line, band ``V`` for a
Zipf frequency of 5 or more (about once per 100,000 words), ``v`` for 4,
``w`` for 3.  Common names are in it too ("john", "smith"): the model
weighs the band together with the name lists.
"""

from __future__ import annotations

import gzip
import sys

from pii_guard.tagger.features import VOCABULARY_PATH

WORDS = 40_000


def bands() -> list[tuple[str, str]]:
    from wordfreq import top_n_list, zipf_frequency

    out = []
    for word in top_n_list("en", WORDS):
        zipf = zipf_frequency(word, "en")
        if word.isalpha() and zipf >= 3.0:
            out.append((word, "V" if zipf >= 5 else "v" if zipf >= 4 else "w"))
    return sorted(out)


def main() -> int:
    text = "".join(f"{word}\t{band}\n" for word, band in bands())
    partial = VOCABULARY_PATH.with_name(VOCABULARY_PATH.name + ".partial")
    with partial.open("wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as handle:
        handle.write(text.encode("utf-8"))
    partial.replace(VOCABULARY_PATH)
    print(f"{text.count(chr(10))} words -> {VOCABULARY_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
