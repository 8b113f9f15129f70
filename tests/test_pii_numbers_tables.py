"""Issue 23: last digits, carrier IDs by label, birth phrases, pasted tables, and numbers
that are no one's (business labels, machine headers), in English and Spanish."""

from __future__ import annotations

import pytest

from pii_guard import Finding, PiiGuard
from pii_guard.recognizers.tables import KEEP, TableRecognizer, column_kind, settle, tables


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return PiiGuard.build()


def found(guard: PiiGuard, text: str) -> dict[str, tuple[str, float]]:
    """``{value: (entity type, score)}`` of the findings in ``text``."""
    return {text[f.start : f.end]: (f.entity_type, f.score) for f in guard.scan(text)}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("her ssn ends 4321, the carrier has it", "4321"),
        # a word processor's en and em dashes
        ("social security # 219 \u2013 09 \u2013 9999 on it", "219 \u2013 09 \u2013 9999"),
        ("SSN 219\u201409\u20149999", "219\u201409\u20149999"),
    ],
)
def test_more_ways_an_ssn_is_written(guard: PiiGuard, text: str, value: str) -> None:
    assert found(guard, text)[value][0] == "US_SSN"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("ssn last4 6642", "6642"),
        ("SSN4: 6643", "6643"),
        ("Last four of SSN are 6644 and 6645.", "6645"),
    ],
)
def test_last_four_written_short_or_listed(guard: PiiGuard, text: str, value: str) -> None:
    assert found(guard, text)[value][0] == "US_SSN"


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("Her SSN ending 4321 is on file.", "4321", "US_SSN"),
        ("the last 4 of her social 4321 match", "4321", "US_SSN"),
        ("SSN on the app should end in 3390.", "3390", "US_SSN"),
        ("SSN xxx-xx-4321 on the application", "xxx-xx-4321", "US_SSN"),
        ("it shows ***-**-4321 in the portal", "***-**-4321", "US_SSN"),
        ("su seguro social con terminación 4321", "4321", "US_SSN"),
        ("los últimos cuatro de su seguro social son 4321", "4321", "US_SSN"),
        ("Paid with the card ending in 7731.", "7731", "CREDIT_CARD"),
        ("la tarjeta terminada en 7731 fue rechazada", "7731", "CREDIT_CARD"),
        ("card **** **** **** 7731 was charged", "**** **** **** 7731", "CREDIT_CARD"),
        ("drafted from the acct ending 0912 twice", "0912", "US_BANK_NUMBER"),
        ("de la cuenta con terminación 0912", "0912", "US_BANK_NUMBER"),
    ],
)
def test_last_digits_are_found_as_their_type(
    guard: PiiGuard, text: str, value: str, entity: str
) -> None:
    kind, score = found(guard, text)[value]
    assert kind == entity and score >= 0.6  # redacted, and enough to reject


@pytest.mark.parametrize(
    "text",
    [
        "Coverage ending 2025 for the household.",  # an "ending" with no kind word
        "The plan year ending in 2026 starts over.",
        "Her SSN is on file; we spoke in 2025.",  # a kind word, no phrase
        "Call xxx-xxx-4321 for the carrier.",  # a masked phone is no SSN
        "Revenue for Q3 2025 is flat.",
    ],
)
def test_four_digits_without_their_phrase_and_kind_stay(guard: PiiGuard, text: str) -> None:
    kinds = {kind for kind, _ in found(guard, text).values()}
    assert not kinds & {"US_SSN", "CREDIT_CARD", "US_BANK_NUMBER"}


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("The member ID 123456789 is wrong.", "123456789", "MEMBER_ID"),
        ("Her UHC member ID is 102948377-01.", "102948377-01", "MEMBER_ID"),
        ("MRN 4455667 at Holy Cross", "4455667", "MEMBER_ID"),
        ("subscriber # 998877665 on the card", "998877665", "MEMBER_ID"),
        ("Número de miembro 12345678 en la tarjeta", "12345678", "MEMBER_ID"),
        ("ID de miembro: 87654321", "87654321", "MEMBER_ID"),
        ("Medicaid 7104 2286 593 was approved", "7104 2286 593", "MEDICAID_ID"),
        ("MA# 12345 678901 since March", "12345 678901", "MEDICAID_ID"),
    ],
)
def test_carrier_and_medicaid_ids_by_their_label(
    guard: PiiGuard, text: str, value: str, entity: str
) -> None:
    kind, score = found(guard, text)[value]
    assert kind == entity and score >= 0.85


