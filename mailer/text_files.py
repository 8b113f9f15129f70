"""The text of an attached text file: byte-order mark, then declared charset, then detection.

Bodies are decoded by their declared charset (``mailer.headers.decode_bytes``); attached
files often lie or say nothing.  Excel's "Unicode text" export is UTF-16 with a BOM and
no charset parameter, and read as UTF-8 or cp1252 every other byte is a NUL: the digits
of an SSN come apart and no recognizer sees them.  So, in order:

1. a byte-order mark (UTF-32 before UTF-16: ``FF FE 00 00`` starts with ``FF FE``);
2. the declared charset, when it decodes and the result is not mostly NULs (a UTF-16
   file labelled ``us-ascii`` decodes, NULs and all);
3. detection: strict UTF-8; UTF-16 without a BOM when NULs fill one byte of each pair
   (ASCII-range text, which tables of names and numbers are); else cp1252, then latin-1,
   which decodes anything.

NULs left in the text are removed (``clean_text``): a scanner reads text, not bytes.
"""

from __future__ import annotations

import codecs

from mailer.headers import clean_text

__all__ = ["decode_text_file"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SAMPLE = 4096  # bytes looked at to tell UTF-16 from the rest
# Share of one byte of each pair that must be NUL to read UTF-16 without a BOM; and the
# share of NULs that makes a declared charset's result wrong.
_UTF16_NULS = 0.4
_TOO_MANY_NULS = 0.1


def decode_text_file(data: bytes, declared: str | None = None) -> str:
    """The text of ``data``, an attached file said to be text (never raises)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return clean_text(data[len(bom) :].decode(codec, "replace"))
    if declared:
        text = _decoded(data, declared)
        if text is not None and not _mostly_nuls(text[:_SAMPLE]):
            return clean_text(text)
    return clean_text(_detected(data))


def _mostly_nuls(sample: str) -> bool:
    return sample.count("\x00") > _TOO_MANY_NULS * len(sample)


def _decoded(data: bytes, charset: str) -> str | None:
    try:
        return data.decode(charset)
    except (LookupError, UnicodeDecodeError, ValueError):  # ValueError: a NUL in the name
        return None


def _detected(data: bytes) -> str:
    utf16 = _utf16_order(data[:_SAMPLE])
    if utf16:
        return data.decode(utf16, "replace")
    for charset in ("utf-8", "cp1252"):
        text = _decoded(data, charset)
        if text is not None:
            return text
    return data.decode("latin-1")


def _utf16_order(sample: bytes) -> str | None:
    """``utf-16-le`` or ``-be`` when NULs fill the high byte of most pairs, else None."""
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    odd_nuls = sample[1 : 2 * pairs : 2].count(0) / pairs
    even_nuls = sample[0 : 2 * pairs : 2].count(0) / pairs
    if odd_nuls >= _UTF16_NULS and even_nuls < _TOO_MANY_NULS:
        return "utf-16-le"
    if even_nuls >= _UTF16_NULS and odd_nuls < _TOO_MANY_NULS:
        return "utf-16-be"
    return None
