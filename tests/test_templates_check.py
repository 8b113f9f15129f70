"""``ticketd templates check|list|preview`` against the shipped and an admin's folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ticketing.config import Config
from ticketing.outbound.check import sample_mails, withheld_problems
from ticketing.privacy.settings import build_guard
from ticketing.templating.files import shipped_dir
from ticketing.templating.kinds import KINDS, LANGUAGES
from ticketing.templating.samples import SAMPLE_PRODUCER_NAMES
from ticketing.templating.template_store import TemplateStore

from .conftest import REPO, RunCli


@pytest.fixture
def admin(tmp_path: Path) -> tuple[Path, Path]:
    """A config whose ``[templates] override_dir`` is an empty admin folder."""
    folder = tmp_path / "admin-templates"
    folder.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[templates]\noverride_dir = "{folder}"\n', encoding="utf-8")
    return config, folder


def write(folder: Path, rel: str, text: str) -> Path:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def copy_shipped(folder: Path, kind: str, into: str | None = None) -> Path:
    target = folder / (into or kind)
    shutil.copytree(shipped_dir() / kind, target)
    return target


def test_shipped_templates_pass(run_cli: RunCli) -> None:
    result = run_cli("--config", str(REPO / "config.toml"), "templates", "check")
    assert result.code == 0, result
    assert result.out == "templates: OK\n"


def test_shipped_dir_is_the_source_templates_folder() -> None:
    assert shipped_dir() == REPO / "templates"


def test_typo_in_variable_is_reported_with_file_and_line(
    run_cli: RunCli, admin: tuple[Path, Path]
) -> None:
    config, folder = admin
    body = copy_shipped(folder, "ack_new") / "body.txt"
    lines = body.read_text(encoding="utf-8").splitlines()
    lines[2] = (
        "We have received your inquiry. The assigned incident number is {{ incident.numbr }}."
    )
    body.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli("--config", str(config), "templates", "check")
    assert result.code == 1
    assert f"{body}:3: unknown variable 'incident.numbr'" in result.out.splitlines()


def test_typo_in_a_branch_samples_do_not_reach_is_still_found(
    run_cli: RunCli, admin: tuple[Path, Path]
) -> None:
    config, folder = admin
    subject = copy_shipped(folder, "resolved") / "subject.txt"
    subject.write_text(
        "Resolved {{ incident.number }}\n{% if false %}{{ producer.nmae }}{% endif %}\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(config), "templates", "check")
    assert result.code == 1
    assert f"{subject}:2: unknown variable 'producer.nmae'" in result.out


def test_unknown_top_level_name(run_cli: RunCli, admin: tuple[Path, Path]) -> None:
    config, folder = admin
    body = copy_shipped(folder, "ack_reply") / "body.es.txt"
    body.write_text(body.read_text(encoding="utf-8") + "{{ consumer_ssn }}\n", encoding="utf-8")
    result = run_cli("--config", str(config), "templates", "check")
    line = len(body.read_text(encoding="utf-8").splitlines())
    assert f"{body}:{line}: unknown variable 'consumer_ssn'" in result.out
    assert result.code == 1


def test_syntax_error_line(run_cli: RunCli, admin: tuple[Path, Path]) -> None:
    config, folder = admin
    body = copy_shipped(folder, "ack_new") / "body.txt"
    body.write_text("Hi,\n\n{% if producer %}\n{{ ref_token }}\n", encoding="utf-8")
    result = run_cli("--config", str(config), "templates", "check", "--json")
    assert result.code == 1
    problems = json.loads(result.out)["problems"]
    assert {"file": str(body), "line": 4, "message": problems[0]["message"]} in problems
    assert problems[0]["message"].startswith("syntax error:")


def test_reaching_for_class_fails(run_cli: RunCli, admin: tuple[Path, Path]) -> None:
    config, folder = admin
    body = copy_shipped(folder, "ack_new") / "body.txt"
    body.write_text(
        "{{ ref_token }}\n{{ team.__class__.__mro__[1].__subclasses__() }}\n", encoding="utf-8"
    )
    result = run_cli("--config", str(config), "templates", "check")
    assert result.code == 1
    assert f"{body}:2: forbidden by the sandbox:" in result.out


def test_missing_token_line(run_cli: RunCli, admin: tuple[Path, Path]) -> None:
    config, folder = admin
    body = copy_shipped(folder, "ack_new") / "body.txt"
    text = body.read_text(encoding="utf-8").replace("{{ ref_token }}\n", "")
    body.write_text(text, encoding="utf-8")
    result = run_cli("--config", str(config), "templates", "check")
    assert result.code == 1
    line = len(text.splitlines())
    assert f"{body}:{line}: no line with {{{{ ref_token }}}} on its own" in result.out.splitlines()


def test_token_inside_a_sentence_is_not_a_line_of_its_own(
    run_cli: RunCli, admin: tuple[Path, Path]
) -> None:
    config, folder = admin
    body = copy_shipped(folder, "resolved") / "body.txt"
    body.write_text("Reference: {{ ref_token }}\n", encoding="utf-8")
    result = run_cli("--config", str(config), "templates", "check")
    assert f"{body}:1: no line with {{{{ ref_token }}}} on its own" in result.out


def test_token_is_not_offered_to_kinds_without_an_incident(
    run_cli: RunCli, admin: tuple[Path, Path]
) -> None:
    config, folder = admin
    body = copy_shipped(folder, "not_authorized") / "body.txt"
    body.write_text("Hello\n{{ ref_token }}\n", encoding="utf-8")
    result = run_cli("--config", str(config), "templates", "check")
    assert f"{body}:2: unknown variable 'ref_token'" in result.out


def test_layout_problems(run_cli: RunCli, admin: tuple[Path, Path]) -> None:
    config, folder = admin
    stray = write(folder, "ack_new/notes.txt", "x")
    unknown_kind = write(folder, "ack_neww/body.txt", "x")
    unknown_team = write(folder, "billing/ack_new/body.txt", "x")
    partial = write(folder, "resolved/body.es.txt", "{{ ref_token }}\n")
    lonely = write(folder, "resolved/body.html", "<p>{{ ref_token }}</p>\n")
    out = run_cli("--config", str(config), "templates", "check").out.splitlines()
    assert any(line.startswith(f"{stray}:1: not a template name") for line in out)
    assert any(line.startswith(f"{unknown_kind}:1: unknown kind 'ack_neww'") for line in out)
    assert f"{unknown_team}:1: unknown team 'billing'" in out
    assert f"{lonely}:1: never used: no body.txt next to this file" in out
    assert not any(line.startswith(str(partial)) for line in out)  # a body alone overrides


def test_a_partial_override_passes_and_list_shows_where_each_part_comes_from(
    run_cli: RunCli, admin: tuple[Path, Path]
) -> None:
    config, folder = admin
    subject = write(folder, "resolved/subject.txt", "Closed: {{ incident.number }}\n")
    assert run_cli("--config", str(config), "templates", "check").code == 0
    rows = json.loads(run_cli("--config", str(config), "templates", "list", "--json").out)
    row = next(
        r
        for r in rows
        if (r["kind"], r["team"], r["language"]) == ("resolved", "escalated_cases", "en")
    )
    assert (row["subject"], row["subject_layer"]) == (str(subject), "override")
    assert (row["body"], row["layer"]) == (str(shipped_dir() / "resolved" / "body.txt"), "shipped")


def test_team_folder_is_checked_for_its_team_only(
    run_cli: RunCli, admin: tuple[Path, Path]
) -> None:
    config, folder = admin
    copy_shipped(folder, "ack_new", into="producer_operations/ack_new")
    result = run_cli("--config", str(config), "templates", "check")
    assert result.code == 0, result


def test_list_shows_which_layer_answers(run_cli: RunCli, admin: tuple[Path, Path]) -> None:
    config, folder = admin
    copy_shipped(folder, "ack_new", into="producer_operations/ack_new")
    rows = json.loads(run_cli("--config", str(config), "templates", "list", "--json").out)
    by_key = {(r["kind"], r["team"], r["language"]): r for r in rows}
    assert by_key[("ack_new", "producer_operations", "en")]["layer"] == "override"
    assert by_key[("ack_new", "escalated_cases", "en")]["layer"] == "shipped"
    assert by_key[("sla_warning", "escalated_cases", "es")]["uses"] == "en"
    table = run_cli("--config", str(config), "templates", "list").out
    assert table.splitlines()[0].split() == [
        "KIND",
        "TEAM",
        "LANG",
        "USES",
        "LAYER",
        "HTML",
        "BODY",
        "SUBJECT",
    ]


def test_preview_prints_the_whole_mime_message(run_cli: RunCli) -> None:
    result = run_cli(
        "--config",
        str(REPO / "config.toml"),
        "templates",
        "preview",
        "ack_new",
        "--type",
        "termination",
    )
    assert result.code == 0, result
    out = result.out
    assert "Subject: Escalated Case: Termination.PID #:174097\n" in out
    assert "From: MHBE Escalated caseworkers Team <escalations@exchange.example>\n" in out
    for header in ("Message-ID: <tkd1.200528-2866868.", "In-Reply-To: <", "References: <"):
        assert header in out
    assert "Auto-Submitted: auto-replied\n" in out
    assert "X-Auto-Response-Suppress: All\n" in out
    assert "Content-Type: text/html" in out


def test_preview_spanish_and_team(run_cli: RunCli) -> None:
    result = run_cli(
        "--config",
        str(REPO / "config.toml"),
        "templates",
        "preview",
        "ack_new",
        "--lang",
        "es",
        "--type",
        "commission",
        "--team",
        "producer_operations",
    )
    assert result.code == 0, result
    assert "From: MHBE Producer Operations Team <" in result.out
    assert "Hola sam amsung:" in result.out
    assert "#:174097,174098" in result.out


def test_preview_unknown_team_is_one_line(run_cli: RunCli) -> None:
    result = run_cli("templates", "preview", "ack_new", "--team", "nobody")
    assert result.code == 1
    assert result.err.startswith("ticketd: unknown team 'nobody'")


def test_preview_of_a_broken_override_fails_like_check(
    run_cli: RunCli, admin: tuple[Path, Path]
) -> None:
    config, folder = admin
    body = copy_shipped(folder, "ack_new") / "body.txt"
    body.write_text("Hi,\n\n{% if producer %}\n{{ ref_token }}\n", encoding="utf-8")
    result = run_cli("--config", str(config), "templates", "preview", "ack_new")
    assert result.code == 1
    assert result.out == ""
    assert result.err.splitlines()[0].startswith(f"{body}:4: syntax error:")
    other = run_cli("--config", str(config), "templates", "preview", "resolved")
    assert other.code == 0, other  # another kind's preview shows what it would send


@pytest.mark.parametrize(
    ("line", "kinds"),
    [
        ("For our records: 219-09-9999.", "US_SSN"),
        ("Your client Maria Gonzalez is enrolled.", "PERSON"),
    ],
)
def test_check_flags_a_template_the_outbound_guard_would_withhold(
    run_cli: RunCli, admin: tuple[Path, Path], line: str, kinds: str
) -> None:
    config, folder = admin
    body = copy_shipped(folder, "ack_new") / "body.txt"
    text = body.read_text(encoding="utf-8").replace(
        "{{ ref_token }}", f"{line}\n{{{{ ref_token }}}}"
    )
    body.write_text(text, encoding="utf-8")
    result = run_cli("--config", str(config), "templates", "check")
    assert result.code == 1
    expected = {
        f"{body}:1: the outbound PII guard would withhold this mail for producer '{name}' ({kinds})"
        for name in SAMPLE_PRODUCER_NAMES
    }
    assert expected <= set(result.out.splitlines())
    assert all(str(body) in problem for problem in result.out.splitlines())


def test_check_blames_the_subject_when_the_subject_holds_it(
    run_cli: RunCli, admin: tuple[Path, Path]
) -> None:
    config, folder = admin
    subject = write(
        folder, "resolved/subject.es.txt", "Caso de Maria Gonzalez {{ incident.number }}\n"
    )
    out = run_cli("--config", str(config), "templates", "check").out.splitlines()
    message = "the outbound PII guard would withhold this mail for producer 'Wei Zhang'"
    assert f"{subject}:1: {message} (PERSON)" in out
    assert all(line.startswith(str(subject)) for line in out)


def test_every_shipped_mail_reaches_every_sample_producer() -> None:
    config = Config()
    store = TemplateStore.from_config(config)
    mails = list(sample_mails(store))
    for language in LANGUAGES:
        greeted = {p.name for _, _, p in mails if p.language == language}
        assert greeted == set(SAMPLE_PRODUCER_NAMES)
    assert {kind for kind, _, _ in mails} == {k.name for k in KINDS.values() if not k.internal}
    assert withheld_problems(store, build_guard(config.pii)) == []
