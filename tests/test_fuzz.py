"""Mutated real-world mail through the whole intake pipeline: no crash, every message accounted.

A seeded mutator damages the shared corpus the way the wild does and feeds the result to
``IntakePipeline.process`` with the real PII guard and the templated replies, on SQLite. Blind
mutations flip bytes, truncate, duplicate headers, break MIME boundaries and lie about charsets;
structure-aware ones (issue 21) keep the message whole enough to reach the later stages:

* nesting: message/rfc822 forwards and multipart/mixed, 1 to 400 levels (past ``MAX_NESTING``,
  100, refused with a reason);
* encodings: RFC 2047 words in Subject, From and To (B and Q, unknown charsets, split inside a
  character across folded lines, broken); a part declared base64, quoted-printable, uuencode,
  8bit, binary or unknown, encoded so or not; broken base64; NULs and bare CRs;
* sizes: a body grown to 100 KB - 2 MB (text shaped like streets, phone and card numbers,
  addresses), a Subject of 10 - 200 KB, 100 to 5,000 header fields, one 100 KB header line;
* header folding: at random spaces, lines of whitespace only, a fold before the colon.

Every message must come back as an ``Outcome`` (recorded, duplicate, screened, …) or a
``PermanentRejection`` with a reason, and the ``messages`` table must hold exactly one row per
outcome that is not a duplicate. A crash does not stop the run: every kind of crash is listed
with its first cases (index and mutations), to replay with the same seed; the three messages
that cost the most CPU are printed too.

The big sizes are drawn rarely (``RARITY``) and the corpus's messages over 100 KB a quarter as
often (``_seed_weight``): a big body costs the guard seconds. The default is 3,000 messages:
88 s on the 2-vCPU VM at load average 1, 111 to 121 s at 1.5 to 3 (~30 ms of CPU each, mostly
the PII guard and the templated replies; the blind mutations alone took 79 s of CPU, as they
leave less of a message to read). The run of 10,000 took 5.5 minutes at load average 1 and 6
minutes at 1.2 to 3.8:

    TICKETD_FUZZ_COUNT=10000 .venv/bin/pytest -n 0 tests/test_fuzz.py -o timeout=2400

``TICKETD_FUZZ_SEED`` changes the seed.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import os
import random
import re
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import select

from mailer.structure import MAX_NESTING
from ticketing.config import DatabaseConfig, load_config
from ticketing.errors import PermanentRejection
from ticketing.intake.build import build_intake
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import RawMessage
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.migrate import upgrade
from ticketing.store.models import Message

from .builders import LOCAL_MTA
from .conftest import write_config
from .corpus import corpus_files
from .daemon import SECRET_ENV, UNLIMITED_INCIDENTS

COUNT = int(os.environ.get("TICKETD_FUZZ_COUNT", "3000"))
SEED = int(os.environ.get("TICKETD_FUZZ_SEED", "20261126"))
MAILBOXES = ("escalations", "producer-operations")  # the redact and the reject policy
CHARSETS = (b"utf-8", b"us-ascii", b"iso-2022-jp", b"utf-16", b"utf-7", b"x-unknown", b"koi8-r")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_BOUNDARY = re.compile(rb'boundary="?([^";\r\n]+)"?', re.IGNORECASE)
_CHARSET = re.compile(rb'charset="?([A-Za-z0-9_.:-]+)"?', re.IGNORECASE)
SIZE_SKEW = 2.0  # see _size

Mutation = Callable[[random.Random, bytes], bytes]


def flip_bytes(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 16)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def truncate(rng: random.Random, raw: bytes) -> bytes:
    return raw[: rng.randrange(len(raw))]


def duplicate_header(rng: random.Random, raw: bytes) -> bytes:
    end = _HEADER_END.search(raw)
    head = raw[: end.start()] if end else raw
    lines = [line for line in head.splitlines(keepends=True) if line[:1] not in (b" ", b"\t")]
    copies = b"".join(rng.choice(lines) for _ in range(rng.randint(1, 4))) if lines else b""
    cut = rng.randrange(len(head) + 1)
    cut = head.rfind(b"\n", 0, cut) + 1
    return raw[:cut] + copies + raw[cut:]


def damage_boundary(rng: random.Random, raw: bytes) -> bytes:
    found = _BOUNDARY.findall(raw)
    if not found:
        return flip_bytes(rng, raw)
    boundary = rng.choice(found)
    choice = rng.randrange(3)
    if choice == 0:  # the closing delimiter disappears
        return raw.replace(b"--" + boundary + b"--", b"")
    if choice == 1:  # every delimiter is misspelt, so no part is found
        return raw.replace(b"--" + boundary, b"--" + boundary[::-1] + b"x")
    parts = raw.split(b"--" + boundary)  # one delimiter is lost, two parts run together
    index = rng.randrange(1, len(parts)) if len(parts) > 1 else 0
    return b"--".join([b"--" + boundary, *parts[index:]]) if index else raw


def lie_about_charset(rng: random.Random, raw: bytes) -> bytes:
    lie = rng.choice(CHARSETS)
    if _CHARSET.search(raw):
        return _CHARSET.sub(b'charset="' + lie + b'"', raw, count=rng.randint(1, 3))
    end = _HEADER_END.search(raw)
    at = end.end() if end else len(raw)
    header = b"Content-Type: text/plain; charset=" + lie + b"\r\n"
    return header + raw[:at] + bytes(rng.randrange(128, 256) for _ in range(40)) + raw[at:]


# --- where things are in a raw message --------------------------------------------------------

_DELIMITER_LINE = re.compile(rb"\n--[^\r\n]*\r?\n")  # any line that could open a part
_CONTENT_FIELD = re.compile(rb"(?im)^Content-[^:\n]*:[^\n]*\n?(?:[ \t][^\n]*\n?)*")
_CTE_FIELD = re.compile(rb"(?im)^Content-Transfer-Encoding[ \t]*:[^\n]*\n?(?:[ \t][^\n]*\n?)*")
_FIELD_NAME = re.compile(rb"(?m)^([!-9;-~]+):")
_FOLDABLE = re.compile(rb"(?<=\S) ")  # a space after a word: folding there keeps the value


class _Part(NamedTuple):
    """Offsets of one part: its header (up to the line end of its last field) and its body."""

    head: int
    head_end: int
    body: int
    body_end: int


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """The top-level header, the blank line that ends it and the body (all header if none)."""
    end = _HEADER_END.search(raw)
    if end is None:
        return raw, b"", b""
    return raw[: end.start()], raw[end.start() : end.end()], raw[end.end() :]


def _pick_part(rng: random.Random, raw: bytes) -> _Part:
    """The top-level header or one after a line that could be a delimiter, with its body up to
    the next such line: found by the bytes, not the parser, to stay cheap and go where damaged
    mail would mislead a parser too."""
    start = rng.choice([0, *(line.end() for line in _DELIMITER_LINE.finditer(raw))])
    end = _HEADER_END.search(raw, start)
    if end is None:
        start, end = 0, _HEADER_END.search(raw)
    if end is None:  # no blank line anywhere: all header, an empty body at the end
        return _Part(0, len(raw), len(raw), len(raw))
    body_end = raw.find(b"\n--", end.end())
    return _Part(start, end.start(), end.end(), len(raw) if body_end < 0 else body_end)


def _with_field(raw: bytes, name: bytes, value: bytes) -> bytes:
    """``raw`` with its top-level ``name`` fields (folded lines too) replaced by one, first."""
    head, blank, body = _split(raw)
    pattern = re.compile(rb"(?im)^" + re.escape(name) + rb"[ \t]*:[^\n]*\n?(?:[ \t][^\n]*\n?)*")
    rest = pattern.sub(b"", head).rstrip(b"\r\n")
    return name + b": " + value + (b"\r\n" + rest if rest else b"") + blank + body


def _outer_fields(raw: bytes) -> bytes:
    """The top-level fields of ``raw`` but its Content-* ones: the header of a message that
    wraps it, so the wrapper still has the sender, subject and Message-ID the pipeline reads."""
    fields = _CONTENT_FIELD.sub(b"", _split(raw)[0]).rstrip(b"\r\n")
    return fields + b"\r\n" if fields.strip() else b""


def _repeat(unit: bytes, size: int) -> bytes:
    return (unit * (size // len(unit) + 1))[:size]


def _size(rng: random.Random, low: int, high: int) -> int:
    """From ``low`` to ``high``, log-uniform skewed towards ``low`` (``SIZE_SKEW``): the guard
    spends up to its whole budget (5 s of CPU) on a big body, so the biggest must be rare to
    keep the default run at its usual time."""
    return int(low * (high / low) ** (rng.random() ** SIZE_SKEW))


# --- nesting ----------------------------------------------------------------------------------

_FORWARD = b"From: fwd@corpus.example\r\nSubject: Fwd\r\nContent-Type: message/rfc822\r\n\r\n"


def _depth(rng: random.Random) -> int:
    """Levels of nesting: half the time a forward's few, else around the daemon's limit
    (refused with a reason past it) or far past it, up to a few hundred."""
    roll = rng.random()
    if roll < 0.5:
        return rng.randint(1, 8)
    if roll < 0.8:
        return rng.randint(MAX_NESTING - 4, MAX_NESTING + 4)
    return rng.randint(MAX_NESTING + 5, 400)


def nest_rfc822(rng: random.Random, raw: bytes) -> bytes:
    """``raw`` forwarded as an attachment (message/rfc822), inside forwards of forwards."""
    outer = _outer_fields(raw) + b"MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
    return outer + _FORWARD * (_depth(rng) - 1) + raw


def nest_multipart(rng: random.Random, raw: bytes) -> bytes:
    """``raw`` as the one part of a multipart/mixed inside another, N deep; one time in five
    no closing delimiter (the parser must close every level at the end of the input)."""
    levels = range(_depth(rng))
    opens = (
        b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (i, i) for i in levels
    )
    closes = (b"\r\n--n%d--" % i for i in reversed(levels)) if rng.random() < 0.8 else ()
    return _outer_fields(raw) + b"MIME-Version: 1.0\r\n" + b"".join(opens) + raw + b"".join(closes)


# --- encodings --------------------------------------------------------------------------------

WORD_TEXTS = (
    "Jörg Müller",
    "Заявка: 12 Main Street Apt 1",
    "請求書 4111 1111 1111 1111",
    "ação?_=",
)
WORD_CHARSETS = ("utf-8", "iso-8859-1", "koi8-r", "shift_jis", "x-unknown", "utf-8*en", "")
# How encoded words break in the wild, as (what, into what) in every word of the field.
_WORD_DAMAGE = (
    (b"=?=", b"?="),  # base64 padding lost
    (b"?=", b"===?="),  # padding where none belongs (in Q: a stray "=")
    (b"?B?", b"?X?"),  # an encoding that does not exist
    (b"?Q?", b"?B?"),  # Q text labelled base64
    (b"?=", b""),  # never closed
    (b"?=", b"?=\x00"),  # a NUL after each word
)
_ADDRESS_FORMS = (
    b"%b <j.m@corpus.example>",
    b'"%b" <j.m@corpus.example>',
    b"j.m@corpus.example (%b)",
)


def _charset_bytes(text: str, charset: str) -> bytes:
    try:
        return text.encode(charset.partition("*")[0], "replace")
    except LookupError:  # a charset Python does not know: the bytes are UTF-8, the label lies
        return text.encode("utf-8")


def _encoded_word(charset: bytes, kind: bytes, data: bytes) -> bytes:
    if kind == b"B":
        payload = base64.b64encode(data)
    else:
        payload = binascii.b2a_qp(data, header=True).replace(b"?", b"=3F")
    return b"=?" + charset + b"?" + kind + b"?" + payload + b"?="


def encoded_words(rng: random.Random, raw: bytes) -> bytes:
    """Subject, From or To as RFC 2047 words: B or Q, any charset (unknown ones too), the text
    split anywhere (inside a character too) across words on folded lines; a third broken."""
    charset = rng.choice(WORD_CHARSETS)
    data, kind = _charset_bytes(rng.choice(WORD_TEXTS), charset), rng.choice((b"B", b"Q"))
    step = rng.randint(1, len(data))
    words = (
        _encoded_word(charset.encode(), kind, data[i : i + step]) for i in range(0, len(data), step)
    )
    value = rng.choice((b" ", b"\r\n ", b"\r\n\t", b"")).join(words)
    if rng.random() < 1 / 3:
        value = value.replace(*rng.choice(_WORD_DAMAGE))
    name = rng.choice((b"Subject", b"From", b"To"))
    if name != b"Subject" and rng.random() < 0.8:
        value = rng.choice(_ADDRESS_FORMS) % value
    return _with_field(raw, name, value)


def _uuencode(body: bytes) -> bytes:
    lines = (binascii.b2a_uu(body[i : i + 45]) for i in range(0, len(body), 45))
    return b"begin 644 fuzz.txt\n" + b"".join(lines) + b"`\nend\n"


def _as_is(body: bytes) -> bytes:
    return body


_ENCODERS: dict[bytes, Callable[[bytes], bytes]] = {
    b"base64": base64.encodebytes,
    b"quoted-printable": binascii.b2a_qp,
    b"x-uuencode": _uuencode,
    b"8bit": _as_is,
    b"binary": _as_is,
    b"x-gzip64": base64.encodebytes,  # encoded, under a name no parser knows
}
_BASE64_DAMAGE = (
    (b"=", b""),  # padding lost
    (b"\n", b"=\n"),  # padding after every line
    (b"\n", b""),  # one line of any length
    (b"A", b"!*"),  # characters outside the alphabet
    (b"\n", b" \x00\r\n"),  # spaces and NULs at line ends
)


def _recode_part(
    rng: random.Random, raw: bytes, name: bytes, encode: Callable[[bytes], bytes]
) -> bytes:
    """``raw`` with one part's body passed through ``encode``, declared ``name``."""
    part = _pick_part(rng, raw)
    head = _CTE_FIELD.sub(b"", raw[part.head : part.head_end]).rstrip(b"\r\n")
    head += b"\r\nContent-Transfer-Encoding: " + name
    body = encode(raw[part.body : part.body_end])
    return raw[: part.head] + head + raw[part.head_end : part.body] + body + raw[part.body_end :]


