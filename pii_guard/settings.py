"""How the guard is tuned: the spaCy model, thresholds per entity, extra public strings.

Two thresholds per entity type: a finding at or above ``redact`` is replaced in
stored text; at or above ``reject`` it makes a ``reject`` mailbox refuse the
message.  Keeping them apart lets a weak hit (a capitalised pair that merely
looks like a name) be redacted without bouncing a producer's mail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pii_guard.entities import ALL_ENTITIES
from pii_guard.errors import PiiGuardError

__all__ = [
    "DEFAULT_REDACT_THRESHOLD",
    "DEFAULT_REJECT_THRESHOLD",
    "DEFAULT_SCAN_BUDGET",
    "GuardSettings",
]

DEFAULT_REDACT_THRESHOLD = 0.4
DEFAULT_REJECT_THRESHOLD = 0.6
# Ordinary mail costs 2-3 ms per KB, so a 1 MB body (the most of a body that is kept)
# fits; text built to be slow costs up to about 7 ms per KB and does not.
DEFAULT_SCAN_BUDGET = 5.0


@dataclass(frozen=True)
class GuardSettings:
    """Everything ``PiiGuard.build`` needs; built from ``[pii]`` by the daemon.

    ``spacy_model`` names an installed spaCy package or a model folder (its
    statistical NER then adds PERSON findings); ``None`` means the project's
    own offline pipeline.  ``allow_terms`` are public strings (a second
    hotline, a team address) that are never flagged.  ``scan_budget_seconds``
    is the processor time one message may spend in the guard (``None``: no
    limit); what it does not reach is not kept (``pii_guard.budget``).
    """

    spacy_model: str | None = None
    redact_threshold: float = DEFAULT_REDACT_THRESHOLD
    reject_threshold: float = DEFAULT_REJECT_THRESHOLD
    redact_thresholds: Mapping[str, float] = field(default_factory=dict)
    reject_thresholds: Mapping[str, float] = field(default_factory=dict)
    entities: tuple[str, ...] = ALL_ENTITIES
    allow_terms: tuple[str, ...] = ()
    scan_budget_seconds: float | None = DEFAULT_SCAN_BUDGET

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise PiiGuardError("invalid guard settings: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        problems: list[str] = []
        known = set(ALL_ENTITIES)
        for key in (*self.redact_thresholds, *self.reject_thresholds, *self.entities):
            if key not in known:
                problems.append(f"unknown entity type {key!r}")
        values = [self.redact_threshold, self.reject_threshold]
        values += [*self.redact_thresholds.values(), *self.reject_thresholds.values()]
        if any(not 0.0 <= v <= 1.0 for v in values):
            problems.append("thresholds must be between 0 and 1")
        if self.scan_budget_seconds is not None and self.scan_budget_seconds <= 0:
            problems.append("the scan budget must be positive")
        return problems

    def redact_at(self, entity_type: str) -> float:
        """The lowest score at which a finding of this type is redacted."""
        return self.redact_thresholds.get(entity_type, self.redact_threshold)

    def reject_at(self, entity_type: str) -> float:
        """The lowest score at which a finding of this type rejects a message."""
        return self.reject_thresholds.get(entity_type, self.reject_threshold)