@pytest.mark.parametrize(
    "text",
    [
        "The member portal had 1234 5678 901 visits.",  # grouped digits with no Medicaid word
        "Group of 12345678 people in the report",
    ],
)
def test_digits_without_a_carrier_label_are_no_member_id(guard: PiiGuard, text: str) -> None:
    assert not any(kind in {"MEMBER_ID", "MEDICAID_ID"} for kind, _ in found(guard, text).values())


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Newborn: she had a baby on 3/14/2025.", "3/14/2025"),
        ("F. nac. 12/05/1980", "12/05/1980"),
        ("nac. 1/2/1979 en Lima", "1/2/1979"),
        ("su cumpleaños es 4/5/1990", "4/5/1990"),
        ("tuvo a su bebé el 2 de enero de 2026 en el hospital", "2 de enero de 2026"),
        ("her dob is 7/4/59 not 7/4/95", "7/4/95"),
        ("the DOB for my son says 2/14/2015 and it should be 2/4/2015.", "2/4/2015"),
        ("su fecha de nacimiento dice 3/4/1985 pero debe ser 4/3/1985", "4/3/1985"),
        ("- Will Whitman, born 2016", "2016"),
        ("THE CLIENT IS ROBERT GREAVES, BORN IN 1958, LAST 4 OF SSN 0613", "1958"),
        ("nacido en 1985 en El Salvador", "1985"),
        ("Her daughter was born 2019. She is on MCHP.", "2019"),
        # a day and month without the year
        ("the baby was born april 9 at Shady Grove", "april 9"),
        ("el niño nació el 14 de octubre.", "14 de octubre"),
        ("client turns 65 on August 21 and has Part A", "August 21"),
        # a month's name between slashes, Spanish abbreviations, spoken Spanish
        ("DOB: 9/ago/2016", "9/ago/2016"),
        ("fecha de nacimiento 03/marzo/1971", "03/marzo/1971"),
        ("nacido el 4 dic. 1966", "4 dic. 1966"),
        ("su fecha de nacimiento es 8 de junio del 79", "8 de junio del 79"),
        ("nació el 11 del 10 del 1988", "11 del 10 del 1988"),
    ],
)
def test_birth_phrases_make_a_date_a_birth_date(guard: PiiGuard, text: str, value: str) -> None:
    assert found(guard, text)[value] == ("DATE_OF_BIRTH", 0.9)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Release 17.11.2009 shipped with the fix.", "17.11.2009"),  # dotted, no context
        ("Subimos su acta de nacimiento por el portal el 10/20/2025.", "10/20/2025"),
        ("The birth certificate was uploaded 10/20/2025.", "10/20/2025"),
        ("The plan was effective 01/01/2026 and it should be 02/01/2026", "02/01/2026"),
        ("She was born in Baltimore and moved in 2016.", "2016"),
    ],
)
def test_dates_that_are_not_births_stay(guard: PiiGuard, text: str, value: str) -> None:
    assert value not in found(guard, text)


