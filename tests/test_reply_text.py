"""The new text of a reply (``mailer.bodies.new_text_of``): the writer's own words, with the
quoted history, attribution lines, signatures and footers cut, the whole text when unsure.

First the four kinds of reply that kept none of the writer's words before issue 21 part 4
(an attribution nested in the quote, attributions in other languages, Outlook separators,
supercite quoting), in producers' mail written for these tests (names and numbers are
made up); then what is cut at the end of a reply, what is kept, the contract and the time
bounds; then the corpora that say what the new text should be (Discourse's
email_reply_trimmer pairs, talon's standard replies, github's email_reply_parser).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import quotequail

from mailer import reply_text
from mailer.bodies import new_text_of
from mailer.parsing import parse_message
from mailer.quote_finder import may_hold_history

from .corpus import corpus_files

# --- 1. an attribution nested inside the quote -----------------------------------------------

BOTTOM_POSTED = """\
On Mon, Feb 3, 2025 at 10:12 AM Dana Whitfield <dana.whitfield@brokers.example> wrote:
> Can you confirm the effective date for the Ramirez household?
>
> On Fri, Jan 31, 2025 at 4:02 PM Escalations Desk <escalations@exchange.example> wrote:
>> We received the enrollment for Person ID 174097.
>> The application is pending verification.

The effective date is March 1. I re-sent the 1095-A request this morning.

Dana
"""

INTERLEAVED = """\
Dana Whitfield <dana.whitfield@brokers.example> wrote on Mon, Feb 3, 2025 at 10:12:
> > On Fri, Jan 31, 2025 at 4:02 PM Escalations Desk <escalations@exchange.example> wrote:
> > Which plan did the member choose?
> Silver 94 CSR, plan ID 12345TX0010001.

Thanks. Is the APTC amount still $412.00?

> On Fri, Jan 31, 2025, Escalations Desk wrote:
>> Please send the income documents.

They were uploaded on Feb 2 under Person ID 174097.
"""

TOP_POSTED_OVER_A_THREAD = """\
Yes, the household size is 4.

