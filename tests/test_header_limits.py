"""The SMTP front's header-count check decides as counting every field with the parser does."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from ticketing.config import SmtpConfig
from ticketing.errors import PermanentRejection
from ticketing.pipeline.limits import check_header_count, check_header_fields, header_field_count

from .corpus import corpus_files

LINES = [
    b"Subject: hello",
    b"From: a@example.org",
    b"From a@example.org Thu Nov 26 15:00:00 2026",
    b"X-Long: one",
    b"\tcontinued",
    b" continued",
    b"no colon at all",
    b": no name",
    b"Na\xc3\xafve: value",
    b"",
    b"body line",
    b"Received: from relay",
]
ENDINGS = [b"\r\n", b"\n", b"\r"]


def verdict(check: Callable[[], None]) -> str:
    try:
        check()
    except PermanentRejection as exc:
        return f"{exc.smtp_status} {exc}"
    return "accepted"


def same_verdicts(raw: bytes, limit: int) -> tuple[str, str]:
    limits = SmtpConfig(max_header_count=limit)
    fast = verdict(lambda: check_header_fields(raw, limits))
    counted = verdict(lambda: check_header_count(header_field_count(raw), limits))
    return fast, counted


def test_random_headers_get_the_parser_s_verdict() -> None:
    rng = random.Random(26)
    seen = set()
    for _ in range(20_000):
        ending = rng.choice(ENDINGS)
        lines = [rng.choice(LINES) for _ in range(rng.randint(0, 12))]
        raw = ending.join(lines) + rng.choice([b"", ending, ending * 2 + b"body"])
        fast, counted = same_verdicts(raw, rng.randint(1, 10))
        assert fast == counted, raw
        seen.add(counted.split(" ", 1)[0])
    assert seen == {"accepted", "552", "554"}  # within, over the limit, no field at all


def test_corpus_messages_get_the_parser_s_verdict_at_their_own_count(shared_dir: Path) -> None:
    messages = [f for f in corpus_files(shared_dir) if f.is_message]
    assert len(messages) > 300
    for item in messages:
        raw = item.path.read_bytes()
        count = header_field_count(raw)
        for limit in {max(count - 1, 1), max(count, 1), count + 1}:
            fast, counted = same_verdicts(raw, limit)
            assert fast == counted, (item.rel, limit)
