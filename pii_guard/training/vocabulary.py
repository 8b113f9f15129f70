"""The everyday-English word list behind the tagger's ``V``/``v``/``w`` word classes, and
the everyday-Spanish word list the name rules read.

    .venv/bin/python -m pii_guard.training.vocabulary

"Grace Period", "Zoom" or "Teams" are capitalised like names; how common
the lower-cased word is in English says they are probably not.  The list
is cut from wordfreq (a well-kept package of word frequencies) into a
small file that ships with the guard, so the daemon neither depends on
wordfreq nor loads its tables: ``word<TAB>band`` per line, band ``V`` for a
Zipf frequency of 5 or more (about once per 100,000 words), ``v`` for 4,
``w`` for 3.  Common names are in it too ("john", "smith"): the model
weighs the band together with the name lists.

Spanish mail capitalises the first word of a subject or a line like a name
("Pago duplicado", "Agregar recién nacida"), and the model learnt English: the
Spanish words of Zipf 3.5 or more (about once per 300,000 words), a word a
line, tell the name rules such a word is an everyday one (names among them,
"rosa", "paz", stay names: the rules ask the name lists first).
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

from pii_guard.recognizers.gazetteer import SPANISH_WORDS_PATH
from pii_guard.tagger.features import VOCABULARY_PATH

WORDS = 40_000
SPANISH_ZIPF = 3.5


def bands() -> list[tuple[str, str]]:
    from wordfreq import top_n_list, zipf_frequency

    out = []
    for word in top_n_list("en", WORDS):
        zipf = zipf_frequency(word, "en")
        if word.isalpha() and zipf >= 3.0:
            out.append((word, "V" if zipf >= 5 else "v" if zipf >= 4 else "w"))
    return sorted(out)


def spanish_words() -> list[str]:
    from wordfreq import top_n_list, zipf_frequency

    return sorted(
        word
        for word in top_n_list("es", 2 * WORDS)
        if word.isalpha() and len(word) > 2 and zipf_frequency(word, "es") >= SPANISH_ZIPF
    )


def _write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as handle:
        handle.write(text.encode("utf-8"))
    partial.replace(path)
    print(f"{text.count(chr(10))} words -> {path}")


def main() -> int:
    _write(VOCABULARY_PATH, "".join(f"{word}\t{band}\n" for word, band in bands()))
    _write(SPANISH_WORDS_PATH, "".join(f"{word}\n" for word in spanish_words()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
