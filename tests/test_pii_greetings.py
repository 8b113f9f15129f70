"""Greetings, closings and function words of the shipped languages are never a name.

The outbound scan reads every auto-reply with the recipient's name in its
greeting ("Hola Rosa Martinez:"); the allow-list of that name must hold
whatever the greeting, and without it the name must still be found.
"""

from __future__ import annotations

import pytest

from pii_guard import AllowList, Finding, PiiGuard
from pii_guard.allow import Allowance
from pii_guard.recognizers.gazetteer import MAIL_WORDS, load_gazetteer

NAMES = (
    "Rosa Martinez",
    "José Luis Hernández",
    "Ngozi Adeyemi",
    "Kwame Mensah",
    "Priya Venkataraman",
    "Mohammed Rahman",
    "Wei Zhang",
    "Nguyen Thi Lan",
    "Siobhan O'Connor",
    "Padraig Ó Súilleabháin",
    "Grace Hope",
    "Joy Sterling",
    "Su Wei",
    "Ana Dias",
)
GREETINGS = (
    "Hola {name}:\n\nHemos recibido su consulta.",
    "Estimada Sra. {name}:\n\nMuchas gracias por su mensaje.",
    "Buenos días {name},\n\nLe escribimos sobre su caso.",
    "Buenos Dias {name},",
    "Buenas tardes {name}:",
    "Querido {name}:",
    "Gracias {name}.",
    "Hi {name},\n\nWe received your message.",
    "Dear {name},",
    "Hello {name},",
    "Good Morning {name},",
    "Kind Regards {name}",
)


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return PiiGuard.build()


def values(guard: PiiGuard, text: str, allow: AllowList) -> list[str]:
    return [text[f.start : f.end] for f in guard.scan(text, allow)]


@pytest.mark.parametrize("greeting", GREETINGS)
@pytest.mark.parametrize("name", NAMES)
def test_the_recipient_greeted_is_allowed_and_anyone_else_is_found(
    guard: PiiGuard, name: str, greeting: str
) -> None:
    text = greeting.format(name=name)
    assert values(guard, text, AllowList(sender_name=name)) == []
    assert values(guard, text, AllowList()) == [name]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Le escribo por mi cliente Rosa Martinez, que no puede inscribirse.", "Rosa Martinez"),
        ("Hemos recibido su consulta sobre Rosa Martinez.", "Rosa Martinez"),
        ("Hola Will Bishop:\n\nHemos recibido su consulta.", "Will Bishop"),
        ("Estimada Sra. May Tan:", "May Tan"),
    ],
)
def test_a_consumer_beside_spanish_words_is_still_a_name(
    guard: PiiGuard, text: str, name: str
) -> None:
    assert values(guard, text, AllowList(sender_name="Kwame Mensah")) == [name]


@pytest.mark.parametrize(
    "text",
    [
        "Hola sam amsung:\n\nHemos recibido su consulta. El número de incidente es 200528-2866868.",
        "Saludos cordiales,\nEquipo de Escalaciones",
        "Atentamente,\nEl equipo de Operaciones",
        "Muchas gracias. Quedamos atentos a cualquier duda.",
        "La solicitud se detiene en la página del hogar.",  # a particle opens no name
    ],
)
def test_spanish_mail_words_alone_are_no_name(guard: PiiGuard, text: str) -> None:
    assert values(guard, text, AllowList(sender_name="sam amsung")) == []


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("Hola Rosa Martinez:", "Hola Rosa Martinez"),
        ("Buenos Dias Rosa Martinez,", "Dias Rosa Martinez"),
        ("Estimada Sra. Rosa Martinez:", "Sra. Rosa Martinez"),
    ],
)
def test_a_span_that_swallowed_a_greeting_is_still_the_sender(text: str, span: str) -> None:
    start = text.index(span)
    finding = Finding("PERSON", start, start + len(span), 0.55)
    allowance = Allowance(AllowList(sender_name="Rosa Martinez"))
    assert allowance.filter(text, [finding]) == []


def test_a_word_that_is_also_a_name_does_not_make_someone_else_the_sender() -> None:
    text = "Hola Will Martinez:"  # "Will" is an English stop word, and a given name
    finding = Finding("PERSON", 0, len(text) - 1, 0.55)
    assert Allowance(AllowList(sender_name="Rosa Martinez")).filter(text, [finding]) == [finding]


def test_spanish_function_words_that_are_names_stay_possible_names() -> None:
    gazetteer = load_gazetteer()
    assert gazetteer.is_never("hemos") and gazetteer.is_never("atentamente")
    assert not gazetteer.is_never("su") and not gazetteer.is_never("dias")
    assert gazetteer.is_last("su") and gazetteer.is_last("dias")


