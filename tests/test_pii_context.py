"""The guard's knowledge of the desk's world and of the writer: places, carriers,
hospitals and employers are no people; the producer's own signature block is theirs;
names inside web addresses belong to the address."""

from __future__ import annotations

import pytest

from pii_guard import NO_ALLOW, AllowList, PiiGuard
from pii_guard.signature import SignatureAnchors, signature_blocks
from pii_guard.world import load_world


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return PiiGuard.build()


KEVIN = AllowList(
    sender_name="Kevin Brooks",
    sender_email="kevin@brooksins.example",
    phones=("410-555-0142",),
    organisations=("Brooks Insurance Group",),
    terms=("Brooks Insurance Group",),
)
# the desk's team names, as ``desk_allow`` gives them from config.toml
DESK = AllowList(terms=("MHBE Escalated caseworkers Team", "MHBE Producer Operations Team"))


def _redacted(guard: PiiGuard, text: str, allow: AllowList = NO_ALLOW) -> str:
    return guard.redact(text, guard.scan(text, allow))


@pytest.mark.parametrize(
    "text",
    [
        "My client lives in Havre de Grace and was seen at Johns Hopkins.",
        "Her husband drives to Prince Frederick every day.",
        "The member in Glen Burnie was termed by Kaiser last week.",
        "Princess Anne office called; Kent Island too.",
        "She moved to Frederick, MD in March.",
        "He works at Hopkins now and has a Giant Food plan.",
        "Kaiser said the enrollment never arrived.",
        "Consumer is in Prince George's County, see the county office.",
        "Jai Medical Systems denied the claim.",
    ],
)
def test_places_carriers_and_employers_are_no_people(guard: PiiGuard, text: str) -> None:
    assert guard.scan(text) == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Mrs. Hopkins was admitted on Monday.", "Hopkins"),  # an honorific makes a person
        ("Frederick called me about his renewal.", "Frederick"),  # no preposition: a person
        ("My client Laurel Howard lost coverage.", "Laurel Howard"),
        ("Maria Gonzalez of Glen Burnie needs help.", "Maria Gonzalez"),
    ],
)
def test_people_named_like_places_are_still_people(guard: PiiGuard, text: str, name: str) -> None:
    assert name not in _redacted(guard, text)


def test_the_world_reads_saint_and_possessive_spellings() -> None:
    world = load_world()
    never_a_name = lambda word: False  # noqa: E731
    for text in ("Saint Marys County", "St. Mary's County", "Mount Airy", "Mt. Airy"):
        assert world.covers(text, 0, len(text), never_a_name), text


SIGNED = """Hi team,
My client Maria Gonzalez (cell 443-555-0100) lost her APTC.

Thanks,
Kevin Brooks, Senior Agent
Brooks Insurance Group | 12 Main St, Suite 200, Towson, MD 21204
Cell 410-555-0142 | Fax 410-555-0143 | kbrooks@brooksins.example
"""


def test_the_producers_signature_block_is_kept(guard: PiiGuard) -> None:
    redacted = _redacted(guard, SIGNED, KEVIN)
    for own in ("Kevin Brooks", "12 Main St, Suite 200, Towson, MD 21204", "410-555-0143"):
        assert own in redacted
    assert "kbrooks@brooksins.example" in redacted
    for consumer in ("Maria Gonzalez", "443-555-0100"):
        assert consumer not in redacted


def test_an_unknown_writer_has_no_signature_block(guard: PiiGuard) -> None:
    """A consumer writing about themselves signs with their own data."""
    redacted = _redacted(guard, SIGNED)
    assert "410-555-0143" not in redacted and "Kevin Brooks" not in redacted


def test_consumer_data_after_the_writers_name_mid_mail_is_redacted(guard: PiiGuard) -> None:
    text = "Hi,\nKevin Brooks here.\nClient Maria Gonzalez\nPhone 410-555-9999\n\nMore to say.\n"
    redacted = _redacted(guard, text, KEVIN)
    assert "Maria Gonzalez" not in redacted and "410-555-9999" not in redacted