def transfer_encoding(rng: random.Random, raw: bytes) -> bytes:
    """One part declared base64, quoted-printable, uuencode, 8bit, binary or an unknown
    encoding: its body encoded so, or (one time in three) left as it was, a lie."""
    name = rng.choice(tuple(_ENCODERS))
    return _recode_part(rng, raw, name, _ENCODERS[name] if rng.random() < 2 / 3 else _as_is)


def _damaged_base64(rng: random.Random, body: bytes) -> bytes:
    text = base64.encodebytes(body).replace(*rng.choice(_BASE64_DAMAGE))
    return text.rstrip(b"\n")[: -rng.randint(1, 3)] if rng.random() < 0.3 else text  # cut short


def broken_base64(rng: random.Random, raw: bytes) -> bytes:
    """One part in base64 as broken senders write it: padding lost or everywhere, one endless
    line, characters outside the alphabet, NULs, the last quantum cut short."""
    return _recode_part(rng, raw, b"base64", partial(_damaged_base64, rng))


_CONTROLS = (b"\x00", b"\r", b"\x00" * 8, b"\r\r\n", b"\x0b\x0c", b"\x1b[0m")


def control_chars(rng: random.Random, raw: bytes) -> bytes:
    """NULs and bare CRs where they do not belong; one time in four, every line end a bare CR."""
    data = bytearray(raw)
    for _ in range(rng.randint(1, 20)):
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.choice(_CONTROLS)
    if rng.random() < 0.25:
        data = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    return bytes(data)


