"""The template editor (issue 25 part 5) on real files: list, check, preview, save, diff, revert."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from pii_guard import PiiGuard
from ticketing.config import Config, DatabaseConfig
from ticketing.config.pii_schema import PiiConfig
from ticketing.config.templates_schema import TemplatesConfig
from ticketing.desk.template_editor import TemplateEditor, TemplateKey, template_key
from ticketing.errors import ConfigError, NotFoundError
from ticketing.privacy.settings import build_guard
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.models import AuditEvent
from ticketing.templating.files import shipped_dir
from ticketing.templating.template_store import TemplateStore

from .builders import add_case

ACK_TEXT = TemplateKey("ack_new", "text", "en", None)
RESOLVED_SUBJECT = TemplateKey("resolved", "subject", "en", None)
BROKEN_ON_LINE_3 = "Hi,\n\n{{ incident.number }\n{{ ref_token }}\n"
ESCAPE_ON_LINE_2 = "Hi,\n{{ ''.__class__ }}\n{{ ref_token }}\n"


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return build_guard(PiiConfig())


def config_with(folder: Path | None) -> Config:
    return Config(templates=TemplatesConfig(override_dir=str(folder) if folder else None))


@pytest.fixture
def overrides(tmp_path: Path) -> Path:
    folder = tmp_path / "overrides"
    folder.mkdir()
    return folder


@pytest.fixture
def idle_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine never asked anything: the editor's actions that only read files."""
    engine = create_db_engine(DatabaseConfig(url=f"sqlite:///{tmp_path / 'idle.db'}"))
    yield engine
    engine.dispose()


def editor_over(folder: Path | None, engine: Engine, guard: PiiGuard) -> TemplateEditor:
    return TemplateEditor(config_with(folder), engine, guard)


def shipped(key: TemplateKey) -> str:
    return (shipped_dir() / key.rel).read_text(encoding="utf-8")


def audit_events(engine: Engine) -> list[AuditEvent]:
    with transaction(engine, readonly=True) as session:
        events = list(session.exec(select(AuditEvent).order_by(col(AuditEvent.id))))
        session.expunge_all()
    return events


def test_the_list_says_which_layer_each_part_comes_from(
    overrides: Path, idle_engine: Engine, guard: PiiGuard
) -> None:
    (overrides / "resolved").mkdir()
    (overrides / "resolved" / "subject.txt").write_text("Done: {{ incident.number }}\n")
    rows = {row.key: row for row in editor_over(overrides, idle_engine, guard).rows()}
    assert len(rows) == 17 * 3 * 2 * 3  # kinds (4 canned), teams (and all), languages, parts
    own = rows[RESOLVED_SUBJECT]
    assert (own.layer, own.file, own.own, own.override) == (
        "override",
        "resolved/subject.txt",
        True,
        True,
    )
    body = rows[TemplateKey("resolved", "text", "en", None)]
    assert (body.layer, body.override) == ("shipped", False)
    # a team inherits the kind folder's override; the Spanish subject is still shipped
    team = rows[TemplateKey("resolved", "subject", "en", "producer_operations")]
    assert (team.layer, team.file, team.own) == ("override", "resolved/subject.txt", False)
    spanish = rows[TemplateKey("resolved", "subject", "es", None)]
    assert (spanish.layer, spanish.file) == ("shipped", "resolved/subject.es.txt")
    # a kind with no HTML body at all
    assert rows[TemplateKey("sla_warning", "html", "en", None)].layer is None


def test_a_broken_override_is_marked(overrides: Path, idle_engine: Engine, guard: PiiGuard) -> None:
    (overrides / "resolved").mkdir()
    (overrides / "resolved" / "subject.txt").write_text("{% if %}\n")
    row = next(
        r for r in editor_over(overrides, idle_engine, guard).rows() if r.key == RESOLVED_SUBJECT
    )
    assert (row.override, row.broken, row.layer) == (True, True, "shipped")