def test_the_writers_contact_card_mid_mail_is_kept(guard: PiiGuard) -> None:
    text = (
        "Please update my record.\n\nMy information:\nKevin Brooks, NPN 19203344\n"
        "Brooks Insurance Group\n12 Main St, Suite 200, Towson, MD 21204\n\n"
        "Client Maria Gonzalez lives at 9 Elm Ct, Laurel, MD 20707.\n\nThanks\n"
    )
    redacted = _redacted(guard, text, KEVIN)
    assert "12 Main St, Suite 200, Towson, MD 21204" in redacted
    assert "Maria Gonzalez" not in redacted and "9 Elm Ct" not in redacted


def test_a_header_line_naming_the_writer_opens_no_card(guard: PiiGuard) -> None:
    text = (
        "Hi,\n\n-----Original Message-----\nTo: Kevin Brooks\nSubject: Rosa's renewal\n"
        "Client Rosa Lindqvist called again.\n"
    )
    assert "Rosa" not in _redacted(guard, text, KEVIN)


def test_identifiers_in_a_signature_block_are_still_redacted(guard: PiiGuard) -> None:
    text = "Thanks,\nKevin Brooks\nSSN 219-09-9999\n410-555-0142\n"
    assert "219-09-9999" not in _redacted(guard, text, KEVIN)


def test_a_block_ends_at_quoted_mail() -> None:
    anchors = SignatureAnchors(frozenset({"kevin", "brooks"}), frozenset(), frozenset(), ())
    text = "Thanks,\nKevin\nOn Mon, Desk wrote:\n> Client Ana Ruiz 410-555-0199\n"
    [(start, end)] = signature_blocks(text, anchors)
    assert text[start:end] == "Thanks,\nKevin\n"


def test_a_greeting_to_the_reader_is_no_signature() -> None:
    anchors = SignatureAnchors(frozenset({"sam"}), frozenset(), frozenset(), ())
    assert list(signature_blocks("Hi Sam,\nYour client's cell 410-555-0199\n", anchors)) == []


@pytest.mark.parametrize(
    "text",
    [
        "See https://www.harvard.edu/people for the list.",
        "Our site brooksins.com/Kevin has the forms.",
        "Forms at www.marylandhealthconnection.gov/Grace today.",
    ],
)
def test_names_inside_web_addresses_are_not_people(guard: PiiGuard, text: str) -> None:
    assert [f.entity_type for f in guard.scan(text)] == []


def test_a_consumer_email_address_is_still_redacted(guard: PiiGuard) -> None:
    assert "maria.gonzalez@gmail.example" not in _redacted(
        guard, "Her email is maria.gonzalez@gmail.example, please update it."
    )


def test_a_name_found_once_is_redacted_everywhere(guard: PiiGuard) -> None:
    text = (
        "My client Selamawit Tesfaye keeps getting a data match.\n"
        "Selamawit DOB: 03/09/1990\n"
        "Mark Ellison is the primary. Mark's member ID is on file. Only Mark shows.\n"
    )
    redacted = _redacted(guard, text)
    assert "Selamawit" not in redacted and "Mark" not in redacted


def test_each_part_of_a_double_surname_found_once_is_redacted_alone(guard: PiiGuard) -> None:
    text = (
        "FAITH N OYELARAN-MOSS 219-44-8731\n"
        "She kept her maiden name on some documents (Oyelaran) so check both.\n"
    )
    assert "Oyelaran" not in _redacted(guard, text)


def test_an_everyday_word_is_carried_only_where_it_reads_as_a_name(guard: PiiGuard) -> None:
    text = "His wife June Ellison is the dependent. June 5 is the deadline. Will you check?"
    redacted = _redacted(guard, text)
    assert "June Ellison" not in redacted
    assert "June 5 is the deadline" in redacted and "Will you check?" in redacted


