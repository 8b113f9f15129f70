"""The PII guard on blind realistic sets, each case scanned as the daemon would scan it.

A set is a JSON Lines file, one case a line::

    {"id", "lang": "en"|"es", "sender": {"name", "email", "agency", "phones": [...]} | null,
     "subject", "text", "pii": [{"text", "entity"}], "keep": [...]}

The subject and the text are scanned with the allow list the daemon builds for
that sender: the desk's own identity (``desk_allow`` of the repository's
``config.toml``) plus the sender as an authenticated roster producer.  Metrics:

- recall: a ``pii`` string counts as found when no redacted field still holds it;
- strict recall: every occurrence of it lies wholly under findings (no part left);
- keep: a ``keep`` string is kept when every field that held it still does;
- spurious markers: redaction markers (finding spans merged as redaction merges
  them) that overlap no occurrence of any ``pii`` string of the case;
- clean cases marked: cases with no ``pii`` that got at least one marker;
- milliseconds of processor time per 2 KB (scan and redact, per case, scaled to
  2,048 characters), p50 and p99.

A ``pii`` or ``keep`` string that is not in its case's subject or text cannot be
scored: it is counted apart (``absent``), never as found or kept.  ``pii_eval.py
--set`` runs this; what it prints names case ids and entity types, and values
only for a tuning set's misses (``misses(..., values=True)``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pii_guard import AllowList, Finding, PiiGuard
from pii_guard.redaction import merge_overlapping
from ticketing.privacy.allow import party_allow
from ticketing.store.models import Producer

__all__ = [
    "Case",
    "CaseResult",
    "keep_outcomes",
    "load_cases",
    "markers",
    "misses",
    "pii_outcomes",
    "scan_case",
    "summarize",
]

FIELDS = ("subject", "text")
CHARS_PER_SAMPLE = 2048
# issue 23's targets; clean cases marked: 2 in 30, scaled to a set's count
TARGETS = {"recall": 0.98, "strict": 0.96, "keep": 0.99, "spurious": 0.05, "p50_ms": 5.0}
CLEAN_MARKED_PER_30 = 2


@dataclass(frozen=True)
class Sender:
    name: str
    email: str
    agency: str | None
    phones: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    id: str
    lang: str
    sender: Sender | None
    subject: str
    text: str
    pii: tuple[tuple[str, str], ...]  # (value, entity)
    keep: tuple[str, ...]

    @property
    def fields(self) -> dict[str, str]:
        return {"subject": self.subject, "text": self.text}


@dataclass(frozen=True)
class CaseResult:
    """One case as the guard left it: its findings and redacted copy per field."""

    case: Case
    findings: dict[str, list[Finding]]
    redacted: dict[str, str]
    ms_per_2kb: float = 0.0


@dataclass(frozen=True)
class PiiOutcome:
    entity: str
    value: str
    found: bool  # no redacted field holds the value any more
    strict: bool  # every occurrence lies wholly under findings
    absent: bool = False  # not in the case's fields: not scored


@dataclass(frozen=True)
class Marker:
    field: str
    entity: str
    start: int
    end: int
    spurious: bool  # overlaps no occurrence of any pii string of the case


# --- reading a set -----------------------------------------------------------------------------


def load_cases(path: Path) -> list[Case]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [_case(json.loads(line)) for line in lines if line.strip()]


def _case(data: dict[str, Any]) -> Case:
    sender = data.get("sender")
    return Case(
        id=str(data["id"]),
        lang=data.get("lang", "en"),
        sender=_sender(sender) if sender else None,
        subject=data.get("subject") or "",
        text=data.get("text") or "",
        pii=tuple((item["text"], item["entity"]) for item in data.get("pii", ())),
        keep=tuple(data.get("keep", ())),
    )


def _sender(data: dict[str, Any]) -> Sender:
    phones = tuple(p for p in data.get("phones") or () if p)
    return Sender(data.get("name") or "", data.get("email") or "", data.get("agency"), phones)


# --- scanning a case as the daemon would -------------------------------------------------------


def case_allow(desk: AllowList, sender: Sender | None) -> AllowList:
    """The daemon's allow list for mail from ``sender``, an authenticated roster producer
    (``pipeline/guard.py``); the desk's own identity alone when nobody is named."""
    if sender is None:
        return party_allow(desk, producer=None, address=None)
    producer = Producer(
        name=sender.name,
        email=sender.email,
        phones=list(sender.phones),
        agency=sender.agency,
        npn="0",
    )
    names = (sender.name,) if sender.name else ()
    return party_allow(desk, producer=producer, address=sender.email or None, names=names)


