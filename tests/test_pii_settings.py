"""``[pii]`` to ``GuardSettings``: one mapping, kept in step with the guard."""

from __future__ import annotations

from pii_guard import ALL_ENTITIES, GuardSettings
from ticketing.config.pii_schema import PII_ENTITIES, PiiConfig
from ticketing.privacy.settings import guard_settings


def test_config_knows_exactly_the_guards_entities() -> None:
    assert PII_ENTITIES == ALL_ENTITIES


def test_defaults_map_to_the_guards_defaults() -> None:
    assert guard_settings(PiiConfig()) == GuardSettings()


def test_every_key_is_carried_over() -> None:
    config = PiiConfig(
        spacy_model="en_core_web_lg",
        redact_threshold=0.3,
        reject_threshold=0.7,
        redact_thresholds={"PERSON": 0.5},
        reject_thresholds={"PERSON": 0.9},
        entities=("US_SSN", "PERSON"),
        allow_terms=("410-767-1234",),
    )
    settings = guard_settings(config)
    assert settings.spacy_model == "en_core_web_lg"
    assert (settings.redact_at("PERSON"), settings.reject_at("PERSON")) == (0.5, 0.9)
    assert (settings.redact_at("US_SSN"), settings.reject_at("US_SSN")) == (0.3, 0.7)
    assert settings.entities == ("US_SSN", "PERSON")
    assert settings.allow_terms == ("410-767-1234",)