@pytest.mark.parametrize(
    "text",
    [
        "Hola, mi cliente no recibió su tarjeta. Ella dice que pagó. Perdió la cobertura.",
        "Necesita ayuda con el crédito fiscal. Usó el portal pero no funcionó.",
        "¿Lo subimos por el portal de productores? Completé la renovación con la clienta.",
        # a Spanish subject's first words, capitalised as a name would be
        "Pago duplicado - tarjeta",
        "Agregar recién nacida - PID 704415",
        "Dependientes - PID 476530",
        "Comisiones faltantes - Kaiser - 3 clientes",
        "Cliente perdio trabajo - pasar a Medicaid",
    ],
)
def test_spanish_clauses_are_no_names(guard: PiiGuard, text: str) -> None:
    assert guard.scan(text) == []


@pytest.mark.parametrize(
    ("text", "name"), [("Mi clienta Rosa llamó ayer.", "Rosa"), ("Cliente Paz Rivas", "Paz Rivas")]
)
def test_spanish_words_that_are_names_stay_names(guard: PiiGuard, text: str, name: str) -> None:
    assert name not in _redacted(guard, text)


def test_a_consumer_in_spanish_mail_is_still_found(guard: PiiGuard) -> None:
    text = "Hola, mi clienta María Guadalupe Sánchez se casó y quiere agregar a su esposo."
    assert "María Guadalupe Sánchez" not in _redacted(guard, text)


def test_call_centres_and_role_mailboxes_are_public(guard: PiiGuard) -> None:
    text = (
        "Call 1-855-642-8572 or write brokerservices@uhc.example and escalatedcases@"
        "mhbe.state.md.us. Her cell is 410-555-8811 and her email maria.g@gmail.example."
    )
    redacted = _redacted(guard, text)
    for public in ("1-855-642-8572", "brokerservices@uhc.example", "mhbe.state.md.us"):
        assert public in redacted
    assert "410-555-8811" not in redacted and "maria.g@gmail.example" not in redacted


def test_people_who_work_with_the_writer_are_no_consumers(guard: PiiGuard) -> None:
    text = (
        "I spoke with Karen at CareFirst. My assistant Jenny will call. My client Maria Ruiz paid."
    )
    redacted = _redacted(guard, text)
    assert "Karen" in redacted and "Jenny" in redacted and "Maria Ruiz" not in redacted


def test_staff_of_a_line_a_carriers_rep_and_an_associate_are_no_consumers(
    guard: PiiGuard,
) -> None:
    text = (
        "Shanice on the hotline told me to wait, and Dolores said on the hotline it was fixed. "
        "Aetna rep Marlon gave ref AE-5521. Call my associate Priya Raman at 410-555-0161.\n\n"
        "> Gracias.\n> Ignacio Ferrer\n> Equipo de Casos Escalados\n"
    )
    redacted = _redacted(guard, text, KEVIN)
    for staff in ("Shanice", "Dolores", "Marlon", "Priya Raman", "410-555-0161", "Ignacio Ferrer"):
        assert staff in redacted, staff


@pytest.mark.parametrize(
    ("text", "staff"),
    [
        (
            "We met Gina Marsh and Tobias Reyes from CareFirst's exchange operations today.",
            ("Gina Marsh", "Tobias Reyes"),
        ),
        ("I spoke with Lena Wirth in Aetna's reconciliation unit.", ("Lena Wirth",)),
        (
            "I work with Ifeoma Ade, a navigator at HAM, and Mr. Pruitt, the financial counselor "
            "at UMMC.",
            ("Ifeoma Ade", "Pruitt"),
        ),
        ("Quedo atenta. Rocío, mi asistente, también puede.", ("Rocío",)),
        ("The Talbot County DSS worker (Mr. Ennals) told her to call.", ("Ennals",)),
        ("She sees Dr. Miriam Osei at Hopkins.", ("Miriam Osei",)),
        ("Wendell on the Escalated Cases team thought so.", ("Wendell",)),
        ("Member services (rep: Quentin, ref CF-0115) says no.", ("Quentin",)),
        ("My business partner Arjun Mehta finished the course.", ("Arjun Mehta",)),
        ("Mi compañera de oficina, Celia Ibarra, habló ayer.", ("Celia Ibarra",)),
        (">> Please do not include SSNs.\n>> Corinne Bale, Escalated Cases\n", ("Corinne Bale",)),
    ],
)
def test_professionals_named_beside_their_office_or_role_are_kept(
    guard: PiiGuard, text: str, staff: tuple[str, ...]
) -> None:
    redacted = _redacted(guard, text, KEVIN)
    for name in staff:
        assert name in redacted, name


