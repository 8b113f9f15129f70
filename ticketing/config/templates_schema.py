"""``[templates]``: where admin templates live and how edits are picked up."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictStr

__all__ = ["TemplatesConfig"]


class TemplatesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    override_dir: StrictStr | None = None
