"""The PII guard's engine: what it finds, what it never flags, and what it never leaks."""

from __future__ import annotations

import logging
import random
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pii_guard import AllowList, Finding, GuardSettings, PiiEngineError, PiiGuard, is_scannable
from pii_guard.recognizers import numbers


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return PiiGuard.build()


def found(guard: PiiGuard, text: str, allow: AllowList | None = None) -> dict[str, str]:
    """``{value: entity type}`` of the findings in ``text``."""
    return {text[f.start : f.end]: f.entity_type for f in guard.scan(text, allow or AllowList())}


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("Client SSN: 123-45-6789, please update.", "123-45-6789", "US_SSN"),
        ("social security number 321 54 9876 for the spouse", "321 54 9876", "US_SSN"),
        ("His SS # is 078051120.", "078051120", "US_SSN"),
        ("ITIN 987-65-4321 was entered", "987-65-4321", "US_ITIN"),
        ("D.O.B.: 02-14-1975", "02-14-1975", "DATE_OF_BIRTH"),
        ("born on 14 February 1975 in Lima", "14 February 1975", "DATE_OF_BIRTH"),
        ("Date of Birth: Feb. 14, 1975", "Feb. 14, 1975", "DATE_OF_BIRTH"),
        ("fecha de nacimiento: 14/02/1975", "14/02/1975", "DATE_OF_BIRTH"),
        ("nacida el 3 de marzo de 1962", "3 de marzo de 1962", "DATE_OF_BIRTH"),
        ("reach him at +1 (240) 555-0133 tonight", "+1 (240) 555-0133", "PHONE_NUMBER"),
        ("Her cell is 301-555-0199.", "301-555-0199", "PHONE_NUMBER"),
        ("consumer email john.doe@yahoo.com", "john.doe@yahoo.com", "EMAIL_ADDRESS"),
        (
            "New address: 1200 N. Charles Street, Apt. 5, Baltimore, MD 21201 since May",
            "1200 N. Charles Street, Apt. 5, Baltimore, MD 21201",
            "ADDRESS",
        ),
        ("mail goes to P.O. Box 442, Silver Spring, MD 20910", None, "ADDRESS"),
        ("Medical Assistance number: 98765432109", "98765432109", "MEDICAID_ID"),
        ("Member ID: W123456789 (Kaiser)", "W123456789", "MEMBER_ID"),
        ("MBI: 5TG7JK4MN21", "5TG7JK4MN21", "MEDICARE_MBI"),
        ("Medicare card: 2AB3-CD4-EF56", "2AB3-CD4-EF56", "MEDICARE_MBI"),
        ("La clienta María Fernanda López llamó", "María Fernanda López", "PERSON"),
        ("vive en 12 Calle Principal, Wheaton, MD 20902", None, "ADDRESS"),
        ("MD DL S-123-456-789-012", "S-123-456-789-012", "US_DRIVER_LICENSE"),
        ("checking account # 123456789012 at PNC", "123456789012", "US_BANK_NUMBER"),
        ("routing number 021000021", "021000021", "ABA_ROUTING_NUMBER"),
        ("Visa 4012-8888-8888-1881 was declined", "4012-8888-8888-1881", "CREDIT_CARD"),
        ("My client John Smith called.", "John Smith", "PERSON"),
        ("Dependents: Liam O'Brien (son) and more", "Liam O'Brien", "PERSON"),
        ("Mrs. Okonkwo says she never got the notice.", "Okonkwo", "PERSON"),
        ("the client's name is tyrone washington", "tyrone washington", "PERSON"),
        ("Kim Tran's Medicaid was approved", "Kim Tran", "PERSON"),
    ],
)
def test_finds_each_kind(guard: PiiGuard, text: str, value: str | None, entity: str) -> None:
    findings = found(guard, text)
    if value is None:
        assert entity in findings.values()
    else:
        assert findings.get(value) == entity, findings