@pytest.mark.parametrize(
    ("text", "consumer"),
    [
        ("My client Dr. Amina Yusuf lost coverage.", "Amina Yusuf"),
        ("The DSS said my client (Maria Lopez) is eligible.", "Maria Lopez"),
        ("My client Ana Ruiz and her son Omar Ruiz from Baltimore's west side unit.", "Omar"),
        ("Mi nombre es Altagracia Peña, mi agente no me contesta.", "Altagracia Peña"),
    ],
)
def test_a_consumer_beside_an_office_or_a_role_is_still_found(
    guard: PiiGuard, text: str, consumer: str
) -> None:
    assert consumer not in _redacted(guard, text, KEVIN)


def test_a_consumer_who_called_the_hotline_is_still_a_consumer(guard: PiiGuard) -> None:
    text = (
        "My client Maria Lopez on the hotline was told to wait; "
        "her son Omar at the call center too."
    )
    redacted = _redacted(guard, text, KEVIN)
    assert "Maria Lopez" not in redacted and "Omar" not in redacted


def test_a_consumer_moved_from_a_carrier_is_still_a_consumer(guard: PiiGuard) -> None:
    assert "Choi" not in _redacted(guard, "Please remove Mr. Choi from the Kaiser plan.")


def test_the_caseworker_greeted_is_no_consumer_in_mail_to_the_desk(guard: PiiGuard) -> None:
    text = "Hi Dana, quick one\nMy client Maria Ruiz lost coverage."
    to_the_desk = AllowList(greeting_names_the_desk=True)
    assert _redacted(guard, text, to_the_desk).startswith("Hi Dana,")
    assert "Dana" not in _redacted(guard, text)  # our own mail greets its reader: found


@pytest.mark.parametrize(
    ("text", "reader", "consumer"),
    [
        ("Hi Keisha - client is Dwayne Fletcher, still no card.", "Keisha", "Dwayne Fletcher"),
        ("Hey Priya — client Joy Castle bought Delta Dental.", "Priya", "Joy Castle"),
        ("Gloria — forwarding what my client Ana Ruiz sent me.", "Gloria", "Ana Ruiz"),
        ("Yesenia, buenas tardes:\n\nLa clienta Marta Ruiz llamó.", "Yesenia", "Marta Ruiz"),
        ("Hola Priya y Gloria,\n\nLa clienta Xiomara Paz llamó.", "Priya y Gloria", "Xiomara Paz"),
        ("Good morning Mr. Quinn,\n\nMy client Ana Ruiz.", "Mr. Quinn", "Ana Ruiz"),
        ("Got it, thanks Bethany. Will wait for Reggie Fox.", "Bethany", "Reggie Fox"),
        ("Gracias Marisol, ya el cliente Juan Soto recibió la tarjeta.", "Marisol", "Juan Soto"),
    ],
)
def test_the_reader_is_greeted_in_many_ways(
    guard: PiiGuard, text: str, reader: str, consumer: str
) -> None:
    redacted = _redacted(guard, text, AllowList(greeting_names_the_desk=True))
    assert reader in redacted and consumer not in redacted


def test_a_consumer_opening_a_mail_with_a_dash_is_still_found(guard: PiiGuard) -> None:
    text = "Maria Lopez - DOB 01/02/1980 called about her card."
    assert "Maria Lopez" not in _redacted(guard, text, AllowList(greeting_names_the_desk=True))


def test_the_writer_signs_with_a_short_form_of_their_name(guard: PiiGuard) -> None:
    robert = AllowList(sender_name="Robert Hale", sender_email="rhale@agency.example")
    text = "Client Maria Ruiz needs help.\n\nThanks,\nBob\nHale Agency | 410-555-0199 fax\n"
    redacted = _redacted(guard, text, robert)
    assert "Bob" in redacted and "410-555-0199" in redacted and "Maria Ruiz" not in redacted


