"""A private DNS server on loopback, and the sender-authentication world it serves.

``PrivateDns``: dnslib's ``DNSServer`` answering UDP and TCP on one free port of 127.0.0.1
from a dict of records (TXT, A, AAAA, MX).  It answers for every name: a name it does not
hold is NXDOMAIN, a domain marked with ``fail`` answers SERVFAIL at and below it.  A UDP
answer longer than 512 bytes goes out truncated, so a long record makes the client retry
over TCP, as with a real server.

``AuthDns`` (tests/conftest.py's session fixture ``auth_dns``): a started ``PrivateDns``
with the SPF, DKIM and DMARC records of the test domains, their DKIM keys (RSA 2048, made
at start, selector "s1") and helpers to sign mail with them:

    staff.example         the desk's own domain: SPF ip4:192.0.2.10, DMARC p=quarantine
    brokers.example       a producer: SPF 198.51.100.0/24 and its MX (192.0.2.25), DMARC
                          p=none; keys for brokers.example and news.brokers.example;
                          mail.brokers.example (HELO) has "v=spf1 a -all"
    reject.example        DMARC p=reject, SPF ip4:192.0.2.50
    strict.example        DMARC p=reject adkim=s aspf=s; keys for it and mail.strict.example
    plain.example         no DMARC record, SPF ip4:192.0.2.60
    evil.example          someone else: SPF 203.0.113.0/24, DMARC p=none, its own key
    relay.example         a forwarder that ARC-seals (``arc_seal``)
    wide.example          an SPF record too long for UDP (answered over TCP), ip4:192.0.2.70
    broken.example        every name at and below it answers SERVFAIL

A daemon under test uses it with ``[authentication] nameservers = [auth_dns.nameserver]``;
mail it should believe is signed with ``auth_dns.sign(message, "brokers.example")``.
"""

from __future__ import annotations

import base64
import logging
import threading
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A
from dnslib.server import DNSServer

from mailer.sender_auth import DnsSettings

__all__ = [
    "BROKEN_DOMAIN",
    "EVIL_DOMAIN",
    "EVIL_IP",
    "NO_DMARC_DOMAIN",
    "NO_DMARC_IP",
    "OUTSIDER_IP",
    "PRODUCER_DOMAIN",
    "PRODUCER_IP",
    "PRODUCER_MX_IP",
    "REJECT_DOMAIN",
    "REJECT_IP",
    "RELAY_DOMAIN",
    "STAFF_DOMAIN",
    "STAFF_IP",
    "STRICT_DOMAIN",
    "WIDE_DOMAIN",
    "WIDE_IP",
    "AuthDns",
    "DkimKey",
    "PrivateDns",
]

STAFF_DOMAIN = "staff.example"
PRODUCER_DOMAIN = "brokers.example"
REJECT_DOMAIN = "reject.example"
STRICT_DOMAIN = "strict.example"
NO_DMARC_DOMAIN = "plain.example"
EVIL_DOMAIN = "evil.example"
RELAY_DOMAIN = "relay.example"
WIDE_DOMAIN = "wide.example"
BROKEN_DOMAIN = "broken.example"

STAFF_IP = "192.0.2.10"
PRODUCER_IP = "198.51.100.7"
PRODUCER_MX_IP = "192.0.2.25"
REJECT_IP = "192.0.2.50"
NO_DMARC_IP = "192.0.2.60"
WIDE_IP = "192.0.2.70"
EVIL_IP = "203.0.113.66"
OUTSIDER_IP = "192.0.2.99"  # in no SPF record

SELECTOR = "s1"
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id")
_UDP_LIMIT = 512  # bytes of a UDP answer without EDNS (RFC 1035 §4.2.1)
_log = logging.getLogger(__name__)


# --- the server --------------------------------------------------------------------------------


