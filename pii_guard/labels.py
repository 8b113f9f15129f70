"""The kinds of personal data the guard finds, in words people read (English, Spanish).

The guard reports entity codes (``US_SSN``); someone told that "US_SSN" was
removed from their text learns little, so callers can name the same kinds in
words, in the reader's language.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["all_labels", "finding_labels"]

_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "US_SSN": "Social Security number",
        "US_ITIN": "taxpayer identification number (ITIN)",
        "DATE_OF_BIRTH": "date of birth",
        "PHONE_NUMBER": "phone number",
        "EMAIL_ADDRESS": "email address",
        "ADDRESS": "home address",
        "MEDICAID_ID": "Medicaid ID",
        "MEMBER_ID": "insurance member ID",
        "MEDICARE_MBI": "Medicare number",
        "US_DRIVER_LICENSE": "driver's license number",
        "US_BANK_NUMBER": "bank account number",
        "ABA_ROUTING_NUMBER": "bank routing number",
        "CREDIT_CARD": "card number",
        "PERSON": "consumer's name",
        "UNSCANNED": "text too long to check for personal data in time",
    },
    "es": {
        "US_SSN": "número de Seguro Social",
        "US_ITIN": "número de identificación del contribuyente (ITIN)",
        "DATE_OF_BIRTH": "fecha de nacimiento",
        "PHONE_NUMBER": "número de teléfono",
        "EMAIL_ADDRESS": "correo electrónico",
        "ADDRESS": "dirección",
        "MEDICAID_ID": "número de Medicaid",
        "MEMBER_ID": "número de miembro del seguro",
        "MEDICARE_MBI": "número de Medicare",
        "US_DRIVER_LICENSE": "número de licencia de conducir",
        "US_BANK_NUMBER": "número de cuenta bancaria",
        "ABA_ROUTING_NUMBER": "número de ruta bancaria",
        "CREDIT_CARD": "número de tarjeta",
        "PERSON": "nombre del consumidor",
        "UNSCANNED": "texto demasiado largo para revisar a tiempo",
    },
}


def finding_labels(codes: Sequence[str], language: str) -> list[str]:
    """``codes`` in words of ``language`` (English when it has none), each once, in order;
    a code without a label (a recognizer added later) stays as it is."""
    labels = _LABELS.get(language, _LABELS["en"])
    return list(dict.fromkeys(labels.get(code, code) for code in codes))


def all_labels() -> tuple[str, ...]:
    """Every label of every language: our own words, which the outbound scan must not
    take for data ("consumer's name, Social Security number" is a list of kinds)."""
    return tuple(label for labels in _LABELS.values() for label in labels.values())
