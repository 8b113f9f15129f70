"""How often ``mailer.bounces.failures`` finds a bounce's failed recipients, on the corpus
sets that publish what their own tests expect.

    .venv/bin/python bench/bounce_eval.py [--shared ../shared] [--misses] [--json]

- **sisimai** (``expected/go-sisimai-expected.json``, go-sisimai's public test tables): the
  tables give, per bounce, one row per failed recipient (status, reason) but not the address.
  A bounce counts as found when ``failures()`` reports exactly that many distinct
  recipients and none of them is the bounce's own From or To (the sender of the returned
  mail).  Rows whose reason is ``feedback``, ``vacation`` or ``delivered`` are not failures
  and are left out (a file with none left is not a bounce here).
- **bounceparser** (index.csv, from Mail-DeliveryStatus-BounceParser's ``t/*.t``): every
  file its tests call a bounce (``is_bounce=1``); where the test names the address(es), they
  must all be found, else at least one recipient must be.
- **flufl.bounce** (index.csv, from its detectors' test table): the exact failure set must
  be found; the one sample from which no address can be had must give none.
- **all bounces**: every corpus message of category ``bounce``, counted as found when
  ``failures()`` gives at least one recipient (the figure a desk sees: a bounce it can act on).

``extra`` counts recipients reported beyond the expected set, where the set is known;
``status`` (sisimai) the bounces whose statuses are all the ones the tables give, of those
whose table gives real RFC 3463 codes (sisimai's own ``x.0.9xx`` codes left out).
With ``PYTHONPATH`` pointing at another tree's ``mailer/`` the same figures come for it.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailer.bounces import failures
from mailer.parsing import parse_message

REPO = Path(__file__).resolve().parents[1]
_NOT_FAILURES = {"feedback", "vacation", "delivered"}
_ADDRESS = re.compile(r"address(?:es)?=([^\s,;)]+@[^\s,;)]+)")
_REAL_STATUS = re.compile(r"^[45]\.\d\.(?:[0-8]\d\d|\d{1,2})$")
_RANGE = re.compile(r"^(\D+)(\d+)\.\.(\d+)(@.+)$")  # bounced1..4@example.net


@dataclass
class Tally:
    name: str
    total: int = 0
    found: int = 0
    extra: int = 0
    status_total: int = 0
    status_same: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, rel: str, ok: bool, extra: int = 0) -> None:
        self.total += 1
        self.found += ok
        self.extra += extra
        if not ok:
            self.misses.append(rel)

    def summary(self) -> dict[str, object]:
        rate = self.found / self.total if self.total else 0.0
        return {
            "set": self.name,
            "found": self.found,
            "total": self.total,
            "rate": round(rate, 3),
            "extra": self.extra,
            "status": f"{self.status_same}/{self.status_total}" if self.status_total else "-",
        }


def recipients(path: Path) -> tuple[set[str], list[str], set[str]]:
    """The addresses ``failures()`` reports (failed and, where the DSN says, original), the
    status of each recipient, and the bounce's own From and To."""
    parsed = parse_message(path.read_bytes())
    found = {f.recipient: f.status for f in failures(parsed)}
    addresses = {a for f in failures(parsed) for a in f.addresses}
    return addresses, sorted(found.values()), {parsed.from_address or "", *parsed.to}


def sisimai(corpus: Path) -> Tally:
    tally = Tally("sisimai")
    table = json.loads((corpus / "sisimai/expected/go-sisimai-expected.json").read_text())
    for rel, case in sorted(table["expected"].items()):
        wanted = [r for r in case["results"] if r["reason"] not in _NOT_FAILURES]
        if not wanted:
            continue
        found, statuses, own = recipients(corpus / "sisimai" / rel)
        tally.add(f"sisimai/{rel}", len(statuses) == len(wanted) and not found & own)
        expected = sorted(r["status"] for r in wanted)
        if all(_REAL_STATUS.match(s) for s in expected):  # not sisimai's own x.0.9xx codes
            tally.status_total += 1
            tally.status_same += statuses == expected
    return tally


def _expected_addresses(note: str) -> set[str]:
    found: set[str] = set()
    for value in _ADDRESS.findall(note):
        ranged = _RANGE.match(value)
        if ranged:
            stem, first, last, domain = ranged.groups()
            found |= {f"{stem}{n}{domain}" for n in range(int(first), int(last) + 1)}
        else:
            found.add(value.lower())
    return found


def bounceparser(rows: Iterable[dict[str, str]], corpus: Path) -> Tally:
    tally = Tally("bounceparser")
    for row in rows:
        if row["source"] != "bounceparser" or "is_bounce=1" not in row["expected"]:
            continue
        wanted = _expected_addresses(row["expected"])
        found = recipients(corpus / row["path"])[0]
        ok = wanted <= found if wanted else bool(found)
        tally.add(row["path"], ok, len(found - wanted) if wanted else 0)
    return tally


def flufl(rows: Iterable[dict[str, str]], corpus: Path) -> Tally:
    tally = Tally("flufl.bounce")
    for row in rows:
        if row["source"] != "flufl_bounce":
            continue
        groups = re.findall(r"failure set == \{([^}]*)\}", row["expected"])
        wanted = {a.strip().lower() for g in groups for a in g.split(",") if "@" in a}
        found = recipients(corpus / row["path"])[0]
        tally.add(row["path"], wanted <= found if wanted else not found, len(found - wanted))
    return tally


def every_bounce(rows: Iterable[dict[str, str]], corpus: Path) -> Tally:
    tally = Tally("all bounces (>= 1 recipient)")
    for row in rows:
        if row["category"] == "bounce":
            tally.add(row["path"], bool(recipients(corpus / row["path"])[0]))
    return tally


def evaluate(shared: Path) -> Iterator[Tally]:
    corpus = shared / "corpus"
    with (corpus / "index.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    yield sisimai(corpus)
    yield bounceparser(rows, corpus)
    yield flufl(rows, corpus)
    yield every_bounce(rows, corpus)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--misses", action="store_true", help="list the files not found")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)
    tallies = list(evaluate(args.shared))
    if args.json:
        print(json.dumps([t.summary() | {"misses": t.misses} for t in tallies], indent=1))
        return 0
    for tally in tallies:
        s = tally.summary()
        print(
            f"{s['set']:30} {s['found']:>3}/{s['total']:<3} {s['rate']:6.1%}"
            f"  extra {s['extra']}  status {s['status']}"
        )
        for miss in tally.misses if args.misses else ():
            print(f"    miss: {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
