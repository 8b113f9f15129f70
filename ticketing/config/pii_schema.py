"""``[pii]``: the PII guard's engine and thresholds.

Entity names are spelled out here rather than imported from ``pii_guard``:
loading the configuration must not load Presidio and spaCy (a second or so).
A test holds this list and ``pii_guard.ALL_ENTITIES`` together.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictStr

__all__ = ["PII_ENTITIES", "PiiConfig", "PiiEntity"]

PiiEntity = Literal[
    "US_SSN",
    "US_ITIN",
    "DATE_OF_BIRTH",
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "ADDRESS",
    "MEDICAID_ID",
    "MEMBER_ID",
    "MEDICARE_MBI",
    "US_DRIVER_LICENSE",
    "US_BANK_NUMBER",
    "ABA_ROUTING_NUMBER",
    "CREDIT_CARD",
    "PERSON",
]
PII_ENTITIES: tuple[PiiEntity, ...] = get_args(PiiEntity)

Score = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]
Term = Annotated[StrictStr, Field(min_length=3)]


class PiiConfig(BaseModel):
    """The guard's settings; mailboxes choose their policy in ``[[mailboxes]] pii_policy``.

    A finding scoring at least its redact threshold is redacted; at least its
    reject threshold, it makes a ``reject`` mailbox refuse the message.  Per
    entity tables override the two defaults.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    spacy_model: StrictStr | None = None
    redact_threshold: Score = 0.4
    reject_threshold: Score = 0.6
    redact_thresholds: dict[PiiEntity, Score] = Field(default_factory=dict)
    reject_thresholds: dict[PiiEntity, Score] = Field(default_factory=dict)
    entities: tuple[PiiEntity, ...] = PII_ENTITIES
    allow_terms: tuple[Term, ...] = ()
    # Processor seconds one message may spend in the guard; what it does not reach is
    # not kept (dropped with a note under redact, the message refused under reject).
    scan_budget_seconds: Annotated[float, Field(gt=0.0, le=3600.0)] = 5.0
    # Attachments: the largest file the guard reads (text, forwarded mail, PDF, Word,
    # Excel); a larger one is dropped with a note, as an image is.
    max_document_bytes: Annotated[int, Field(gt=0, le=1 << 30, strict=True)] = 10 * 1024 * 1024
    # What is kept of a file whose text holds personal data under "redact": its text,
    # redacted, as a .txt file ("redacted_text"), or nothing ("drop").
    attachments_with_pii: Literal["redacted_text", "drop"] = "redacted_text"
