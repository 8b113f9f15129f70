"""Sender authentication on the wire: may this ``From:`` domain be believed?

Authenticated means the ``From:`` domain passed DMARC (RFC 7489): SPF or DKIM passed for a
domain aligned with it — the same organisational domain (relaxed), or the very same domain
where the domain's DMARC record says strict.  A domain without a DMARC record still
authenticates with an aligned pass.  ARC is checked and recorded, and never authenticates
alone.  Four sources of an answer, one function each:

    verify_sender      SPF (pyspf), DKIM and ARC (dkimpy), DMARC record (authheaders),
                       checked here over the DNS of ``DnsSettings``
    trusted_results    Authentication-Results stamped by authserv-ids we trust (RFC 8601 §5)
    topmost_results    the topmost Authentication-Results of a server that writes no
                       authserv-id (Exchange Online), believed on that server's mail only
    exchange_internal  Exchange's mark of mail sent inside the tenant

Nothing here raises on hostile mail or a broken DNS: the answer is then "not
authenticated", with the reason.  The work per message is bounded: at most
``_MAX_SIGNATURES`` DKIM signatures and ``_MAX_ARC_SETS`` ARC sets, header sections up to
``_MAX_HEADER_BYTES``, and one DNS deadline (``DnsSettings.timeout``) for all its lookups.

The one piece of process-wide state: pyspf resolves only through its module-level
``spf.DNSLookup``; ``_install_spf_hook`` replaces it, once, with a dispatcher that serves
the message being checked in this thread and calls pyspf's own lookup everywhere else.
"""

from __future__ import annotations

import functools
import importlib.resources
import ipaddress
import itertools
import re
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

import authres
import dkim
import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.resolver
import spf
from authheaders.dmarc_lookup import lookup_receiver_record
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.txtbase import TXTBase

__all__ = [
    "DnsSettings",
    "SenderAuth",
    "exchange_internal",
    "organizational_domain",
    "topmost_results",
    "trusted_results",
    "verify_sender",
]

# Bounds on the work one message may cause.
_MAX_SIGNATURES = 5  # DKIM signatures verified, topmost first
_MAX_ARC_SETS = 10  # more ARC sets than this: arc=fail unverified (RFC 8617 allows 50)
# dkimpy joins folded header lines quadratically: 256 KiB already costs half a second.
_MAX_HEADER_BYTES = 128 * 1024
_MAX_RESULTS_CHARS = 8 * 1024  # an Authentication-Results value longer is not parsed
_MAX_TRUSTED_HEADERS = 20  # trusted Authentication-Results judged, topmost first


@dataclass(frozen=True)
class DnsSettings:
    """The DNS of the checks: ``nameservers`` are "address" or "address@port"; none: the
    system's resolver (/etc/resolv.conf).  ``timeout`` is the DNS time one message may
    spend in all: every lookup gets what is left of it."""

    nameservers: tuple[str, ...] = ()
    timeout: float = 5.0

    def __post_init__(self) -> None:
        for item in self.nameservers:
            _nameserver(item)
        if not self.timeout > 0:
            raise ValueError(f"DNS timeout must be positive, not {self.timeout!r}")


@dataclass(frozen=True)
class SenderAuth:
    """The answer: is the ``From:`` domain authenticated, how we know, and what we stamp.

    ``method``: "verified" | "trusted_results" | "mailbox_results" | "exchange_internal" |
    "none" (callers add their own, e.g. a trusted host).  ``results`` is the value of the
    Authentication-Results header we stamp (RFC 8601); ``reason`` is a few words for people.
    """

    authenticated: bool
    method: str
    from_domain: str | None
    results: str
    reason: str


# --- verify_sender ---------------------------------------------------------------------------