@pytest.mark.parametrize(
    "text",
    [
        "Order number 5551234567 was shipped.",
        "confirmation 987654321 for the payment",
        "case #4455667788 is still open",
        "Error code 2147942402 when uploading.",
        "número de confirmación 987654321",
        "transaction ID 4111111111111111 went through",
        "SFS:(13230040)(4022899009)(376014)(38070700018);DIR:OUT;",
        "X-Microsoft-Antispam: BCL:0;ARA:13230040|4022899009|38070700018;",
        "Message-ID: <CH0PR12MB53721234567890123456@CH0PR12MB5372.namprd12.prod.outlook.com>",
        "References: <abc@mail.gmail.com> <CAHk=xyz@mail.gmail.com>",
        "<1234567890123456.JavaMail.root@mx.example.com>",
    ],
)
def test_business_and_machine_numbers_are_no_ones(guard: PiiGuard, text: str) -> None:
    assert [value for value in found(guard, text) if any(c.isdigit() for c in value)] == []


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("call her at 4105550199 tonight", "4105550199", "PHONE_NUMBER"),
        ("SSN:123456789; DOB on file", "123456789", "US_SSN"),
        ("To: Maria <maria.lopez@gmail.com>", "maria.lopez@gmail.com", "EMAIL_ADDRESS"),
        ("<maria.lopez@gmail.com>", "maria.lopez@gmail.com", "EMAIL_ADDRESS"),
    ],
)
def test_the_same_shapes_without_label_or_header_are_found(
    guard: PiiGuard, text: str, value: str, entity: str
) -> None:
    assert found(guard, text)[value][0] == entity


TAB_TABLE = (
    "Name\tDOB\tSSN\tPerson ID\tEffective date\tPlan\tStatus\n"
    "Maria Lopez\t04/12/1986\t219-09-9999\t552031\t01/01/2026\tCareFirst Gold 1000\tActive\n"
    "John Smith\t3/4/1979\t123456789\t552032\t02/01/2026\tKaiser Silver 2500\tPending\n"
)
PIPE_TABLE = (
    "| Nombre | Fecha de nacimiento | ID de miembro | PID | Prima |\n"
    "|---|---|---|---|---|\n"
    "| Ana Ruiz | 05/06/1990 | 900123456 | 771203 | $412.55 |\n"
)
CSV_TABLE = (
    "Name,Address,Medicaid ID,Person ID,Effective Date\n"
    'Kim Tran,"4410 Harford Rd, Baltimore, MD 21214",41234567890,552031,01/01/2026\n'
    "Ed Park,12 Main St, Towson, MD 21204,41234567891,552032,02/01/2026\n"
)
SPACED_TABLE = (
    "PID    Name             Effective    Phone\n"
    "883120 Robert Chen      01/01/2026   (443) 555-0187\n"
    "883121 Aisha Patel      02/01/2026   410-555-0199\n"
)


def cells(text: str) -> dict[str, str]:
    return {
        text[f.start : f.end]: f.entity_type
        for f in TableRecognizer().analyze(text, ["PERSON", *ENTITIES])
    }


ENTITIES = ("DATE_OF_BIRTH", "US_SSN", "MEMBER_ID", "MEDICAID_ID", "PHONE_NUMBER", "ADDRESS")


def test_a_tab_table_is_read_by_its_columns() -> None:
    assert cells(TAB_TABLE) == {
        "Maria Lopez": "PERSON",
        "04/12/1986": "DATE_OF_BIRTH",
        "219-09-9999": "US_SSN",
        "John Smith": "PERSON",
        "3/4/1979": "DATE_OF_BIRTH",
        "123456789": "US_SSN",
    }


def test_a_spanish_pipe_table_is_read_by_its_columns() -> None:
    assert cells(PIPE_TABLE) == {
        "Ana Ruiz": "PERSON",
        "05/06/1990": "DATE_OF_BIRTH",
        "900123456": "MEMBER_ID",
    }


def test_a_csv_address_written_with_commas_stays_in_its_column() -> None:
    assert cells(CSV_TABLE) == {
        "Kim Tran": "PERSON",
        "4410 Harford Rd, Baltimore, MD 21214": "ADDRESS",
        "41234567890": "MEDICAID_ID",
        "Ed Park": "PERSON",
        "12 Main St, Towson, MD 21204": "ADDRESS",
        "41234567891": "MEDICAID_ID",
    }


def test_a_space_aligned_table_splits_cells_at_its_columns() -> None:
    assert cells(SPACED_TABLE) == {
        "Robert Chen": "PERSON",
        "(443) 555-0187": "PHONE_NUMBER",
        "Aisha Patel": "PERSON",
        "410-555-0199": "PHONE_NUMBER",
    }


