"""XFORWARD (Postfix's ``XFORWARD_README``): an MTA in front says who its client was.

Postfix's smtp and lmtp clients send ``XFORWARD NAME=… ADDR=… PROTO=… HELO=…``
before MAIL when the server advertises it (``smtp_send_xforward_command``,
``lmtp_send_xforward_command``).  Without it, every message relayed by a Postfix on
127.0.0.1 would come from 127.0.0.1, a trusted host, and any forged ``From:`` would be
believed.  With it, the pipeline sees the client Postfix saw.

Only clients allowed to speak for others hear of it (``XForwardAccess``): every client
of the LMTP Unix socket (the file's mode decides who connects) and the TCP peers among
the trusted hosts.  Anyone else is answered 550 5.7.0, as Postfix answers them, and
stays who it is.

As Postfix's server does (``apply_xforward``):

- the first XFORWARD of a transaction makes every attribute unknown, then sets those
  given: what was forwarded is never mixed with what the connection says (Note 4);
- ``[UNAVAILABLE]`` and ``[TEMPUNAVAIL]``, in any case, mean unknown;
- values are xtext (RFC 3461 section 4, ``+XX``); an ADDR may start ``IPV6:``;
- XFORWARD inside a transaction (after MAIL) is refused with 503 5.5.1;
- the attributes last until the transaction ends: RSET or the end of DATA (and a new
  EHLO/LHLO or STARTTLS, which start over) — aiosmtpd makes a new envelope at each of
  these, and the attributes live in it (``ForwardingEnvelope``).

Unknown stays unknown: an ADDR that is unavailable, or not an IP address, makes the
client address ``""``, which is no trusted host and passes no SPF check; an MTA that
cannot say who sent a message never lends it its own trust.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from aiosmtpd.smtp import Envelope

__all__ = [
    "EXTENSION",
    "IN_TRANSACTION",
    "REFUSED",
    "ForwardedClient",
    "ForwardingEnvelope",
    "XForwardAccess",
    "apply_xforward",
]

ATTRIBUTES = ("NAME", "ADDR", "PROTO", "HELO")
EXTENSION = "XFORWARD " + " ".join(ATTRIBUTES)
"""The EHLO/LHLO keyword with the attributes we take (NAME and PROTO are read, not kept)."""

REFUSED = "550 5.7.0 Error: insufficient authorization"
IN_TRANSACTION = "503 5.5.1 Error: MAIL transaction in progress"
_OK = "250 2.0.0 Ok"
_SYNTAX = "501 5.5.4 Syntax: XFORWARD attribute=value..."
_VALUE_MAX = 255  # Note 1 of XFORWARD_README, before decoding

_UNKNOWN = frozenset({"[UNAVAILABLE]", "[TEMPUNAVAIL]"})
_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")
# A HELO name as it may reach a header or an SPF check: printable ASCII without spaces
# or the characters Postfix neuters (it writes "?" for them; we call such a name unknown)
_HELO = re.compile(r"[!-~]+")
_NEUTERED = frozenset('<>()\\";@')


@dataclass(frozen=True)
class ForwardedClient:
    """The client of the MTA in front, as XFORWARD said it (``""``: unknown)."""

    addr: str = ""
    helo: str = ""


@dataclass(frozen=True)
class XForwardAccess:
    """Who may send XFORWARD on one listener: everyone (a Unix socket, whose file mode
    decides who connects) or the peers at ``hosts`` (IP addresses, as written)."""

    hosts: frozenset[str] = frozenset()
    everyone: bool = False

    def allows(self, peer: str) -> bool:
        return self.everyone or (bool(peer) and peer in self.hosts)


class ForwardingEnvelope(Envelope):
    """aiosmtpd's envelope, with what XFORWARD said of the client (None: nothing).

    aiosmtpd makes a new envelope when a transaction ends (RSET, the end of DATA) and
    at EHLO/LHLO and STARTTLS: that is where XFORWARD's attributes end too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.forwarded: ForwardedClient | None = None


def apply_xforward(
    current: ForwardedClient | None, arg: str | None
) -> tuple[ForwardedClient | None, str]:
    """The forwarded client after ``XFORWARD arg``, and the reply to it.

    A first XFORWARD starts from nothing known (``current`` None); a later one changes
    only what it names.  A malformed command changes nothing and is answered 501.
    """
    pairs = _attributes(arg or "")
    if isinstance(pairs, str):
        return current, pairs
    client = current or ForwardedClient()
    for name, value in pairs:
        if name == "ADDR":
            client = replace(client, addr=_address(value))
        elif name == "HELO":
            client = replace(client, helo=_helo_name(value))
    return client, _OK


def _attributes(arg: str) -> list[tuple[str, str]] | str:
    """``NAME=value`` pairs, names upper-cased and values decoded; or the 501 reply."""
    tokens = arg.split()
    if not tokens:
        return _SYNTAX
    pairs = []
    for token in tokens:
        name, equals, raw = token.partition("=")
        if not equals or not raw:
            return "501 5.5.4 Error: attribute=value expected"
        if len(raw) > _VALUE_MAX:
            return "501 5.5.4 Error: attribute value too long"
        if name.upper() not in ATTRIBUTES:
            return f"501 5.5.4 Bad XFORWARD attribute name: {name[:64]}"
        value = _xtext(raw)
        if value is None:
            return f"501 5.5.4 Bad XFORWARD attribute value for {name.upper()}"
        pairs.append((name.upper(), "" if value.upper() in _UNKNOWN else value))
    return pairs


def _xtext(raw: str) -> str | None:
    """RFC 3461's xtext decoded (``+2B`` is ``+``); None when a ``+`` starts no ``+XX``.

    Postfix before 2.3 sent values unencoded: such a value decodes to itself unless it
    holds a ``+``, which none of the attributes we keep can hold.
    """
    if raw.count("+") != len(_XTEXT.findall(raw)):
        return None
    return _XTEXT.sub(lambda found: chr(int(found.group(1), 16)), raw)


def _address(value: str) -> str:
    """An IP address in its usual form (``IPV6:`` dropped); ``""`` for anything else."""
    if value[:5].upper() == "IPV6:":
        value = value[5:]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return ""


def _helo_name(value: str) -> str:
    if not _HELO.fullmatch(value) or _NEUTERED.intersection(value):
        return ""
    return value
