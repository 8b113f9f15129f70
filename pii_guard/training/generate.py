"""Labelled synthetic text for the tagger: templates filled with Faker values.

``templates.txt`` (beside this file) holds sentences, producer mail, forms,
dialogue and signatures with slots (``{name}``, ``{address}``, ``{company}``
...).  Each example joins one to three filled templates; a ``PERSON`` or
``ADDRESS`` slot becomes a labelled span.  Values come from Faker in many
locales, in the forms people write them (``Lopez, Maria``, ``M. Lopez``, all
lower case, an address on one line or several), so that the tagger learns
shapes and context rather than a list.  Everything is drawn from one seeded
``random.Random``: the same seed and Faker version give the same examples.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from faker import Faker

from pii_guard.tagger.features import LABELS

__all__ = ["Example", "Generator", "load_templates", "token_labels"]


def _split(text: str) -> list[str]:
    return text.split()


TEMPLATES = Path(__file__).with_name("templates.txt")
_SLOT = re.compile(r"\{(\w+)\}")
LABELLED = {"name": "PER", "first": "PER", "last": "PER", "address": "ADDR", "street": "ADDR"}
UNLABELLED = frozenset(
    _split(
        "city state country company job date weekday month money number "
        "incident pid npn plan carrier phone email url product title"
    )
)
NAME_LOCALES = _split(
    "en_US en_US en_US en_GB es_MX es_ES pt_BR fr_FR de_DE it_IT nl_NL pl_PL sv_SE no_NO "
    "da_DK fi_FI hu_HU cs_CZ sk_SK sl_SI hr_HR ro_RO tr_TR et_EE lv_LV lt_LT is_IS en_IN "
    "vi_VN id_ID fil_PH ga_IE az_AZ"
)
ADDRESS_LOCALES = _split(
    "en_US en_US en_US en_US en_GB en_CA en_AU en_NZ de_DE de_AT fr_FR es_ES es_MX it_IT "
    "nl_NL pt_BR pt_PT sv_SE no_NO da_DK fi_FI pl_PL cs_CZ hu_HU sl_SI hr_HR et_EE el_GR "
    "ro_RO"
)
CARRIERS = (
    "CareFirst BlueCross BlueShield",
    "Kaiser Permanente",
    "UnitedHealthcare",
    "Aetna",
    "Cigna",
    "Wellpoint",
    "CareSource",
)
_EPOCH = date(2014, 1, 1)
WEEKDAYS = _split("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
MONTHS = _split(
    "January February March April May June July August September October November December"
)
METALS = ("Bronze", "Silver", "Gold", "Platinum", "Catastrophic")


@dataclass(frozen=True)
class Example:
    text: str
    spans: list[tuple[str, int, int]] = field(default_factory=list)


def load_templates(path: Path = TEMPLATES) -> list[str]:
    templates = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        unknown = {s for s in _SLOT.findall(line) if s not in LABELLED and s not in UNLABELLED}
        if unknown:
            raise ValueError(f"{path}:{number}: unknown slot(s) {sorted(unknown)}")
        templates.append(line.replace("\\n", "\n"))
    return templates


def token_labels(
    offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[str, int, int]]
) -> list[int]:
    labels = []
    for first, last in offsets:
        label = 0
        for kind, start, end in spans:
            if start <= first and last <= end:
                label = LABELS.index(kind)
        labels.append(label)
    return labels


class Generator:
    """Fills templates; ``examples(n)`` yields ``n`` labelled texts."""

    def __init__(self, templates: Sequence[str], seed: int) -> None:
        self.templates = list(templates)
        self.rng = random.Random(seed)
        self._fakers: dict[str, Faker] = {}
        Faker.seed(seed)
        self.fill: dict[str, Callable[[], str]] = {
            "name": self.full_name,
            "first": lambda: self.faker(NAME_LOCALES).first_name(),
            "last": lambda: self.faker(NAME_LOCALES).last_name(),
            "address": self.address,
            "street": lambda: self.faker(ADDRESS_LOCALES).street_address(),
            "city": lambda: self.faker(ADDRESS_LOCALES).city(),
            "state": lambda: self.faker(["en_US"]).state(),
            "country": lambda: self.faker(["en_US"]).country(),
            "company": lambda: self.faker(NAME_LOCALES).company(),
            "job": lambda: self.faker(["en_US"]).job(),
            "date": self.date,
            # Faker draws weekdays, months and dates from a span ending now: not reproducible
            "weekday": lambda: self.rng.choice(WEEKDAYS),
            "month": lambda: self.rng.choice(MONTHS),
            "money": lambda: f"${self.rng.randint(1, 4000):,}.{self.rng.randint(0, 99):02d}",
            "number": lambda: str(self.rng.randint(1, 12)),
            "incident": self.incident,
            "pid": lambda: str(self.rng.randint(100000, 999999999)),
            "npn": lambda: str(self.rng.randint(1000, 9999999999)),
            "plan": self.plan,
            "carrier": lambda: self.rng.choice(CARRIERS),
            "phone": lambda: self.faker(["en_US"]).phone_number(),
            "email": lambda: self.faker(NAME_LOCALES).email(),
            "url": lambda: self.faker(["en_US"]).url(),
            "product": self.product,
            "title": lambda: self.faker(["en_US"]).catch_phrase().title(),
        }

    def faker(self, locales: Sequence[str]) -> Faker:
        locale = self.rng.choice(locales)
        if locale not in self._fakers:
            faker = self._fakers[locale] = Faker(locale)
            faker.seed_instance(self.rng.randint(0, 2**31))
            for provider in faker.get_providers():
                if isinstance(getattr(provider, "cities", None), list):
                    provider.cities = sorted(provider.cities)  # it_IT's comes from a set
        return self._fakers[locale]

    def examples(self, count: int) -> Iterator[Example]:
        for _ in range(count):
            parts = [self.filled(self.rng.choice(self.templates))]
            while len(parts) < 3 and self.rng.random() < 0.35:
                parts.append(self.filled(self.rng.choice(self.templates)))
            yield self._quoted(self._cased(self._joined(parts)))

    def filled(self, template: str) -> Example:
        text, spans, last = "", [], 0
        for match in _SLOT.finditer(template):
            text += template[last : match.start()]
            value = self.fill[match.group(1)]()
            if match.group(1) in LABELLED:
                spans.append((LABELLED[match.group(1)], len(text), len(text) + len(value)))
            text += value
            last = match.end()
        return Example(text + template[last:], spans)

    def _joined(self, parts: list[Example]) -> Example:
        text, spans = "", []
        for part in parts:
            if text:
                text += self.rng.choice((" ", "\n", "\n\n", " "))
            spans += [(k, s + len(text), e + len(text)) for k, s, e in part.spans]
            text += part.text
        return Example(text, spans)

    def _quoted(self, example: Example) -> Example:
        """Some mail is quoted or bulleted line by line: ``> ``, ``>> ``, ``- ``, ``* ``."""
        if "\n" not in example.text or self.rng.random() >= 0.1:
            return example
        mark = self.rng.choice(("> ", ">", ">> ", "- ", "* ", "| "))
        text = example.text

        def moved(position: int) -> int:  # each line, up to this position, gained a mark
            return position + len(mark) * (1 + text.count("\n", 0, position))

        spans = [(k, moved(s), moved(e - 1) + 1) for k, s, e in example.spans]
        return Example(mark + text.replace("\n", "\n" + mark), spans)

    def _cased(self, example: Example) -> Example:
        draw = self.rng.random()
        changed = example.text.lower() if draw < 0.08 else example.text
        changed = example.text.upper() if draw > 0.97 else changed
        if len(changed) != len(example.text):  # a letter that grows when cased: keep as is
            return example
        return Example(changed, example.spans)

    def full_name(self) -> str:
        f = self.faker(NAME_LOCALES)
        first, last = f.first_name(), f.last_name()
        form = self.rng.random()
        if form < 0.45:
            name = f"{first} {last}"
        elif form < 0.6:
            name = f"{first} {self._initial()} {last}"
        elif form < 0.68:
            name = f"{first[0]}. {last}"
        elif form < 0.76:
            name = f"{last}, {first}"
        elif form < 0.84:
            name = f"{first} {f.last_name()} {last}"
        else:
            name = f"{first} {f.first_name()} {last}"
        if self.rng.random() < 0.01:  # whole texts are lower-cased too (_cased)
            name = name.lower()
        return name

    def _initial(self) -> str:
        letter = self.rng.choice("ABCDEFGHIJKLMNOPRSTVW")
        return letter + "." if self.rng.random() < 0.7 else letter

    def address(self) -> str:
        """A postal address on one line or several, sometimes with its country."""
        address = self.faker(ADDRESS_LOCALES).address()
        if self.rng.random() < 0.25:
            address += "\n" + self.faker(["en_US"]).country()
        draw = self.rng.random()
        if draw < 0.45:
            address = address.replace("\n", ", ")
        elif draw < 0.55:
            address = address.replace("\n", " ")
        if self.rng.random() < 0.07:
            address = address.lower()
        return address

    def date(self) -> str:
        """A date from our own generator: Faker's dates move with the clock."""
        day = _EPOCH + timedelta(days=self.rng.randint(0, 365 * 12))
        month = MONTHS[day.month - 1]
        return self.rng.choice(
            (
                f"{day:%m/%d/%Y}",
                f"{month} {day.day}, {day.year}",
                f"{month[:3]} {day.day}, {day.year}",
            )
        )

    def incident(self) -> str:
        return f"{self.rng.randint(20, 26)}{self.rng.randint(1, 12):02d}" + (
            f"{self.rng.randint(1, 28):02d}-{self.rng.randint(0, 9999999):07d}"
        )

    def plan(self) -> str:
        metal = self.rng.choice(METALS)
        return f"{self.rng.choice(CARRIERS)} {metal} {self.rng.choice((500, 1000, 2500, 4000))}"

    def product(self) -> str:
        word = self.faker(["en_US"]).word().title()
        return f"{word} {self.rng.choice(('Pro', 'Cloud', 'Suite', 'Connect', 'Plus', '360'))}"