On Tue, Feb 4, 2025 at 9:30 AM Escalations Desk <escalations@exchange.example> wrote:
> How many people are in the household?
>
> > On Mon, Feb 3, 2025 at 10:12 AM Dana Whitfield <dana.whitfield@brokers.example> wrote:
> > The member's income changed in January.
"""


def test_a_bottom_posted_reply_keeps_the_words_under_a_nested_quote() -> None:
    assert new_text_of(BOTTOM_POSTED) == (
        "The effective date is March 1. I re-sent the 1095-A request this morning.\n\nDana"
    )


def test_answers_between_quotes_are_all_kept() -> None:
    assert new_text_of(INTERLEAVED) == (
        "Thanks. Is the APTC amount still $412.00?\n\n"
        "They were uploaded on Feb 2 under Person ID 174097."
    )


def test_a_top_posted_reply_over_a_nested_thread() -> None:
    assert new_text_of(TOP_POSTED_OVER_A_THREAD) == "Yes, the household size is 4."


# --- 2. attributions in other languages ------------------------------------------------------

ATTRIBUTIONS = {
    "french, wrapped, space before the colon": (
        "Bonjour,\n\nLe dossier de M. Moreau est complet, merci pour votre aide.",
        "Le lun. 3 févr. 2025 à 10:12, Jean Dupont <jean.dupont@courtiers.example> a\nécrit :",
        "> Pouvez-vous confirmer la date d'effet de la couverture ?",
    ),
    "french, wrapped over three lines": (
        "C'est complet !",
        'Le 3 févr. 2025 10:12, "Jean Dupont"\n<jean.dupont@courtiers.example>\na écrit :',
        "> Pouvez-vous confirmer la date d'effet ?\n>\n> Jean",
    ),
    "german (Gmail)": (
        "Hallo,\n\ndie Unterlagen für Person ID 174097 sind vollständig.",
        "Am Mo., 3. Feb. 2025 um 10:12 Uhr schrieb Jan Schmidt <jan.schmidt@makler.example>:",
        "> Bitte bestätigen Sie das Datum des Versicherungsbeginns.",
    ),
    "spanish (Gmail)": (
        "Hola,\n\nLa inscripción de la familia Ramírez quedó completa. "
        "El plan empieza el 1 de marzo.",
        "El lun, 3 feb 2025 a las 10:12, Lucía Fernández (<lucia.fernandez@corredores.example>)"
        " escribió:",
        "> ¿Pueden confirmar la fecha de inicio de la cobertura?",
    ),
    "spanish, no address": (
        "Ya envié los comprobantes de ingresos.",
        "El lunes, 3 de febrero de 2025, Mesa de escalamiento escribió:",
        "> Necesitamos los comprobantes de ingresos.",
    ),
    "portuguese": (
        "Olá,\n\nA inscrição foi concluída.",
        "Em seg., 3 de fev. de 2025 às 10:12, João Silva <joao.silva@corretores.example> escreveu:",
        "> Podem confirmar a data de início da cobertura?",
    ),
    "italian": (
        "Buongiorno,\n\nla pratica è completa.",
        "Il giorno lun 3 feb 2025 alle ore 10:12 Marco Rossi <marco.rossi@broker.example> ha"
        " scritto:",
        "> Potete confermare la data di decorrenza?",
    ),
    "russian (Gmail), no verb": (
        "Спасибо, справка о доходах получена.",  # noqa: RUF001 - Cyrillic meant
        "вт, 4 февр. 2025 г. в 10:12, Иван Петров <ivan.petrov@broker.example>:",  # noqa: RUF001 - Cyrillic meant
        "> Пришлите, пожалуйста, справку о доходах.",  # noqa: RUF001 - Cyrillic meant
    ),
    "dutch": (
        "Hallo,\n\nDe inschrijving is rond.",
        "Op ma 3 feb 2025 om 10:12 schreef Jan Jansen <jan.jansen@makelaar.example>:",
        "> Kunt u de ingangsdatum bevestigen?",
    ),
}


@pytest.mark.parametrize("language", list(ATTRIBUTIONS))
def test_an_attribution_in_another_language_goes_with_its_quote(language: str) -> None:
    own, attribution, quote = ATTRIBUTIONS[language]
    assert new_text_of(f"{own}\n\n{attribution}\n{quote}\n") == own


def test_an_attribution_over_unquoted_history_cuts_the_rest() -> None:
    """HTML mail made text loses the quote marks: what follows a client's attribution (an
    address or a time in it) is history all the same."""
    body = (
        "Merci, je transmets au client.\n\n"
        "Le lun. 3 févr. 2025 à 10:12, Jean Dupont <jean.dupont@courtiers.example> a écrit :\n\n"
        "Pouvez-vous confirmer la date d'effet de la couverture ?\n"
    )
    assert new_text_of(body) == "Merci, je transmets au client."


def test_a_writer_quoting_a_member_in_their_own_words_keeps_them() -> None:
    body = (
        "Please see the member's note.\n\n"
        "On 2/3/2025 the member wrote:\n\n"
        "I never received the card.\n"
    )
    assert new_text_of(body) == body.strip()


# --- 3. Outlook's separators -----------------------------------------------------------------

HISTORY = {
    "english": (
        "-----Original Message-----\n"
        "From: Escalations Desk <escalations@exchange.example>\n"
        "Sent: Monday, February 3, 2025 10:12 AM\n"
        "To: Dana Whitfield <dana.whitfield@brokers.example>\n"
        "Subject: RE: Escalated Case: Enrollment.PID #:174097\n\n"
        "We need the termination letter.\n"
    ),
    "spanish": (
        "-----Mensaje original-----\n"
        "De: Mesa de escalamiento <escalations@exchange.example>\n"
        "Enviado el: lunes, 3 de febrero de 2025 10:12\n"
        "Para: Lucía Fernández <lucia.fernandez@corredores.example>\n"
        "Asunto: RE: Caso escalado: inscripción PID 174097\n\n"
        "Necesitamos la carta de terminación.\n"
    ),
    "german": (
        "-----Ursprüngliche Nachricht-----\n"
        "Von: Escalations Desk <escalations@exchange.example>\n"
        "Gesendet: Montag, 3. Februar 2025 10:12\n"
        "An: Jan Schmidt <jan.schmidt@makler.example>\n"
        "Betreff: AW: Eskalierter Fall PID 174097\n\n"
        "Wir benötigen das Kündigungsschreiben.\n"
    ),
    "rule line, english": (
        "________________________________\n"
        "From: Escalations Desk <escalations@exchange.example>\n"
        "Sent: Monday, February 3, 2025 10:12 AM\n"
        "To: Dana Whitfield <dana.whitfield@brokers.example>\n"
        "Subject: RE: Escalated Case: Enrollment.PID #:174097\n\n"
        "We need the termination letter.\n"
    ),
    "rule line, spanish, no address": (
        "________________________________\n"
        "De: Mesa de escalamiento\n"
        "Enviado: lunes, 3 de febrero de 2025 10:12\n"
        "Para: Lucía Fernández\n"
        "Asunto: RE: Caso escalado\n\n"
        "Necesitamos la carta.\n"
    ),
    "headers alone (Outlook on the web)": (
        "From: Escalations Desk <escalations@exchange.example>\n"
        "Sent: Monday, February 3, 2025 10:12 AM\n"
        "To: Dana Whitfield <dana.whitfield@brokers.example>\n"
        "Subject: RE: Escalated Case: Enrollment.PID #:174097\n\n"
        "We need the termination letter.\n"
    ),
}


@pytest.mark.parametrize("kind", list(HISTORY))
def test_outlook_history_is_cut(kind: str) -> None:
    own = "The termination letter is attached.\n\nDana Whitfield\nNPN 1234567"
    assert new_text_of(f"{own}\n\n{HISTORY[kind]}") == own


@pytest.mark.parametrize("kind", list(HISTORY))
def test_a_forward_with_nothing_above_the_separator_is_kept_whole(kind: str) -> None:
    """A forward with no words of the writer's: the forwarded message is what the
    caseworker must read, so the whole text is kept, header block and all."""
    assert new_text_of(HISTORY[kind]) == HISTORY[kind].strip()


def test_a_coverage_period_is_not_a_header_block() -> None:
    body = (
        "Please correct the coverage dates for Person ID 174097:\n\n"
        "From: 01/01/2025\nTo: 03/31/2025\n\n"
        "The carrier shows April instead."
    )
    assert new_text_of(body) == body


# --- 4. supercite ----------------------------------------------------------------------------


def test_supercite_quotes_are_cut() -> None:
    body = (
        "Thanks, I will forward this to the carrier today.\n\n"
        "DW> Please confirm the plan ID for Person ID 174097.\n"
        "DW> The member changed plans in January.\n"
    )
    assert new_text_of(body) == "Thanks, I will forward this to the carrier today."


def test_indented_supercite_quotes_between_answers_are_cut() -> None:
    body = (
        "Dana Whitfield <dana.whitfield@brokers.example> writes:\n\n"
        "  DW> Please confirm the plan ID for Person ID 174097.\n\n"
        "It is 12345TX0010001.\n\n"
        "  DW> And the effective date?\n"
        "  DW>> (the member asked twice)\n\n"
        "March 1, 2025.\n"
    )
    assert new_text_of(body) == "It is 12345TX0010001.\n\nMarch 1, 2025."


# --- what is cut at the end, what is kept ----------------------------------------------------

OWN = "The 1095-A was re-issued for Person ID 174097."
ENDINGS = {
    "signature": "-- \nDana Whitfield\nLicensed Agent, NPN 1234567\n(555) 010-4477",
    "signature without the space": "--\nDana Whitfield\nBrokers Example LLC",
    "iPhone": "Sent from my iPhone",
    "iPhone, spanish": "Enviado desde mi iPhone",
    "Outlook mobile": "Get Outlook for iOS<https://aka.ms/o0ukef>",
    "Android, german": "Von meinem Android-Telefon gesendet",
    "list footer": (
        "_______________________________________________\n"
        "Brokers mailing list\n"
        "brokers@lists.exchange.example\n"
        "https://lists.exchange.example/mailman/listinfo/brokers"
    ),
    "sign-off and list footer": (
        "-Dana\n\n\n"
        "_______________________________________________\n"
        "Brokers mailing list\n"
        "https://lists.exchange.example/mailman/listinfo/brokers"
    ),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_signatures_and_footers_are_cut(ending: str) -> None:
    assert new_text_of(f"{OWN}\n\n{ENDINGS[ending]}\n") == OWN


@pytest.mark.parametrize(
    "last",
    [
        "Sent by certified mail on 11/02",
        "Sent via fax to the carrier yesterday",
        "sent with the renewal packet",
        "Enviado de vuelta al cliente el lunes",
    ],
)
def test_a_last_line_that_names_no_device_is_the_writers(last: str) -> None:
    """Only a client's footer is cut: it names a device, an app or a possession."""
    assert new_text_of(f"{OWN}\n{last}\n") == f"{OWN}\n{last}"


