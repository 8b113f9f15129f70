"""``[observability]`` and ``[roster]``: what an operator runs the daemon with, beside the mail.

The HTTP endpoint is off by default (``http_port = 0``): several daemons, tests
and ``make run`` share one host, and a fixed default port would make the second
one fail to start.  Production turns it on explicitly (``deploy/`` does).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

__all__ = ["ObservabilityConfig", "RosterConfig"]


class ObservabilityConfig(BaseModel):
    """Where ``/metrics``, ``/healthz`` and ``/readyz`` are served (port 0: not at all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    http_host: Annotated[StrictStr, Field(min_length=1)] = "127.0.0.1"
    http_port: Annotated[StrictInt, Field(ge=0, le=65535)] = 0
    # A request must arrive whole within the timeout; connections beyond the cap get 503.
    http_timeout_seconds: Annotated[StrictInt, Field(ge=1, le=600)] = 10
    http_max_connections: Annotated[StrictInt, Field(ge=1, le=10_000)] = 64


class RosterConfig(BaseModel):
    """A producers CSV the daemon imports at start and on SIGHUP (unset: CLI imports only).

    The import is the same upsert as ``ticketd producers import``: rows are added
    or updated by NPN, never deleted, so a truncated export cannot empty the roster.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: Annotated[StrictStr, Field(min_length=1)] | None = None