# --- sizes ------------------------------------------------------------------------------------

# Text shaped like personal data (streets, numbers, addresses) is what the PII guard works
# hardest on; the last, a part's own text.
_FILLERS = (
    b"12 Main Street Apt 1 ",
    b"Call +1 (555) 010-0199 or 555-010-0199. ",
    b"jane.doe@example.com, ",
    b"4111 1111 1111 1111 exp 12/29, SSN 078-05-1120\r\n",
    b"The quick brown fox jumps over the lazy dog.\r\n",
    "Заявка № 12, ул. Ленина 1, кв. 2 ".encode(),
)
_SUBJECT_UNITS = (
    b"Escalation ",
    b"x",
    b"12 Main Street Apt 1 ",
    b"=?utf-8?B?SsO2cmcgTcO8bGxlcg==?= ",
)
_LONG_FIELDS = (
    (b"To", b"a@corpus.example,"),
    (b"Cc", b'"Doe, Jane" <jane@corpus.example>,'),
    (b"References", b"<id@corpus.example>"),
    (b"Message-ID", b"x"),
    (b"X-Long", b"y"),
)
_MANY_FIELDS = (b"X-Fuzz-%d: %d\r\n", b"Received: from relay%d.corpus.example by mx%d\r\n")


def grow_body(rng: random.Random, raw: bytes) -> bytes:
    """One part's body grown by repetition to 100 KB - 2 MB, after its own text or instead."""
    part = _pick_part(rng, raw)
    body = raw[part.body : part.body_end]
    grown = _repeat(rng.choice((*_FILLERS, body[:300] or b"x")), _size(rng, 100_000, 2_000_000))
    body = body + grown if rng.random() < 0.5 else grown
    return raw[: part.body] + body + raw[part.body_end :]