class PrivateDns:
    """An authoritative server for whatever it is given, on 127.0.0.1 (UDP and TCP)."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], list[RR]] = {}
        self._failing: set[str] = set()
        self._lock = threading.Lock()  # tests add records while server threads answer
        self._servers: list[Any] = []
        self.port = 0

    @property
    def nameserver(self) -> str:
        """ "127.0.0.1@PORT": a ``nameservers`` entry of ``DnsSettings`` and the config."""
        return f"127.0.0.1@{self.port}"

    def add_txt(self, name: str, text: str) -> None:
        """A TXT record; text longer than a character-string (255) is split, as in zones."""
        data = text.encode("ascii")
        chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
        self._add(name, "TXT", TXT(chunks))

    def add_a(self, name: str, address: str) -> None:
        self._add(name, "AAAA" if ":" in address else "A", (AAAA if ":" in address else A)(address))

    def add_mx(self, name: str, exchange: str, preference: int = 10) -> None:
        self._add(name, "MX", MX(exchange, preference))

    def fail(self, domain: str) -> None:
        """Answer SERVFAIL for ``domain`` and every name below it."""
        with self._lock:
            self._failing.add(_key(domain))

    def _add(self, name: str, rtype: str, rdata: Any) -> None:
        record = RR(_key(name) + ".", getattr(QTYPE, rtype), rdata=rdata, ttl=60)
        with self._lock:
            self._records.setdefault((_key(name), rtype), []).append(record)

    def resolve(self, request: Any, handler: Any) -> Any:
        """dnslib's resolver interface: the reply to ``request``."""
        name, rtype = _key(str(request.q.qname)), QTYPE[request.q.qtype]
        reply = request.reply()
        with self._lock:
            failing = any(name == d or name.endswith("." + d) for d in self._failing)
            answers = list(self._records.get((name, rtype), ()))
            exists = any(n == name or n.endswith("." + name) for n, _ in self._records)
        if failing:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        for answer in answers:
            reply.add_answer(answer)
        if not exists:
            reply.header.rcode = RCODE.NXDOMAIN
        if handler.protocol == "udp" and len(reply.pack()) > _UDP_LIMIT:
            return _truncated(request)
        return reply

    def start(self) -> None:
        """Listen on a free port, the same for UDP and TCP (a few tries if TCP's is taken)."""
        for _ in range(20):
            udp = DNSServer(self, address="127.0.0.1", port=0, logger=_QuietLogger())
            port = int(udp.server.server_address[1])
            try:
                tcp = DNSServer(
                    self, address="127.0.0.1", port=port, tcp=True, logger=_QuietLogger()
                )
            except OSError:
                udp.server.server_close()
                continue
            self._servers, self.port = [udp, tcp], port
            for server in self._servers:
                server.start_thread()
            return
        raise RuntimeError("no loopback port free for both UDP and TCP")

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []


def _truncated(request: Any) -> Any:
    """The question and the TC flag: "ask again over TCP".  (dnslib's own ``truncate``
    drops the question too, and resolvers discard an answer that does not repeat it.)"""
    reply = request.reply()
    reply.header.tc = 1
    return reply


def _key(name: str) -> str:
    return name.strip().rstrip(".").lower()


class _QuietLogger:
    """dnslib's logger interface; by default it prints every query to stdout."""

    def log_error(self, handler: Any, error: object) -> None:
        _log.debug("DNS server error: %s", error)

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None  # log_recv, log_send, log_request, log_reply, ...


# --- the world of the tests ---------------------------------------------------------------------


@dataclass(frozen=True)
class DkimKey:
    """An RSA 2048 key pair: the PEM dkimpy signs with, the TXT record that publishes it."""

    domain: str
    selector: str
    private_pem: bytes = field(repr=False)
    record: str = field(repr=False)

    @classmethod
    def generate(cls, domain: str, selector: str = SELECTOR) -> DkimKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1, what dkimpy reads
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        record = f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode('ascii')}"
        return cls(domain, selector, pem, record)

    @property
    def name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


