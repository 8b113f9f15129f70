"""First names and surnames from Faker's per-locale lists, minus common words.

Faker is a well-kept package whose person providers list tens of thousands
of given names and surnames across 80+ locales; only Latin-script entries are
used (the mail is English or Spanish).  Words that are also everyday English
or this desk's vocabulary ("Will", "Grant", "Case", "Carrier") are removed so
that they only count as names where the context says so.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass

from spacy.lang.en.stop_words import STOP_WORDS

from pii_guard.errors import PiiEngineError

__all__ = ["COMMON_WORDS", "NEVER_NAMES", "ORG_WORDS", "Gazetteer", "load_gazetteer", "words"]

_LATIN = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ɏ][A-Za-zÀ-ÖØ-öø-ɏ'-]+$")
_FIRST_ATTRS = (
    "first_names",
    "first_names_male",
    "first_names_female",
    "first_names_nonbinary",
    "first_romanized_names",
    "first_names_male_romanized",
    "first_names_female_romanized",
)
_LAST_ATTRS = ("last_names", "last_romanized_names", "last_names_male", "last_names_female")


# Given names that are everyday words: a name only with context or a surname beside them.
def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


COMMON_WORDS = words(
    """
    will may june april august bill price page hope chase mark rose long young king guy son
    dean max joy sunny faith case grant summer autumn winter spring star sky river law love
    art golden green brown white black gray grey major
    """
)

# Words of this desk's mail and English function words: never a name on their own.
NEVER_NAMES = words(
    """
    carrier plan plans health care first team thanks thank hello hi hey dear regards best
    please client clients consumer consumers member members primary spouse child children
    household dependent dependents applicant portal error incident ref subject date dob
    maryland baltimore annapolis medicaid medicare exchange connection hotline producer
    producers broker agent agents npn pid person id carefirst kaiser aetna cigna united
    caresource wellpoint amerigroup optimum qhp aptc csr slcsp form tax year monday tuesday
    wednesday thursday friday saturday sunday january february march july september october
    november december enero febrero marzo abril mayo junio julio agosto septiembre octubre
    noviembre diciembre mr mrs ms miss dr sr sra jr street road avenue lane drive court
    north south east west new open closed pending active status renewal training coverage
    policy premium payment account bank card routing number phone email address mailing
    note notes attached attachment screenshot see sent ok yes no urgent update follow
    issue question questions help support service services office desk call called
    general determination termination enrollment commission escalated escalation cases
    unit apt suite box application app hbx mhbe mhc qhp aptc caseworker caseworkers worker
    staff supervisor manager lead rep representative navigator assister insurance agency
    group llc inc corp company associates services solutions financial benefits partners
    consulting foundation hospital clinic university college school church county department
    dept
    """
) | frozenset(word.lower() for word in STOP_WORDS)


# A capitalised run with one of these is a firm, a plan or an office, not a person.
ORG_WORDS = words(
    """
    carefirst kaiser permanente aetna cigna united unitedhealthcare caresource wellpoint
    amerigroup optimum bluechoice blue cross shield insurance agency group llc inc corp company
    associates services solutions financial benefits partners consulting foundation hospital
    clinic university college school church county department dept health exchange
    connection plan plans gold silver bronze platinum catastrophic medicaid medicare team
    """
)


@dataclass(frozen=True)
class Gazetteer:
    """Lower-cased given names and surnames."""

    first: frozenset[str]
    last: frozenset[str]

    def is_first(self, word: str) -> bool:
        """A given name that is not also an everyday word."""
        return word in self.first and word not in COMMON_WORDS and word not in NEVER_NAMES

    def is_last(self, word: str) -> bool:
        """A surname (or a given name used as one: Kim, James)."""
        return (word in self.last or word in self.first) and word not in NEVER_NAMES

    def is_never(self, word: str) -> bool:
        return word in NEVER_NAMES


# Locales whose person providers list no Latin-script (or romanised) names.
_NON_LATIN = words("ar bg bn el fa gu he hi hy ka ko mk mr ne or ru si ta th uk")


def load_gazetteer() -> Gazetteer:
    """Collect the names from every Faker person provider (about 0.2 s, once per process)."""
    try:
        package = importlib.import_module("faker.providers.person")
    except ImportError as exc:
        raise PiiEngineError("the faker package (name lists) is not installed") from exc
    first: set[str] = set()
    last: set[str] = set()
    for module_info in pkgutil.iter_modules(package.__path__):
        if module_info.name.split("_")[0] in _NON_LATIN:
            continue  # nothing to take, and importing them costs start-up time
        provider = importlib.import_module(f"{package.__name__}.{module_info.name}").Provider
        first.update(_names(provider, _FIRST_ATTRS))
        last.update(_names(provider, _LAST_ATTRS))
    return Gazetteer(frozenset(first), frozenset(last))


def _names(provider: type, attributes: tuple[str, ...]) -> set[str]:
    found: set[str] = set()
    for attribute in attributes:
        values = provider.__dict__.get(attribute)
        if isinstance(values, dict | list | tuple | set | frozenset):
            found.update(str(v).lower() for v in values if _LATIN.match(str(v)))
    return found
