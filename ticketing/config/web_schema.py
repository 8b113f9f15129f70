"""``[web]``: where the desk console listens, how long a sign-in lasts, and the SSO proxy.

The console is on by default on the host itself (127.0.0.1:8025), so ``make run``
prints a URL a newcomer can open; ``port = 0`` turns it off.  Behind a TLS proxy
or an SSO gateway, the proxy mode takes the user from a header — believed only
from the addresses listed, never from anyone else.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

__all__ = ["WebConfig"]


class WebConfig(BaseModel):
    """The console's listener, sessions, sign-in limits and trusted proxy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: Annotated[StrictStr, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[StrictInt, Field(ge=0, le=65535)] = 8025
    # A session ends after this long without a request, and in any case after the maximum.
    session_idle_minutes: Annotated[StrictInt, Field(ge=1, le=24 * 60)] = 30
    session_max_hours: Annotated[StrictInt, Field(ge=1, le=24 * 7)] = 10
    # "auto": the cookie is Secure when the request came over https (or a trusted proxy
    # says it did); true: always (the console is only ever reached over TLS).
    secure_cookies: Literal["auto"] | bool = "auto"
    # Failed sign-ins for one address, or from one client, in the window: then refused.
    login_attempts: Annotated[StrictInt, Field(ge=1, le=1000)] = 5
    login_window_minutes: Annotated[StrictInt, Field(ge=1, le=24 * 60)] = 15
    # SSO: the header carrying the signed-in user's address, believed only from these
    # client addresses (the proxy's); empty header: the mode is off.
    trusted_proxy_header: StrictStr = ""
    trusted_proxies: tuple[StrictStr, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.port != 0

    @property
    def proxy_mode(self) -> bool:
        return bool(self.trusted_proxy_header and self.trusted_proxies)
