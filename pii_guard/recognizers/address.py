"""US street addresses: number, street name, suffix, unit, city, state and ZIP.

A compiled pattern over USPS street suffixes and state codes, about the
shape pyap recognises, at a fraction of its cost.  A street line alone is a
strong hit; "City, ST 12345" without a street is a weak one (a ZIP narrows a
person down, but it is also how offices sign).
"""

from __future__ import annotations

import re

from pii_guard.entities import ADDRESS
from pii_guard.recognizers.base import Rule, ctx, word_tree
from pii_guard.recognizers.gazetteer import words

__all__ = ["ADDRESS_CONTEXT", "ADDRESS_RULES", "STREET_LINE"]

# (after the word: a dot, a direction or a word's end, so no word fits where a longer one does)
_SUFFIX_WORDS = words(
    """street st road rd avenue ave av boulevard blvd lane ln drive dr court ct place pl
    plaza plz way terrace ter terr circle cir parkway pkwy highway hwy pike square sq
    trail trl alley aly loop run path crossing xing ridge rdg hill hills garth close
    crescent cres row walk green mews point pt landing commons center ctr turnpike tpke
    expressway expy freeway fwy cove cv glen grove heights hts manor mnr meadow meadows
    park pass estates view vista bend knoll gardens gdns harbor hbr junction jct mall
    oval port ramp spur summit smt track trace trce village vlg wharf wynd strasse
    straße"""
)
_SUFFIX = f"(?i:{word_tree(_SUFFIX_WORDS)})"
_DIRECTION = (
    r"(?:[NSEW]|NE|NW|SE|SW|North|South|East|West|Northeast|Northwest|Southeast|Southwest)\.?"
)
_UNIT_WORD = r"(?:Apt|Apartment|Unit|Suite|Ste|Fl|Floor|Rm|Room|Bldg|Lot)\b"
_WORD = (
    rf"(?:(?!{_UNIT_WORD})[A-Z][\w'.-]*|\d{{1,3}}(?:st|nd|rd|th|ST|ND|RD|TH)"
    r"|(?:de|la|del|of|the|von|van)(?=\s))"
)
_STATES = (
    r"(?:A[LKZR]|C[AOT]|D[EC]|FL|GA|HI|I[DLNA]|K[SY]|LA|M[EDAINSOT]|N[EVHJMYCD]|O[HKR]|PA|RI"
    r"|S[CD]|T[NX]|UT|V[TA]|W[AVIY]|PR|GU|VI|AA|AE|AP"
    r"|Maryland|Virginia|West\s+Virginia|Delaware|Pennsylvania|District\s+of\s+Columbia"
    r"|New\s+York|New\s+Jersey|California|Texas|Florida|Ohio|Georgia|North\s+Carolina)"
)
_UNIT = (
    r"(?:,?\s*(?i:apt|apartment|unit|suite|ste|fl|floor|rm|room|bldg|building|lot|#)\.?\s*#?\s*"
    r"[A-Za-z0-9][\w-]*)"
)
_CITY_STATE_ZIP = (
    r"(?:,?\s+(?:[A-Z][\w.'-]*\s+){0,3}[A-Z][\w.'-]*,?\s+"
    + _STATES
    + r"\.?(?:,?\s+\d{5}(?:-\d{4})?)?)"
)
# A street line's words stand one or two blanks apart, never across a line or a table's
# column break (a tab, a wider gap): "01/01/2026\nEd Park" is a date and a name.
_SP = "[ \u00a0]{1,2}"
_STREET = (
    r"\d{1,6}(?:-\d{1,4})?[A-Z]?"
    + _SP
    + "(?:"
    + _DIRECTION
    + _SP
    + ")?(?:"
    + _WORD
    + _SP
    + "){1,4}"
    + _SUFFIX
    + r"\.?(?:"
    + _SP
    + _DIRECTION
    + r"(?![\w]))?"
)
STREET_LINE = _STREET  # the US street line, also the start of a postal block (postal.py)
_PREFIXED = r"\d{1,6}\s+(?:Calle|Avenida|Camino|Paseo|Carretera)(?:\s+" + _WORD + r"){1,4}"
_HIGHWAY = r"\d{1,6}\s+(?:(?:US|MD|State)\s+)?(?i:route|rte|highway|hwy)\s*-?\s*\d{1,4}"
_PO_BOX = r"(?i:p\.?\s?o\.?\s*box)\s+\d{1,6}"

ADDRESS_CONTEXT = ctx(
    r"address",
    r"addr",
    r"lives?",
    r"living",
    r"moved",
    r"mailing",
    r"resides?",
    r"residing",
    r"residence",
    r"street",
    r"direcci[oó]n",
    r"domicilio",
    r"vive",
)

ADDRESS_RULES: tuple[Rule, ...] = (
    Rule(
        ADDRESS,
        re.compile(
            r"(?<![\w./:-])(?P<v>(?:"
            + _PREFIXED
            + "|"
            + _STREET
            + "|"
            + _HIGHWAY
            + "|"
            + _PO_BOX
            + r")(?![\w])"
            + _UNIT
            + "?"
            + _CITY_STATE_ZIP
            + r"?)(?![\w])"
        ),
        0.75,
        ADDRESS_CONTEXT,
        0.9,
    ),
    # A place starts where a word starts, never inside one ("O'Neill", "St.Mary"): a
    # start after any of the place's own characters would re-read the rest of the word
    # from each of them (quadratic on "A'A'A...").
    Rule(
        ADDRESS,
        re.compile(
            r"(?<![\w.'-])(?P<v>(?:[A-Z][\w.'-]*\s+){0,3}[A-Z][\w.'-]*,?\s+"
            + _STATES
            + r"\.?,?\s+\d{5}(?:-\d{4})?)(?![\w-])"
        ),
        0.45,
        ADDRESS_CONTEXT,
        0.6,
    ),
    # Written in lower case ("she lives at 12 oak st"): only after an address word.
    Rule(
        ADDRESS,
        re.compile(
            r"(?<![\w.-])(?P<v>\d{1,6}[a-z]?\s+(?:[a-z][\w'.-]*\s+){1,4}"
            + _SUFFIX
            + r"\.?(?![\w])"
            + _UNIT
            + "?"
            + r"(?:,?\s+(?:[a-z][\w.'-]*\s+){0,2}[a-z][\w.'-]*,?\s+[a-z]{2}\.?(?:\s+\d{5})?)?)"
            + r"(?![\w])"
        ),
        0.0,
        ADDRESS_CONTEXT,
        0.8,
        window=30,
    ),
)