def verify_sender(
    raw: bytes,
    *,
    from_domain: str | None,
    ip: str | None,
    helo: str | None,
    mail_from: str | None,
    authserv_id: str,
    dns: DnsSettings,
) -> SenderAuth:
    """Check SPF (only with the client's ``ip``: the envelope sender, or HELO for a null
    sender), DKIM, ARC and the DMARC alignment of ``from_domain``, over ``dns``."""
    domain = _normal_domain(from_domain)
    lookups = _Lookups.start(dns)
    spf_result = _check_spf(lookups, ip, mail_from, helo) if ip else None
    signatures = _check_dkim(raw, lookups)
    arc = _check_arc(raw, lookups)
    policy = _dmarc_policy(lookups, domain) if domain else _Policy("permerror")
    verdict = _dmarc_verdict(domain, (spf_result, *signatures), policy)
    found = (spf_result, *(signatures or (_Result("dkim", "none"),)), _Result("arc", arc))
    dmarc = _Result(
        "dmarc",
        verdict.dmarc,
        (("header.from", domain or ""), ("policy.dmarc", policy.policy)),
    )
    results = _stamp(authserv_id, (*found, dmarc))
    reason = _reason(verdict, lookups.failure)
    return SenderAuth(verdict.authenticated, "verified", domain, results, reason)


def _reason(verdict: _Verdict, dns_failure: str | None) -> str:
    """A DNS failure comes first: with the DNS up, the answer might have been another."""
    if verdict.authenticated or dns_failure is None:
        return verdict.reason
    if verdict.dmarc == "temperror":
        return f"dns temperror ({dns_failure})"
    return f"dns temperror ({dns_failure}); {verdict.reason}"


@dataclass(frozen=True)
class _Result:
    """One result of an Authentication-Results header: ``dkim=pass header.d=x.example``."""

    method: str
    result: str
    properties: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> str | None:
        return next((value for key, value in self.properties if key == name), None)

    @property
    def domain(self) -> str | None:
        """The domain this result authenticates, as DMARC aligns it: SPF's envelope sender
        (or HELO for a null sender), DKIM's d= (or i=), DMARC's header.from."""
        names = {"spf": ("smtp.mailfrom", "smtp.helo"), "dkim": ("header.d", "header.i")}
        for name in names.get(self.method, ("header.from",)):
            value = self.get(name)
            if value:
                return _normal_domain(value.rpartition("@")[2])
        return None


@dataclass(frozen=True)
class _Policy:
    """The From: domain's DMARC record, as far as the decision needs it."""

    state: Literal["found", "none", "temperror", "permerror"]
    policy: str = ""
    strict_dkim: bool = False
    strict_spf: bool = False


@dataclass(frozen=True)
class _Verdict:
    authenticated: bool
    dmarc: str
    reason: str


def _dmarc_verdict(
    domain: str | None, found: Sequence[_Result | None], policy: _Policy
) -> _Verdict:
    if domain is None:
        return _Verdict(False, "permerror", "no From: domain")
    if policy.state == "temperror":
        return _Verdict(False, "temperror", "dns temperror")
    if policy.state == "permerror":
        return _Verdict(False, "permerror", "dmarc=permerror (malformed DMARC record)")
    aligned = _aligned_methods(found, domain, policy)
    result = ("pass" if aligned else "fail") if policy.state == "found" else "none"
    if not aligned:
        return _Verdict(False, result, f"dmarc={result}")
    how = " and ".join(aligned)
    if result == "pass":
        return _Verdict(True, result, f"dmarc=pass ({how} aligned)")
    return _Verdict(True, result, f"no DMARC record ({how} aligned)")


def _aligned_methods(
    found: Sequence[_Result | None], domain: str, policy: _Policy
) -> tuple[str, ...]:
    """ "dkim" and/or "spf": the methods with a pass aligned with ``domain`` (RFC 7489 §3.1)."""
    aligned: list[str] = []
    for result in found:
        if result is None or result.result != "pass" or result.method in aligned:
            continue
        strict = policy.strict_dkim if result.method == "dkim" else policy.strict_spf
        if result.domain and _aligned(result.domain, domain, strict=strict):
            aligned.append(result.method)
    return tuple(sorted(aligned))


def _aligned(identifier: str, from_domain: str, *, strict: bool) -> bool:
    if identifier == from_domain:
        return True
    return not strict and organizational_domain(identifier) == organizational_domain(from_domain)


