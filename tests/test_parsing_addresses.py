"""Addresses are parsed before any decoding: an RFC 2047 word is never an address.

DMARC checkers read the From: address from the header as written; ticketd must
see the same address, or a forger's display name becomes the sender.
"""

from __future__ import annotations

import pytest

from mailer.parsing import parse_message


def _message(headers: str) -> bytes:
    return f"{headers}\r\nSubject: hello\r\n\r\nbody\r\n".encode()


@pytest.mark.parametrize(
    "header",
    [
        "From: =?utf-8?q?sam=40brokers=2Eexample?= <attacker@evil.example>",
        "From: =?utf-8?b?c2FtQGJyb2tlcnMuZXhhbXBsZQ==?= <attacker@evil.example>",
        'From: "=?utf-8?q?sam=40brokers=2Eexample?=" <attacker@evil.example>',
        "From: =?utf-8?q?sam=40brokers=2Eexample_?=\r\n <attacker@evil.example>",
    ],
)
def test_an_encoded_display_name_never_becomes_the_address(header: str) -> None:
    parsed = parse_message(_message(header))
    assert parsed.from_address == "attacker@evil.example"
    assert "sam@brokers.example" in parsed.from_name


def test_an_encoded_word_alone_is_no_address() -> None:
    parsed = parse_message(_message("From: =?utf-8?q?sam=40brokers=2Eexample?="))
    assert parsed.from_address is None


def test_encoded_names_are_still_decoded_for_people() -> None:
    parsed = parse_message(
        _message("From: =?utf-8?q?Jos=C3=A9_P=C3=A9rez?= <jose@brokers.example>")
    )
    assert (parsed.from_name, parsed.from_address) == ("José Pérez", "jose@brokers.example")


def test_an_encoded_word_in_to_is_not_one_of_our_addresses() -> None:
    raw = _message(
        "From: a@brokers.example\r\nTo: =?utf-8?q?escalations=40exchange.example?= <x@evil.example>"
    )
    assert parse_message(raw).to == ("x@evil.example",)
