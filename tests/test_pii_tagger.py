"""The trained name and address tagger: what it adds, what it refuses, how it is built."""

from __future__ import annotations

import gzip
import hashlib
from importlib.metadata import version
from pathlib import Path

import pytest

from pii_guard import PiiEngineError, PiiGuard, evaluate
from pii_guard.recognizers.gazetteer import SPANISH_WORDS_PATH, load_gazetteer
from pii_guard.recognizers.tagged import TAGGED_SCORE
from pii_guard.tagger.features import VOCABULARY_PATH
from pii_guard.tagger.model import MODEL_PATH, TaggerModel
from pii_guard.training import vocabulary
from pii_guard.training.__main__ import main as train_main
from pii_guard.training.generate import TEMPLATES, load_templates


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return PiiGuard.build()


def found(guard: PiiGuard, text: str) -> dict[str, str]:
    return {text[f.start : f.end]: f.entity_type for f in guard.scan(text)}


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Follow up with Tlacuilo Xochiquetzal next week.", "Tlacuilo Xochiquetzal"),
        ('"We never got the letter," says Okwuosa.', "Okwuosa"),
        ("Nkemdirim and Bowers reviewed the file together.", "Nkemdirim"),
        ("Tlacuilo: can you check the portal?\nSam: will do", "Tlacuilo"),
    ],
)
def test_names_no_list_knows_are_found_where_names_stand(
    guard: PiiGuard, text: str, name: str
) -> None:
    gazetteer = load_gazetteer()
    assert not any(w.lower() in gazetteer.first | gazetteer.last for w in name.split())
    assert found(guard, text).get(name) == "PERSON"


@pytest.mark.parametrize(
    ("text", "address"),
    [
        (
            "Please send the card to Λεωφόρος Κηφισίας 112, 11526 Αθήνα before Friday.",
            "Λεωφόρος Κηφισίας 112, 11526 Αθήνα",
        ),
        (
            "her new address is 14 rue des Lilas\n69003 Lyon\nFrance\n\nThanks",
            "14 rue des Lilas\n69003 Lyon\nFrance",
        ),
    ],
)
def test_addresses_in_layouts_the_patterns_miss(guard: PiiGuard, text: str, address: str) -> None:
    masked = guard.redact(text, guard.scan(text))
    assert address not in masked and "[REDACTED:ADDRESS]" in masked
    assert not any(line in masked for line in address.splitlines())


def test_a_tagged_name_alone_redacts_but_never_rejects(guard: PiiGuard) -> None:
    outcome = evaluate(guard, "reject", {"text": "Follow up with Tlacuilo Xochiquetzal."})
    assert outcome.action == "redact"
    assert outcome.fields["text"] == "Follow up with [REDACTED:PERSON]."
    assert guard.settings.reject_at("PERSON") > TAGGED_SCORE


@pytest.mark.parametrize(
    "text",
    [
        "Token RrQNbJwnZr3eLBiKw490ufaQldAYMP2ujJebOnGrf9HxMCkupow7i2UM3wHw sent",
        "Call 0490 39 07 81-Office after 5pm, or see Page 2 of Form 1095-A.",
        "Please refund to checking, ABA 021000021, by Apr 2, 2025.",
        "Incident 250918-0031187 for PID 552031 was escalated to Tier 2 on Monday.",
        "Error 500 on the Maryland Health Connection portal since 9:15 AM.",
    ],
)
def test_codes_phones_dates_and_desk_text_are_no_name_or_address(
    guard: PiiGuard, text: str
) -> None:
    kinds = set(found(guard, text).values())
    assert not kinds & {"PERSON", "ADDRESS"}