@pytest.mark.parametrize(
    ("writer", "short"), [("Deborah Strickland", "Debbie"), ("Thomas Brannigan", "Tom")]
)
def test_more_short_forms_sign_for_the_writer(guard: PiiGuard, writer: str, short: str) -> None:
    allow = AllowList(sender_name=writer, sender_email="writer@agency.example")
    text = (
        f"Client Maria Ruiz needs help.\n\n{short}\n\n"
        f"On Tue, Feb 11, 2025 MHBE Escalated Cases wrote:\n> Good afternoon {short},\n"
    )
    redacted = _redacted(guard, text, allow)
    assert redacted.count(short) == 2 and "Maria Ruiz" not in redacted


def test_a_person_of_a_firm_named_after_someone_works_there(guard: PiiGuard) -> None:
    text = (
        "Su contador, el Sr. Efraín Ochoa de Ochoa Tax Services en Highlandtown, dijo que sí. "
        "The BOR went to Mr. Curtis Lam of Harbor Benefits Group (NPN 18830456). "
        "La señora Dinora Ayala de Girón tenía Medicaid con Wellpoint."
    )
    redacted = _redacted(guard, text, KEVIN)
    assert "Efraín Ochoa" in redacted and "Curtis Lam" in redacted
    assert "Dinora Ayala" not in redacted


def test_a_public_offices_number_on_its_line_is_the_offices(guard: PiiGuard) -> None:
    text = "  MVA Customer Service: 410-768-7000\n  Client cell: 410-555-0111\n"
    redacted = _redacted(guard, text, KEVIN)
    assert "410-768-7000" in redacted and "410-555-0111" not in redacted
    # a kind of number is no office ("Office", "Home office"): an unknown writer's own
    assert "410-555-0133" not in _redacted(guard, "Thanks,\nAna Ruiz\nOffice 410-555-0133\n")


def test_a_nicknamed_consumer_is_found_whole(guard: PiiGuard) -> None:
    redacted = _redacted(guard, 'Client is Oluwaseun "Seun" Bakare. Gerald (Gerry) Hutchins too.')
    assert "Seun" not in redacted and "Gerry" not in redacted


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Primary: Coleman, Tariq J.\n", "Coleman, Tariq J."),
        ("Client Cheikh Ndiaye called.", "Cheikh Ndiaye"),
        ("La Sra. Ana Karina de la Fuente Urdaneta llamó.", "Ana Karina de la Fuente Urdaneta"),
        ('Client is Chidinma "Chi-Chi" Okeke.', 'Chidinma "Chi-Chi" Okeke'),
        ("Hope Adeyemi (PID 223344) and her son Will were dropped.", "Will"),
        ("The Johnsons moved to Towson last spring.", "Johnsons"),
        # capitals with a bare initial; a role word heading the name
        ("The card reads DESMOND K OKAFOR-BELL now.", "DESMOND K OKAFOR-BELL"),
        ("Enrollee Md Shafiqul Alam\n", "Md Shafiqul Alam"),
        # an Arabic article joined to the surname, a widow's name, a suffix mid-sentence
        ("Primary: Samir Yousef al-Harbi, wife Huda al-Harbi.", "Samir Yousef al-Harbi"),
        ("Primary: Samir Yousef al-Harbi, wife Huda al-Harbi.", "Huda al-Harbi"),
        (
            "La clienta Rosa Elvira Chávez vda. de Linares llamó.",
            "Rosa Elvira Chávez vda. de Linares",
        ),
        ("ROSA ELVIRA CHÁVEZ VDA. DE LINARES\n", "ROSA ELVIRA CHÁVEZ VDA. DE LINARES"),
        (
            "La clienta Yesenia Marisol Portillo de Funes llamó.",
            "Yesenia Marisol Portillo de Funes",
        ),
        ("client Ramon Dela Paz Jr. and his wife", "Ramon Dela Paz Jr."),
        # initials, a household by its surname, a name with "de los", a name before an age
        ("Client R.T. (PID 380014) was terminated.", "R.T."),
        ("client initials M.A.P. per your request", "M.A.P."),
        ("Please check the Okonkwo-Reyes household (PID 688120).", "Okonkwo-Reyes"),
        ("La familia Zelaya llamó ayer.", "Zelaya"),
        ("La clienta María de los Ángeles Fuentes llamó.", "María de los Ángeles Fuentes"),
        (
            "ESPOSA: MARÍA DE LOS ÁNGELES FUENTES ROJAS — F.N. 01/09/1991\n",
            "MARÍA DE LOS ÁNGELES FUENTES ROJAS",
        ),
        ("- Hijos: Nayeli (8 años) y Josué (5 años)", "Nayeli"),
        ("helo, my wife Parveen Akhter Chowdhury insurance stop", "Parveen Akhter Chowdhury"),
        # more family words; a surname in lower case after an honorific
        ("Hablé con su nuera, Dilcia.", "Dilcia"),
        ("her son-in-law Tariku called", "Tariku"),
        ("la señora alvarado llamó de nuevo", "alvarado"),
        ("my client mrs. gonzalez called", "gonzalez"),
    ],
)
def test_a_name_is_redacted_whole(guard: PiiGuard, text: str, name: str) -> None:
    """Nothing of the name is left: not its initial, particles, nickname or the blanks."""
    findings = guard.scan(text)
    start = text.index(name)
    assert any(f.start <= start and start + len(name) <= f.end for f in findings), text


