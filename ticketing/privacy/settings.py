"""From ``[pii]`` to the guard: the one place that knows both shapes.

``pii_guard`` knows nothing of ticketd's configuration; this module maps
``PiiConfig`` to ``GuardSettings`` and translates the guard's start-up errors
into ticketd's own, so the CLI and the daemon print one clear line.
"""

from __future__ import annotations

from pii_guard import GuardSettings, PiiEngineError, PiiGuard, PiiGuardError
from ticketing.config.pii_schema import PiiConfig
from ticketing.errors import PiiSetupError

__all__ = ["PiiSetupError", "build_guard", "guard_settings"]


def guard_settings(config: PiiConfig) -> GuardSettings:
    """The guard's settings for ``config``."""
    try:
        return GuardSettings(
            spacy_model=config.spacy_model,
            redact_threshold=config.redact_threshold,
            reject_threshold=config.reject_threshold,
            redact_thresholds={str(k): v for k, v in config.redact_thresholds.items()},
            reject_thresholds={str(k): v for k, v in config.reject_thresholds.items()},
            entities=tuple(config.entities),
            allow_terms=tuple(config.allow_terms),
            scan_budget_seconds=config.scan_budget_seconds,
        )
    except PiiGuardError as exc:
        raise PiiSetupError(str(exc)) from exc


def build_guard(config: PiiConfig) -> PiiGuard:
    """Build the process's guard; a ticketd error (one line) when it cannot start."""
    try:
        return PiiGuard.build(guard_settings(config))
    except PiiEngineError as exc:
        raise PiiSetupError(str(exc)) from exc