def test_a_signature_above_the_quote_is_cut_too() -> None:
    attribution = "El 3 feb 2025, a las 10:12, Mesa de escalamiento escribió:"
    body = f"{OWN}\n\nEnviado desde mi iPhone\n\n{attribution}\n> ¿Y el 1095-A?\n"
    assert new_text_of(body) == OWN


def test_code_indentation_is_kept() -> None:
    code = (
        "    curl -s https://api.exchange.example/v1/enrollments/174097\n"
        "returns 404 for me.  The whole script:\n\n"
        "    for id in 174097 174098; do\n"
        '        curl -s "https://api.exchange.example/v1/enrollments/$id"\n'
        "    done"
    )
    body = (
        f"{code}\n\nOn Mon, Feb 3, 2025 at 10:12 AM Escalations Desk "
        "<escalations@exchange.example> wrote:\n> Which call fails?\n"
    )
    assert new_text_of(body) == code


def test_an_indented_answer_under_a_quote_keeps_its_indentation() -> None:
    body = "> Which call fails?\n\n    GET /v1/enrollments/174097\n\nThat one.\n"
    assert new_text_of(body) == "    GET /v1/enrollments/174097\n\nThat one."


@pytest.mark.parametrize(
    "own",
    [
        "Here is another email\n\nSent from my desk, is much easier then my mobile phone.",
        "-- step one --\nUpload the 1095-A.\n-- step two --\nCall the carrier.",
        "Missing documents:\n-Proof of income\n-Proof of residency",
        "Effective date: 03/01/2025\nPlan: Silver 94\nSubject to verification.",
    ],
)
def test_the_writers_own_lines_that_look_alike_are_kept(own: str) -> None:
    assert new_text_of(own) == own