def scan_case(guard: PiiGuard, desk: AllowList, case: Case) -> CaseResult:
    allow = case_allow(desk, case.sender)
    started = time.process_time()
    findings = {name: guard.scan(text, allow) for name, text in case.fields.items()}
    redacted = {name: guard.redact(text, findings[name]) for name, text in case.fields.items()}
    spent_ms = (time.process_time() - started) * 1000
    length = max(1, len(case.subject) + len(case.text))
    return CaseResult(case, findings, redacted, spent_ms * CHARS_PER_SAMPLE / length)


# --- the metrics, case by case -----------------------------------------------------------------


def occurrences(text: str, value: str) -> list[tuple[int, int]]:
    """Every place ``value`` stands in ``text``, overlapping ones included."""
    spans: list[tuple[int, int]] = []
    start = text.find(value) if value else -1
    while start >= 0:
        spans.append((start, start + len(value)))
        start = text.find(value, start + 1)
    return spans


def pii_outcomes(result: CaseResult) -> list[PiiOutcome]:
    outcomes = []
    for value, entity in result.case.pii:
        places = {name: occurrences(text, value) for name, text in result.case.fields.items()}
        if not any(places.values()):
            outcomes.append(PiiOutcome(entity, value, False, False, absent=True))
            continue
        found = all(value not in redacted for redacted in result.redacted.values())
        strict = all(
            _covered(result.findings[name], start, end)
            for name, spans in places.items()
            for start, end in spans
        )
        outcomes.append(PiiOutcome(entity, value, found, strict))
    return outcomes


def _covered(findings: Sequence[Finding], start: int, end: int) -> bool:
    """Whether every character of ``start:end`` lies under some finding."""
    position = start
    for finding in merge_overlapping(findings):
        if finding.start <= position < finding.end:
            position = finding.end
        if position >= end:
            return True
    return position >= end


def keep_outcomes(result: CaseResult) -> list[tuple[str, bool | None]]:
    """Each keep string and whether it survived (``None``: not in the case to begin with)."""
    outcomes: list[tuple[str, bool | None]] = []
    for keep in result.case.keep:
        held = [name for name, text in result.case.fields.items() if keep in text]
        kept = all(keep in result.redacted[name] for name in held) if held else None
        outcomes.append((keep, kept))
    return outcomes


def markers(result: CaseResult) -> list[Marker]:
    """The redaction markers of the case, each judged against the case's pii strings."""
    found = []
    for name, text in result.case.fields.items():
        gold = [span for value, _ in result.case.pii for span in occurrences(text, value)]
        for finding in merge_overlapping(result.findings[name]):
            spurious = not any(finding.overlaps(start, end) for start, end in gold)
            found.append(Marker(name, finding.entity_type, finding.start, finding.end, spurious))
    return found


def clean_marked(result: CaseResult) -> bool | None:
    """Whether a case without pii got a marker (``None``: the case has pii)."""
    if result.case.pii:
        return None
    return bool(markers(result))


# --- a set's figures ---------------------------------------------------------------------------