_SIGNING_DOMAINS = (
    STAFF_DOMAIN,
    PRODUCER_DOMAIN,
    f"news.{PRODUCER_DOMAIN}",
    REJECT_DOMAIN,
    STRICT_DOMAIN,
    f"mail.{STRICT_DOMAIN}",
    NO_DMARC_DOMAIN,
    EVIL_DOMAIN,
    RELAY_DOMAIN,
)
_WIDE_SPF = " ".join(
    ["v=spf1", *(f"ip4:10.{i}.0.0/16" for i in range(60)), f"ip4:{WIDE_IP}", "-all"]
)
_RECORDS: tuple[tuple[str, str, str], ...] = (
    ("TXT", STAFF_DOMAIN, f"v=spf1 ip4:{STAFF_IP} -all"),
    ("TXT", f"_dmarc.{STAFF_DOMAIN}", "v=DMARC1; p=quarantine"),
    ("TXT", PRODUCER_DOMAIN, "v=spf1 ip4:198.51.100.0/24 mx -all"),
    ("MX", PRODUCER_DOMAIN, f"mail.{PRODUCER_DOMAIN}"),
    ("A", f"mail.{PRODUCER_DOMAIN}", PRODUCER_MX_IP),
    ("TXT", f"mail.{PRODUCER_DOMAIN}", "v=spf1 a -all"),
    ("TXT", f"_dmarc.{PRODUCER_DOMAIN}", f"v=DMARC1; p=none; rua=mailto:dmarc@{PRODUCER_DOMAIN}"),
    ("TXT", REJECT_DOMAIN, f"v=spf1 ip4:{REJECT_IP} -all"),
    ("TXT", f"_dmarc.{REJECT_DOMAIN}", "v=DMARC1; p=reject"),
    ("TXT", f"_dmarc.{STRICT_DOMAIN}", "v=DMARC1; p=reject; adkim=s; aspf=s"),
    ("TXT", NO_DMARC_DOMAIN, f"v=spf1 ip4:{NO_DMARC_IP} -all"),
    ("TXT", EVIL_DOMAIN, "v=spf1 ip4:203.0.113.0/24 -all"),
    ("TXT", f"_dmarc.{EVIL_DOMAIN}", "v=DMARC1; p=none"),
    ("TXT", WIDE_DOMAIN, _WIDE_SPF),
)


class AuthDns:
    """The test domains' SPF, DKIM and DMARC on a ``PrivateDns``, with their signing keys."""

    def __init__(self, server: PrivateDns, keys: dict[str, DkimKey]) -> None:
        self.server = server
        self.keys = keys

    @classmethod
    def start(cls) -> AuthDns:
        server = PrivateDns()
        keys = {domain: DkimKey.generate(domain) for domain in _SIGNING_DOMAINS}
        for rtype, name, value in _RECORDS:
            {"TXT": server.add_txt, "A": server.add_a, "MX": server.add_mx}[rtype](name, value)
        for key in keys.values():
            server.add_txt(key.name, key.record)
        server.fail(BROKEN_DOMAIN)
        server.start()
        return cls(server, keys)

    def stop(self) -> None:
        self.server.stop()

    @property
    def nameserver(self) -> str:
        """ "127.0.0.1@PORT", for ``[authentication] nameservers``."""
        return self.server.nameserver

    def settings(self, timeout: float = 5.0) -> DnsSettings:
        return DnsSettings((self.nameserver,), timeout)

    def sign(self, message: bytes, domain: str, *, key_of: str | None = None) -> bytes:
        """``message`` with a DKIM-Signature of d=``domain`` prepended (relaxed/relaxed;
        From, To, Subject, Date, Message-ID signed).  ``key_of``: sign with that domain's
        key instead — a signature that claims ``domain`` but cannot verify."""
        key = self.keys[key_of or domain]
        header = dkim.sign(
            message,
            key.selector.encode(),
            domain.encode(),
            key.private_pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
        )
        return bytes(header) + message

    def publish(self, domain: str) -> None:
        """Give ``domain`` a DKIM key (published) and a DMARC record ``p=none``: any mail
        system that signs its mail, as the journeys' producers' and the desk's do."""
        if domain in self.keys:
            return
        key = DkimKey.generate(domain)
        self.keys[domain] = key
        self.server.add_txt(key.name, key.record)
        self.server.add_txt(f"_dmarc.{domain}", "v=DMARC1; p=none")

    def sign_as_author(self, message: bytes) -> bytes:
        """``message`` signed as its ``From:`` domain's mail system signs it (the domain
        is published on first use)."""
        parsed = BytesHeaderParser(policy=compat32).parsebytes(message)
        domain = parseaddr(str(parsed.get("From", "")))[1].rpartition("@")[2].lower()
        if not domain:
            raise ValueError("no From: address to sign as")
        self.publish(domain)
        return self.sign(message, domain)

    def arc_seal(self, message: bytes, domain: str = RELAY_DOMAIN) -> bytes:
        """``message`` with an ARC set of ``domain`` prepended, as a forwarder adds it.  The
        message must carry ``Authentication-Results: <domain>; ...`` (the set copies it)."""
        key = self.keys[domain]
        headers = dkim.arc_sign(
            message, key.selector.encode(), domain.encode(), key.private_pem, domain.encode()
        )
        return b"".join(headers) + message