@pytest.mark.parametrize(
    ("text", "keep"),
    [
        (
            "The consumer lives in Prince George's County and uses CareFirst BlueChoice.",
            ["Prince George's County", "CareFirst BlueChoice"],
        ),
        (
            "She was referred to Johns Hopkins Medicine by Anne Arundel County.",
            ["Johns Hopkins Medicine", "Anne Arundel County"],
        ),
        (
            "Open Enrollment ends December 15; a Qualifying Life Event opens a Special "
            "Enrollment Period.",
            ["Open Enrollment", "Qualifying Life Event", "Special Enrollment Period"],
        ),
        (
            "Grace Period ends on Friday; Rose Hill Clinic is in-network.",
            ["Grace Period", "Rose Hill Clinic"],
        ),
        (
            "We use Salesforce and Microsoft Teams; Zoom links come from Outlook.",
            ["Salesforce", "Microsoft Teams", "Zoom links", "Outlook"],
        ),
        (
            "Our agency, Chesapeake Benefits Group LLC, is in Silver Spring, MD.",
            ["Chesapeake Benefits Group LLC", "Silver Spring"],
        ),
        (
            "Thanks, Escalated Cases Team, Maryland Health Benefit Exchange",
            ["Escalated Cases Team", "Maryland Health Benefit Exchange"],
        ),
    ],
)
def test_desk_places_programs_and_products_survive(
    guard: PiiGuard, text: str, keep: list[str]
) -> None:
    redacted = guard.redact(text, guard.scan(text))
    assert [k for k in keep if k not in redacted] == []


def test_training_is_reproducible_and_its_model_tags(tmp_path: Path) -> None:
    first, second = tmp_path / "a.tsv.gz", tmp_path / "b.tsv.gz"
    for out in (first, second):
        assert (
            train_main(["--examples", "400", "--epochs", "2", "--check", "50", "--out", str(out)])
            == 0
        )
    assert first.read_bytes() == second.read_bytes()
    model = TaggerModel.load(first)
    assert model.meta["examples"] == 400 and len(model) > 100


def test_the_shipped_model_was_trained_on_the_shipped_templates() -> None:
    model = TaggerModel.load()
    assert model.meta["templates_sha256"] == hashlib.sha256(TEMPLATES.read_bytes()).hexdigest()
    assert model.meta["templates"] == len(load_templates())


@pytest.mark.slow  # ~100 s: it trains the model again
def test_the_shipped_model_is_what_the_script_trains(tmp_path: Path) -> None:
    shipped = TaggerModel.load()
    if shipped.meta["faker"] != version("faker"):
        pytest.skip(f"trained with Faker {shipped.meta['faker']}, Faker {version('faker')} here")
    out = tmp_path / "model.tsv.gz"
    assert train_main(["--check", "50", "--out", str(out)]) == 0
    assert out.read_bytes() == MODEL_PATH.read_bytes()


def test_the_shipped_word_list_is_what_the_script_writes() -> None:
    shipped = gzip.decompress(VOCABULARY_PATH.read_bytes()).decode("utf-8")
    assert shipped == "".join(f"{word}\t{band}\n" for word, band in vocabulary.bands())


def test_the_shipped_spanish_words_are_what_the_script_writes() -> None:
    shipped = gzip.decompress(SPANISH_WORDS_PATH.read_bytes()).decode("utf-8")
    assert shipped == "".join(f"{word}\n" for word in vocabulary.spanish_words())


def test_unreadable_weights_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PiiEngineError, match=r"python -m pii_guard\.training"):
        TaggerModel.load(tmp_path / "missing.json.gz")
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(PiiEngineError, match="cannot be read"):
        TaggerModel.load(broken)


def test_templates_with_an_unknown_slot_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "templates.txt"
    path.write_text("# comment\nMy client {name} called.\nSee {nmae} today.\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"templates.txt:3: unknown slot\(s\) \['nmae'\]"):
        load_templates(path)


def test_weights_file_is_small_and_only_weights() -> None:
    assert MODEL_PATH.stat().st_size < 2 * 1024 * 1024
    lines = gzip.decompress(MODEL_PATH.read_bytes()).decode("utf-8").splitlines()
    assert lines[0] == "#labels\tO\tPER\tADDR" and lines[1].startswith("#meta\t{")
    assert all(len(line.split("\t")) == 4 and line[0] == '"' for line in lines[2:])
