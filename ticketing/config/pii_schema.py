"""``[pii]``: the PII guard's engine and thresholds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictStr

__all__ = ["PiiConfig"]


class PiiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    spacy_model: StrictStr | None = None
