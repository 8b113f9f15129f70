"""Signed sub-addresses (``mailer/address_tags.py``): made, read back, and refused when
forged, moved, signed under another secret or too long."""

from __future__ import annotations

import string

import pytest

from mailer.address_tags import (
    BOUNCE,
    MAX_LOCAL_PART,
    Tagged,
    return_path,
    returned_number,
    tag,
    untag,
)
from mailer.addresses import normalize_address
from mailer.errors import AddressTagError
from mailer.recipients import RecipientMap

SECRET = b"k" * 40
DESK = "escalations@exchange.example"


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x01\xe2\x40", "n-42", b"\xff" * 12])
def test_round_trip(payload: bytes | str) -> None:
    address = tag(DESK, "n", payload, SECRET)
    expected = payload.encode() if isinstance(payload, str) else payload
    assert untag(address, SECRET) == Tagged(address, DESK, "n", expected)


def test_the_tag_is_a_plain_lower_case_sub_address_of_the_mailbox() -> None:
    address = tag(DESK, BOUNCE, b"\x07\x5b\xcd\x15", SECRET)
    local, _, domain = address.partition("@")
    assert domain == "exchange.example"
    assert local.startswith("escalations+b-")
    assert set(local) <= set(string.ascii_lowercase + string.digits + ".+-")
    assert "=" not in address
    assert normalize_address(address) == address  # a plain addr-spec, no quoting
    assert RecipientMap([("escalations", DESK)]).mailbox_for(address) == "escalations"


def test_a_mail_system_that_folds_case_does_not_break_it() -> None:
    address = tag("Escalations@Exchange.Example", BOUNCE, b"\x2a", SECRET)
    for folded in (address.upper(), address.title(), f"<{address.upper()}>"):
        found = untag(folded, SECRET)
        assert found is not None and found.payload == b"\x2a", folded
        assert found.base == DESK


def test_every_changed_character_of_the_tag_is_refused() -> None:
    address = tag(DESK, BOUNCE, b"\x01\x02\x03", SECRET)
    local, _, domain = address.partition("@")
    start = local.index("+") + 1
    for index in range(start, len(local)):
        for replacement in "a7b-":
            if local[index] == replacement:
                continue
            changed = f"{local[:index]}{replacement}{local[index + 1 :]}@{domain}"
            assert untag(changed, SECRET) is None, changed


def test_a_tag_moved_to_another_address_is_refused() -> None:
    address = tag(DESK, BOUNCE, b"\x05", SECRET)
    suffix = address.split("+", 1)[1].split("@", 1)[0]
    assert untag(f"producer.operations+{suffix}@exchange.example", SECRET) is None
    assert untag(f"escalations+{suffix}@other.example", SECRET) is None


def test_another_secret_does_not_verify() -> None:
    address = tag(DESK, BOUNCE, b"\x05", SECRET)
    assert untag(address, b"j" * 40) is None
    assert untag(address, b"") is None
    with pytest.raises(AddressTagError):
        tag(DESK, BOUNCE, b"\x05", b"")


@pytest.mark.parametrize(
    "address",
    [
        DESK,
        "escalations+urgent@exchange.example",
        "escalations+b-ae-aaaaaaaaaaaaaaaa@exchange.example",
        "escalations+b-a1-aaaaaaaaaaaaaaaa@exchange.example",  # 1 is not base32
        "+b-ae-aaaaaaaaaaaaaaaa@exchange.example",
        "escalations+b-ae-aaaaaaaaaaaaaaaa",
        "",
    ],
)
def test_untagged_or_malformed_addresses_are_not_ours(address: str) -> None:
    assert untag(address, SECRET) is None


def test_one_payload_has_one_spelling() -> None:
    """Base32 of one byte leaves two spare bits: another spelling of them is refused."""
    address = tag(DESK, "n", b"\x00", SECRET)
    local, _, domain = address.partition("@")
    kind, encoded, mac = local.split("+", 1)[1].split("-")
    assert encoded == "aa"
    assert untag(f"escalations+{kind}-ab-{mac}@{domain}", SECRET) is None


def test_the_local_part_stays_within_64_characters() -> None:
    # "+b-" (3), one byte of payload (2), "-" (1) and the MAC (16): 22 characters of tag
    fits = f"{'d' * (MAX_LOCAL_PART - 22)}@exchange.example"
    address = tag(fits, BOUNCE, b"\x01", SECRET)
    assert len(address.split("@")[0]) == MAX_LOCAL_PART
    assert untag(address, SECRET) is not None
    with pytest.raises(AddressTagError, match="64"):
        tag(f"d{fits}", BOUNCE, b"\x01", SECRET)
    with pytest.raises(AddressTagError, match="64"):
        tag(DESK, BOUNCE, b"x" * 40, SECRET)


@pytest.mark.parametrize("kind", ["", "B", "b-1", "toolongkind"])
def test_kinds_outside_the_grammar_are_refused(kind: str) -> None:
    with pytest.raises(AddressTagError):
        tag(DESK, kind, b"", SECRET)


@pytest.mark.parametrize("number", [0, 1, 255, 256, 123_456, 2**40 - 1])
def test_a_return_path_carries_its_mail_number(number: int) -> None:
    address = return_path(DESK, number, SECRET)
    found = untag(address, SECRET)
    assert found is not None and found.kind == BOUNCE
    assert returned_number(found) == number
    assert len(address.split("@")[0]) <= len("escalations") + 30


def test_only_a_return_path_names_a_mail() -> None:
    other = untag(tag(DESK, "r", b"\x01", SECRET), SECRET)
    assert other is not None and returned_number(other) is None
    empty = untag(tag(DESK, BOUNCE, b"", SECRET), SECRET)
    assert empty is not None and returned_number(empty) is None
