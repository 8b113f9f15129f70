"""``[sla]``: the business calendar and the response policies."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

__all__ = ["WEEKDAYS", "SlaConfig", "SlaPolicyConfig", "parse_hours"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")
Days = Annotated[StrictFloat | StrictInt, Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_hours(value: str) -> tuple[time, time]:
    """``"08:00-17:00"`` -> (08:00, 17:00); ``ValueError`` when malformed or empty."""
    match = _RANGE.match(value.strip())
    if not match:
        raise ValueError(f"'{value}' is not a range like 08:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    opening, closing = time(h1, m1), time(23, 59, 59) if h2 == 24 else time(h2, m2)
    if closing <= opening:
        raise ValueError(f"'{value}' closes before it opens")
    return opening, closing


def _default_hours() -> dict[str, str]:
    return {day: "08:00-17:00" for day in WEEKDAYS[:5]}


class SlaPolicyConfig(_Section):
    """One response policy; ``[sla.policy]`` is the default, ``[[sla.policies]]`` override it
    for a team and/or a case type."""

    name: StrictStr = "default"
    team: StrictStr | None = None
    type: StrictStr | None = None
    first_response_days: Days = 2
    resolution_days: Days | None = None
    warning_share: Annotated[StrictFloat | StrictInt, Field(gt=0, lt=1)] = 0.75
    level2_after_days: Days = 1
    raise_priority_on_breach: StrictBool = True


class SlaConfig(_Section):
    timezone: StrictStr = "America/New_York"
    holiday_country: StrictStr = "US"
    holiday_subdivision: StrictStr | None = "MD"
    business_hours: dict[StrictStr, StrictStr] = Field(default_factory=_default_hours)
    extra_closures: tuple[date, ...] = ()
    notices_in_business_hours_only: StrictBool = True
    sweep_interval_seconds: Annotated[StrictInt, Field(ge=1)] = 60
    policy: SlaPolicyConfig = SlaPolicyConfig()
    policies: tuple[SlaPolicyConfig, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'") from None
        return value

    @field_validator("business_hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, str]) -> dict[str, str]:
        for day, hours in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"'{day}' is not one of {', '.join(WEEKDAYS)}")
            parse_hours(hours)
        if not value:
            raise ValueError("at least one day needs business hours")
        return value

    @model_validator(mode="after")
    def _known_holidays(self) -> SlaConfig:
        try:
            holidays.country_holidays(self.holiday_country, subdiv=self.holiday_subdivision)
        except NotImplementedError:
            raise ValueError(
                f"no holiday calendar for {self.holiday_country}"
                f"/{self.holiday_subdivision or '-'} (holiday_country, holiday_subdivision)"
            ) from None
        return self

    def select(self, team: str, case_type: str, name: str | None = None) -> SlaPolicyConfig:
        """The policy named ``name``, else the first override matching team and type."""
        if name is not None:
            for policy in (self.policy, *self.policies):
                if policy.name == name:
                    return policy
            raise KeyError(name)
        for policy in self.policies:
            if policy.team in (None, team) and policy.type in (None, case_type):
                return policy
        return self.policy

    def policy_of(self, team: str, case_type: str, name: str | None) -> SlaPolicyConfig:
        """An incident's policy: the one it was started under, by ``name``; if that was
        renamed since, the one matching its team and type now."""
        try:
            return self.select(team, case_type, name)
        except KeyError:
            return self.select(team, case_type)