@pytest.mark.parametrize("table", [TAB_TABLE, PIPE_TABLE, CSV_TABLE, SPACED_TABLE])
def test_person_ids_effective_dates_and_plans_survive_the_guard(
    guard: PiiGuard, table: str
) -> None:
    redacted = guard.redact(table, guard.scan(table))
    for kept in ("552031", "552032", "771203", "883120", "01/01/2026", "CareFirst Gold 1000"):
        assert kept in redacted or kept not in table


def test_settle_keeps_a_finding_off_kept_cells_and_rows() -> None:
    # what a recognizer reading prose might find: one "address" over a whole row
    start = SPACED_TABLE.index("883121")
    end = SPACED_TABLE.index("02/01/2026") + len("02/01/2026")
    settled = settle(SPACED_TABLE, [Finding("ADDRESS", start, end, 0.5)])
    assert [SPACED_TABLE[f.start : f.end] for f in settled] == ["Aisha Patel"]


@pytest.mark.parametrize(
    "text",
    [
        # a sentence split at its commas is no header
        "Name, DOB, SSN and address are required, thanks\nPlease send them, today, Bob\n",
        "Hi, thanks, regards\nMaria, Lopez, here\n",
        "Plan | Carrier | Premium\nGold 1000 | Kaiser | $300.00\n",  # only kept columns
    ],
)
def test_prose_and_tables_without_personal_columns_give_no_cells(text: str) -> None:
    assert cells(text) == {}


def test_column_names_in_both_languages() -> None:
    assert column_kind("D.O.B.") == "DATE_OF_BIRTH"
    assert column_kind("SS#") == "US_SSN"
    assert column_kind("Fecha de nacimiento") == "DATE_OF_BIRTH"
    assert column_kind("MA ID") == "MEDICAID_ID"
    assert column_kind("Person ID") == KEEP
    assert column_kind("Effective Date") == KEEP
    assert column_kind("Notes") is None
    assert [len(t.rows) for t in tables(TAB_TABLE + "\nThanks,\nKevin\n")] == [2]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Member ID: XEH 884207913", "XEH 884207913"),
        ("My member ID with Delta was 1438866201.", "1438866201"),
        ("Número de miembro temporal de UHC: 918442073-00", "918442073-00"),
        ("His Person ID is 581447. Kaiser number 31055829.", "31055829"),
        ("Member ID 1234-5678-90 on the new card", "1234-5678-90"),
        ("member id 4455 6677 01 (new card)", "4455 6677 01"),
        ("her Priority Partners ID 123456789", "123456789"),
        ("Maryland Physicians Care member # 44556677", "44556677"),
    ],
)
def test_member_ids_a_few_words_after_their_label(guard: PiiGuard, text: str, value: str) -> None:
    kind, _ = found(guard, text)[value]
    assert kind == "MEMBER_ID"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("The member number on the temporary card they mailed is 918442073", "918442073"),
        ("Her UHC card says 918442073, the portal another.", "918442073"),
        ("mi cliente tiene el ID 918442073 de CareFirst", "918442073"),
        ("ID: 918442073 (CareFirst)", "918442073"),
    ],
)
def test_a_carriers_number_a_sentence_from_its_carrier(
    guard: PiiGuard, text: str, value: str
) -> None:
    assert found(guard, text)[value][0] == "MEMBER_ID"


@pytest.mark.parametrize(
    "text",
    [
        "The NPN Kaiser has on file for these is 20114578",
        "Kaiser sent confirmation 12345678 yesterday",
        "I lost my credit card 180016070420458 at the Kaiser clinic",
        "Call UnitedHealthcare at 8005551234 for the member",
    ],
)
def test_other_numbers_near_a_carrier_are_no_member_id(guard: PiiGuard, text: str) -> None:
    assert "MEMBER_ID" not in {kind for kind, _ in found(guard, text).values()}


