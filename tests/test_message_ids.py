"""Our Message-IDs name their incident under an HMAC; nothing else verifies."""

from __future__ import annotations

import re

import pytest

from ticketing.signing.message_ids import (
    find_signed_incident,
    make_message_id,
    message_ids_in,
    verify_message_id,
)

SECRET = b"k" * 40


def test_round_trip_and_shape() -> None:
    mid = make_message_id("200528-2866868", SECRET, "exchange.example")
    assert re.fullmatch(
        r"<tkd1\.200528-2866868\.[0-9a-z]{10}\.[0-9a-z]{13}@exchange\.example>", mid
    )
    assert verify_message_id(mid, SECRET) == "200528-2866868"
    assert verify_message_id(mid.strip("<>"), SECRET) == "200528-2866868"
    assert len(f"Message-ID: {mid}") <= 78  # no folding for a usual domain


def test_ids_are_unique() -> None:
    ids = {make_message_id("200528-2866868", SECRET, "x.example") for _ in range(2000)}
    assert len(ids) == 2000


def test_no_incident_verifies_to_none_but_is_ours() -> None:
    mid = make_message_id(None, SECRET, "x.example")
    assert ".0." in mid
    assert verify_message_id(mid, SECRET) is None


def test_other_secret_does_not_verify() -> None:
    mid = make_message_id("200528-2866868", SECRET, "x.example")
    assert verify_message_id(mid, b"j" * 40) is None


def test_every_single_character_change_fails() -> None:
    mid = make_message_id("200528-2866868", SECRET, "x.example")
    local = mid[: mid.index("@")]
    for i in range(len("<tkd1."), len(local)):
        for replacement in "07az-":
            if local[i] == replacement:
                continue
            forged = mid[:i] + replacement + mid[i + 1 :]
            assert verify_message_id(forged, SECRET) is None, forged


def test_moving_a_tag_to_another_incident_fails() -> None:
    mid = make_message_id("200528-2866868", SECRET, "x.example")
    assert verify_message_id(mid.replace("2866868", "2866869"), SECRET) is None


@pytest.mark.parametrize("value", ["", "<>", "<abc@x>", "tkd1.garbage", "<tkd1.1.2.3@x>"])
def test_foreign_ids(value: str) -> None:
    assert verify_message_id(value, SECRET) is None


def test_rejects_non_numbers() -> None:
    with pytest.raises(ValueError):
        make_message_id("12345", SECRET, "x.example")


def test_find_in_headers_prefers_in_reply_to_then_newest_reference() -> None:
    older = make_message_id("200528-0000001", SECRET, "x.example")
    newer = make_message_id("200528-0000002", SECRET, "x.example")
    forged = newer.replace("0000002", "0000003")
    references = f"<a@b> {older}\r\n {newer} {forged}"
    assert message_ids_in(references) == ["<a@b>", older, newer, forged]
    assert find_signed_incident(["<x@y>", references], SECRET) == "200528-0000002"
    assert find_signed_incident([older, references], SECRET) == "200528-0000001"
    assert find_signed_incident(["<x@y>", forged], SECRET) is None
