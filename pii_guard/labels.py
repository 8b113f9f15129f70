"""The kinds of personal data the guard finds, as a producer reads them in a mail.

The guard reports entity codes (``US_SSN``); a producer told that "US_SSN"
was removed from their mail learns little, so templates get the same kinds
in words, in the mail's language (``finding_labels``), beside the codes.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["finding_labels"]

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
    },
}


def finding_labels(codes: Sequence[str], language: str) -> list[str]:
    """``codes`` in words of ``language`` (English when it has none), each once, in order;
    a code without a label (a recognizer added later) stays as it is."""
    labels = _LABELS.get(language, _LABELS["en"])
    return list(dict.fromkeys(labels.get(code, code) for code in codes))
