"""``[templates]``: where admin templates live and how edits are picked up."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

__all__ = ["TemplatesConfig"]


class TemplatesConfig(BaseModel):
    """An admin folder that overrides the shipped templates, and how often ``serve`` rereads it.

    The folder mirrors the shipped layout (``<kind>/``, ``<team>/<kind>/``), so an
    admin copies one folder, edits it, and never touches the installed package.
    ``render_timeout_seconds`` bounds one render of one file (``templating/budget.py``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The console's template editor saves here, so the embedded default has one (relative
    # to the config file, made on the first save); "" means shipped templates only.
    override_dir: StrictStr | None = "var/templates"
    reload_interval_seconds: Annotated[StrictInt, Field(ge=1)] = 5
    render_timeout_seconds: Annotated[StrictFloat | StrictInt, Field(gt=0, le=60)] = 1.0