def huge_subject(rng: random.Random, raw: bytes) -> bytes:
    """A Subject of 10 to 200 KB: words, one unbroken token, or encoded words."""
    return _with_field(
        raw, b"Subject", _repeat(rng.choice(_SUBJECT_UNITS), _size(rng, 10**4, 2 * 10**5))
    )


def many_headers(rng: random.Random, raw: bytes) -> bytes:
    """Hundreds to thousands of header fields: half the time within ``max_header_count``
    (1,000), where every field is parsed, else past it, up to 5,000 (refused with a reason)."""
    count = rng.randint(100, 1000) if rng.random() < 0.5 else rng.randint(1001, 5000)
    line = rng.choice(_MANY_FIELDS)
    return b"".join(line % (i, i) for i in range(count)) + raw


def long_header_line(rng: random.Random, raw: bytes) -> bytes:
    """One header line of about 100 KB with nowhere to fold: recipients, references, a token."""
    name, unit = rng.choice(_LONG_FIELDS)
    return _with_field(raw, name, _repeat(unit, rng.randint(90_000, 110_000)))


# --- header folding ---------------------------------------------------------------------------

_FOLDS = (b"\r\n ", b"\r\n\t", b"\n ", b"\r\n \t ")
_BLANK_CONTINUATIONS = (b" \r", b"\t\r", b" \t \r", b" ")