def test_dashes_over_a_long_text_divide_it_and_are_no_signature() -> None:
    body = OWN + "\n--\n" + "\n".join(f"Step {n}: check document {n}." for n in range(20))
    assert new_text_of(body) == body


# --- the contract ----------------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["", "   ", "\n\n", "\r\n \r\n"])
def test_a_blank_body_gives_an_empty_text(blank: str) -> None:
    assert new_text_of(blank) == ""


def test_a_body_that_is_all_quote_is_kept_whole() -> None:
    body = "> Please confirm the plan ID.\n> Thanks"
    assert new_text_of(body) == body


def test_crlf_is_read_as_lf() -> None:
    assert new_text_of(BOTTOM_POSTED.replace("\n", "\r\n")) == new_text_of(BOTTOM_POSTED)


def test_a_body_over_the_parse_limit_is_kept_whole() -> None:
    body = "Please see below.\n\n" + "> quoted line\n" * (reply_text.MAX_REPLY_PARSE // 14)
    assert len(body) > reply_text.MAX_REPLY_PARSE
    assert new_text_of(body) == body.strip()


def test_random_bodies_never_raise() -> None:
    rng = random.Random(21)
    pieces = [
        "> ", ">> ", "DW> ", "-- ", "--", "\n", "\r\n", "\r", " ", "\t", "On ", " wrote:", "@x.io",
        "<", ">", "From: a@b.example", "Sent: 10:12", "-----Original Message-----", "_" * 32,
        "Sent from my iPhone", "a écrit :", "\x00", "写道\uff1a", "10:12", "Hello", "é", "\ufeff",
    ]  # fmt: skip
    for _ in range(500):
        body = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 40)))
        assert isinstance(new_text_of(body), str)