def summarize(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Overall and per-entity figures; ids and entity types only, never values."""
    outcomes = [o for r in results for o in pii_outcomes(r)]
    scored = [o for o in outcomes if not o.absent]
    keeps = [kept for r in results for _, kept in keep_outcomes(r)]
    every_marker = [m for r in results for m in markers(r)]
    clean = [c for c in (clean_marked(r) for r in results) if c is not None]
    times = sorted(r.ms_per_2kb for r in results)
    return {
        "cases": len(results),
        "recall": _share(sum(o.found for o in scored), len(scored)),
        "strict": _share(sum(o.strict for o in scored), len(scored)),
        "keep": _share(sum(k is True for k in keeps), sum(k is not None for k in keeps)),
        "spurious": _share(sum(m.spurious for m in every_marker), len(every_marker)),
        "clean_marked": {"marked": sum(clean), "clean": len(clean)},
        "ms_per_2kb": {"p50": _percentile(times, 0.5), "p99": _percentile(times, 0.99)},
        "absent": {"pii": len(outcomes) - len(scored), "keep": sum(k is None for k in keeps)},
        "entities": _per_entity(scored, every_marker),
    }


def _per_entity(outcomes: Sequence[PiiOutcome], found: Sequence[Marker]) -> dict[str, Any]:
    entities = sorted({o.entity for o in outcomes} | {m.entity for m in found})
    rows = {}
    for entity in entities:
        mine = [o for o in outcomes if o.entity == entity]
        marked = [m for m in found if m.entity == entity]
        rows[entity] = {
            "recall": _share(sum(o.found for o in mine), len(mine)),
            "strict": _share(sum(o.strict for o in mine), len(mine)),
            "spurious": _share(sum(m.spurious for m in marked), len(marked)),
        }
    return rows


def _share(hit: int, total: int) -> dict[str, Any]:
    return {"value": round(hit / total, 4) if total else None, "hit": hit, "n": total}


def _percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 3)


def misses(results: Iterable[CaseResult], *, values: bool) -> list[dict[str, Any]]:
    """Every miss, lost keep string and spurious marker, by case id and entity type; with
    ``values`` (a tuning set only) also the missed value, the lost string and the
    marker's original text."""
    rows: list[dict[str, Any]] = []
    for result in results:
        rows += _case_misses(result, values=values)
    return rows


def _case_misses(result: CaseResult, *, values: bool) -> list[dict[str, Any]]:
    case_id = result.case.id
    rows: list[dict[str, Any]] = []
    for o in pii_outcomes(result):
        if kind := _pii_miss(o):
            rows.append({"id": case_id, "kind": kind, "entity": o.entity} | _value(values, o.value))
    for keep, kept in keep_outcomes(result):
        if kept is not True:
            kind = "keep_absent" if kept is None else "keep_lost"
            rows.append({"id": case_id, "kind": kind} | _value(values, keep))
    for m in markers(result):
        if m.spurious:
            text = result.case.fields[m.field][m.start : m.end]
            rows.append(
                {"id": case_id, "kind": "spurious", "entity": m.entity, "field": m.field}
                | _value(values, text)
            )
    return rows


def _pii_miss(outcome: PiiOutcome) -> str:
    """What went wrong with a pii string: ``partly`` is found but not strictly (a piece of
    the value is left beside the marker, or another occurrence of it is)."""
    if outcome.absent:
        return "absent"
    if not outcome.found:
        return "missed"
    return "" if outcome.strict else "partly"


def _value(values: bool, text: str) -> dict[str, str]:
    return {"value": text} if values else {}


def targets(summary: dict[str, Any]) -> dict[str, Any]:
    """Each target beside whether the set meets it (``None``: nothing to judge)."""
    clean = summary["clean_marked"]
    allowed = CLEAN_MARKED_PER_30 * clean["clean"] / 30
    p50 = summary["ms_per_2kb"]["p50"]
    return {
        "recall": _at_least(summary["recall"]["value"], TARGETS["recall"]),
        "strict": _at_least(summary["strict"]["value"], TARGETS["strict"]),
        "keep": _at_least(summary["keep"]["value"], TARGETS["keep"]),
        "spurious": _at_most(summary["spurious"]["value"], TARGETS["spurious"]),
        "clean_marked": {"target": round(allowed, 2), "met": clean["marked"] <= allowed},
        "p50_ms": _at_most(p50, TARGETS["p50_ms"]),
    }


def _at_least(value: float | None, target: float) -> dict[str, Any]:
    return {"target": target, "met": None if value is None else value >= target}


def _at_most(value: float | None, target: float) -> dict[str, Any]:
    return {"target": target, "met": None if value is None else value <= target}


# Scanned once before timing: the guard's first scan pays for compiling and loading what
# it builds lazily (about 80 ms), which a running daemon paid long ago.  Not a case of
# the set, so the per-word caches hold none of its words.
_WARM_UP = (
    "Hi team,\nMy client John Smith (DOB 01/02/1980, SSN 219-09-9999) moved to 12 Main St,\n"
    "Apt 4, Baltimore, MD 21201; call (410) 555-0100. Incident 251103-0045521.\n"
    "Hola, mi cliente Ana López no puede inscribirse.\nThanks,\nPat"
)


def evaluate_set(guard: PiiGuard, desk: AllowList, path: Path) -> list[CaseResult]:
    guard.redact(_WARM_UP, guard.scan(_WARM_UP))
    return [scan_case(guard, desk, case) for case in load_cases(path)]


def report_lines(name: str, summary: dict[str, Any]) -> list[str]:
    """The figures of one set beside the targets, for people."""
    met = targets(summary)
    clean, times = summary["clean_marked"], summary["ms_per_2kb"]
    lines = [
        f"{name} ({summary['cases']} cases)",
        _line("recall", summary["recall"], f">= {TARGETS['recall']}", met["recall"]),
        _line("strict recall", summary["strict"], f">= {TARGETS['strict']}", met["strict"]),
        _line("keep", summary["keep"], f">= {TARGETS['keep']}", met["keep"]),
        _line("spurious markers", summary["spurious"], "<= 0.05", met["spurious"]),
        f"  {'clean cases marked':22} {clean['marked']:>6} {'of ' + str(clean['clean']):<12}"
        f" target <= {met['clean_marked']['target']:g}{_verdict(met['clean_marked'])}",
        f"  {'ms per 2 KB p50':22} {_num(times['p50']):>6} {'':<12}"
        f" target <= {TARGETS['p50_ms']:g}{_verdict(met['p50_ms'])}",
        f"  {'ms per 2 KB p99':22} {_num(times['p99']):>6}",
    ]
    absent = summary["absent"]
    if absent["pii"] or absent["keep"]:
        lines.append(
            f"  not in their case (not scored): {absent['pii']} pii, {absent['keep']} keep"
        )
    lines.append(f"  {'entity':22} {'recall':>15} {'strict':>15} {'spurious':>15}")
    for entity, row in summary["entities"].items():
        cells = (_cell(row[k]) for k in ("recall", "strict", "spurious"))
        lines.append(f"  {entity:22} " + " ".join(f"{c:>15}" for c in cells))
    return lines


def _line(label: str, share: dict[str, Any], target: str, met: dict[str, Any]) -> str:
    counts = f"({share['hit']}/{share['n']})"
    return f"  {label:22} {_num(share['value']):>6} {counts:<12} target {target}{_verdict(met)}"


def _cell(share: dict[str, Any]) -> str:
    return f"{_num(share['value'])} ({share['hit']}/{share['n']})" if share["n"] else "-"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _verdict(met: dict[str, Any]) -> str:
    return {True: "  ok", False: "  MISSED", None: ""}[met["met"]]


def miss_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per miss: id, kind, entity or field, and the value when it is given."""
    lines = []
    for row in rows:
        where = " in ".join(row[key] for key in ("entity", "field") if key in row)
        value = repr(row["value"]) if "value" in row else ""
        lines.append(f"  {row['id']:12} {row['kind']:12} {where:28} {value}".rstrip())
    return lines or ["  none"]


def is_tuning_set(path: Path) -> bool:
    """Only a tuning set is studied case by case; the holdout never shows its values."""
    return "tune" in path.name
