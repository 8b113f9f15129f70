"""Decoding payloads and hashing content in fewer copies gives the stdlib's results.

A 25 MB attachment must fit the memory budget, so ``mailer.parsing`` decodes
well-formed base64 and hashes the message without the stdlib's intermediate
copies.  The results are stored (attachment hashes, the dedup key), so these
tests hold them to the stdlib's and to the hash's definition, on random
payloads and on every real-world message of ../shared/corpus.
"""

from __future__ import annotations

import base64
import hashlib
import random
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

import pytest

from mailer.parsing import _TRACE_HEADERS, _payload_bytes, content_hash, parse_message

from .corpus import CorpusFile, corpus_files


def _leaf(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=policy.compat32)


def _stdlib(part: Message) -> tuple[bytes | None, list[str]]:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return None, [type(exc).__name__]
    assert data is None or isinstance(data, bytes)
    return data, [type(d).__name__ for d in part.defects]


def _ours(part: Message) -> tuple[bytes | None, list[str]]:
    return _payload_bytes(part), [type(d).__name__ for d in part.defects]


def _mangled_base64(rng: random.Random) -> str:
    """Base64 as mailers write it, and as broken mailers do."""
    text = base64.b64encode(rng.randbytes(rng.randrange(0, 300))).decode()
    width = rng.choice((4, 57, 76, 1000))
    ending = rng.choice(("\r\n", "\n", "\r", ""))
    text = ending.join(text[i : i + width] for i in range(0, len(text), width))
    for _ in range(rng.choice((0, 0, 0, 1, 2))):
        at = rng.randrange(len(text) + 1)
        junk = rng.choice(("=", "==", "!", " ", "\t", "*", "-", "_", "é", "\x00", "A", "\r\n"))
        text = text[:at] + junk + text[at:]
    if rng.random() < 0.2:
        text = text.rstrip("=\r\n")  # padding lost
    if rng.random() < 0.1:
        text = text[: rng.randrange(len(text) + 1)]
    return text


def _part(body: str, encoding: str) -> bytes:
    head = f"Content-Type: application/pdf\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    return (head + body).encode("utf-8", "surrogateescape")


def test_base64_payloads_decode_and_note_defects_as_the_stdlib_does() -> None:
    rng = random.Random(20261206)
    seen: set[str] = set()
    for _ in range(5000):
        raw = _part(_mangled_base64(rng), rng.choice(("base64", "BASE64", "Base64", "7bit")))
        stdlib = _stdlib(_leaf(raw))
        ours = _ours(_leaf(raw))
        if stdlib[0] is None:  # the stdlib raised: we report an empty payload
            assert ours[0] == b"", raw
        else:
            assert ours == stdlib, raw
        seen.update(stdlib[1] or ["clean"])
    assert {"clean", "InvalidBase64PaddingDefect", "InvalidBase64CharactersDefect"} <= seen


def test_well_formed_base64_takes_no_defect() -> None:
    data = random.Random(1).randbytes(100_000)
    encoded = base64.encodebytes(data).decode().replace("\n", "\r\n")
    part = _leaf(_part(encoded, "base64"))
    assert _payload_bytes(part) == data
    assert part.defects == []


def _reference_hash(raw: bytes) -> str:
    """The dedup key's content hash as first defined (it is stored: it may not change)."""
    normalized = raw.replace(b"\r\n", b"\n")
    head, _, body = normalized.partition(b"\n\n")
    kept: list[bytes] = []
    keep = True
    for line in head.split(b"\n"):
        if line[:1] not in (b" ", b"\t"):
            name = line.split(b":", 1)[0].strip().lower().decode("latin-1")
            keep = name not in _TRACE_HEADERS
        if keep:
            kept.append(line)
    return hashlib.sha256(b"\n".join(kept) + b"\n\n" + body).hexdigest()


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: no body, no blank line",
        b"Subject: x\r\n\r\n",
        b"Received: from a\r\n\tby b\r\nSubject: folded trace\r\n\r\nbody\r\n\r\nmore",
        b"Subject: lone CR\r\r\n\nbody\rstill body\r\n",
        b"\r\n\r\nbody only",
        b"",
    ],
)
def test_content_hash_keeps_its_definition(raw: bytes) -> None:
    assert content_hash(raw) == _reference_hash(raw)


def test_content_hash_ignores_trace_headers_and_line_endings() -> None:
    raw = b"From: a@example.org\r\nSubject: s\r\n\r\nline one\r\nline two\r\n"
    relayed = b"Received: from relay by mx; today\r\nReturn-Path: <a@example.org>\r\n" + raw
    assert content_hash(relayed) == content_hash(raw) == content_hash(raw.replace(b"\r\n", b"\n"))
    assert content_hash(raw.replace(b"two", b"2")) != content_hash(raw)


@pytest.fixture(scope="module")
def corpus(shared_dir: Path) -> list[CorpusFile]:
    return [f for f in corpus_files(shared_dir) if f.is_message]


def test_corpus_content_hashes_keep_their_definition(corpus: list[CorpusFile]) -> None:
    assert len(corpus) > 300
    for item in corpus:
        raw = item.path.read_bytes()
        assert content_hash(raw) == _reference_hash(raw), item.rel


def test_corpus_attachments_decode_as_the_stdlib_does(corpus: list[CorpusFile]) -> None:
    decoded = 0
    for item in corpus:
        raw = item.path.read_bytes()
        ours, stdlib = _leaf(raw), _leaf(raw)
        for mine, theirs in zip(ours.walk(), stdlib.walk(), strict=True):
            if mine.is_multipart():
                continue
            data, defects = _stdlib(theirs)
            if data is None:  # the stdlib raised: we report an empty payload
                assert _payload_bytes(mine) == b"", item.rel
            else:
                assert _ours(mine) == (data, defects), item.rel
            decoded += 1
    assert decoded > 500


def test_a_charset_name_with_a_nul_falls_back_instead_of_failing() -> None:
    """Found by the fuzz run: ``bytes.decode`` raises ValueError on a NUL in the name."""
    raw = (
        b"From: a@b.example\r\nTo: c@d.example\r\nSubject: x\r\n"
        b"Content-Type: text/plain; charset=us-ascii\x00\r\n\r\nhello\r\n"
    )
    assert parse_message(raw).text.strip() == "hello"