# --- time ------------------------------------------------------------------------------------


def _seconds(text: str) -> float:
    start = time.perf_counter()
    new_text_of(text)
    return time.perf_counter() - start


def test_the_performance_traps_parse_in_well_under_a_second(
    shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pathological.txt (a regex backtracking trap) and email_long_quote.txt (750 KB),
    the latter parsed for real: the parse limit is lifted."""
    folder = shared_dir / "corpus" / "email_reply_parser" / "test" / "emails"
    monkeypatch.setattr(reply_text, "MAX_REPLY_PARSE", 10_000_000)
    for name in ("pathological.txt", "email_long_quote.txt"):
        assert _seconds((folder / name).read_text(encoding="utf-8")) < 0.5, name


@pytest.mark.parametrize(
    "line",
    ["Date: x", "note: x", "> q", "--", "On the 3rd", "Sent from my iPhone", "", "On 3 Feb <"],
)
def test_a_body_of_one_line_repeated_to_the_limit_parses_fast(line: str) -> None:
    """quotequail's header search takes time that grows with the square of a run of
    "Word: value" lines (40 s for this size): it is shown a bounded window."""
    body = (f"{line}\n" * (reply_text.MAX_REPLY_PARSE // (len(line) + 1)))[:-1]
    assert _seconds(body) < 1.0


# --- quotequail asked only when it may answer --------------------------------------------------


def test_quotequail_is_skipped_only_where_it_finds_nothing(shared_dir: Path) -> None:
    """On every text of the corpus, and on each of its line windows as the splitter shows
    them, a text ``may_hold_history`` passes over is one quotequail finds nothing in; and it
    does pass over plain text (else it would save nothing)."""
    texts = [_body(f.path) for f in corpus_files(shared_dir)]
    windows = [w for t in texts for w in _windows(t)]
    skipped = [w for w in windows if not may_hold_history(w)]
    assert all(quotequail.unwrap(w) is None for w in skipped)
    found = [w for w in windows if quotequail.unwrap(w) is not None]
    assert found and all(may_hold_history(w) for w in found)
    assert len(skipped) > len(windows) // 10, f"{len(skipped)} of {len(windows)} skipped"
    assert not may_hold_history("Hello team,\n\nThe 1095-A is wrong.\n\nThanks,\nSam")


def _body(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".txt":
        return raw.decode("utf-8", "replace").replace("\r\n", "\n")
    return parse_message(raw).text.replace("\r\n", "\n")


def _windows(text: str) -> list[str]:
    """The text, and what is left below each quote (the splitter asks again there)."""
    lines = text.split("\n")
    ends = [n + 1 for n, line in enumerate(lines[:-1]) if line[:1] == ">" != lines[n + 1][:1]]
    return [text, *("\n".join(lines[n:]) for n in ends[:5])]


# --- the corpora -----------------------------------------------------------------------------

TRIMMER = [
    "embedded_email_chinese.txt",
    "embedded_email_dutch_1.txt",
    "embedded_email_french_1.txt",
    "embedded_email_german_1.txt",
    "embedded_email_italian.txt",
    "embedded_email_norwegian.txt",
    "embedded_email_polish_1.txt",
    "embedded_email_portuguese.txt",
    "embedded_email_russian_1.txt",
    "embedded_email_spanish_1.txt",
    "embedded_email_swedish.txt",
    "embedded_email_ukrainian.txt",
    "forwarded_gmail.txt",
    "normalize_line_endings.txt",
    "signatures.txt",
    "usenet.txt",
]
TALON = [
    "android.eml",
    "aol.eml",
    "apple_mail.eml",
    "apple_mail_2.eml",
    "comcast.eml",
    "gmail.eml",
    "hotmail.eml",
    "iphone.eml",
    "outlook.eml",
    "sparrow.eml",
    "thunderbird.eml",
    "yahoo.eml",
]
# What github's email_reply_parser's tests say parse_reply gives (index.csv).
GITHUB = [
    ("email_2_1.txt", "Outlook with a reply"),
    ("email_2_2.txt", "Outlook with a reply directly above line"),
    ("email_2_3.txt", "Outlook with a reply directly above line"),
    ("email_BlackBerry.txt", "Here is another email"),
    ("email_iPhone.txt", "Here is another email"),
    ("email_multi_word_sent_from_my_mobile_device.txt", "Here is another email"),
    (
        "email_sent_from_my_not_signature.txt",
        "Here is another email\n\nSent from my desk, is much easier then my mobile phone.",
    ),
    ("email_1_4.txt", "Awesome! I haven't had another problem with it."),
    ("email_1_7.txt", ":+1:"),
    ("correct_sig.txt", "this is an email with a correct -- signature."),
    # no device named: a writer's line, as github's parser keeps it
    ("email_1_6.txt", "I get proper rendering as well.\n\nSent from a magnificent torch of pixels"),
]


def _folder(shared: Path, *parts: str) -> Path:
    return shared.joinpath("corpus", *parts)


def test_the_corpus_lists_are_the_corpus(shared_dir: Path) -> None:
    """Every pair and reply of the corpora is tested below: none added or gone unnoticed."""
    trimmer = _folder(shared_dir, "email_reply_trimmer", "test", "emails")
    talon = _folder(shared_dir, "talon", "tests", "fixtures", "standard_replies")
    assert sorted(p.name for p in trimmer.glob("*.txt")) == TRIMMER
    assert sorted(p.name for p in talon.glob("*.eml")) == TALON


@pytest.mark.parametrize("name", TRIMMER)
def test_email_reply_trimmer_pairs(shared_dir: Path, name: str) -> None:
    """Each reply of Discourse's trimmer reduces exactly to its trimmed twin."""
    root = _folder(shared_dir, "email_reply_trimmer", "test")
    source = (root / "emails" / name).read_text(encoding="utf-8")
    expected = (root / "trimmed" / name).read_text(encoding="utf-8")
    assert new_text_of(source) == expected.strip()


@pytest.mark.parametrize("name", TALON)
def test_talon_standard_replies(shared_dir: Path, name: str) -> None:
    """Each client's reply reduces to "Hello".  talon's companions of iphone and sparrow
    keep the signature under it (its quote extractor leaves signatures to its signature
    module); the new text cuts signatures as well."""
    folder = _folder(shared_dir, "talon", "tests", "fixtures", "standard_replies")
    assert parse_message((folder / name).read_bytes()).new_text == "Hello"


@pytest.mark.parametrize(("name", "expected"), GITHUB)
def test_email_reply_parser_visible_text(shared_dir: Path, name: str, expected: str) -> None:
    folder = _folder(shared_dir, "email_reply_parser", "test", "emails")
    assert new_text_of((folder / name).read_text(encoding="utf-8")) == expected