# --- SPF, DKIM, ARC, DMARC --------------------------------------------------------------------


def _check_spf(lookups: _Lookups, ip: str, mail_from: str | None, helo: str | None) -> _Result:
    """RFC 7208 on the envelope sender; pyspf itself checks HELO when the sender is null.
    DMARC aligns the identity checked: the sender's domain, else the HELO name."""
    sender = (mail_from or "").strip().strip("<>")
    helo_name = (helo or "").strip()
    domain = sender.rpartition("@")[2]
    identity = ("smtp.mailfrom", domain) if sender else ("smtp.helo", helo_name)
    if not identity[1]:
        return _Result("spf", "none")
    _install_spf_hook()
    token = _SPF_LOOKUPS.set(lookups)
    try:
        query = spf.query(i=ip, s=sender, h=helo_name, timeout=lookups.timeout, querytime=0)
        result = str(query.check()[0])
    except Exception:  # noqa: BLE001  a bad address, or pyspf tripping on a hostile record
        result = "permerror"
    finally:
        _SPF_LOOKUPS.reset(token)
    return _Result("spf", result, (identity,))


def _check_dkim(raw: bytes, lookups: _Lookups) -> tuple[_Result, ...]:
    """Every DKIM signature, topmost first, up to ``_MAX_SIGNATURES``."""
    if _header_size(raw) > _MAX_HEADER_BYTES:
        return (_Result("dkim", "permerror"),)
    try:
        verifier = dkim.DKIM(raw, minkey=1024)
    except Exception:  # noqa: BLE001  dkimpy's parser raises many kinds on broken mail
        return (_Result("dkim", "permerror"),)
    count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    return tuple(
        _verify_signature(verifier, i, lookups) for i in range(min(count, _MAX_SIGNATURES))
    )


def _verify_signature(verifier: dkim.DKIM, index: int, lookups: _Lookups) -> _Result:
    """One signature: "neutral" when its tags do not parse (RFC 8601 §2.7.1), else what
    verifying it says.  (dkimpy's ``verify`` is these two steps, without telling them apart.)"""
    # cleared: a signature that fails to parse is never reported under the previous one's d=
    verifier.signature_fields = {}
    try:
        signature, signed, headers = verifier.verify_headerprep(idx=index)
    except Exception:  # noqa: BLE001  dkimpy raises many kinds on hostile signatures
        return _Result("dkim", "neutral", _signature_properties(verifier.signature_fields))
    try:
        valid = verifier.verify_sig(signature, signed, headers[index], lookups.dkim_key)
        # RFC 6376 §6.1.1: a signature that does not cover From: must be ignored.
        result = "pass" if valid and b"from" in verifier.include_headers else "fail"
    except _DnsTempError:
        result = "temperror"
    except Exception:  # noqa: BLE001  body hash mismatch, a bad key, and worse
        result = "fail"
    return _Result("dkim", result, _signature_properties(signature))


def _signature_properties(fields: Mapping[bytes, bytes]) -> tuple[tuple[str, str], ...]:
    return (("header.d", _ascii(fields.get(b"d"))), ("header.s", _ascii(fields.get(b"s"))))


def _check_arc(raw: bytes, lookups: _Lookups) -> str:
    """The ARC chain's validation (RFC 8617): "none", "pass", "fail" or "temperror"."""
    if _header_size(raw) > _MAX_HEADER_BYTES:
        return "fail"
    try:
        chain = dkim.ARC(raw, minkey=1024)
        sets = sum(1 for name, _ in chain.headers if name.lower() == b"arc-seal")
        if sets == 0:
            return "none"
        if sets > _MAX_ARC_SETS:
            return "fail"
        validation = chain.verify(dnsfunc=lookups.dkim_key)[0]
    except _DnsTempError:
        return "temperror"
    except Exception:  # noqa: BLE001  dkimpy raises many kinds on hostile ARC sets
        return "fail"
    # None: a seal reported a failure, which ends the chain
    return validation.decode("ascii") if validation else "fail"


