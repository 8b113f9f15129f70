"""The guard on the shared evaluation data (../shared/pii), against the issue's targets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from pii_guard import PiiGuard

STRICT_RECALL = 0.98  # SSN, ITIN, DOB, phone, email, Medicaid, MBI, card, bank
LOOSE_RECALL = {"PERSON": 0.90, "ADDRESS": 0.90}  # names and addresses


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return PiiGuard.build()


def test_dev_recall_and_keep_strings(guard: PiiGuard, shared_dir: Path) -> None:
    total: Counter[str] = Counter()
    found: Counter[str] = Counter()
    kept = keep_total = 0
    for line in (shared_dir / "pii" / "dev.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        redacted = guard.redact(case["text"], guard.scan(case["text"]))
        for item in case["pii"]:
            total[item["entity"]] += 1
            found[item["entity"]] += item["text"] not in redacted
        keep_total += len(case["keep"])
        kept += sum(keep in redacted for keep in case["keep"])
    for entity, count in total.items():
        target = LOOSE_RECALL.get(entity, STRICT_RECALL)
        assert found[entity] / count >= target, f"{entity}: {found[entity]}/{count}"
    assert kept / keep_total >= 0.99


def test_dev_messages_without_pii_pass_untouched(guard: PiiGuard, shared_dir: Path) -> None:
    cases = [json.loads(x) for x in (shared_dir / "pii" / "dev.jsonl").read_text().splitlines()]
    clean = [c for c in cases if not c["pii"]]
    assert clean
    for case in clean:
        assert guard.scan(case["text"]) == [], case["id"]


def test_presidio_research_structured_entities(guard: PiiGuard, shared_dir: Path) -> None:
    path = shared_dir / "pii" / "presidio-research" / "synth_dataset_v2.json"
    samples = json.loads(path.read_text(encoding="utf-8"))
    wanted = {"US_SSN", "EMAIL_ADDRESS", "CREDIT_CARD"}
    gold = hit = 0
    for sample in samples:
        spans = [s for s in sample["spans"] if s["entity_type"] in wanted]
        if not spans:
            continue
        findings = guard.scan(sample["full_text"])
        for span in spans:
            gold += 1
            hit += any(
                f.entity_type == span["entity_type"]
                and f.start == span["start_position"]
                and f.end == span["end_position"]
                for f in findings
            )
    assert gold > 150 and hit / gold >= 0.98


# Floors against regression on the redaction view (every character of a gold span
# redacted), below today's figures (docs/benchmarks.md); the targets are higher.
REDACTED_FLOORS = {"PHONE_NUMBER": 0.97, "STREET_ADDRESS": 0.65, "PERSON": 0.65}


def test_presidio_research_spans_are_redacted(guard: PiiGuard, shared_dir: Path) -> None:
    path = shared_dir / "pii" / "presidio-research" / "synth_dataset_v2.json"
    gold: Counter[str] = Counter()
    redacted: Counter[str] = Counter()
    for sample in json.loads(path.read_text(encoding="utf-8")):
        findings = guard.scan(sample["full_text"])
        masked = {i for f in findings for i in range(f.start, f.end)}
        for span in sample["spans"]:
            kind = span["entity_type"]
            if kind in REDACTED_FLOORS:
                gold[kind] += 1
                covered = range(span["start_position"], span["end_position"])
                redacted[kind] += all(i in masked for i in covered)
    for kind, floor in REDACTED_FLOORS.items():
        assert redacted[kind] / gold[kind] >= floor, f"{kind}: {redacted[kind]}/{gold[kind]}"