@pytest.mark.parametrize(
    "text",
    [
        "He should not even be in the APTC household.",
        "The Medicaid household and the Kaiser family plan differ.",
        "Invitation - Delmarva health underwriters meeting",
        # an honorific before one of English's commonest words; a premium is no cousin
        "Mr. and Mrs. said they would call.",
        "La prima Mensual subió a $412.",
    ],
)
def test_programs_and_firms_before_household_words_are_no_names(guard: PiiGuard, text: str) -> None:
    assert not [f for f in guard.scan(text) if f.entity_type == "PERSON"], text


@pytest.mark.parametrize(
    "text",
    [
        "The Browns played on Sunday and the Sales team met.",
        "The invoice for Jan 2026 and the ledger for Jan\u2013Oct 2025 are attached.",
        "Please send a new reset link; the payment link failed too.",
    ],
)
def test_months_teams_and_links_are_no_names(guard: PiiGuard, text: str) -> None:
    assert [f for f in guard.scan(text) if f.entity_type == "PERSON"] == []


def test_function_words_of_other_languages_are_no_names(guard: PiiGuard) -> None:
    text = "Hallo Fritz,\nwenn Sie am Freitag Zeit haben, das Server-Update ist fertig.\n"
    values = {text[f.start : f.end] for f in guard.scan(text) if f.entity_type == "PERSON"}
    assert not values & {"Sie", "Wenn", "Freitag", "Das", "Server"}


QUOTED_DESK_REPLY = """Thanks, see below.

> Hi Kevin,
> The consumer's income verification is pending.
>
> Tamika R.
> Escalated Cases Team
> Maryland Health Connection
"""


def test_an_office_signature_in_quoted_mail_is_the_office(guard: PiiGuard) -> None:
    assert "Tamika R." in _redacted(guard, QUOTED_DESK_REPLY, KEVIN)


def test_a_signature_line_with_a_bar_between_team_and_exchange_is_the_office(
    guard: PiiGuard,
) -> None:
    text = (
        "Sent the receipt.\n\n"
        "From: Escalated Cases Team\nSent: Tuesday, November 18, 2025 9:15 AM\n\n"
        "The carrier reports no binder payment. Please confirm the date.\n"
        "Jerome Williams\nEscalated Cases Team | Maryland Health Connection\n"
    )
    assert "Jerome Williams" in _redacted(guard, text, KEVIN)


LETTER = """Forwarding the notice she got:

Anne Arundel County Department of Social Services
80 West Street, Annapolis, MD 21401
410-269-4500

Dear Maria Gonzalez,
Your Medical Assistance ends on 12/31/2025.
"""


def test_a_letterhead_is_the_office_and_the_addressee_still_a_consumer(guard: PiiGuard) -> None:
    redacted = _redacted(guard, LETTER, KEVIN)
    assert "80 West Street, Annapolis, MD 21401" in redacted and "410-269-4500" in redacted
    assert "Maria Gonzalez" not in redacted