@pytest.mark.parametrize(
    "text",
    [
        "Incident 251103-0045521, PID 883120, NPN 1234567890",
        "ref:_00Dr01aQ5._500r06HRvE:ref",
        "Escalated Case: Termination.PID #:174097",
        "Person ID: 174097 and Person IDs 174098, 174099",
        "Call the Producer Support Hotline at 1-844-224-6761 or (844) 224-6761.",
        "Write to mhbe.producers@maryland.gov or mhc.trainingsupport@maryland.gov",
        "Coverage effective 02/01/2026 was cancelled on 01/28/2026; paid on 11/02/2025.",
        "APTC of $623.00 is missing; premium $1,234.56 due 12/01/2026",
        "The 1095-A for tax year 2025, plan year 2026",
        "Sent: Tuesday, May 28, 2020 11:52 AM",
        "request 3f2b8c1e-9a7d-4e2f-8b1a-2c3d4e5f6a7b failed at 2026-01-14T10:22:03Z",
        "Open Enrollment ends January 15. Maryland Health Connection is down.",
        "CareFirst BlueChoice Gold 1000 plan; Kaiser Permanente Silver",
        "Thanks,\nEscalated Cases Team\nMaryland Health Benefit Exchange",
    ],
)
def test_never_flags_system_identifiers_and_business_text(guard: PiiGuard, text: str) -> None:
    assert found(guard, text) == {}


def test_acronyms_are_not_names(guard: PiiGuard) -> None:
    text = "Please refund to checking 000123456789, ABA 021000021."
    assert found(guard, text) == {
        "000123456789": "US_BANK_NUMBER",
        "021000021": "ABA_ROUTING_NUMBER",
    }


def test_business_date_beside_a_birth_date_is_kept(guard: PiiGuard) -> None:
    text = "Coverage effective 01/01/2026, DOB 5/5/1990, premium due 02/01/2026"
    assert found(guard, text) == {"5/5/1990": "DATE_OF_BIRTH"}


def test_sender_identity_is_never_flagged(guard: PiiGuard) -> None:
    text = "My client Tom Baker.\nThanks,\nKevin Brooks\nkevin@brooksins.com\n(410) 555-2323"
    allow = AllowList("Kevin Brooks", "Kevin@BrooksIns.com", "410.555.2323")
    assert found(guard, text, allow) == {"Tom Baker": "PERSON"}
    assert "Kevin Brooks" in found(guard, text)


def test_allow_terms_from_settings() -> None:
    guard = PiiGuard.build(GuardSettings(allow_terms=("410-767-1234",)))
    assert found(guard, "Our office line is 410-767-1234, cell 410-555-0101") == {
        "410-555-0101": "PHONE_NUMBER"
    }


def test_redact_replaces_each_finding_with_its_type(guard: PiiGuard) -> None:
    text = "ss# 219099999 for Maria Gonzalez, incident 251103-0045521"
    redacted = guard.redact(text, guard.scan(text))
    assert redacted == ("ss# [REDACTED:US_SSN] for [REDACTED:PERSON], incident 251103-0045521")


def test_redact_merges_overlapping_findings(guard: PiiGuard) -> None:
    text = "abcdefghij"
    findings = [Finding("PERSON", 0, 5, 0.5), Finding("ADDRESS", 3, 8, 0.9)]
    assert guard.redact(text, findings) == "[REDACTED:ADDRESS]ij"


def test_weak_name_scores_below_reject(guard: PiiGuard) -> None:
    (weak,) = guard.scan("We talked to Xochitl Brennan about it.")
    (strong,) = guard.scan("My client Xochitl Brennan called.")
    assert weak.score < guard.settings.reject_at("PERSON") <= strong.score


def test_reprs_carry_no_values(guard: PiiGuard) -> None:
    allow = AllowList("Kevin Brooks", "kb@example.com", "410-555-2323")
    (finding,) = guard.scan("SSN 219-09-9999")
    assert "219" not in repr(finding) and "Kevin" not in repr(allow)
    assert "kb@" not in repr(allow) and "555" not in repr(allow)


def test_no_value_in_log_lines(guard: PiiGuard, caplog: pytest.LogCaptureFixture) -> None:
    text = "Client Maria Gonzalez, SSN 219-09-9999, DOB 04/12/1986, MBI 1EG4-TE5-MK73"
    with caplog.at_level(logging.DEBUG):
        guard.redact(text, guard.scan(text))
        PiiGuard.build().scan(text)
    for value in ("Maria", "Gonzalez", "219-09-9999", "04/12/1986", "1EG4"):
        assert value not in caplog.text


def test_builds_and_scans_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the PII guard tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    guard = PiiGuard.build()
    assert found(guard, "email jane.roe@example.org") == {"jane.roe@example.org": "EMAIL_ADDRESS"}


def test_missing_spacy_model_is_a_clear_error() -> None:
    with pytest.raises(PiiEngineError, match=r"en_core_web_nonexistent.*not installed"):
        PiiGuard.build(GuardSettings(spacy_model="en_core_web_nonexistent"))


