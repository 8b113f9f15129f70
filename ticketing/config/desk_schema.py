"""``[routing]``, ``[lifecycle]`` and ``[staff]``: how the desk works."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

__all__ = ["LifecycleConfig", "RoutingConfig", "StaffConfig"]


def _default_teams() -> dict[str, str]:
    return {
        "enrollment": "escalated_cases",
        "determination": "escalated_cases",
        "system_error": "escalated_cases",
        "termination": "escalated_cases",
        "form_1095a": "escalated_cases",
        "commission": "producer_operations",
    }


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoutingConfig(_Section):
    """Which team owns a new incident, by case type, and what makes it urgent."""

    teams: dict[StrictStr, StrictStr] = Field(default_factory=_default_teams)
    high_priority_keywords: tuple[StrictStr, ...] = ("urgent", "asap", "emergency", "immediately")


class LifecycleConfig(_Section):
    """When a producer's reply reopens a resolved incident, and how staff resolve by mail."""

    reopen_days: Annotated[StrictInt, Field(ge=0)] = 14
    resolution_marker: Annotated[StrictStr, Field(min_length=1)] = "[resolved]"


class StaffConfig(_Section):
    """Caseworkers: exact addresses and whole domains (lower-case)."""

    addresses: tuple[StrictStr, ...] = ()
    domains: tuple[StrictStr, ...] = ()

    def is_staff(self, address: str | None) -> bool:
        if not address:
            return False
        address = address.lower()
        domain = address.rpartition("@")[2]
        return address in {a.lower() for a in self.addresses} or domain in {
            d.lower().lstrip("@") for d in self.domains
        }
