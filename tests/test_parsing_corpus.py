"""MIME parsing and screening over every real-world message of ../shared/corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.bodies import new_text_of
from mailer.bounces import failed_recipients
from mailer.parsing import parse_message
from mailer.screening import OwnIdentity, screen

from .corpus import CorpusFile, corpus_files

OWN = OwnIdentity(
    frozenset({"escalations@exchange.example"}),
    "exchange.example",
    "escalations@exchange.example",
    "<tkd1.",
)


@pytest.fixture(scope="module")
def corpus(shared_dir: Path) -> list[CorpusFile]:
    return corpus_files(shared_dir)


def test_every_file_parses_and_screens(corpus: list[CorpusFile]) -> None:
    messages = [f for f in corpus if f.is_message]
    assert len(messages) > 300
    for item in messages:
        parsed = parse_message(item.path.read_bytes())
        verdict = screen(parsed, None, OWN)
        assert parsed.raw_sha256 and verdict.kind, item.rel
        for text in (parsed.subject, parsed.text, parsed.new_text, parsed.from_name):
            text.encode("utf-8")  # no surrogates left: storable in PostgreSQL


def test_body_only_files_reduce_without_error(corpus: list[CorpusFile]) -> None:
    for item in (f for f in corpus if not f.is_message):
        text = item.path.read_bytes().decode("utf-8", "replace")
        assert isinstance(new_text_of(text), str), item.rel


def test_replies_from_many_clients_reduce_to_the_new_text(shared_dir: Path) -> None:
    """talon's fixtures: each standard reply must reduce to 'Hello'.  The companions of
    iphone and sparrow (*_reply_text) are 'Hello' with the signature under it, which talon's
    quote extractor leaves to its signature module: the new text cuts signatures too
    (file by file: tests/test_reply_text.py)."""
    folder = shared_dir / "corpus" / "talon" / "tests" / "fixtures" / "standard_replies"
    results = {}
    for eml in sorted(folder.glob("*.eml")):
        companion = folder / f"{eml.stem}_reply_text"
        if companion.exists():
            assert companion.read_text().startswith("Hello"), companion.name
        results[eml.name] = parse_message(eml.read_bytes()).new_text
    assert len(results) == 12
    assert results == dict.fromkeys(results, "Hello")


def test_html_only_mail_gets_readable_text(shared_dir: Path) -> None:
    path = shared_dir / "corpus" / "flanker" / "tests" / "fixtures" / "messages" / "long-links.eml"
    parsed = parse_message(path.read_bytes())
    assert parsed.text and "<" not in parsed.text[:200]


def test_people_are_not_screened_as_machines(corpus: list[CorpusFile]) -> None:
    replies = [f for f in corpus if f.is_message and f.category == "reply"]
    assert replies
    for item in replies:
        verdict = screen(parse_message(item.path.read_bytes()), None, OWN)
        assert verdict.kind == "normal", (item.rel, verdict.reason)


def test_machines_are_screened(corpus: list[CorpusFile]) -> None:
    """Every auto-reply and bounce (the challenge-response of bluebottle.msg and the list
    manager's notice of lhost-fml-02.eml were the last two missed)."""
    machine = [f for f in corpus if f.is_message and f.category in ("auto_reply", "bounce")]
    missed = [
        f.rel
        for f in machine
        if not screen(parse_message(f.path.read_bytes()), None, OWN).automatic
    ]
    assert len(machine) > 140
    assert missed == []


def test_rfc3834_vacation_replies_are_auto_replies(corpus: list[CorpusFile]) -> None:
    vacations = [f for f in corpus if "rfc3834" in f.rel]
    assert len(vacations) == 6
    for item in vacations:
        verdict = screen(parse_message(item.path.read_bytes()), None, OWN)
        assert verdict.kind == "auto_reply", item.rel


def test_not_bounces_are_not_bounces(corpus: list[CorpusFile]) -> None:
    """sisimai's "not a bounce" samples, but rb-issue-368-bug.eml: a postmaster's "email
    bounce notification" that a delivery to xxxx@yyyyyy.net was rejected (mailbox full),
    kept there for a parser crash it once caused.  By its structure (robot sender, failure
    subject) it is a bounce, Auto-Submitted or not: tests/test_screening_robots.py."""
    for item in (f for f in corpus if "/maildir/not/" in f.rel and "rb-issue-368" not in f.rel):
        verdict = screen(parse_message(item.path.read_bytes()), None, OWN)
        assert verdict.kind != "bounce", item.rel


def test_failed_recipients_match_the_bounce_libraries_tests(corpus: list[CorpusFile]) -> None:
    cases = [f for f in corpus if f.category == "bounce" and f.expected_addresses()]
    assert len(cases) > 20
    for item in cases:
        found = set(failed_recipients(parse_message(item.path.read_bytes())))
        verdict = screen(parse_message(item.path.read_bytes()), None, OWN)
        assert verdict.kind == "bounce", item.rel
        assert item.expected_addresses() <= found | set(verdict.failed_recipients), item.rel


def test_our_own_mail_coming_back_is_a_loop() -> None:
    raw = (
        b"From: escalations@exchange.example\r\nTo: escalations+x@exchange.example\r\n"
        b"Subject: hello\r\nMessage-ID: <abc@elsewhere.example>\r\n\r\nbody\r\n"
    )
    assert screen(parse_message(raw), None, OWN).kind == "loop"
    looped = raw.replace(b"From: escalations@", b"From: sam@brokers.").replace(
        b"Subject", b"X-Loop: escalations@exchange.example\r\nSubject"
    )
    assert screen(parse_message(looped), None, OWN).kind == "loop"


def test_our_message_id_marks_our_mail_but_not_our_colleagues() -> None:
    """A caseworker's mail server may use the desk's domain in its Message-IDs too."""
    ours = (
        b"From: sam@brokers.example\r\nTo: escalations@exchange.example\r\nSubject: hi\r\n"
        b"Message-ID: <tkd1.0.abcdefghij.abcdefghijklm@exchange.example>\r\n\r\nbody\r\n"
    )
    assert screen(parse_message(ours), None, OWN).kind == "loop"
    colleague = ours.replace(b"From: sam@brokers", b"From: casey@exchange").replace(
        b"<tkd1.0.abcdefghij.abcdefghijklm@", b"<CAF3x9.a1b2@"
    )
    assert screen(parse_message(colleague), None, OWN).kind == "normal"


def test_outlook_auto_response_suppress_is_never_answered_but_is_read() -> None:
    raw = (
        b"From: sam@brokers.example\r\nTo: escalations@exchange.example\r\n"
        b"Subject: Escalated Case: Enrollment.PID #:174097\r\n"
        b"X-Auto-Response-Suppress: All\r\n\r\nPlease help.\r\n"
    )
    verdict = screen(parse_message(raw), None, OWN)
    assert (verdict.kind, verdict.no_reply) == ("normal", True)


def test_broken_encoded_words_are_kept_as_written() -> None:
    """A header whose RFC 2047 word cannot be decoded (bad base64) stays raw, no error."""
    raw = b"From: a@b.example\r\nSubject: =?utf-8?b?S?= help\r\nMessage-ID: <x@b>\r\n\r\nbody\r\n"
    assert parse_message(raw).subject == "=?utf-8?b?S?= help"