def test_settings_refuse_unknown_entities_and_bad_thresholds() -> None:
    with pytest.raises(Exception, match="unknown entity type 'NAME'"):
        GuardSettings(reject_thresholds={"NAME": 0.5})
    with pytest.raises(Exception, match="between 0 and 1"):
        GuardSettings(redact_threshold=1.5)


def test_disabled_entities_are_not_reported() -> None:
    guard = PiiGuard.build(GuardSettings(entities=("US_SSN",)))
    assert found(guard, "My client John Smith, SSN 219-09-9999") == {"219-09-9999": "US_SSN"}


@pytest.mark.parametrize(
    ("mime_type", "scannable"),
    [
        ("text/plain", True),
        ("text/html; charset=utf-8", True),
        ("text/csv", True),
        ("application/json", True),
        ("message/rfc822", True),
        ("image/png", False),
        ("application/pdf", False),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", False),
        ("application/zip", False),
    ],
)
def test_scannable_mime_types(mime_type: str, scannable: bool) -> None:
    assert is_scannable(mime_type) is scannable


def test_an_installed_spacy_model_adds_its_ner(tmp_path: Path) -> None:
    import spacy
    from spacy.pipeline import EntityRecognizer

    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    assert isinstance(ner, EntityRecognizer)
    ner.add_label("PERSON")
    nlp.initialize()
    nlp.to_disk(tmp_path / "model")
    guard = PiiGuard.build(GuardSettings(spacy_model=str(tmp_path / "model")))
    assert "SpacyRecognizer" in guard.recognizers
    assert "SpacyRecognizer" not in PiiGuard.build().recognizers
    assert found(guard, "SSN 219-09-9999") == {"219-09-9999": "US_SSN"}


@pytest.mark.parametrize(
    "block",
    [
        "Hauptstraße 12, 10115 Berlin",
        "Via Garibaldi 7\n20121 Milano\nItalia",
        "Kirkegata 5\n0153 Oslo",
        "Mannerheimintie 14\nApt. 22\n00100 Helsinki\nFinland",
        "Andrássy út 60\n1062 Budapest\nHungary",
        "12 rue de la Paix, 75002 Paris",
        "ul. Długa 44/50\n00-241 Warszawa",
        "Calle Mayor 5, 28013 Madrid",
        "PSC 1234, Box 5678\nAPO AE 09012",
        "Storgatan 3\n> 111 51 Stockholm",
        "221B Baker Street\nLondon NW1 6XE\nUnited Kingdom",
        "Apt. 4 Lindenweg 9\n3012 Bern",
        # the longest line that ends with a name: ten words before its number
        "Apt # 4 12 Via della Porta di Santa Croce 31\n00186 Roma",
    ],
)
def test_foreign_postal_blocks_are_redacted_whole(guard: PiiGuard, block: str) -> None:
    text = f"Her new address:\n{block}\nThanks, please update it."
    redacted = guard.redact(text, guard.scan(text))
    assert redacted == "Her new address:\n[REDACTED:ADDRESS]\nThanks, please update it."


def test_a_street_name_and_number_needs_a_postal_part_or_an_address_phrase(
    guard: PiiGuard,
) -> None:
    assert found(guard, "Her flat: Edeby 55\nApt. 3\n61020 Tystberga") == {
        "Edeby 55\nApt. 3\n61020 Tystberga": "ADDRESS"
    }
    assert found(guard, "The client now lives at Edeby 55.") == {"Edeby 55": "ADDRESS"}
    assert found(guard, "See Edeby 55 and Error 500, 2026 for details.") == {}
    assert found(guard, "She moved to Gold 1000 and Tier 2 in March.") == {}


@pytest.mark.parametrize(
    "text",
    [
        "CareFirst BlueChoice HMO Gold 1000, Kaiser Permanente Silver 2500, Aetna Bronze 3500",
        "Sent via Email 2 times, then via Portal 3 days later.",
        "Team Escalations, Suite 200, Building 3, Room 5, Tier 2, Section 8",
        "On Monday, March 3, 2026 and Friday, May 2 we met; Apr 2, 2025 too.",
        "Plans in Virginia, Delaware, New York and Pennsylvania; Error 500 on Page 2, Step 4.",
    ],
)
def test_business_numbers_beside_words_are_no_address(guard: PiiGuard, text: str) -> None:
    assert found(guard, text) == {}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Francesca is moving next month.", "Francesca"),
        ("Thanks Henrik, I will follow up.", "Henrik"),
        ("The notice was signed by them, said Lindqvist", "Lindqvist"),
    ],
)
def test_a_lone_known_name_beside_a_verb_of_people(guard: PiiGuard, text: str, value: str) -> None:
    assert found(guard, text) == {value: "PERSON"}
    (finding,) = guard.scan(text)
    assert finding.score < guard.settings.reject_at("PERSON")  # redacted, never bounced


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Mobile: 0341 8387176", "0341 8387176"),
        ("Desk: (898)666-3621x0135", "(898)666-3621x0135"),
        ("on my registered 0961-7596216.", "0961-7596216"),
        ("0490 39 07 81-Office", "0490 39 07 81"),
        ("Fax: +46 (0)157 548 89", "+46 (0)157 548 89"),
    ],
)
def test_foreign_phone_formats(guard: PiiGuard, text: str, value: str) -> None:
    assert found(guard, text) == {value: "PHONE_NUMBER"}


