"""The six escalation types of the exchange's Escalated Cases Guide.

Keys are what the database stores; labels are what producers see (the case
email's subject reads ``Escalated Case: <label>.PID #:<person id>``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CASE_TYPES", "CaseType", "case_type"]


@dataclass(frozen=True)
class CaseType:
    key: str
    label: str
    label_es: str
    default_team: str
    several_consumers: bool = False


CASE_TYPES: dict[str, CaseType] = {
    t.key: t
    for t in (
        CaseType("enrollment", "Enrollment", "Inscripción", "escalated_cases"),
        CaseType("determination", "Determination", "Determinación", "escalated_cases"),
        CaseType("system_error", "System Error", "Error del sistema", "escalated_cases"),
        CaseType("termination", "Termination", "Terminación", "escalated_cases"),
        CaseType("form_1095a", "1095 A", "1095 A", "escalated_cases"),
        CaseType(
            "commission", "Commission", "Comisión", "producer_operations", several_consumers=True
        ),
    )
}


def case_type(key: str) -> CaseType:
    """The type called ``key``; ``KeyError`` for anything else."""
    return CASE_TYPES[key]
