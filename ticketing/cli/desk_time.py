"""Times as the desk reads them: in ``[sla] timezone``, the zone its business days are in.

The database holds UTC; a caseworker in Baltimore comparing a DUE time with the
clock on the wall should not have to subtract five hours, and ``sla due``
already answers in this zone, so every command a person reads does the same.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from ticketing.config import Config

__all__ = ["desk_iso", "desk_text", "desk_zone"]


def desk_zone(config: Config) -> ZoneInfo:
    # the loader already refused an unknown zone, so this cannot fail here
    return ZoneInfo(config.sla.timezone)


def desk_iso(value: datetime | None, zone: ZoneInfo) -> str | None:
    """ISO-8601 with the desk's offset (``2026-11-25T10:00:00-05:00``): the same instant as
    the UTC value, so scripts lose nothing."""
    return value.astimezone(zone).isoformat() if value else None


def desk_text(value: datetime | None, zone: ZoneInfo, *, seconds: bool = False) -> str:
    """``2026-11-25 10:00 EST`` for people; ``-`` for no time."""
    if value is None:
        return "-"
    shape = "%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z"
    return value.astimezone(zone).strftime(shape)
