"""Evaluate the PII guard on the shared development data.

    .venv/bin/python bench/pii_eval.py [--shared ../shared] [--spacy-model NAME] [--json]
    .venv/bin/python bench/pii_eval.py --set bench/pii_sets/tune.jsonl [--set ...] [--misses]

``dev.jsonl``: a ``pii`` string counts as found when the redacted text no
longer contains it; every ``keep`` string must survive.  presidio-research:
span recall and precision per entity (a span matches at character IoU >= 0.9,
as presidio-research scores), and the redaction view: "redacted" counts a gold
span whose every character lies under some finding (what redaction needs),
"touched" one that any finding overlaps, and "overlap precision" a finding
that overlaps a gold span of a type it may stand for.  The data set splits
one postal address into several gold spans (number, street line, unit, ZIP),
so a finding over the whole address fails IoU on each piece although it
redacts all of them: for addresses the IoU figures say little.
Output names case ids and entity types, never the values.

``--set PATH`` (repeatable) evaluates blind realistic sets instead, each case
scanned with the allow list the daemon builds for its sender
(``bench/pii_set_eval.py`` defines the format and the metrics), beside issue
23's targets.  ``--misses`` lists what each set missed: with the values for a
set whose file name holds "tune", by case id and entity type only for any other
(a holdout set is never studied case by case).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pii_set_eval import (
    evaluate_set,
    is_tuning_set,
    miss_lines,
    misses,
    report_lines,
    summarize,
    targets,
)

from pii_guard import Finding, GuardSettings, PiiGuard
from ticketing.config import load_config
from ticketing.privacy.allow import desk_allow
from ticketing.privacy.settings import guard_settings

REPO = Path(__file__).resolve().parents[1]
# presidio-research entity -> ours; entities not listed are not a target here
RESEARCH_TO_OURS = {
    "PERSON": "PERSON",
    "STREET_ADDRESS": "ADDRESS",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "CREDIT_CARD": "CREDIT_CARD",
    "US_SSN": "US_SSN",
    "US_DRIVER_LICENSE": "US_DRIVER_LICENSE",
}
# what a prediction of ours may legitimately sit on in the research data
OURS_TO_RESEARCH = {v: {k} for k, v in RESEARCH_TO_OURS.items()}
OURS_TO_RESEARCH["DATE_OF_BIRTH"] = {"DATE_TIME"}
OURS_TO_RESEARCH["US_BANK_NUMBER"] = {"IBAN_CODE"}
OURS_TO_RESEARCH["ADDRESS"] = {"STREET_ADDRESS", "GPE", "ZIP_CODE"}


def evaluate_dev(guard: PiiGuard, path: Path) -> dict[str, object]:
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    misses: list[str] = []
    kept = keep_total = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        redacted = guard.redact(case["text"], guard.scan(case["text"]))
        for item in case["pii"]:
            total[item["entity"]] += 1
            if item["text"] in redacted:
                misses.append(f"{case['id']}:{item['entity']}")
            else:
                found[item["entity"]] += 1
        for keep in case["keep"]:
            keep_total += 1
            kept += keep in redacted
            if keep not in redacted:
                misses.append(f"{case['id']}:keep")
    recall = {e: _ratio(found[e], total[e]) | {"n": total[e]} for e in sorted(total)}
    keep = _ratio(kept, keep_total) | {"n": keep_total}
    return {"recall": recall, "keep": keep, "misses": misses}


class _Tally:
    """Per-entity counters of the research data set: gold spans and predictions."""

    def __init__(self) -> None:
        self.gold: Counter[str] = Counter()
        self.iou: Counter[str] = Counter()
        self.redacted: Counter[str] = Counter()
        self.touched: Counter[str] = Counter()
        self.pred: Counter[str] = Counter()
        self.pred_iou: Counter[str] = Counter()
        self.pred_overlap: Counter[str] = Counter()

    def add_gold(self, findings: list[Finding], masked: set[int], span: dict[str, Any]) -> None:
        ours = RESEARCH_TO_OURS.get(span["entity_type"])
        if ours is None:
            return
        start, end = span["start_position"], span["end_position"]
        self.gold[ours] += 1
        same = [f for f in findings if f.entity_type == ours]
        self.iou[ours] += any(_iou(f, start, end) >= 0.9 for f in same)
        self.redacted[ours] += all(i in masked for i in range(start, end))
        self.touched[ours] += any(f.overlaps(start, end) for f in findings)

    def add_prediction(self, finding: Finding, spans: list[dict[str, Any]]) -> None:
        kind = finding.entity_type
        allowed = OURS_TO_RESEARCH.get(kind, set())
        bounds = [
            (s["start_position"], s["end_position"]) for s in spans if s["entity_type"] in allowed
        ]
        self.pred[kind] += 1
        self.pred_iou[kind] += any(_iou(finding, a, b) >= 0.9 for a, b in bounds)
        self.pred_overlap[kind] += any(finding.overlaps(a, b) for a, b in bounds)

    def rows(self) -> dict[str, dict[str, float | int | None]]:
        rows: dict[str, dict[str, float | int | None]] = {}
        for entity in sorted(set(self.gold) | set(self.pred)):
            gold, pred = self.gold[entity], self.pred[entity]
            rows[entity] = {
                "gold": gold,
                "recall": _ratio(self.iou[entity], gold)["value"],
                "redacted": _ratio(self.redacted[entity], gold)["value"],
                "touched": _ratio(self.touched[entity], gold)["value"],
                "predicted": pred,
                "precision": _ratio(self.pred_iou[entity], pred)["value"],
                "overlap_precision": _ratio(self.pred_overlap[entity], pred)["value"],
            }
        return rows


def evaluate_research(guard: PiiGuard, path: Path) -> dict[str, object]:
    samples = json.loads(path.read_text(encoding="utf-8"))
    tally = _Tally()
    for sample in samples:
        findings = guard.scan(sample["full_text"])
        masked = _masked(findings)
        for span in sample["spans"]:
            tally.add_gold(findings, masked, span)
        for finding in findings:
            tally.add_prediction(finding, sample["spans"])
    return {"samples": len(samples), "entities": tally.rows()}


def evaluate_corpus(guard: PiiGuard, folder: Path) -> dict[str, object]:
    """Findings per type in the plain-text bodies of real mail that is not producer mail.

    The shared corpus holds no annotated PII: every finding there is a place to
    look at for precision (most are real names in signatures and headers).
    """
    counts: Counter[str] = Counter()
    files = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _MAIL):
        files += 1
        text = _plain_body(path.read_bytes())
        counts.update(f.entity_type for f in guard.scan(text[:_CORPUS_CHARS]))
    return {"files": files, "findings": dict(sorted(counts.items()))}


_MAIL = {".eml", ".msg", ".txt", ""}
_CORPUS_CHARS = 20_000


def _plain_body(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    parts = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    texts = []
    for part in parts:
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            try:
                texts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
            except LookupError:  # a charset Python does not know ("x-unknown")
                texts.append(payload.decode("latin-1"))
    return "\n".join(texts)


def _masked(findings: Iterable[Finding]) -> set[int]:
    """The character offsets that redaction replaces."""
    return {i for f in findings for i in range(f.start, f.end)}


def _iou(finding: Finding, start: int, end: int) -> float:
    inter = max(0, min(finding.end, end) - max(finding.start, start))
    union = max(finding.end, end) - min(finding.start, start)
    return inter / union if union else 0.0


def _ratio(hit: int, total: int) -> dict[str, float | int | None]:
    return {"value": round(hit / total, 3) if total else None, "hit": hit}


def _cell(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


def _print(dev: dict[str, object], research: dict[str, object]) -> None:
    print("dev.jsonl: recall per entity (found/total)")
    for entity, row in dev["recall"].items():  # type: ignore[attr-defined]
        print(f"  {entity:22} {row['value']:.3f}  ({row['hit']}/{row['n']})")
    keep = dev["keep"]
    print(f"  keep strings intact    {keep['value']:.3f}  ({keep['hit']}/{keep['n']})")  # type: ignore[index]
    print(f"  misses: {', '.join(dev['misses']) or 'none'}")  # type: ignore[arg-type]
    print(f"\npresidio-research ({research['samples']} samples)")
    print(
        f"  {'entity':18} {'gold':>5} {'rec IoU':>7} {'redacted':>8} {'touched':>7}"
        f" {'pred':>5} {'prec IoU':>8} {'prec ovl':>8}"
    )
    keys = ("recall", "redacted", "touched", "precision", "overlap_precision")
    for entity, row in research["entities"].items():  # type: ignore[attr-defined]
        recall, redacted, touched, precision, overlap = (_cell(row[k]) for k in keys)
        print(
            f"  {entity:18} {row['gold']:>5} {recall:>7} {redacted:>8} {touched:>7}"
            f" {row['predicted']:>5} {precision:>8} {overlap:>8}"
        )


def evaluate_sets(
    paths: Sequence[Path], spacy_model: str | None, with_misses: bool
) -> dict[str, Any]:
    """Each set's figures and targets (and misses), with the daemon's guard and allow list:
    the repository's ``config.toml`` loaded as ``ticketd`` loads it."""
    config = load_config(REPO / "config.toml").config
    settings = guard_settings(config.pii)
    if spacy_model:
        settings = replace(settings, spacy_model=spacy_model)
    guard, desk = PiiGuard.build(settings), desk_allow(config)
    report: dict[str, Any] = {}
    for path in paths:
        results = evaluate_set(guard, desk, path)
        summary = summarize(results)
        report[str(path)] = {"summary": summary, "targets": targets(summary)}
        if with_misses:
            report[str(path)]["misses"] = misses(results, values=is_tuning_set(path))
    return report


