"""Check digits and structural rules that tell a real identifier from a random number."""

from __future__ import annotations

__all__ = ["aba_ok", "digits", "luhn_ok", "phone_key", "ssn_structure_ok"]


def digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def phone_key(value: str) -> str:
    """A phone number's ten digits, however written ("(410) 555-0142", "+1 410.555.0142")."""
    number = digits(value)
    return number[1:] if len(number) == 11 and number.startswith("1") else number


def luhn_ok(value: str) -> bool:
    """The Luhn check every payment card number carries."""
    number = digits(value)
    if not 13 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def aba_ok(value: str) -> bool:
    """The ABA routing number checksum (weights 3, 7, 1)."""
    number = digits(value)
    if len(number) != 9:
        return False
    weights = (3, 7, 1) * 3
    return sum(int(d) * w for d, w in zip(number, weights, strict=True)) % 10 == 0


def ssn_structure_ok(value: str) -> bool:
    """Issued SSNs never have area 000, 666 or 9xx, group 00 or serial 0000."""
    number = digits(value)
    area, group, serial = number[:3], number[3:5], number[5:]
    return (
        len(number) == 9
        and area not in {"000", "666"}
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )
