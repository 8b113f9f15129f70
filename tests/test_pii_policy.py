"""Pass, redact or reject: the per-mailbox policy over a message's fields."""

from __future__ import annotations

import pytest

from pii_guard import AllowList, GuardOutcome, GuardSettings, PiiGuard, evaluate


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return PiiGuard.build()


FIELDS = {
    "subject": "Client Maria Gonzalez, incident 251103-0045521",
    "text": "Her SSN is 219-09-9999 and her DOB 04/12/1986.",
    "new_text": "Her SSN is 219-09-9999.",
    "attachment:notes.txt": "nothing here",
}


def test_reject_on_a_sure_finding(guard: PiiGuard) -> None:
    outcome = evaluate(guard, "reject", FIELDS)
    assert outcome.action == "reject"
    assert outcome.counts == {"PERSON": 1, "US_SSN": 2, "DATE_OF_BIRTH": 1}


def test_redact_policy_redacts_every_field(guard: PiiGuard) -> None:
    outcome = evaluate(guard, "redact", FIELDS)
    assert outcome.action == "redact"
    assert outcome.fields == {
        "subject": "Client [REDACTED:PERSON], incident 251103-0045521",
        "text": "Her SSN is [REDACTED:US_SSN] and her DOB [REDACTED:DATE_OF_BIRTH].",
        "new_text": "Her SSN is [REDACTED:US_SSN].",
        "attachment:notes.txt": "nothing here",
    }


def test_weak_hit_redacts_without_rejecting(guard: PiiGuard) -> None:
    outcome = evaluate(guard, "reject", {"text": "We talked to Xochitl Brennan about it."})
    assert outcome.action == "redact"
    assert outcome.fields["text"] == "We talked to [REDACTED:PERSON] about it."


def test_thresholds_per_entity_decide(guard: PiiGuard) -> None:
    strict = PiiGuard.build(GuardSettings(reject_thresholds={"PERSON": 0.5}))
    lenient = PiiGuard.build(GuardSettings(reject_thresholds={"US_SSN": 1.0}))
    weak_name = {"text": "We talked to Xochitl Brennan about it."}
    assert evaluate(strict, "reject", weak_name).action == "reject"
    assert evaluate(lenient, "reject", {"text": "SSN 219-09-9999"}).action == "redact"
    ignored = PiiGuard.build(GuardSettings(redact_thresholds={"PERSON": 0.9}))
    assert evaluate(ignored, "redact", weak_name).action == "pass"


def test_clean_message_passes(guard: PiiGuard) -> None:
    text = "Following up on incident 250918-0031187, Person ID 552031, effective 01/01/2026."
    outcome = evaluate(guard, "reject", {"text": text})
    assert outcome == GuardOutcome("pass", {"text": text}, {}, {"text": []})


def test_off_scans_nothing(guard: PiiGuard) -> None:
    outcome = evaluate(guard, "off", FIELDS)
    assert (outcome.action, outcome.fields, outcome.counts) == ("pass", FIELDS, {})


def test_sender_allow_list_applies(guard: PiiGuard) -> None:
    fields = {"text": "Thanks,\nKevin Brooks\n(410) 555-2323"}
    allow = AllowList(sender_name="Kevin Brooks", sender_phone="4105552323")
    assert evaluate(guard, "reject", fields, allow).action == "pass"
    assert evaluate(guard, "reject", fields).action == "reject"


def test_outcome_repr_carries_no_text(guard: PiiGuard) -> None:
    outcome = evaluate(guard, "redact", FIELDS)
    assert "Gonzalez" not in repr(outcome) and "219-09" not in repr(outcome)