def _dmarc_policy(lookups: _Lookups, domain: str) -> _Policy:
    """The DMARC record of ``domain``, else of its organisational domain (RFC 7489 §6.6.3)."""
    try:
        tags = lookup_receiver_record(domain, lookups.dmarc_record)
        organization = organizational_domain(domain)
        inherited = not tags and organization != domain
        if inherited:
            tags = lookup_receiver_record(organization, lookups.dmarc_record)
    except _DnsTempError:
        return _Policy("temperror")
    except Exception:  # noqa: BLE001  DMARCException for a malformed record, or worse
        return _Policy("permerror")
    if not tags or not tags.get("p"):
        return _Policy("none")
    policy = str(tags.get("sp", tags["p"]) if inherited else tags["p"])
    return _Policy("found", policy, tags.get("adkim") == "s", tags.get("aspf") == "s")


def _header_size(raw: bytes) -> int:
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(raw)


def _ascii(value: object) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else ""


# --- DNS ---------------------------------------------------------------------------------------


class _DnsTempError(Exception):
    """A lookup that may succeed later: timeout, SERVFAIL, or the message's time is up."""


class _Lookups:
    """The DNS of one message: one resolver and one deadline shared by all its lookups, so
    a dead server costs the message ``timeout`` once, not once per lookup.  Hands dkimpy,
    authheaders and pyspf the lookup function each of them expects."""

    def __init__(self, resolver: dns.resolver.Resolver | None, timeout: float) -> None:
        self._resolver = resolver
        self.timeout = timeout
        self._deadline = time.monotonic() + timeout
        self.failure: str | None = None  # the first temporary failure, for the reason

    @classmethod
    def start(cls, settings: DnsSettings) -> _Lookups:
        try:
            resolver: dns.resolver.Resolver | None = _resolver(settings)
        except dns.exception.DNSException:  # no /etc/resolv.conf: every lookup fails
            resolver = None
        return cls(resolver, settings.timeout)

    def records(self, name: str | bytes, rdtype: str) -> list[dns.rdata.Rdata]:
        """The answer's records; [] for a name that does not exist or is not a name."""
        qname = _qname(name)
        if qname is None:
            return []
        remaining = self._deadline - time.monotonic()
        if self._resolver is None or remaining <= 0:
            raise self._failed("no resolver" if self._resolver is None else "out of time")
        try:
            answer = self._resolver.resolve(
                qname, rdtype, lifetime=remaining, search=False, raise_on_no_answer=False
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.YXDOMAIN):
            return []
        except dns.exception.Timeout as exc:
            raise self._failed("timeout") from exc
        except dns.resolver.NoNameservers as exc:  # SERVFAIL or REFUSED from every server
            raise self._failed("no server answered") from exc
        except dns.exception.DNSException as exc:
            raise self._failed(type(exc).__name__) from exc
        return list(answer.rrset or ())

    def _failed(self, what: str) -> _DnsTempError:
        self.failure = self.failure or what
        return _DnsTempError(what)

    def txt(self, name: str | bytes) -> list[bytes]:
        return [b"".join(r.strings) for r in self.records(name, "TXT") if isinstance(r, TXTBase)]

    def dkim_key(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        """dkimpy's ``dnsfunc``: the key record's text (its ``timeout``: ours rules)."""
        found = self.txt(name)
        return found[0] if found else None

    def dmarc_record(self, name: str) -> str | None:
        """authheaders' ``dnsfunc``: the one DMARC record at ``name`` (two or more count as
        none, RFC 7489 §6.6.3)."""
        found = [r for r in self.txt(name) if r.startswith(b"v=DMARC1")]
        return found[0].decode("ascii", "replace") if len(found) == 1 else None

    def spf_answers(self, name: str, qtype: str) -> list[tuple[tuple[str, str], object]]:
        """pyspf's ``DNSLookup`` result: ((name, type), value) per record."""
        try:
            found = self.records(name, qtype)
        except _DnsTempError as exc:
            raise spf.TempError(f"DNS {exc}") from exc
        return [((name, qtype), value) for value in map(_spf_value, found) if value is not None]


def _spf_value(rdata: dns.rdata.Rdata) -> object:
    """A record as pyspf's own dnspython lookup hands it on."""
    if isinstance(rdata, A | AAAA):
        return rdata.address
    if isinstance(rdata, MX):
        return (rdata.preference, rdata.exchange)
    if isinstance(rdata, PTR):
        return rdata.target.to_text(True)
    if isinstance(rdata, TXTBase):
        return rdata.strings
    return None


def _qname(name: str | bytes) -> dns.name.Name | None:
    try:
        text = name.decode("ascii") if isinstance(name, bytes) else name
        return dns.name.from_text(text) if text.strip(".") else None
    except (UnicodeError, ValueError, dns.exception.DNSException):
        return None


_CACHED_ANSWERS = 10_000


@functools.lru_cache(maxsize=8)
def _resolver(settings: DnsSettings) -> dns.resolver.Resolver:
    """One resolver per settings, shared by threads: they only read it."""
    if settings.nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [_nameserver(item) for item in settings.nameservers]
    else:
        resolver = dns.resolver.Resolver()
    resolver.timeout = resolver.lifetime = settings.timeout
    # Producers write again and again from the same few domains: their SPF, DKIM and
    # DMARC records are asked once per TTL, not once per message (thread-safe cache).
    resolver.cache = dns.resolver.LRUCache(_CACHED_ANSWERS)
    return resolver


def _nameserver(item: str) -> dns.nameserver.Do53Nameserver:
    """ "127.0.0.1" or "127.0.0.1@5353" (IPv6 alike)."""
    address, _, port = item.strip().partition("@")
    try:
        number = int(port or 53)
        if not 0 < number < 65536:
            raise ValueError(number)
        return dns.nameserver.Do53Nameserver(str(ipaddress.ip_address(address)), number)
    except ValueError as exc:
        raise ValueError(f"not a nameserver (address or address@port): {item!r}") from exc


# --- pyspf's module-level DNS hook -------------------------------------------------------------

_SPF_LOOKUPS: ContextVar[_Lookups | None] = ContextVar("sender_auth_spf", default=None)
_PYSPF_LOOKUP = spf.DNSLookup  # pyspf's own lookup (dnspython, the system's resolver)


def _spf_dns(name: str, qtype: str, strict: object = True, timeout: float = 30) -> object:
    """Stands in for ``spf.DNSLookup``: the lookups of the message this thread is checking
    (a ContextVar: threads never see each other's), else pyspf's own lookup."""
    lookups = _SPF_LOOKUPS.get()
    if lookups is None:
        return _PYSPF_LOOKUP(name, qtype, strict, timeout)
    return lookups.spf_answers(name, qtype)


def _install_spf_hook() -> None:
    """pyspf offers no per-query resolver, only the module global ``spf.DNSLookup``.
    Idempotent: threads racing here all write the same function."""
    if spf.DNSLookup is not _spf_dns:
        spf.DNSLookup = _spf_dns


# --- organisational domain ---------------------------------------------------------------------


@dataclass(frozen=True)
class _SuffixRules:
    exact: frozenset[str]
    wildcard: frozenset[str]  # "*.ck" kept as "ck"
    exception: frozenset[str]  # "!www.ck" kept as "www.ck"


def organizational_domain(domain: str) -> str:
    """The registrable domain (RFC 7489 §3.2): one label below the public suffix.

    Not ``authheaders.dmarc_lookup.get_org_domain``: over publicsuffix2 it answers the TLD
    itself for a TLD missing from the list (``evil.example`` and ``brokers.example`` would
    both be "example", so aligned), and it reads the list again on every call.
    """
    return _organizational(_normal_domain(domain) or domain.lower())


@functools.lru_cache(maxsize=4096)
def _organizational(domain: str) -> str:
    labels = domain.split(".")
    suffix = _suffix_length(labels, _suffix_rules())
    return ".".join(labels[-(suffix + 1) :]) if len(labels) > suffix else domain


def _suffix_length(labels: Sequence[str], rules: _SuffixRules) -> int:
    """How many labels the public suffix has (publicsuffix.org's algorithm)."""
    length = 1  # no rule matches: the prevailing rule is "*"
    for n in range(1, len(labels) + 1):
        name = ".".join(labels[-n:])
        if name in rules.exception:
            return n - 1
        if name in rules.exact or (n > 1 and ".".join(labels[-n + 1 :]) in rules.wildcard):
            length = n
    return length


@functools.cache
def _suffix_rules() -> _SuffixRules:
    """The public suffix list authheaders ships, read once."""
    text = (importlib.resources.files("authheaders") / "public_suffix_list.txt").read_text("utf-8")
    lines = (line.strip() for line in text.splitlines())
    rules = [line.split()[0] for line in lines if line and not line.startswith("//")]
    exact = {_idna(r) for r in rules if r[0] not in "*!"}
    wildcard = {_idna(r[2:]) for r in rules if r.startswith("*.")}
    exception = {_idna(r[1:]) for r in rules if r.startswith("!")}
    return _SuffixRules(frozenset(exact), frozenset(wildcard), frozenset(exception))


def _idna(name: str) -> str:
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


def _normal_domain(domain: str | None) -> str | None:
    name = (domain or "").strip().strip(".").lower()
    return _idna(name) if name else None


# --- Authentication-Results we read ------------------------------------------------------------


# Exchange Online: "bestguesspass", no DMARC record but it would have passed (aligned).
_DMARC_PASS = frozenset({"pass", "bestguesspass"})
# The authserv-id a header claims, read cheaply before a full parse (most are not ours).
_AUTHSERV_ID = re.compile(r"\s*([^\s;()]+)")
# The start of a result ("method=" or "method/1="), as opposed to Exchange's stray domains.
_RESULT_START = re.compile(r"\s*[A-Za-z0-9][A-Za-z0-9_.-]*\s*(?:/\s*\d+\s*)?=")


def trusted_results(
    values: Sequence[str],
    authserv_ids: Collection[str],
    from_domain: str | None,
    authserv_id: str,
) -> SenderAuth | None:
    """Judge the Authentication-Results (``values``, topmost first) stamped by one of
    ``authserv_ids`` (case-insensitive); every other such header is ignored (RFC 8601 §5).
    None when none is stamped by a trusted id (or none of those parses)."""
    trusted = {i.strip().lower() for i in authserv_ids}
    claiming = itertools.islice(_claiming(values, trusted), _MAX_TRUSTED_HEADERS)
    # the full parse confirms the id: "mx.corp(x)" is not "mx.corp"
    headers = [parsed for parsed in map(_parse_header, claiming) if parsed[0] in trusted]
    if not headers:
        return None
    return _judged(headers, from_domain, authserv_id, "trusted_results")


def topmost_results(
    values: Sequence[str], from_domain: str | None, authserv_id: str
) -> SenderAuth | None:
    """Judge only the topmost Authentication-Results (``values[0]``), as Exchange Online
    writes it: no authserv-id, and stray "; recipient.domain;" pieces between results.
    Believe it only on mail fetched from that server's own mailbox.  None when there is
    none, or nothing in it parses."""
    results = _exchange_results(values[0]) if values else ()
    if not results:
        return None
    return _judged([("topmost", results)], from_domain, authserv_id, "mailbox_results")


def _judged(
    headers: Sequence[tuple[str, tuple[_Result, ...]]],
    from_domain: str | None,
    authserv_id: str,
    method: str,
) -> SenderAuth:
    """Authenticated when one of the (believed) headers authenticates the From: domain;
    that header is the one we copy, else the topmost."""
    domain = _normal_domain(from_domain)
    for header_id, results in headers:
        authenticated, why = _judge(results, domain)
        if authenticated:
            stamp = _stamp(authserv_id, results)
            return SenderAuth(True, method, domain, stamp, f"{header_id}: {why}")
    header_id, results = headers[0]
    why = _judge(results, domain)[1]
    return SenderAuth(False, method, domain, _stamp(authserv_id, results), f"{header_id}: {why}")


def _judge(results: Sequence[_Result], domain: str | None) -> tuple[bool, str]:
    """A dmarc result for the From: domain decides; without one (or "none": no record)
    an aligned SPF or DKIM pass does, relaxed alignment (the header says nothing of the
    record's modes)."""
    if domain is None:
        return False, "no From: domain"
    dmarc = [r.result for r in results if r.method == "dmarc" and r.domain == domain]
    if any(result in _DMARC_PASS for result in dmarc):
        return True, "dmarc=pass"
    if any(result != "none" for result in dmarc):
        return False, f"dmarc={dmarc[0]}"
    policy = _Policy("none")
    aligned = _aligned_methods([r for r in results if r.method in ("spf", "dkim")], domain, policy)
    if aligned:
        return True, f"{' and '.join(aligned)} aligned"
    return False, "no aligned pass"


def _claiming(values: Sequence[str], trusted: set[str]) -> Iterator[str]:
    for value in values:
        match = _AUTHSERV_ID.match(value)
        if match and match.group(1).lower() in trusted:
            yield value


def _exchange_results(value: str) -> tuple[_Result, ...]:
    """Each result parsed on its own, under a stand-in authserv-id: one piece authres
    cannot read loses that result only."""
    pieces = [piece for piece in value.split(";") if _RESULT_START.match(piece)]
    return tuple(r for piece in pieces for r in _parse_header(f"exchange.invalid; {piece}")[1])


def _parse_header(value: str) -> tuple[str, tuple[_Result, ...]]:
    """(authserv-id, results) of one header value; ("", ()) when authres cannot parse it."""
    if len(value) > _MAX_RESULTS_CHARS:
        return "", ()
    try:
        header = authres.all_features().parse_value(value)
        results = tuple(_result(r) for r in header.results)
    except Exception:  # noqa: BLE001  authres raises more than its own errors on odd input
        return "", ()
    return str(header.authserv_id or "").lower(), results


def _result(parsed: authres.AuthenticationResult) -> _Result:
    properties = tuple((f"{p.type}.{p.name}", str(p.value or "")) for p in parsed.properties)
    return _Result(str(parsed.method).lower(), str(parsed.result).lower(), properties)


# --- the Authentication-Results we stamp ------------------------------------------------------

# What we copy into our header: a token or a domain, nothing a hostile value could use to
# close a result early (";"), add a property (" ") or open a comment or a quote.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_.@+-]{0,252}")
_SAFE_RESULT = re.compile(r"[a-z][a-z0-9_-]{0,30}")
_STAMPED_METHODS = ("spf", "dkim", "arc", "dmarc")
_STAMPED_PROPERTIES = frozenset(
    {
        "smtp.mailfrom",
        "smtp.helo",
        "header.d",
        "header.i",
        "header.s",
        "header.from",
        "policy.dmarc",
    }
)


def _stamp(authserv_id: str, results: Sequence[_Result | None]) -> str:
    """``authserv_id; spf=pass smtp.mailfrom=x; dkim=...`` (RFC 8601 syntax)."""
    clauses = [_clause(r) for r in results if r is not None and r.method in _STAMPED_METHODS]
    found = [clause for clause in clauses if clause]
    return f"{authserv_id}; {'; '.join(found) if found else 'none'}"


def _clause(result: _Result) -> str:
    if not _SAFE_RESULT.fullmatch(result.result):
        return ""
    words = [f"{result.method}={result.result}"]
    for name, value in result.properties:
        if name in _STAMPED_PROPERTIES and _SAFE_VALUE.fullmatch(value):
            words.append(f"{name}={value}")
    return " ".join(words)


# --- Exchange ----------------------------------------------------------------------------------


def exchange_internal(headers: Mapping[str, Sequence[str]]) -> bool:
    """Exchange marks mail sent inside the tenant ``X-MS-Exchange-Organization-AuthAs:
    Internal`` and strips its organisation headers from mail arriving from outside.
    ``headers``: lower-case name -> values.  Ask only of mail fetched from the tenant."""
    values = [v.strip().lower() for v in headers.get("x-ms-exchange-organization-authas", ())]
    return bool(values) and all(value == "internal" for value in values)