def _print_sets(report: dict[str, Any]) -> None:
    for name, figures in report.items():
        print("\n".join(report_lines(name, figures["summary"])))
        if "misses" in figures:
            print("  misses:")
            print("\n".join(miss_lines(figures["misses"])))
        print()


def main(argv: Iterable[str] | None = None) -> int:
    default_shared = Path(os.environ.get("TICKETD_SHARED_DIR", REPO.parent / "shared"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=default_shared)
    parser.add_argument("--spacy-model", default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--corpus", action="store_true", help="also count findings in ../shared/corpus"
    )
    parser.add_argument(
        "--set",
        dest="sets",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="evaluate this blind set (JSON Lines) instead; repeatable",
    )
    parser.add_argument(
        "--misses",
        action="store_true",
        help="with --set: list misses (values only for a set whose file name holds 'tune')",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.sets:
        report = evaluate_sets(args.sets, args.spacy_model, args.misses)
        if args.json:
            print(json.dumps({"sets": report}, indent=2, ensure_ascii=False))
        else:
            _print_sets(report)
        return 0
    guard = PiiGuard.build(GuardSettings(spacy_model=args.spacy_model))
    pii = args.shared / "pii"
    dev = evaluate_dev(guard, pii / "dev.jsonl")
    research = evaluate_research(guard, pii / "presidio-research" / "synth_dataset_v2.json")
    corpus = evaluate_corpus(guard, args.shared / "corpus") if args.corpus else None
    if args.json:
        print(json.dumps({"dev": dev, "presidio_research": research, "corpus": corpus}, indent=2))
    else:
        _print(dev, research)
        if corpus is not None:
            print(f"\nshared mail corpus ({corpus['files']} files): findings {corpus['findings']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
