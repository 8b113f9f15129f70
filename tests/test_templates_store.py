"""The template store: layers, languages, reload that refuses broken edits; the sandbox."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ticketing.config import Config
from ticketing.config.templates_schema import TemplatesConfig
from ticketing.errors import ReplyError, TemplateError, TemplateSecurityError
from ticketing.server.jobs import TimedJob, timed_jobs
from ticketing.store.models import AuditEvent, utcnow
from ticketing.templating.files import shipped_dir
from ticketing.templating.reload import reload_templates
from ticketing.templating.sandbox import compile_template, render
from ticketing.templating.template_store import TemplateStore

from .builders import NOW


def store_with(folder: Path) -> TemplateStore:
    return TemplateStore.from_config(Config(templates=TemplatesConfig(override_dir=str(folder))))


def copy_kind(folder: Path, kind: str, into: str | None = None) -> Path:
    target = folder / (into or kind)
    shutil.copytree(shipped_dir() / kind, target)
    return target


def test_shipped_only() -> None:
    chosen = TemplateStore.from_config(Config()).select("ack_new", "escalated_cases", "es")
    assert chosen.text.name.layer == "shipped"
    assert chosen.text.name.language == "es"
    assert chosen.html is not None


def test_spanish_falls_back_to_english_where_there_is_none() -> None:
    chosen = TemplateStore.from_config(Config()).select("sla_warning", "escalated_cases", "es")
    assert chosen.text.name.language == "en"


def test_override_beats_shipped_and_team_beats_kind(tmp_path: Path) -> None:
    copy_kind(tmp_path, "resolved")
    copy_kind(tmp_path, "resolved", into="producer_operations/resolved")
    store = store_with(tmp_path)
    general = store.select("resolved", "escalated_cases", "en")
    team = store.select("resolved", "producer_operations", "en")
    assert general.text.name.path == tmp_path / "resolved" / "body.txt"
    assert team.text.name.path == tmp_path / "producer_operations" / "resolved" / "body.txt"
    shipped = store.select("resolved", "escalated_cases", "en", shipped_only=True)
    assert shipped.text.name.layer == "shipped"


def test_an_english_override_does_not_hide_the_shipped_spanish(tmp_path: Path) -> None:
    target = copy_kind(tmp_path, "resolved")
    for spanish in target.glob("*.es.*"):
        spanish.unlink()
    chosen = store_with(tmp_path).select("resolved", "escalated_cases", "es")
    assert (chosen.text.name.layer, chosen.text.name.language) == ("shipped", "es")


def test_unknown_kind() -> None:
    with pytest.raises(ReplyError):
        TemplateStore.from_config(Config()).select("ack_nope", "escalated_cases", "en")


def _text_of(store: TemplateStore, kind: str = "resolved") -> str:
    template = store.select(kind, "escalated_cases", "en").subject.template
    return render(template, {"incident": {"number": "200528-2866868"}})


def test_reload_picks_up_an_edit_and_refuses_a_broken_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    subject = copy_kind(tmp_path, "resolved") / "subject.txt"
    store = store_with(tmp_path)
    subject.write_text("Closed: {{ incident.number }}\n", encoding="utf-8")
    assert store.reload().changed == [str(subject)]
    assert _text_of(store) == "Closed: 200528-2866868\n"

    subject.write_text("Closed: {{ incident.numbr }}\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        result = store.reload()
    assert [p.render() for p in result.refused] == [
        f"{subject}:1: unknown variable 'incident.numbr'"
    ]
    assert "keeping the last good version" in caplog.text
    assert _text_of(store) == "Closed: 200528-2866868\n"
    assert store.reload().refused == []  # reported once, not on every pass

    subject.write_text("Done: {{ incident.number }}\n", encoding="utf-8")
    assert store.reload().changed == [str(subject)]
    assert _text_of(store) == "Done: 200528-2866868\n"


def test_broken_new_file_is_not_used_and_removal_falls_back(tmp_path: Path) -> None:
    store = store_with(tmp_path)
    target = copy_kind(tmp_path, "resolved")
    (target / "subject.txt").write_text("{% if %}\n", encoding="utf-8")
    result = store.reload()
    assert [p.line for p in result.refused] == [1]
    # the broken subject has no last good version: the shipped subject answers, and the
    # admin's good body beside it stays in use
    chosen = store.select("resolved", "escalated_cases", "en")
    assert (chosen.subject.name.layer, chosen.text.name.layer) == ("shipped", "override")
    shutil.rmtree(target)
    result = store.reload()
    assert str(target / "body.txt") in result.removed


def test_a_broken_override_body_keeps_the_good_override_subject(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = copy_kind(tmp_path, "ack_new")
    (target / "subject.txt").write_text("Received: {{ incident.number }}\n", encoding="utf-8")
    (target / "body.txt").write_text("Hi,\n{% if %}\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        store = store_with(tmp_path)
    chosen = store.select("ack_new", "escalated_cases", "en")
    assert chosen.subject.name.path == target / "subject.txt"
    assert chosen.text.name.path == shipped_dir() / "ack_new" / "body.txt"
    # the HTML alternative comes with the text body it says the same as, not the override's
    assert chosen.html is not None
    assert chosen.html.name.path == shipped_dir() / "ack_new" / "body.html"
    assert f"template refused, not using it: {target / 'body.txt'}:2: syntax error" in caplog.text


def test_each_part_comes_from_the_first_folder_that_has_it(tmp_path: Path) -> None:
    team = tmp_path / "producer_operations" / "resolved"
    team.mkdir(parents=True)
    (team / "subject.txt").write_text("Ops: {{ incident.number }}\n", encoding="utf-8")
    (tmp_path / "resolved").mkdir()
    body = tmp_path / "resolved" / "body.txt"
    body.write_text("Resolved.\n{{ ref_token }}\n", encoding="utf-8")
    store = store_with(tmp_path)
    ops = store.select("resolved", "producer_operations", "en")
    assert (ops.subject.name.path, ops.text.name.path) == (team / "subject.txt", body)
    general = store.select("resolved", "escalated_cases", "en")
    assert general.subject.name.layer == "shipped" and general.text.name.path == body
    spanish = store.select("resolved", "producer_operations", "es")
    assert (spanish.subject.name.language, spanish.text.name.language) == ("es", "es")


def test_an_html_body_without_its_text_body_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "ack_new").mkdir()
    html = "<p>{{ incident.number }}</p><p>{{ ref_token }}</p>\n"
    (tmp_path / "ack_new" / "body.html").write_text(html, encoding="utf-8")
    chosen = store_with(tmp_path).select("ack_new", "escalated_cases", "en")
    assert chosen.html is not None and chosen.html.name.layer == "shipped"


def test_refused_templates_are_audited(tmp_path: Path, engine: Engine) -> None:
    store = store_with(tmp_path)
    body = copy_kind(tmp_path, "ack_new") / "body.txt"
    body.write_text("{{ ref_token }}\n{{ ''.__class__.__mro__ }}\n", encoding="utf-8")
    (tmp_path / "ack_new" / "subject.txt").write_text("{{ incident.nmber }}\n", encoding="utf-8")
    reload_templates(store, engine, NOW)
    with Session(engine) as session:
        events = session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
    kinds = {e.kind: e.detail for e in events}
    assert kinds["template_security_violation"]["file"] == str(body)
    assert kinds["template_security_violation"]["line"] == 2
    assert kinds["template_refused"]["error"] == "unknown variable 'incident.nmber'"


def test_the_reload_job_picks_up_an_edit_while_running(tmp_path: Path, engine: Engine) -> None:
    subject = copy_kind(tmp_path, "resolved") / "subject.txt"
    store = store_with(tmp_path)
    job = TimedJob("template reload", lambda: reload_templates(store, engine, utcnow()), 0.05)
    scheduler = timed_jobs([job])
    scheduler.start()
    try:
        subject.write_text("Watched {{ incident.number }}\n", encoding="utf-8")
        for _ in range(500):
            if _text_of(store).startswith("Watched"):
                break
            time.sleep(0.01)
    finally:
        scheduler.shutdown(wait=True)
    assert _text_of(store) == "Watched 200528-2866868\n"


# --- the sandbox --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ team.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ team.update({'name': 'x'}) }}",
        "{{ team.name.__class__.__base__.__subclasses__() }}",
    ],
)
def test_sandbox_refuses(source: str) -> None:
    template = compile_template(source, "evil/body.txt")
    with pytest.raises(TemplateSecurityError) as info:
        render(template, {"team": {"name": "t"}})
    assert info.value.file == "evil/body.txt"


def test_sandbox_allows_the_ordinary() -> None:
    template = compile_template(
        "{{ team.name | upper }} {{ xs | join(',') }} "
        "{% for x in xs %}{{ loop.index }}{% endfor %}",
        "ok/body.txt",
    )
    assert render(template, {"team": {"name": "t"}, "xs": ["a", "b"]}) == "T a,b 12"


def test_undefined_is_an_error_not_an_empty_string() -> None:
    template = compile_template("Hi {{ producer.name }}", "x/body.txt")
    with pytest.raises(TemplateError, match="unknown variable"):
        render(template, {"producer": {}})


def test_huge_range_is_refused() -> None:
    template = compile_template("{% for i in range(10**9) %}x{% endfor %}", "x/body.txt")
    with pytest.raises(TemplateError):
        render(template, {})


def test_html_is_autoescaped_and_text_is_not() -> None:
    context = {"producer": {"name": "<b>Sam & Co</b>"}}
    html = compile_template("<p>{{ producer.name }}</p>", "x/body.html")
    text = compile_template("{{ producer.name }}", "x/body.txt")
    assert render(html, context) == "<p>&lt;b&gt;Sam &amp; Co&lt;/b&gt;</p>"
    assert render(text, context) == "<b>Sam & Co</b>"


def test_render_errors_do_not_quote_data() -> None:
    template = compile_template("{{ producer.name | int(base=2) + [] }}", "x/body.txt")
    with pytest.raises(TemplateError) as info:
        render(template, {"producer": {"name": "sam amsung"}})
    assert "sam" not in str(info.value)
