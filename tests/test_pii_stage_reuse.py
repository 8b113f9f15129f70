"""What the guard stage does not scan twice, and that what a second scan would have found
is still kept out: a new text that is the text itself, a recipient seen before."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from mailer.parsing import ParsedMessage, parse_message
from pii_guard import UNSCANNED, Finding, PiiGuard, findings_in_piece
from ticketing.config.pii_schema import PiiConfig
from ticketing.incidents.parties import Identity
from ticketing.pipeline.guard import PiiGuardStage
from ticketing.privacy.settings import build_guard

from .mail import make_mail

SSN = "219-09-9999"
SAM = Identity("sam@brokers.example", name="Sam Amsung")
MARIA = Identity("maria.gonzalez@example.net", name="Maria Gonzalez")
BODY = f"Please update the file of Person ID 174097: the SSN we have is {SSN}.\n\nThanks,\nSam"
REPLY = (
    f"The SSN is {SSN}.\n\nOn Tue, Nov 24, 2026 at 10:00 AM Escalations "
    "<escalations@exchange.example> wrote:\n> Please send the Person ID.\n"
)
INTERLEAVED = (
    "On Tue, Nov 24, 2026 at 10:00 AM Escalations <escalations@exchange.example> wrote:\n"
    f"> Please send the Person ID.\n\nThe SSN is {SSN}.\n\n> And the date of birth?\n\n"
    "Her DOB is 01/02/1980.\n"
)


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return build_guard(PiiConfig())


def own_words(body: str) -> ParsedMessage:
    """A message whose new text is its text, as the pipeline judges a caseworker's reply
    to a desk copy (``IntakePipeline._guard_desk_mail``)."""
    parsed = parse_message(make_mail(body=body))
    return replace(parsed, text=parsed.new_text)


def scans(monkeypatch: pytest.MonkeyPatch, guard: PiiGuard, method: str) -> list[str]:
    """The texts ``guard`` is asked to scan by ``method``, from now on."""
    seen: list[str] = []
    original: Callable[..., Any] = getattr(guard, method)

    def counted(text: str, *args: Any) -> Any:
        seen.append(text)
        return original(text, *args)

    monkeypatch.setattr(guard, method, counted)
    return seen


def test_a_new_text_that_is_the_text_is_stored_redacted_from_one_scan(
    guard: PiiGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = own_words(BODY)
    assert message.new_text == message.text
    seen = scans(monkeypatch, guard, "scan_within")
    result = PiiGuardStage(guard).check("redact", message, SAM)
    assert result.action == "redact" and result.counts.get("US_SSN") == 1
    assert SSN not in result.new_text and "[REDACTED:US_SSN]" in result.new_text
    assert result.new_text == result.text
    assert seen.count(message.text) == 1  # the subject and the text, not the text again


def test_a_new_text_that_is_the_text_and_was_not_read_in_time_stays_out() -> None:
    hurried = build_guard(PiiConfig(scan_budget_seconds=1e-9))
    result = PiiGuardStage(hurried).check("redact", own_words(BODY), SAM)
    assert UNSCANNED in result.counts
    assert SSN not in result.text and SSN not in result.new_text
    assert result.new_text == result.text  # the part read, with the note


def test_a_new_text_cut_from_the_text_is_redacted_by_the_texts_findings(
    guard: PiiGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A top-posted reply's own words are one stretch of its text (CRLFs read as LFs):
    the findings of the text, moved onto them, redact them; no second scan."""
    message = parse_message(make_mail(body=REPLY))
    assert message.new_text != message.text and SSN in message.new_text
    assert "\r\n" in message.text and "\r\n" not in message.new_text
    seen = scans(monkeypatch, guard, "scan_within")
    result = PiiGuardStage(guard).check("redact", message, SAM)
    assert message.new_text not in seen
    assert result.new_text == "The SSN is [REDACTED:US_SSN]."
    assert "wrote:" not in result.new_text  # its own words, not the stored text


def test_a_new_text_joined_from_pieces_is_still_scanned_on_its_own(
    guard: PiiGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = parse_message(make_mail(body=INTERLEAVED))
    assert SSN in message.new_text and "1980" in message.new_text
    assert message.new_text.replace("\n", "\r\n") not in message.text  # two pieces
    seen = scans(monkeypatch, guard, "scan_within")
    result = PiiGuardStage(guard).check("redact", message, SAM)
    assert message.new_text in seen
    assert SSN not in result.new_text and "01/02/1980" not in result.new_text


def test_findings_across_the_ends_of_a_stretch_keep_their_part_inside() -> None:
    text = "Call Ana Ruiz.\r\nShe is at 12 Elm St.\r\nDone"
    found = [Finding("PERSON", 5, 13, 0.9), Finding("ADDRESS", 26, 35, 0.9)]
    assert text[5:13] == "Ana Ruiz" and text[26:35] == "12 Elm St"
    moved = findings_in_piece(text, "Ruiz.\nShe is at 12", found)
    assert moved == [Finding("PERSON", 0, 4, 0.9), Finding("ADDRESS", 16, 18, 0.9)]
    assert findings_in_piece(text, "Ruiz.\r\nShe", found) is None  # not as the text reads
    assert findings_in_piece("ab ab", "ab", []) is None  # twice: which one is unknown
    assert findings_in_piece(text, "", found) is None


def test_a_recipient_is_scanned_once_for_the_same_writer_and_again_for_another(
    guard: PiiGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = PiiGuardStage(guard)
    message = parse_message(make_mail())
    to = ("escalations@exchange.example", "maria.gonzalez@example.net")
    seen = scans(monkeypatch, guard, "scan")
    first = stage.check("redact", message, SAM, to)
    again = stage.check("redact", message, SAM, to)
    assert first.recipients == again.recipients
    assert first.recipients == ("escalations@exchange.example", "[REDACTED:EMAIL_ADDRESS]")
    assert seen.count("maria.gonzalez@example.net") == 1
    # her own address when she writes: the answer for Sam's mail is not given for hers,
    # nor hers for his
    assert stage.check("redact", message, MARIA, to).recipients == to
    assert stage.check("redact", message, SAM, to).recipients == first.recipients
    assert seen.count("maria.gonzalez@example.net") == 2