def test_the_mail_words_are_no_names_but_the_article_and_two_desk_words() -> None:
    """Faker lists "Baby", "Binder" and "Add" too; in producer mail they are the newborn,
    the first premium payment and the request ("Baby's SSN", "Binder amount", "Newborn
    add - PID 660412"), never a consumer's name."""
    gazetteer = load_gazetteer()
    names = {w for w in MAIL_WORDS if w in gazetteer.first or w in gazetteer.last}
    assert names == {"el", "baby", "binder", "add"}


def test_particles_inside_a_lower_case_name_still_belong_to_it(guard: PiiGuard) -> None:
    text = "mi cliente maria de la cruz no puede inscribirse"
    redacted = guard.redact(text, guard.scan(text, AllowList()))
    assert "maria" not in redacted and "cruz" not in redacted


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("i submitted the app for my client june whitaker, person id 733415", "june whitaker"),
        ("hey, client hope delacroix got charged twice", "hope delacroix"),
        ("my grandmother rose ellen tilghman got a letter", "rose ellen tilghman"),
    ],
)
def test_an_everyday_given_name_after_a_role_is_a_name_when_a_surname_follows(
    guard: PiiGuard, text: str, name: str
) -> None:
    redacted = guard.redact(text, guard.scan(text, AllowList()))
    assert not any(word in redacted for word in name.split()), redacted


@pytest.mark.parametrize(
    "text", ["my client will call you tomorrow", "the client may pay later", "my client hope to"]
)
def test_an_everyday_word_after_a_role_with_no_surname_stays(guard: PiiGuard, text: str) -> None:
    assert guard.redact(text, guard.scan(text, AllowList())) == text


def test_a_given_name_that_is_a_word_goes_with_the_surname_found_after_it(
    guard: PiiGuard,
) -> None:
    text = "For example my client Will Ashford (DOB 8/8/88) was told on 2/20."
    redacted = guard.redact(text, guard.scan(text, AllowList()))
    assert "Will" not in redacted and "Ashford" not in redacted
    question = "Will Medicaid cover the baby?"
    assert guard.redact(question, guard.scan(question, AllowList())) == question


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("- baby Summer, born 09/09/2024\n", "Summer"),
        ("Please see subject. Cornelia's 1095-A for 2024 shows coverage.", "Cornelia"),
        ("Her niece Mariela lives with her now.", "Mariela"),
        ("la bebé Camila nació el 3 de mayo", "Camila"),
    ],
)
def test_names_after_more_family_words_and_before_more_of_a_persons_things(
    guard: PiiGuard, text: str, name: str
) -> None:
    assert name not in guard.redact(text, guard.scan(text, AllowList()))


@pytest.mark.parametrize("text", ["Newborn add - PID 660412", "Baby add - PID 660412"])
def test_a_request_to_add_a_newborn_names_no_one(guard: PiiGuard, text: str) -> None:
    assert guard.redact(text, guard.scan(text, AllowList())) == text


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (
            "Regarding: Medical Assistance for\n  PORTILLO AYALA, KEVIN J.    (MA# 30991128401)\n",
            "PORTILLO AYALA, KEVIN J.",
        ),
        ("Primary: Grant, Major D.\nSpouse: Grant-Wilkes, Skylar\n", "Grant, Major D."),
        ("Primary: Grant, Major D.\nSpouse: Grant-Wilkes, Skylar\n", "Grant-Wilkes, Skylar"),
    ],
)
def test_a_name_written_surname_first_at_the_head_of_a_line_is_one_name(
    guard: PiiGuard, text: str, name: str
) -> None:
    redacted = guard.redact(text, guard.scan(text, AllowList()))
    assert not any(part in redacted for part in name.replace(",", "").split()), redacted


# Gmail's Spanish attribution line, for every day of a week and every month: a quoted
# date is no address, whatever the day ("El lun, 7 dic 2026" was one on Mondays only).
_DAYS = ("lun", "mar", "mié", "jue", "vie", "sáb", "dom")
_MONTHS = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic")


@pytest.mark.parametrize("month", _MONTHS)
def test_a_spanish_quote_attribution_is_no_address(guard: PiiGuard, month: str) -> None:
    for day, weekday in enumerate(_DAYS, start=5):
        line = (
            f"El {weekday}, {day} {month} 2026 a las 0:29, MHBE Escalated caseworkers Team "
            "<maria.lopez@exchange.example> escribió:"
        )
        found = [f.entity_type for f in guard.scan(line, AllowList())]
        assert found == ["EMAIL_ADDRESS"], line  # a person's address, nothing else