@pytest.mark.parametrize(
    "office",
    [
        "Maryland Health Connection, P.O. Box 857, Lanham, MD 20703",
        "the Prince George's County DSS, 425 Brightseat Road, Landover, MD 20785",
        "el Departamento de Servicios Sociales del Condado de Howard (7121 Columbia Gateway "
        "Drive, Columbia, MD 21046)",
    ],
)
def test_a_public_offices_address_on_its_line_is_the_offices(guard: PiiGuard, office: str) -> None:
    text = f"They said to mail it to {office} by Friday. Her home is 9 Elm Ct, Laurel, MD 20707."
    redacted = _redacted(guard, text, KEVIN)
    assert office in redacted and "9 Elm Ct" not in redacted


def test_a_consumers_address_after_a_carriers_name_in_prose_is_still_hers(
    guard: PiiGuard,
) -> None:
    text = (
        "Moved from Amerigroup/Wellpoint to her mother's. "
        "Family lives at 4 Oak St, Apt B, La Plata, MD 20646."
    )
    assert "La Plata, MD 20646" not in _redacted(guard, text, KEVIN)


def test_firm_addresses_and_the_people_beside_them_are_kept(guard: PiiGuard) -> None:
    text = (
        "cc: Colleen Marsh <cmarsh@fitzgeraldbenefits.example>\n"
        "Client email: maria.lopez@gmail.example, phone 410-555-0111\n"
    )
    redacted = _redacted(guard, text, KEVIN)
    assert "Colleen Marsh" in redacted and "cmarsh@fitzgeraldbenefits.example" in redacted
    assert "maria.lopez@gmail.example" not in redacted


def test_an_unknown_writer_signing_for_a_firm_is_still_redacted(guard: PiiGuard) -> None:
    """A consumer may write from work: their own block is not trusted as an office's."""
    text = "Please fix my coverage.\n\nThanks,\nMaria Gonzalez\nGiant Food Services\n410-555-0111\n"
    redacted = _redacted(guard, text)
    assert "Maria Gonzalez" not in redacted and "410-555-0111" not in redacted


def test_an_unknown_writer_signing_for_an_insurance_agency_is_a_producer(
    guard: PiiGuard,
) -> None:
    """Whoever writes to the desk for an agency is a producer or works for one; the
    consumer the mail is about is still one."""
    text = (
        "My client Rosa Delgado lost her APTC after the renewal.\n\n"
        "Thanks,\nDebbie Loockerman\nBay Country Insurance\n410-555-0170\n"
    )
    redacted = _redacted(guard, text)
    assert "Debbie Loockerman" in redacted and "410-555-0170" in redacted
    assert "Rosa Delgado" not in redacted


def test_a_name_with_an_office_after_it_on_its_line_works_there(guard: PiiGuard) -> None:
    text = (
        "> The adjustment was sent to the carrier on 8/12.\n"
        "> Monique Whitley, Producer Operations\n"
        "> Casey Morgan, Escalated Cases Team\n\n"
        "The carrier dropped my client Maria Gonzalez, Kaiser Permanente\n"
        "Please reinstate my client Rosa Delgado (CareFirst)\n"
    )
    redacted = _redacted(guard, text, DESK)
    assert "Monique Whitley" in redacted and "Casey Morgan" in redacted
    assert "Maria Gonzalez" not in redacted and "Rosa Delgado" not in redacted


