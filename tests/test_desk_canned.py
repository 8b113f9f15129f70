"""Canned replies (issue 25 part 3): templates per team and language, rendered for an incident."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from pii_guard import PiiGuard
from ticketing.config import Config
from ticketing.config.pii_schema import PiiConfig
from ticketing.config.templates_schema import TemplatesConfig
from ticketing.desk.canned import canned_replies, render_canned
from ticketing.desk.template_editor import TemplateEditor, TemplateKey
from ticketing.errors import NotFoundError
from ticketing.privacy.settings import build_guard
from ticketing.store.db import transaction
from ticketing.store.models import Incident
from ticketing.templating.kinds import CANNED_NAMES, KINDS
from ticketing.templating.template_store import TemplateStore

from .builders import add_case

NUMBER = "261207-0000042"
ENGLISH_LABELS = [
    "Documents received",
    "Upload documents in the Producer Portal",
    "Need more information",
    "Referred to the carrier",
]
SPANISH_LABELS = [
    "Documentos recibidos",
    "Suba los documentos en el Producer Portal",
    "Necesitamos más información",
    "Remitido a la aseguradora",
]


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return build_guard(PiiConfig())


@pytest.fixture
def overrides(tmp_path: Path) -> Path:
    folder = tmp_path / "overrides"
    folder.mkdir()
    return folder


def config_with(folder: Path | None) -> Config:
    return Config(templates=TemplatesConfig(override_dir=str(folder) if folder else None))


def store_over(folder: Path | None = None) -> TemplateStore:
    return TemplateStore.from_config(config_with(folder), quiet=True)


def write(folder: Path, rel: str, text: str) -> Path:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def move_to_team(engine: Engine, number: str, team: str) -> None:
    with transaction(engine) as session:
        incident = session.exec(select(Incident).where(Incident.number == number)).one()
        incident.team = team


def test_the_canned_replies_in_the_producers_language(engine: Engine) -> None:
    add_case(engine, number=NUMBER)
    add_case(engine, number="261207-0000043", language="es", npn="55", email_address="r@b.example")
    store = store_over()
    english = canned_replies(store, engine, NUMBER)
    assert [c.name for c in english] == list(CANNED_NAMES)
    assert [c.label for c in english] == ENGLISH_LABELS
    spanish = canned_replies(store, engine, "261207-0000043")
    assert [c.label for c in spanish] == SPANISH_LABELS


def test_a_teams_own_version_comes_through_the_override_layers(
    engine: Engine, overrides: Path
) -> None:
    add_case(engine, number=NUMBER)
    add_case(engine, number="261207-0000044", npn="56", email_address="o@b.example")
    move_to_team(engine, "261207-0000044", "producer_operations")
    folder = "escalated_cases/canned_documents_received"
    write(overrides, f"{folder}/subject.txt", "Portal documents in ({{ team.name }})\n")
    write(overrides, f"{folder}/body.txt", "Hi,\n\nGot them for {{ incident.number }}.\n")
    store = store_over(overrides)
    ours = {c.name: c.label for c in canned_replies(store, engine, NUMBER)}
    assert ours["documents_received"] == "Portal documents in (MHBE Escalated caseworkers Team)"
    assert ours["need_more_information"] == "Need more information"  # not overridden
    theirs = {c.name: c.label for c in canned_replies(store, engine, "261207-0000044")}
    assert theirs["documents_received"] == "Documents received"  # another team: shipped
    text = render_canned(store, engine, NUMBER, "documents_received")
    assert text.text == f"Hi,\n\nGot them for {NUMBER}."
    assert text.files[1] == str(overrides / folder / "body.txt")


def test_rendered_for_a_real_incident(engine: Engine) -> None:
    add_case(engine, number=NUMBER, case_type="commission", person_ids=("174097", "174098"))
    canned = render_canned(store_over(), engine, NUMBER, "with_the_carrier")
    assert (canned.label, canned.language) == ("Referred to the carrier", "en")
    lines = canned.text.splitlines()
    assert lines[0] == "Hi sam amsung,"
    assert f"We have referred incident {NUMBER} (Commission) to the" in canned.text
    assert lines[-1] == "Thanks"  # the desk reply adds the team's name and the ref token
    assert "ref:" not in canned.text


def test_a_spanish_producer_gets_the_spanish_text(engine: Engine) -> None:
    add_case(engine, number=NUMBER, language="es")
    canned = render_canned(store_over(), engine, NUMBER, "need_more_information")
    assert canned.language == "es"
    assert canned.text.splitlines()[0] == "Hola sam amsung:"
    assert f"continuar con el incidente {NUMBER}." in canned.text
    assert canned.files[1].endswith("canned_need_more_information/body.es.txt")


def test_unknown_names_and_incidents_are_not_found(engine: Engine) -> None:
    add_case(engine, number=NUMBER)
    with pytest.raises(NotFoundError, match="no canned reply 'ack_new'"):
        render_canned(store_over(), engine, NUMBER, "ack_new")
    with pytest.raises(NotFoundError, match="no incident 261207-0000099"):
        render_canned(store_over(), engine, "261207-0000099", "documents_received")
    with pytest.raises(NotFoundError):
        canned_replies(store_over(), engine, "261207-0000099")


def test_a_fragment_needs_no_token_line_and_may_not_use_one(overrides: Path) -> None:
    folder = "canned_upload_in_portal"
    good = write(overrides, f"{folder}/body.txt", "Hi,\n\nUse the portal.\n")
    bad = write(overrides, f"{folder}/body.es.txt", "Hola:\n\n{{ ref_token }}\n")
    refused = store_over(overrides).initial_result.refused
    assert [p.render() for p in refused] == [f"{bad}:3: unknown variable 'ref_token'"]
    assert str(good) not in {p.file for p in refused}
    assert not KINDS["canned_upload_in_portal"].carries_token


def test_the_template_editor_lists_them(overrides: Path, engine: Engine, guard: PiiGuard) -> None:
    write(overrides, "escalated_cases/canned_upload_in_portal/body.es.txt", "Hola:\n\nSúbalos.\n")
    rows = {r.key: r for r in TemplateEditor(config_with(overrides), engine, guard).rows()}
    for name in CANNED_NAMES:
        row = rows[TemplateKey(f"canned_{name}", "subject", "es", None)]
        assert (row.layer, row.file) == ("shipped", f"canned_{name}/subject.es.txt")
    team = rows[TemplateKey("canned_upload_in_portal", "text", "es", "escalated_cases")]
    assert (team.layer, team.own, team.override) == ("override", True, True)