def fold_headers(rng: random.Random, raw: bytes) -> bytes:
    """Header fields folded at random spaces (CRLF, or LF alone, then a space or a tab)."""
    head, blank, body = _split(raw)
    rate = rng.random()
    head = _FOLDABLE.sub(lambda _: rng.choice(_FOLDS) if rng.random() < rate else b" ", head)
    return head + blank + body


def blank_continuations(rng: random.Random, raw: bytes) -> bytes:
    """Continuation lines of whitespace only (obs-fold: empty once unfolded) among the fields."""
    head, blank, body = _split(raw)
    lines = head.split(b"\n")
    for _ in range(rng.randint(1, 5)):
        lines.insert(rng.randint(1, len(lines)), rng.choice(_BLANK_CONTINUATIONS))
    return b"\n".join(lines) + blank + body


def fold_before_colon(rng: random.Random, raw: bytes) -> bytes:
    """A field name folded or spaced away from its colon (``Subject\\r\\n : ...``, obs-syntax)."""
    head, blank, body = _split(raw)
    names = list(_FIELD_NAME.finditer(head))
    if not names:
        return raw
    name = rng.choice(names)
    gap = rng.choice((b"\r\n :", b"\r\n\t:", b" :", b"\t:", b"\r\n:"))
    return head[: name.end(1)] + gap + head[name.end() :] + blank + body


MUTATIONS: tuple[Mutation, ...] = (
    flip_bytes,
    truncate,
    duplicate_header,
    damage_boundary,
    lie_about_charset,
    nest_rfc822,
    nest_multipart,
    encoded_words,
    transfer_encoding,
    broken_base64,
    control_chars,
    grow_body,
    huge_subject,
    many_headers,
    long_header_line,
    fold_headers,
    blank_continuations,
    fold_before_colon,
)


# How often a mutation is drawn, against 1 for the others.  A body of 100 KB to 2 MB costs the
# PII guard 1 to 5 s of CPU (its budget), a hundred ordinary messages: the default run grows
# about 8 bodies, the run of 10,000 about 25.  The big header fields cost less (~50 ms), but
# often spill into the body (a bare CR or a fold in them ends the header) and cost seconds
# there: a quarter of the others' share, about 100 of each in the default run.
RARITY: dict[Mutation, float] = {
    grow_body: 0.02,
    huge_subject: 0.25,
    long_header_line: 0.25,
    many_headers: 0.25,
}
_WEIGHTS = tuple(RARITY.get(mutation, 1.0) for mutation in MUTATIONS)


def mutate(rng: random.Random, raw: bytes) -> tuple[bytes, str]:
    """One to three mutations of ``raw``, and their names (to tell what a crash case was)."""
    chosen = rng.choices(MUTATIONS, _WEIGHTS, k=rng.randint(1, 3))
    for mutation in chosen:
        raw = mutation(rng, raw) if raw else raw
    return raw, "+".join(mutation.__name__ for mutation in chosen)