def test_professionals_and_their_numbers_are_no_consumers(guard: PiiGuard) -> None:
    text = (
        "The hospital's financial counselor (Ms. Renee Dorsey, 410-555-0193) holds the claim."
        " Her CPA, Tom Whitcomb, filed the 8962. My client Maria Lopez, 410-555-0111, paid.\n"
    )
    redacted = _redacted(guard, text, KEVIN)
    for kept in ("Renee Dorsey", "410-555-0193", "Tom Whitcomb"):
        assert kept in redacted
    assert "Maria Lopez" not in redacted and "410-555-0111" not in redacted


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("UHC's broker services rep, Carla Dunmore, told me the 834 went out.", "Carla Dunmore"),
        ("My office assistant, Precious Nwosu, keeps our commission ledger.", "Precious Nwosu"),
        ("He said he would flag it for the team lead, Ms. Olivia Grant.", "Olivia Grant"),
        ("Also, Will Patterson from my office is licensed too.", "Will Patterson"),
        ("la Sra. Daniela Bustamante de mi oficina le puede ayudar.", "Daniela Bustamante"),
        ("Also, I had a call with Ruth A. on your team on 11/25 about this.", "Ruth A."),
    ],
)
def test_people_who_work_with_the_writer_or_an_office_are_kept(
    guard: PiiGuard, text: str, kept: str
) -> None:
    redacted = _redacted(guard, text + " My client Maria Lopez lost her APTC.", KEVIN)
    assert kept in redacted and "Maria Lopez" not in redacted


@pytest.mark.parametrize(
    "text",
    [
        "My client's son, Mateo Rivera, needs to be added.",
        "The consumer's husband Pedro Alvarado called the hotline.",
    ],
)
def test_family_is_no_colleague(guard: PiiGuard, text: str) -> None:
    redacted = _redacted(guard, text, KEVIN)
    assert "Rivera" not in redacted and "Alvarado" not in redacted


@pytest.mark.parametrize("opening", ["Brian,\n\n", "Olivia / Tamika,\n\n"])
def test_a_mail_opening_with_the_readers_name_alone(guard: PiiGuard, opening: str) -> None:
    text = opening + "My client Maria Lopez lost coverage.\n"
    redacted = _redacted(guard, text, AllowList(greeting_names_the_desk=True))
    assert redacted.startswith(opening) and "Maria Lopez" not in redacted


def test_a_consumers_name_opening_a_mail_is_no_reader(guard: PiiGuard) -> None:
    text = "Maria Gonzalez\nDOB 04/12/1986\nPlease check her enrollment.\n"
    redacted = _redacted(guard, text, AllowList(greeting_names_the_desk=True))
    assert "Maria Gonzalez" not in redacted


def test_a_letters_address_block_in_capitals_is_found(guard: PiiGuard) -> None:
    text = "FAITH N. OYELARAN-MOSS\n1420 E 33RD ST APT 2\nBALTIMORE MD 21218\n"
    redacted = _redacted(guard, text)
    assert "OYELARAN" not in redacted and "33RD" not in redacted


def test_headings_in_capitals_are_no_names(guard: PiiGuard) -> None:
    text = "IMPORTANT NOTICE ABOUT YOUR COVERAGE. PLEASE READ CAREFULLY. SEP APTC HMO\n"
    assert guard.scan(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "MVA customer service 410-768-7000 and FEIN 52-2287104 on the letter.",
        "MD Producer License 2099155, NPN 18234567.",
        "Mailed by USPS 9400 1118 9922 3301 4477 85 on Monday.",
    ],
)
def test_offices_numbers_are_no_consumers_identifiers(guard: PiiGuard, text: str) -> None:
    kinds = {f.entity_type for f in guard.scan(text)}
    assert not kinds & {"US_DRIVER_LICENSE", "ADDRESS"}


def test_a_consumer_at_a_hospital_is_still_a_consumer(guard: PiiGuard) -> None:
    assert "Maria" not in _redacted(guard, "My client Maria at Hopkins needs her card.")


def test_a_tables_header_is_no_office_and_its_rows_stay_consumers(guard: PiiGuard) -> None:
    text = (
        "Nombre                     Parentesco   Fecha nac.    Programa\n"
        "Yesica Marleny Orellana    Titular      08/05/1987    QHP\n"
        "Kimberly Orellana Cruz     Hija         14/02/2012    MCHP\n"
    )
    redacted = _redacted(guard, text, KEVIN)
    assert "Orellana" not in redacted and "08/05/1987" not in redacted


@pytest.mark.parametrize("text", ["Household Summary - Application ID 2025-MD-7741093\n"])
def test_a_heading_word_is_no_name(guard: PiiGuard, text: str) -> None:
    assert [f for f in guard.scan(text) if f.entity_type == "PERSON"] == []
