"""The template context: plain dicts, lists and strings built from the request.

Templates never see model objects (whose attributes lead to sessions and
engines), only the documented variables of their kind (``kinds.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pii_guard.labels import finding_labels
from ticketing.config.case_types import CASE_TYPES
from ticketing.errors import ReplyError
from ticketing.incidents.numbering import NEW_YORK
from ticketing.store.models import Incident, Producer
from ticketing.templating.kinds import ReplyKind

__all__ = ["ContextInput", "build_context", "plain_value"]


@dataclass(frozen=True)
class ContextInput:
    """Everything a context is made of, already resolved (team name, language, token)."""

    kind: ReplyKind
    address: str
    team_key: str
    team_name: str
    language: str
    incident: Incident | None
    producer: Producer | None
    person_ids: Sequence[str]
    ref_token: str | None
    extra: Mapping[str, object]
    # business days within which the incident's SLA policy promises a first reply
    promise_days: float = 2


def build_context(data: ContextInput) -> dict[str, Any]:
    """The variables of ``data.kind``, exactly; ``ReplyError`` when one cannot be had."""
    kind = data.kind
    context: dict[str, Any] = {
        "address": data.address,
        "language": data.language,
        "team": {"key": data.team_key, "name": data.team_name},
    }
    if kind.incident != "none":
        _require(kind, "incident", data.incident)
        context["incident"] = _incident(data)
        context["ref_token"] = data.ref_token if data.incident is not None else None
    if kind.producer != "none":
        _require(kind, "producer", data.producer)
        context["producer"] = _producer(data.producer)
    context.update(_extras(kind, data.extra))
    if "finding_types" in context:
        context["finding_labels"] = finding_labels(context["finding_types"], data.language)
    return context


def _require(kind: ReplyKind, what: str, value: object) -> None:
    presence = kind.incident if what == "incident" else kind.producer
    if presence == "required" and value is None:
        raise ReplyError(f"a {kind.name} reply needs an {what}")


def _incident(data: ContextInput) -> dict[str, Any] | None:
    incident = data.incident
    if incident is None:
        return None
    case_type = CASE_TYPES.get(incident.type)
    label = incident.type
    if case_type is not None:
        label = case_type.label_es if data.language == "es" else case_type.label
    return {
        "number": incident.number,
        "type": incident.type,
        "type_label": label,
        "status": incident.status,
        "priority": incident.priority,
        "opened_on": incident.opened_at.astimezone(NEW_YORK).date().isoformat(),
        "person_ids": list(data.person_ids),
        "promise_days": _days(data.promise_days),
    }


def _days(days: float) -> int | float:
    """``2``, not ``2.0``, in "a reply within 2 business days"."""
    return int(days) if float(days).is_integer() else days


def _producer(producer: Producer | None) -> dict[str, Any] | None:
    if producer is None:
        return None
    return {
        "name": producer.name,
        "email": producer.email,
        "npn": producer.npn,
        "language": producer.language,
    }


def _extras(kind: ReplyKind, extra: Mapping[str, object]) -> dict[str, Any]:
    extra = {**{key: [] for key in kind.optional}, **extra}
    unknown = sorted(set(extra) - set(kind.extra))
    missing = sorted(set(kind.extra) - set(extra))
    if unknown or missing:
        raise ReplyError(
            f"{kind.name} extras: unknown {unknown or 'none'}, missing {missing or 'none'}"
        )
    out: dict[str, Any] = {}
    for key in kind.extra:
        out[key] = plain_value(key, extra[key])
    return out


def plain_value(key: str, value: object) -> Any:
    """An extra as templates see it: text, a number, a time in New York, a list of text."""
    if isinstance(value, datetime):
        return value.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M %Z")
    if isinstance(value, str | int):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ReplyError(f"extra '{key}' must be text, a number, a time or a list of text")