FILLER = "The consumer still shows as pending in the portal. " * 30


def test_long_text_is_scanned_in_pieces_with_borders_covered() -> None:
    guard = PiiGuard.build(chunking=(500, 100))
    blind = PiiGuard.build(chunking=(500, 0))  # no overlap: what the overlap is for
    for offset in range(485, 495, 2):  # the SSN straddles the border at 500
        text = FILLER[:offset] + " SSN 219-09-9999 " + FILLER
        start = text.index("219-")
        assert [(f.start, f.end) for f in guard.scan(text)] == [(start, start + 11)]
        assert [(f.start, f.end) for f in blind.scan(text)] != [(start, start + 11)]


def test_long_text_keeps_context_across_piece_borders() -> None:
    guard = PiiGuard.build(chunking=(500, 100))
    blind = PiiGuard.build(chunking=(500, 0))
    whole = PiiGuard.build()
    for offset in range(495, 499):  # "NPN" before the border, its number after
        text = FILLER[:offset] + " NPN 219099999 and ss# 219099998. " + FILLER
        assert found(guard, text) == found(whole, text) == {"219099998": "US_SSN"}
        assert "219099999" in found(blind, text)


def test_the_offline_guard_imports_neither_presidio_nor_spacy() -> None:
    code = (
        "import sys\n"
        "from pii_guard import PiiGuard\n"
        "PiiGuard.build().scan('My client John Smith, SSN 219-09-9999')\n"
        "print(sorted(m for m in ('spacy', 'presidio_analyzer', 'torch') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_line_above_a_postal_block_is_its_addressee(guard: PiiGuard) -> None:
    text = "Please send it to:\n> Tzigane Lantos\n> Rua Augusta 100\n> 1100-053 Lisboa"
    assert found(guard, text) == {
        "Tzigane Lantos": "PERSON",
        "Rua Augusta 100\n> 1100-053 Lisboa": "ADDRESS",
    }
    office = "Producer Support Team\nMaryland Health Benefit Exchange\n750 E. Pratt Street"
    assert "PERSON" not in found(guard, office).values()


def test_two_addressees_share_a_letters_block(guard: PiiGuard) -> None:
    text = "Notice date: May 2\n\n  OSEI BAAH & AMA SERWAA\n  77 Kettle Run Rd\n  Laurel MD 20708\n"
    assert found(guard, text)["OSEI BAAH & AMA SERWAA"] == "PERSON"
    firm = "Harbor Title & Escrow\n77 Kettle Run Rd\nLaurel MD 20708\n"
    assert "PERSON" not in found(guard, firm).values()


@pytest.mark.parametrize("chars", [r"\d", "[1-9]", "[A-Z]", "[A-Za-z]"])
def test_an_opening_character_class_matches_as_the_leading_lookbehind_did(chars: str) -> None:
    """``_opening`` moves the "nothing word-like before" test after the first character,
    for speed; the matches must be the very ones of the test placed first."""
    rest = r"[A-Z]{0,3}\d{2}([- ]?)\d{2})(?![\w-])"
    fast = re.compile(numbers._opening(chars) + rest)
    plain = re.compile(numbers._L + f"(?P<v>{chars}" + rest)
    rng = random.Random(4)
    pieces = ["A", "Q", "z", "-", " ", "1", "9", "12", "34", "4567", "0", "_", "é", "\n"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 24))) for _ in range(20_000)]
    matched = 0
    for text in texts:
        expected = [(m.span(), m.groups()) for m in plain.finditer(text)]
        assert [(m.span(), m.groups()) for m in fast.finditer(text)] == expected, text
        matched += len(expected)
    assert matched > 100  # the texts do reach the patterns
