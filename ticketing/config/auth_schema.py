"""``[authentication]`` and ``[limits]``: who may act as a producer or staff, and how much
anyone may make the desk do.

Only mail whose ``From:`` is authenticated (DMARC-aligned SPF or DKIM, results stamped by
a trusted authserv-id, a trusted host, or the shared mailbox vouching for its own sent
mail) acts as a producer or staff; the rest waits, unattached, in the queue of
unverified mail.  The embedded default verifies, and trusts the host itself
(127.0.0.1: the README's example, or a local MTA that authenticated for us).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from mailer.sender_auth import DnsSettings

__all__ = ["AuthenticationConfig", "LimitsConfig"]

# An IPv4 or IPv6 address, optionally "@port"; DnsSettings checks the values themselves.
_NAMESERVER = r"^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)(?:@[0-9]{1,5})?$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuthenticationConfig(_Section):
    """How a sender is authenticated (``docs/operations.md``, "Sender authentication").

    ``verify``: SPF, DKIM, ARC and DMARC checked here; ``trust``: only the
    ``Authentication-Results`` of ``authserv_ids`` count; ``off``: every ``From:`` is
    believed (a lab, never production).
    """

    mode: Literal["verify", "trust", "off"] = "verify"
    # Clients whose mail counts as authenticated whatever it carries (IP addresses).
    trusted_hosts: tuple[Annotated[StrictStr, Field(min_length=1)], ...] = ("127.0.0.1",)
    # Authentication-Results stamped by these authserv-ids are believed (RFC 8601 §5);
    # every other such header is ignored.
    authserv_ids: tuple[Annotated[StrictStr, Field(min_length=1)], ...] = ()
    # The authserv-id of the Authentication-Results we stamp; unset: the Message-ID domain.
    authserv_id: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9.-]+$")] | None = None
    # DNS servers for SPF, DKIM and DMARC ("127.0.0.1" or "127.0.0.1@5353"); none: the
    # system's resolver (/etc/resolv.conf).
    nameservers: tuple[Annotated[StrictStr, Field(pattern=_NAMESERVER)], ...] = ()
    dns_timeout_seconds: Annotated[StrictInt, Field(ge=1, le=60)] = 5

    @field_validator("nameservers")
    @classmethod
    def _usable(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        """Refuse at load what the resolver would refuse per message (a port over 65535,
        an address that is none)."""
        try:
            DnsSettings(values)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return values


class LimitsConfig(_Section):
    """Abuse limits: what one sender, one recipient or everyone may draw from the desk.

    Past a limit a message is still recorded (unattached, audited, counted in
    ``ticketd_rate_limited_total``); only the incident or the reply is held back.
    """

    new_incidents_per_sender_hour: Annotated[StrictInt, Field(ge=1)] = 60
    replies_per_recipient_day: Annotated[StrictInt, Field(ge=1)] = 200
    unknown_sender_replies_day: Annotated[StrictInt, Field(ge=0)] = 100