@pytest.mark.parametrize(
    "text",
    [
        "Mi NPN es 18227644 y el número de licencia de Maryland es 2187703.",
        "My NPN is 15776402 and MD license 2204519.",
    ],
)
def test_a_producers_own_licence_is_no_drivers_licence(guard: PiiGuard, text: str) -> None:
    assert "US_DRIVER_LICENSE" not in {kind for kind, _ in found(guard, text).values()}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Her driver's license is K12345678 and my NPN is 1234567", "K12345678"),
        ("His license number is A1234567 per the MVA", "A1234567"),
        ("her license 7788990 expired last month", "7788990"),
    ],
)
def test_a_consumers_licence_is_still_one(guard: PiiGuard, text: str, value: str) -> None:
    assert found(guard, text)[value][0] == "US_DRIVER_LICENSE"


def test_the_report_of_a_birth_is_a_business_date(guard: PiiGuard) -> None:
    text = "The baby was born 10/19/2025. Mom reported the birth in the portal on 10/24/2025."
    values = found(guard, text)
    assert values["10/19/2025"][0] == "DATE_OF_BIRTH" and "10/24/2025" not in values


# --- forms: one labelled value a line, enumerated headers, amounts in comma rows -----------


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("4 Recipient's name: FAITH N. OYELARAN-MOSS\n", "FAITH N. OYELARAN-MOSS", "PERSON"),
        ("Client name: HOPE WILLIAMS\nThanks", "HOPE WILLIAMS", "PERSON"),
        ("Name: will grant\n", "will grant", "PERSON"),
        ("Nombre del hijo: mateo paz\n", "mateo paz", "PERSON"),
        ("Spouse: GRANT T. HUNTER\n", "GRANT T. HUNTER", "PERSON"),
        ("MRN: 00123456\n", "00123456", "MEMBER_ID"),
        ("Member ID: W123456789 (Kaiser)\n", "W123456789", "MEMBER_ID"),
        ("  Número de registro médico (MRN): 000-118-77-204\n", "000-118-77-204", "MEMBER_ID"),
        ("Medicaid #: 1234 5678 901  Person ID: 174097\n", "1234 5678 901", "MEDICAID_ID"),
        # a printed summary's dot leaders, and the names a form asks for besides "Name"
        ("  Name .............. Lena Marsh Oduya\n", "Lena Marsh Oduya", "PERSON"),
        ("  Maiden name ..... Lena Pruitt\n", "Lena Pruitt", "PERSON"),
        ("Previous name: Kofi Mensah-Boateng\n", "Kofi Mensah-Boateng", "PERSON"),
        ("Nombre anterior: rosa ibañez\n", "rosa ibañez", "PERSON"),
        ("Subscriber\u2026 Dale Tompkins\n", "Dale Tompkins", "PERSON"),
        ("Kaiser #: 30017745\n", "30017745", "MEMBER_ID"),
    ],
)
def test_a_labelled_line_says_what_its_value_is(
    guard: PiiGuard, text: str, value: str, entity: str
) -> None:
    assert found(guard, text)[value][0] == entity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Member ID on the card is QRT 551 020 884 02.", "QRT 551 020 884 02"),
        ("su número de miembro de CareFirst: 7WX 0310 4452", "7WX 0310 4452"),
        ("Her husband's Wellpoint ID is HLM 330 118 726", "HLM 330 118 726"),
        ("my member ID on the temporary card is 550182733-02", "550182733-02"),
        ("The subscriber ID for the wife is 610334512-02.", "610334512-02"),
        ("Dental ID: DQ-5512-0071-09", "DQ-5512-0071-09"),
        ("her insurance card number is 771204558", "771204558"),
    ],
)
def test_a_cards_prefix_and_digit_groups_after_a_label(
    guard: PiiGuard, text: str, value: str
) -> None:
    assert found(guard, text)[value][0] == "MEMBER_ID"


def test_a_ticket_in_groups_is_no_member_id(guard: PiiGuard) -> None:
    assert "MEMBER_ID" not in {
        kind for kind, _ in found(guard, "Ticket ID is INC 4455 2211 99").values()
    }


