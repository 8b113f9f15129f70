"""``[routing]``, ``[lifecycle]`` and ``[staff]``: how the desk works."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from mailer.addresses import normalize_address
from mailer.errors import InvalidAddressError

__all__ = ["LifecycleConfig", "RoutingConfig", "StaffConfig", "StaffPerson"]


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


class StaffPerson(_Section):
    """One person of the staff directory: who they are, their team, what they may do."""

    name: Annotated[StrictStr, Field(min_length=1)]
    address: StrictStr
    team: StrictStr | None = None  # a key of [teams]
    role: Literal["caseworker", "lead", "admin"] = "caseworker"

    @field_validator("address")
    @classmethod
    def _one_address(cls, value: str) -> str:
        try:
            return normalize_address(value)
        except InvalidAddressError:
            raise ValueError("must be a single email address like casey@example.org") from None


class StaffConfig(_Section):
    """Caseworkers: exact addresses and whole domains (lower-case), and the people of the
    staff directory (``people``: named, with a team and a role; staff too)."""

    addresses: tuple[StrictStr, ...] = ()
    domains: tuple[StrictStr, ...] = ()
    people: tuple[StaffPerson, ...] = ()
    # a CSV of more people (name,address,team,role), read when the config is loaded
    file: StrictStr | None = None

    def is_staff(self, address: str | None) -> bool:
        if not address:
            return False
        address = address.lower()
        domain = address.rpartition("@")[2]
        listed = {a.lower() for a in self.addresses} | {p.address for p in self.people}
        return address in listed or domain in {d.lower().lstrip("@") for d in self.domains}

    def person(self, who: str) -> StaffPerson | None:
        """The directory's person with this address or (any case) name."""
        wanted = who.strip().lower()
        for person in self.people:
            if wanted in (person.address, person.name.lower()):
                return person
        return None