@dataclass
class Tally:
    """What happened to every message, to hold against the database afterwards."""

    actions: Counter[str] = field(default_factory=Counter)
    new_rows: set[int] = field(default_factory=set)
    duplicate_of: set[int] = field(default_factory=set)
    rejections: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.actions.values()) + sum(self.rejections.values())


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[IntakePipeline]:
    """The serving daemon's pipeline (real guard, templated replies) on a fresh SQLite file."""
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    url = f"sqlite:///{tmp_path / 'fuzz.db'}"
    config = load_config(
        write_config(tmp_path, url, '[intake]\nunknown_senders = "accept"\n' + UNLIMITED_INCIDENTS)
    )
    engine = create_db_engine(DatabaseConfig(url=url))
    upgrade(engine)
    yield build_intake(config.config, engine).pipeline
    engine.dispose()


def _seeds(shared: Path) -> list[bytes]:
    return [f.path.read_bytes() for f in corpus_files(shared) if f.is_message]


def _seed_weight(raw: bytes) -> float:
    """How often a corpus message is drawn.  Its five over 100 KB cost the guard up to
    seconds each, half the corpus's CPU time unmutated; ``truncate`` used to shrink them
    two times in five, now one in seven.  ``grow_body`` makes big bodies of its own, so
    they are drawn a quarter as often as the others."""
    return 0.25 if len(raw) > 100_000 else 1.0


def _run_one(pipeline: IntakePipeline, raw: RawMessage, tally: Tally) -> None:
    try:
        outcome = pipeline.process(raw)
    except PermanentRejection as exc:
        assert str(exc), "a rejection without a reason"
        tally.rejections[str(exc).split(":")[0]] += 1
        return
    tally.actions[outcome.action] += 1
    assert outcome.message_row_id is not None
    if outcome.action == "duplicate":
        tally.duplicate_of.add(outcome.message_row_id)
    else:
        assert outcome.message_row_id not in tally.new_rows, "two messages, one row"
        tally.new_rows.add(outcome.message_row_id)


def _rows(engine: Engine) -> int:
    with transaction(engine, readonly=True) as session:
        return int(session.exec(select(func.count()).select_from(Message)).one())


def _where(exc: BaseException) -> str:
    """The innermost frame of ours (mailer/, ticketing/, pii_guard/): where a crash escaped."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if re.search(r"/(mailer|ticketing|pii_guard)/", f.filename)]
    frame = (ours or frames)[-1]
    return f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"


def test_mutated_corpus_never_crashes_and_every_message_is_accounted_for(
    shared_dir: Path, pipeline: IntakePipeline
) -> None:
    seeds, rng, tally = _seeds(shared_dir), random.Random(SEED), Tally()
    weights = [_seed_weight(seed) for seed in seeds]
    senders = ("sam@brokers.example", "", "robot@corpus.example")
    crashes: dict[str, list[str]] = {}
    cpu: list[tuple[float, str]] = []  # not asserted (the VM is shared), but worth a look
    for index in range(COUNT):
        raw, mutations = mutate(rng, rng.choices(seeds, weights)[0])
        envelope = RawMessage(
            raw, "smtp", (rng.choice(MAILBOXES),), rng.choice(senders), peer=LOCAL_MTA
        )
        case, started = f"{index} ({mutations})", time.process_time()
        try:
            _run_one(pipeline, envelope, tally)
        except Exception as exc:  # noqa: BLE001 (collected: one run shows every kind of crash)
            crashes.setdefault(_where(exc), []).append(case)
        cpu.append((round(time.process_time() - started, 2), case))
    print(f"fuzz: {COUNT} messages (seed {SEED}), {dict(tally.actions)}, rejected")
    print(f"fuzz: {dict(tally.rejections)}, crashes { ({k: len(v) for k, v in crashes.items()}) }")
    print(f"fuzz: most CPU seconds {heapq.nlargest(3, cpu)}")
    # Accounted for first, crashed messages included: a crash must leave no row behind either.
    assert tally.total + sum(len(cases) for cases in crashes.values()) == COUNT
    assert _rows(pipeline.engine) == len(tally.new_rows)
    assert tally.duplicate_of <= tally.new_rows
    assert not crashes, {kind: cases[:5] for kind, cases in crashes.items()}
    assert tally.actions["recorded"] > COUNT // 10, tally  # the mutations left mail to record
