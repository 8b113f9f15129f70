"""First names and surnames from Faker's per-locale lists, minus common words.

Faker is a well-kept package whose person providers list tens of thousands
of given names and surnames across 80+ locales; only Latin-script entries are
used (the mail is English or Spanish).  Words that are also everyday English
or this desk's vocabulary ("Will", "Grant", "Case", "Carrier") are removed so
that they only count as names where the context says so.  The greetings,
closings and function words of the shipped languages ("Hola", "Estimada",
"Hemos", "Atentamente") are never part of a name, so the recipient's name in a
greeting is the recipient's name alone and the allow-list of it holds.
"""

from __future__ import annotations

import functools
import gzip
import importlib
import importlib.util
import itertools
import pkgutil
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pii_guard.errors import PiiEngineError

__all__ = [
    "COMMON_WORDS",
    "GREETING_PAIRS",
    "MAIL_WORDS",
    "NEVER_NAMES",
    "ORG_WORDS",
    "PARTICLES",
    "SPANISH_WORDS_PATH",
    "WORD_BEFORE_READ",
    "Gazetteer",
    "greeting_pairs",
    "load_gazetteer",
    "word_before",
    "words",
]

SPANISH_WORDS_PATH = Path(__file__).with_name("spanish_words.txt.gz")
_LATIN = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ɏ][A-Za-zÀ-ÖØ-öø-ɏ'-]+$")
# Provider attributes that list names: "first_names_female_est", "last_names_rus",
# "middle_names_male", "unisex_last_names"...; not name pairs, kana or formats.
_FIRST_ATTR = re.compile(r"^(?:first|middle)_(?:romanized_)?names?(?:_\w+)?$")
_LAST_ATTR = re.compile(r"^(?:\w+_)?last_(?:romanized_)?names?(?:_\w+)?$")
_NOT_NAMES = re.compile(r"pairs|kana|abbreviated|format")
_WORD_BEFORE = re.compile(r"([^\W\d_]+)[ \t]+\Z")
WORD_BEFORE_READ = 24  # characters before an offset that ``word_before`` reads


# Given names that are everyday words or US states: a name only with context or a surname
# beside them ("Virginia, Delaware" are states; "Virginia Lopez" is a person).
def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


COMMON_WORDS = words(
    """
    will may june april august bill price page hope chase mark rose long young king guy son
    dean max joy sunny faith case grant summer autumn winter spring star sky river law love
    art golden green brown white black gray grey major grace prince
    alabama alaska arizona arkansas california colorado connecticut delaware florida georgia
    hawaii idaho illinois indiana iowa kansas kentucky louisiana maine massachusetts michigan
    minnesota mississippi missouri montana nebraska nevada carolina dakota ohio oklahoma
    oregon pennsylvania tennessee texas utah vermont virginia wisconsin wyoming columbia
    """
)

# Words of this desk's mail: never a name on their own (nor English stop words, added at load).
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
    dept ssn itin ein mbi aba dl mva irs ssa cms hhs dhs usps ach pdf faq
    """
)


# What mail in the shipped languages (English, Spanish) opens and closes with, and the
# Spanish twin of the desk words above: never a name ("Hola Rosa Martinez:", "Estimada
# Sra. Adeyemi:", "Atentamente, El equipo").  None is a given name or a surname in the
# gazetteer but the article "el" (a test keeps it so); greeting words that are ("Good",
# "Day", "Dias") are in GREETING_PAIRS instead.  Spanish function words ("Hemos",
# "Muchas") are spaCy's, added at load.
MAIL_WORDS = words(
    """
    greetings morning afternoon evening sincerely cheers respectfully cordially warm warmest
    kindest truly faithfully welcome
    hola estimado estimada estimados estimadas querido querida queridos queridas apreciado
    apreciada apreciados apreciadas distinguido distinguida distinguidos distinguidas días
    tardes noches saludos saludo cordial cordiales afectuosos afectuosamente atentamente
    cordialmente sinceramente respetuosamente gracias muchísimas agradecemos agradecido
    agradecida abrazo señor señora señores señorita srta doña quedamos quedo atento atenta
    atentos disposición dudas pregunta preguntas el los las
    recibido recibimos consulta mensaje correo respuesta incidente número numero caso
    escalado escalada escalación escalacion escalaciones equipo productor productora
    productores agente agentes soporte operaciones servicio atención atencion cliente
    clientes inscripción inscripcion solicitud favor usted ustedes plazo hábiles habiles
    adjunto adjuntos documentos datos personales información informacion fecha nacimiento
    asunto referencia aviso importante urgente pendiente resuelto cerrado abierto seguro
    seguros ayuda apoyo línea linea registro escalamiento identificación identificacion
    consumidor consumidores dirección direccion teléfono telefono electrónico electronico
    comisión comision determinación determinacion terminación terminacion sistema
    lunes martes miércoles jueves viernes sábado
    binder autopay copay copays coinsurance deductible deductibles subsidy subsidies add
    newborn baby babies mom mommy dad daddy grandma grandpa abuela abuelo abuelita abuelito
    mamá papá bebé
    bonjour bonsoir merci madame monsieur mademoiselle obrigado obrigada danke grazie
    medaase ameseginalehu shukran dhanyavaad namaste
    """
)

# Two-word greetings whose words may also be names ("Good Day", "Buenos Dias"): a greeting
# only together, at the head of a run of capitalised words.
GREETING_PAIRS = frozenset(
    tuple(pair.split("_"))
    for pair in words(
        """
        good_morning good_afternoon good_evening good_day kind_regards buen_día buen_dia
        buenos_días buenos_dias buenas_tardes buenas_noches
        """
    )
)


def greeting_pairs(lowered: list[str], before: str = "") -> list[bool]:
    """Which of ``lowered`` (lower-cased words, in text order) belong to a two-word greeting;
    ``before`` is the word right before them ("Buenos" when a span starts at "Dias")."""
    marked = [False] * (len(lowered) + 1)
    for index, pair in enumerate(itertools.pairwise([before, *lowered])):
        if pair in GREETING_PAIRS:
            marked[index] = marked[index + 1] = True
    return marked[1:]


def word_before(text: str, start: int) -> str:
    """The lower-cased word right before ``start`` on its line, or ``""``."""
    match = _WORD_BEFORE.search(text, max(0, start - WORD_BEFORE_READ), start)
    return match.group(1).lower() if match else ""


def _stop_words(language: str) -> frozenset[str]:
    """spaCy's stop words of ``language``, read from their module without importing spaCy.

    ``import spacy.lang.en.stop_words`` runs ``spacy/__init__`` first (over a
    second of start-up); the module itself is a plain word list with no
    imports, so it is loaded from its file on its own.
    """
    spec = importlib.util.find_spec("spacy")
    if spec is None or spec.origin is None:
        raise PiiEngineError(f"the spacy package ({language} stop words) is not installed")
    path = Path(spec.origin).parent / "lang" / language / "stop_words.py"
    module_spec = importlib.util.spec_from_file_location(f"_pii_guard_{language}_stop_words", path)
    if module_spec is None or module_spec.loader is None:
        raise PiiEngineError(f"spaCy's {language} stop words cannot be read")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return frozenset(str(word).lower() for word in module.STOP_WORDS)


# Lower-case words inside a name ("Ludwig van Beethoven", "Ana de la Cruz").
PARTICLES = words("van von de del della da di du la las los le bin bint ibn al vda viuda")

# A capitalised run with one of these is a firm, a plan or an office, not a person.
ORG_WORDS = words(
    """
    carefirst kaiser permanente aetna cigna united unitedhealthcare caresource wellpoint
    ltd limited gmbh plc srl
    amerigroup optimum bluechoice blue cross shield insurance agency group llc inc corp company
    associates services solutions financial benefits partners consulting foundation hospital
    clinic university college school church county department dept health exchange
    connection plan plans gold silver bronze platinum catastrophic medicaid medicare team
    healthcare medical systems construction contractors contracting cleaning janitorial
    staffing logistics trucking transport transportation landscaping plumbing roofing
    electric electrical realty properties enterprises holdings industries international
    technologies pharmacy dental ministries academy daycare salon restaurant grill deli
    cafe kitchen motors mall outlets airport cpas seguros advisors brokerage
    departamento oficina servicios condado
    """
)


@dataclass(frozen=True)
class Gazetteer:
    """Lower-cased given names and surnames, and the words that are never a name alone.

    ``never`` is what the tagger's weights were trained with (its "n" feature:
    English stop words and desk words), so it stays as it is; ``mail_words``
    adds the words of the other shipped languages' mail, never a name either.
    ``spanish_stop_words`` are all of spaCy's, names among them ("Le", "Su").
    """

    first: frozenset[str]
    last: frozenset[str]
    never: frozenset[str] = NEVER_NAMES
    common: frozenset[str] = COMMON_WORDS
    mail_words: frozenset[str] = MAIL_WORDS
    spanish_stop_words: frozenset[str] = frozenset()
    # the function words of Spanish and of the other languages real mail comes in
    # (German, French, Portuguese, Italian) that English does not share: "Sie", "Wenn"
    function_words: frozenset[str] = frozenset()
    # everyday Spanish words (``SPANISH_WORDS_PATH``), names among them
    spanish_words: frozenset[str] = frozenset()

    def is_first(self, word: str) -> bool:
        """A given name that is not also an everyday word."""
        return word in self.first and word not in self.common and not self.is_never(word)

    def is_last(self, word: str) -> bool:
        """A surname (or a given name used as one: Kim, James)."""
        return (word in self.last or word in self.first) and not self.is_never(word)

    def is_surname(self, word: str) -> bool:
        """A surname that is not also an everyday word ("Turgeon", not "Young")."""
        return word in self.last and word not in self.common and not self.is_never(word)

    def knows(self, word: str) -> bool:
        """Listed as a given name or a surname, everyday word or not."""
        return word in self.first or word in self.last

    def plain_spanish(self, word: str) -> bool:
        """An everyday Spanish word no list knows as a name: "pago", "agregar", not "rosa"."""
        return word in self.spanish_words and not self.knows(word)

    def is_never(self, word: str) -> bool:
        return word in self.never or word in self.mail_words

    def is_filler(self, word: str) -> bool:
        """Never a name, and no list knows it as one: "Hola", "Dear", "Sra", not "Will"."""
        return self.is_never(word) and word not in self.first and word not in self.last

    def fillers(self, lowered: list[str], before: str = "") -> list[bool]:
        """Which of ``lowered`` (lower-cased words in text order; ``before``: the word before
        them) are greetings or function words, not part of the name they stand beside
        ("Buenos Dias", "Hola", "Sra")."""
        pairs = greeting_pairs(lowered, before)
        return [pair or self.is_filler(w) for w, pair in zip(lowered, pairs, strict=True)]

    def mail_fillers(self, lowered: list[str], before: str = "") -> list[bool]:
        """Like ``fillers``, with only the words the tagger never learnt as never-names:
        ``mail_words`` and greeting pairs (the English stop words are its features)."""
        pairs = greeting_pairs(lowered, before)
        return [pair or w in self.mail_words for w, pair in zip(lowered, pairs, strict=True)]


# Languages besides English and Spanish that mail to the desk arrives in (forwards,
# developers' mail): their function words are no names either.
_OTHER_LANGUAGES = ("de", "fr", "pt", "it")

# Function words of those languages that are more often a name in mail to the desk.
_NAMES_NOT_WORDS = words(
    """ali allen anders anni aura mila nova otto sara sue tali vita máximo dessa alla chi lei
    ela bas dai mie"""
)

# Locales whose person providers list no Latin-script (or romanised) names.
_NON_LATIN = words("ar bg bn el fa gu he hi hy ka ko mk mr ne or ru si ta th uk")


@functools.cache
def load_gazetteer() -> Gazetteer:
    """Collect the names from every Faker person provider (about 0.2 s, once per process:
    the allow-list and the tagger ask for it again at every scan)."""
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
        first.update(_names(provider, _FIRST_ATTR))
        last.update(_names(provider, _LAST_ATTR))
    never = NEVER_NAMES | _stop_words("en")
    # A Spanish function word that is also a name somewhere (Pero, Su, Tan, Dias) stays a
    # possible name: dropping it would hide "Su Wei" or "Ana Dias".
    spanish = _stop_words("es")
    mail = MAIL_WORDS | {w for w in spanish if w not in first and w not in last}
    common = COMMON_WORDS | _countries()
    english = _stop_words("en")
    others = frozenset().union(*(_stop_words(lang) for lang in _OTHER_LANGUAGES))
    # (the other languages' words that are also common names stay possible names)
    function = spanish | (others - english - _NAMES_NOT_WORDS)
    return Gazetteer(
        frozenset(first),
        frozenset(last),
        never,
        common,
        mail,
        spanish,
        function,
        _spanish_words(),
    )


def _spanish_words() -> frozenset[str]:
    """The everyday Spanish words shipped with the guard (``pii_guard.training.vocabulary``)."""
    try:
        with gzip.open(SPANISH_WORDS_PATH, "rt", encoding="utf-8") as handle:
            listed = handle.read().split()
        # and as written without accents, as mail often is ("perdio", "credito")
        return frozenset(listed) | {_unaccented(word) for word in listed}
    except OSError as exc:
        raise PiiEngineError(
            f"the Spanish word list cannot be read from {SPANISH_WORDS_PATH}: "
            f"{type(exc).__name__}; rebuild it with: python -m pii_guard.training.vocabulary"
        ) from exc


def _unaccented(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _countries() -> frozenset[str]:
    """One-word country names ("France", "Jordan"): a name only with a surname or context."""
    provider = importlib.import_module("faker.providers.address.en_US").Provider
    return frozenset(c.lower() for c in provider.countries if _LATIN.match(c))


def _names(provider: type, attributes: re.Pattern[str]) -> set[str]:
    found: set[str] = set()
    for attribute, values in vars(provider).items():
        if not attributes.match(attribute) or _NOT_NAMES.search(attribute):
            continue
        if isinstance(values, dict | list | tuple | set | frozenset):
            found.update(str(v).lower() for v in values if _LATIN.match(str(v)))
    return found
