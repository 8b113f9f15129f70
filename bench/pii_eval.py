"""Evaluate the PII guard on the shared development data.

    .venv/bin/python bench/pii_eval.py [--shared ../shared] [--spacy-model NAME] [--json]

``dev.jsonl``: a ``pii`` string counts as found when the redacted text no
longer contains it; every ``keep`` string must survive.  presidio-research:
span recall and precision per entity (a span matches at character IoU >= 0.9,
as presidio-research scores; "covered" counts a gold span touched at all).
Output names case ids and entity types, never the values.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pii_guard import Finding, GuardSettings, PiiGuard

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


def evaluate_research(guard: PiiGuard, path: Path) -> dict[str, object]:
    samples = json.loads(path.read_text(encoding="utf-8"))
    gold_n: Counter[str] = Counter()
    gold_hit: Counter[str] = Counter()
    gold_covered: Counter[str] = Counter()
    pred_n: Counter[str] = Counter()
    pred_hit: Counter[str] = Counter()
    for sample in samples:
        findings = guard.scan(sample["full_text"])
        spans = [s for s in sample["spans"]]
        for span in spans:
            ours = RESEARCH_TO_OURS.get(span["entity_type"])
            if ours is None:
                continue
            gold_n[ours] += 1
            start, end = span["start_position"], span["end_position"]
            same = [f for f in findings if f.entity_type == ours]
            gold_hit[ours] += any(_iou(f, start, end) >= 0.9 for f in same)
            gold_covered[ours] += any(f.overlaps(start, end) for f in findings)
        for finding in findings:
            pred_n[finding.entity_type] += 1
            allowed = OURS_TO_RESEARCH.get(finding.entity_type, set())
            pred_hit[finding.entity_type] += any(
                s["entity_type"] in allowed
                and _iou(finding, s["start_position"], s["end_position"]) >= 0.9
                for s in spans
            )
    rows: dict[str, dict[str, float | int | None]] = {}
    for entity in sorted(set(gold_n) | set(pred_n)):
        rows[entity] = {
            "gold": gold_n[entity],
            "recall": _ratio(gold_hit[entity], gold_n[entity])["value"],
            "covered": _ratio(gold_covered[entity], gold_n[entity])["value"],
            "predicted": pred_n[entity],
            "precision": _ratio(pred_hit[entity], pred_n[entity])["value"],
        }
    return {"samples": len(samples), "entities": rows}


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
    print(f"\npresidio-research ({research['samples']} samples), IoU >= 0.9")
    print(f"  {'entity':22} {'gold':>5} {'recall':>7} {'covered':>8} {'pred':>5} {'precision':>9}")
    for entity, row in research["entities"].items():  # type: ignore[attr-defined]
        recall, covered, precision = (_cell(row[k]) for k in ("recall", "covered", "precision"))
        print(
            f"  {entity:22} {row['gold']:>5} {recall:>7} {covered:>8}"
            f" {row['predicted']:>5} {precision:>9}"
        )


def main(argv: Iterable[str] | None = None) -> int:
    default_shared = Path(os.environ.get("TICKETD_SHARED_DIR", REPO.parent / "shared"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=default_shared)
    parser.add_argument("--spacy-model", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)
    guard = PiiGuard.build(GuardSettings(spacy_model=args.spacy_model))
    pii = args.shared / "pii"
    dev = evaluate_dev(guard, pii / "dev.jsonl")
    research = evaluate_research(guard, pii / "presidio-research" / "synth_dataset_v2.json")
    if args.json:
        print(json.dumps({"dev": dev, "presidio_research": research}, indent=2))
    else:
        _print(dev, research)
    return 0


if __name__ == "__main__":
    sys.exit(main())
