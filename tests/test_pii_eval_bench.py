"""The metrics of ``bench/pii_set_eval.py`` (``pii_eval.py --set``) on a tiny set whose
findings are written by hand, so a change to the scoring cannot pass unnoticed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pii_guard import Finding
from pii_guard.redaction import redact_text
from ticketing.config import Config
from ticketing.config.pii_schema import PiiConfig
from ticketing.privacy.allow import desk_allow
from ticketing.privacy.settings import build_guard

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pii_set_eval", BENCH / "pii_set_eval.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


ev = _load()

FOUND = "Client Maria Gonzalez, SSN 219-09-9999, incident 251103-0045521."
MISSED = "Robert Chen asked again about PID 883120."
CLEAN_MARKED = "Following up on incident 250918-0031187 for Kim."
CLEAN = "Any news?"


def _case(case_id: str, text: str, pii: tuple[tuple[str, str], ...], keep: tuple[str, ...]) -> Any:
    return ev.Case(case_id, "en", None, "", text, pii, keep)


def _result(case: Any, findings: list[Finding], ms: float) -> Any:
    redacted = {"subject": "", "text": redact_text(case.text, findings)}
    return ev.CaseResult(case, {"subject": [], "text": findings}, redacted, ms)


def _span(text: str, value: str, entity: str, score: float = 0.8, cut: int = 0) -> Finding:
    start = text.index(value)
    return Finding(entity, start, start + len(value) - cut, score)


@pytest.fixture(scope="module")
def results() -> list[Any]:
    found = _case(
        "c1",
        FOUND,
        (("Maria Gonzalez", "PERSON"), ("219-09-9999", "US_SSN")),
        ("251103-0045521",),
    )
    missed = _case("c2", MISSED, (("Robert Chen", "PERSON"),), ("PID 883120",))
    return [
        _result(
            found,
            [
                _span(FOUND, "Maria Gonzalez", "PERSON", 0.8),
                _span(FOUND, "Gonzalez, SSN", "ADDRESS", 0.5),  # merged into the name's marker
                _span(FOUND, "219-09-9999", "US_SSN", cut=2),  # "99" left: found, not strictly
            ],
            1.0,
        ),
        _result(missed, [_span(MISSED, "PID 883120", "MEMBER_ID")], 2.0),
        _result(_case("c3", CLEAN_MARKED, (), ()), [_span(CLEAN_MARKED, "Kim", "PERSON")], 3.0),
        _result(_case("c4", CLEAN, (), ()), [], 4.0),
    ]


def test_recall_is_lenient_and_strict_recall_is_not(results: list[Any]) -> None:
    summary = ev.summarize(results)
    assert (summary["recall"]["hit"], summary["recall"]["n"]) == (2, 3)
    assert (summary["strict"]["hit"], summary["strict"]["n"]) == (1, 3)
    entities = summary["entities"]
    assert (entities["PERSON"]["recall"]["hit"], entities["PERSON"]["recall"]["n"]) == (1, 2)
    assert entities["US_SSN"]["recall"]["value"] == 1.0
    assert entities["US_SSN"]["strict"]["value"] == 0.0


def test_keep_spurious_markers_and_clean_cases(results: list[Any]) -> None:
    summary = ev.summarize(results)
    assert summary["keep"]["value"] == 0.5
    # markers: the name (two findings merged), the SSN, "PID 883120", "Kim"
    assert (summary["spurious"]["hit"], summary["spurious"]["n"]) == (2, 4)
    assert [m.entity for m in ev.markers(results[0])] == ["PERSON", "US_SSN"]
    assert summary["entities"]["MEMBER_ID"]["spurious"]["value"] == 1.0
    assert summary["clean_marked"] == {"marked": 1, "clean": 2}
    assert summary["ms_per_2kb"] == {"p50": 2.0, "p99": 4.0}


def test_targets_scale_the_clean_allowance(results: list[Any]) -> None:
    met = ev.targets(ev.summarize(results))
    assert met["clean_marked"] == {"target": round(2 * 2 / 30, 2), "met": False}
    assert met["recall"]["met"] is False and met["keep"]["met"] is False
    assert met["p50_ms"] == {"target": 5.0, "met": True}


def test_misses_show_values_only_when_asked(results: list[Any]) -> None:
    blind = ev.misses(results, values=False)
    assert [(r["id"], r["kind"], r.get("entity")) for r in blind] == [
        ("c1", "partly", "US_SSN"),
        ("c2", "missed", "PERSON"),
        ("c2", "keep_lost", None),
        ("c2", "spurious", "MEMBER_ID"),
        ("c3", "spurious", "PERSON"),
    ]
    assert all("value" not in row for row in blind)
    seen = [row["value"] for row in ev.misses(results, values=True)]
    assert seen == ["219-09-9999", "Robert Chen", "PID 883120", "PID 883120", "Kim"]
    assert "99" not in "".join(ev.miss_lines(blind))


def test_absent_strings_are_not_scored() -> None:
    case = _case("c5", "Nothing here.", (("Jane Roe", "PERSON"),), ("251103-0045521",))
    summary = ev.summarize([_result(case, [], 1.0)])
    assert summary["absent"] == {"pii": 1, "keep": 1}
    assert summary["recall"]["n"] == 0 and summary["keep"]["n"] == 0


def test_only_a_tuning_set_is_studied() -> None:
    assert ev.is_tuning_set(Path("bench/pii_sets/tune.jsonl"))
    assert not ev.is_tuning_set(Path("bench/pii_sets/holdout.jsonl"))


def test_a_case_is_scanned_with_its_senders_allow_list(tmp_path: Path) -> None:
    line = (
        '{"id": "s1", "lang": "en", "subject": "PID 174097", '
        '"text": "Thanks,\\nDenise Whitaker\\nOffice (410) 555-0134", "pii": [], "keep": [], '
        '"sender": {"name": "Denise Whitaker", "email": "denise@whitakerlowe.example", '
        '"agency": null, "phones": ["410-555-0134"]}}'
    )
    path = tmp_path / "tune.jsonl"
    nobody = line.replace('"sender": {', '"unused": {')
    path.write_text(f"{line}\n{nobody}\n", encoding="utf-8")
    guard, desk = build_guard(PiiConfig()), desk_allow(Config())
    vouched, stranger = ev.evaluate_set(guard, desk, path)
    assert ev.markers(vouched) == []
    assert {m.entity for m in ev.markers(stranger)} == {"PERSON", "PHONE_NUMBER"}
    assert vouched.ms_per_2kb > 0