def test_load_starts_from_the_override_else_the_shipped_file(
    overrides: Path, idle_engine: Engine, guard: PiiGuard
) -> None:
    editor = editor_over(overrides, idle_engine, guard)
    loaded = editor.load(RESOLVED_SUBJECT)
    assert (loaded.layer, loaded.source) == ("shipped", shipped(RESOLVED_SUBJECT))
    (overrides / "resolved").mkdir()
    (overrides / "resolved" / "subject.txt").write_text("Done\n")
    assert editor.load(RESOLVED_SUBJECT).source == "Done\n"
    team = editor.load(TemplateKey("resolved", "subject", "en", "escalated_cases"))
    assert (team.layer, team.file) == ("override", "resolved/subject.txt")  # inherited


def test_unknown_names_are_not_found() -> None:
    config = Config()
    assert template_key(config, "resolved", "html", "es", "").team is None
    for args in (
        ("nope", "text", "en", None),
        ("resolved", "footer", "en", None),
        ("resolved", "text", "fr", None),
        ("resolved", "text", "en", "no_team"),
    ):
        with pytest.raises(NotFoundError):
            template_key(config, *args)


def test_check_gives_the_line_of_a_syntax_error_and_of_a_sandbox_escape(
    overrides: Path, idle_engine: Engine, guard: PiiGuard
) -> None:
    editor = editor_over(overrides, idle_engine, guard)
    assert editor.check(shipped(ACK_TEXT), ACK_TEXT) == []
    [syntax] = editor.check(BROKEN_ON_LINE_3, ACK_TEXT)
    assert (syntax.line, syntax.security) == (3, False)
    assert syntax.message.startswith("syntax error")
    [escape] = editor.check(ESCAPE_ON_LINE_2, ACK_TEXT)
    assert (escape.line, escape.security) == (2, True)
    assert "forbidden by the sandbox" in escape.message
    # a textarea's CRLF lines count as lines
    [crlf] = editor.check(BROKEN_ON_LINE_3.replace("\n", "\r\n"), ACK_TEXT)
    assert crlf.line == 3


def test_preview_of_the_sample_data_and_a_clean_verdict(
    overrides: Path, idle_engine: Engine, guard: PiiGuard
) -> None:
    preview = editor_over(overrides, idle_engine, guard).preview(
        "Thanks{% if producer %}, {{ producer.name }}{% endif %}: {{ incident.number }}\n"
        "{{ ref_token }}\n",
        ACK_TEXT,
        None,
    )
    assert preview.text is not None
    assert preview.text.startswith("Thanks, sam amsung: 200528-2866868\nref:_")
    assert (preview.about, preview.findings, preview.problems) == ("the sample data", {}, ())
    assert preview.verdict == "no consumer personal data found"


def test_a_preview_holding_an_ssn_names_the_kind(
    overrides: Path, idle_engine: Engine, guard: PiiGuard
) -> None:
    source = "Your consumer's SSN is 219-09-9999.\n{{ ref_token }}\n"
    preview = editor_over(overrides, idle_engine, guard).preview(source, ACK_TEXT, None)
    assert preview.findings == {"US_SSN": 1}
    assert "US_SSN" in preview.verdict


def test_a_preview_that_does_not_render_gives_the_line(
    overrides: Path, idle_engine: Engine, guard: PiiGuard
) -> None:
    preview = editor_over(overrides, idle_engine, guard).preview(BROKEN_ON_LINE_3, ACK_TEXT, None)
    assert preview.text is None
    assert [p.line for p in preview.problems] == [3]
    assert preview.verdict.startswith("not checked")


def test_preview_for_a_real_incident(overrides: Path, engine: Engine, guard: PiiGuard) -> None:
    add_case(engine, number="261207-0000042", case_type="commission", person_ids=("1", "2"))
    source = (
        "{{ incident.number }} {{ incident.type_label }} {{ incident.person_ids | join(',') }}"
        " {{ producer.email }}\n{{ ref_token }}\n"
    )
    preview = editor_over(overrides, engine, guard).preview(source, ACK_TEXT, "261207-0000042")
    assert preview.text is not None
    assert preview.text.splitlines()[0] == "261207-0000042 Commission 1,2 sam@brokers.example"
    assert preview.about == "incident 261207-0000042"
    assert preview.findings == {}  # the producer's own address is theirs to read
    with pytest.raises(NotFoundError):
        editor_over(overrides, engine, guard).preview(source, ACK_TEXT, "261207-0000043")