def test_a_csv_exports_snake_case_headers_name_its_columns(guard: PiiGuard) -> None:
    text = (
        "person_id,last_name,first_name,date_of_birth,kp_mrn\n"
        "301122,Addo,Efua,1981-03-09,21-730-5521\n"
    )
    values = found(guard, text)
    assert values["Addo"][0] == values["Efua"][0] == "PERSON"
    assert values["1981-03-09"][0] == "DATE_OF_BIRTH" and values["21-730-5521"][0] == "MEMBER_ID"
    assert "301122" not in values


def test_a_nickname_in_parentheses_is_no_part_of_the_labelled_name(guard: PiiGuard) -> None:
    text = '  Name ........ Oduya, Kwame ("Kojo")\n'
    assert found(guard, text)["Oduya, Kwame"][0] == "PERSON"


def test_a_column_named_after_a_carrier_holds_its_member_ids(guard: PiiGuard) -> None:
    text = "Miembro\tFecha Nac.\tID UHC\nPaz Romero\t03/02/1990\t551200874-02\n"
    assert column_kind("ID UHC") == column_kind("CareFirst member #") == "MEMBER_ID"
    assert found(guard, text)["551200874-02"][0] == "MEMBER_ID"


@pytest.mark.parametrize(
    "text",
    [
        "Name: see attached\n",
        "Name: N/A\n",
        "Agency name: Chesapeake Benefits Group\n",
        "Plan name: CareFirst BlueChoice HMO Silver\n",
        "Marketplace-assigned policy number: 2024-0881375-01\n",
        "Person ID: 174097\nEffective date: 01/01/2026\n",
        "  Plan .............. CareFirst BlueChoice HMO Silver\n",
        "We checked the name... it was right\n",
    ],
)
def test_a_label_for_the_desk_or_a_value_that_is_no_name_stays(guard: PiiGuard, text: str) -> None:
    assert not found(guard, text), text


def test_a_forms_enumerated_headers_and_a_plan_with_a_comma_amount() -> None:
    assert column_kind("A. Covered individual name") == "PERSON"
    assert column_kind("(c) DOB") == "DATE_OF_BIRTH" and column_kind("D.O.B.") == "DATE_OF_BIRTH"
    assert column_kind("Agency name") is None
    text = (
        "PID,Consumer,Effective,Plan,Monthly Premium\n"
        '630021,"WASHINGTON, Cash T.",07/01/2025,BlueChoice HMO Silver $3,500,$412.10\n'
    )
    cells = {text[s:e] for t in tables(text) for row in t.rows for _, (s, e) in row}
    assert {"WASHINGTON, Cash T.", "BlueChoice HMO Silver $3,500", "$412.10"} <= cells
    names = [text[f.start : f.end] for f in TableRecognizer().analyze(text, {"PERSON"})]
    assert names == ["WASHINGTON, Cash T."]


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        (
            "her SSN is two one nine, zero nine, nine nine nine nine",
            "two one nine, zero nine, nine nine nine nine",
            "US_SSN",
        ),
        (
            "su teléfono es tres cero uno, cinco cinco cinco, cero uno nueve dos",
            "tres cero uno, cinco cinco cinco, cero uno nueve dos",
            "PHONE_NUMBER",
        ),
        (
            "llame al dos cuarenta - cinco cinco cinco - cero uno cinco ocho hoy",
            "dos cuarenta - cinco cinco cinco - cero uno cinco ocho",
            "PHONE_NUMBER",
        ),
    ],
)
def test_numbers_spelt_a_digit_at_a_time(
    guard: PiiGuard, text: str, value: str, entity: str
) -> None:
    assert found(guard, text)[value][0] == entity


@pytest.mark.parametrize(
    "text", ["I have one or two questions", "one, two, three options", "forty-five minutes"]
)
def test_number_words_in_prose_stay(guard: PiiGuard, text: str) -> None:
    assert not found(guard, text)