def test_save_writes_the_override_and_the_store_reload_takes_it(
    overrides: Path, engine: Engine, guard: PiiGuard
) -> None:
    config = config_with(overrides)
    daemon_store = TemplateStore.from_config(config, quiet=True)
    editor = TemplateEditor(config, engine, guard)
    result = editor.save("Closed: {{ incident.number }}\r\n", RESOLVED_SUBJECT, "Ada Admin <a@x>")
    path = overrides / "resolved" / "subject.txt"
    assert (result.saved, result.path) == (True, str(path))
    assert path.read_bytes() == b"Closed: {{ incident.number }}\n"
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["subject.txt"]  # no temp file left
    assert daemon_store.reload().changed == [str(path)]
    chosen = daemon_store.select("resolved", "escalated_cases", "en")
    assert chosen.subject.name.path == path
    [event] = audit_events(engine)
    assert (event.kind, event.actor, event.detail) == (
        "template_saved",
        "Ada Admin <a@x>",
        {"file": str(path)},
    )


@pytest.mark.parametrize(
    ("source", "line", "kind"),
    [
        (BROKEN_ON_LINE_3, 3, "template_save_refused"),
        (ESCAPE_ON_LINE_2, 2, "template_security_violation"),
    ],
)
def test_a_broken_edit_is_refused_with_its_line_and_nothing_is_written(
    overrides: Path, engine: Engine, guard: PiiGuard, source: str, line: int, kind: str
) -> None:
    result = editor_over(overrides, engine, guard).save(source, ACK_TEXT, "Ada Admin <a@x>")
    assert not result.saved
    assert [p.line for p in result.problems] == [line]
    assert list(overrides.iterdir()) == []
    [event] = audit_events(engine)
    assert (event.kind, event.actor, event.detail["line"]) == (kind, "Ada Admin <a@x>", line)
    assert "__class__" not in str(event.detail.get("file"))


def test_saving_without_an_override_folder_names_the_config_key(
    idle_engine: Engine, guard: PiiGuard
) -> None:
    editor = editor_over(None, idle_engine, guard)
    with pytest.raises(ConfigError, match=r"templates\.override_dir"):
        editor.save(shipped(RESOLVED_SUBJECT), RESOLVED_SUBJECT, "Ada Admin <a@x>")
    with pytest.raises(ConfigError, match=r"templates\.override_dir"):
        editor.revert(RESOLVED_SUBJECT, "Ada Admin <a@x>")
    assert editor.check(shipped(RESOLVED_SUBJECT), RESOLVED_SUBJECT) == []  # checking still works


def test_diff_against_the_shipped_version(
    overrides: Path, idle_engine: Engine, guard: PiiGuard
) -> None:
    editor = editor_over(overrides, idle_engine, guard)
    assert editor.diff(RESOLVED_SUBJECT) == ""  # nothing overridden
    (overrides / "resolved").mkdir()
    (overrides / "resolved" / "subject.txt").write_text("Closed: {{ incident.number }}\n")
    diff = editor.diff(RESOLVED_SUBJECT)
    assert diff.startswith("--- shipped/resolved/subject.txt\n+++ override/resolved/subject.txt\n")
    assert "+Closed: {{ incident.number }}\n" in diff
    assert [f"-{line}" in diff for line in shipped(RESOLVED_SUBJECT).splitlines()] == [True]
    unsaved = editor.diff(RESOLVED_SUBJECT, "Other\n")
    assert "+Other\n" in unsaved


def test_revert_removes_the_override(overrides: Path, engine: Engine, guard: PiiGuard) -> None:
    config = config_with(overrides)
    editor = TemplateEditor(config, engine, guard)
    editor.save("Closed: {{ incident.number }}\n", RESOLVED_SUBJECT, "Ada Admin <a@x>")
    daemon_store = TemplateStore.from_config(config, quiet=True)
    path = editor.revert(RESOLVED_SUBJECT, "Ada Admin <a@x>")
    assert not Path(path).exists()
    assert daemon_store.reload().removed == [path]
    assert daemon_store.select("resolved", "escalated_cases", "en").subject.name.layer == "shipped"
    assert [e.kind for e in audit_events(engine)] == ["template_saved", "template_reverted"]
    with pytest.raises(NotFoundError):
        editor.revert(RESOLVED_SUBJECT, "Ada Admin <a@x>")
