"""Sender authentication (mailer/sender_auth.py) over a private DNS server and real mail.

The DNS world (tests/dns_server.py, fixture ``auth_dns``) serves the SPF, DKIM and DMARC
records of the test domains; messages are signed at test time with its keys.  Real
messages of ../shared/corpus give Exchange Online's Authentication-Results, Exchange's
organisation headers, a Gmail header, and DKIM-signed mail whose keys are long gone.
"""

from __future__ import annotations

import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mailer.parsing import parse_message
from mailer.sender_auth import (
    DnsSettings,
    SenderAuth,
    exchange_internal,
    organizational_domain,
    topmost_results,
    trusted_results,
    verify_sender,
)
from tests.dns_server import (
    BROKEN_DOMAIN,
    EVIL_DOMAIN,
    EVIL_IP,
    NO_DMARC_DOMAIN,
    OUTSIDER_IP,
    PRODUCER_DOMAIN,
    PRODUCER_IP,
    PRODUCER_MX_IP,
    REJECT_DOMAIN,
    RELAY_DOMAIN,
    STRICT_DOMAIN,
    WIDE_DOMAIN,
    WIDE_IP,
    AuthDns,
)
from tests.mail import make_mail

ID = "desk.staff.example"  # the authserv-id we stamp
MX = "mx.corp.example"  # the authserv-id of a trusted MTA in front
# Exchange Online's Authentication-Results: no authserv-id, "; " missing before dmarc
CONTOSO = (
    "spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=contoso.com; dkim=pass (signature was "
    "verified) header.d=contoso.com;dmarc=pass action=none header.from=contoso.com;"
    "compauth=pass reason=100"
)


def mail(domain: str = PRODUCER_DOMAIN, body: str = "Please look at case 174097.") -> bytes:
    return make_mail(sender=f"Sam <sam@{domain}>", body=body)


def verify(
    auth_dns: AuthDns,
    raw: bytes,
    from_domain: str | None = PRODUCER_DOMAIN,
    *,
    ip: str | None = None,
    mail_from: str | None = None,
    helo: str | None = "client.isp.example",
    dns: DnsSettings | None = None,
) -> SenderAuth:
    settings = dns or auth_dns.settings()
    return verify_sender(
        raw,
        from_domain=from_domain,
        ip=ip,
        helo=helo,
        mail_from=mail_from,
        authserv_id=ID,
        dns=settings,
    )


def dead_nameserver() -> str:
    """A loopback port nothing listens on: queries to it go unanswered."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1@{sock.getsockname()[1]}"


def corpus_message(shared_dir: Path, rel: str) -> bytes:
    return (shared_dir / "corpus" / rel).read_bytes()


# --- DKIM --------------------------------------------------------------------------------------


def test_an_aligned_dkim_signature_authenticates(auth_dns: AuthDns) -> None:
    auth = verify(auth_dns, auth_dns.sign(mail(), PRODUCER_DOMAIN))
    assert auth.authenticated and auth.method == "verified"
    assert auth.from_domain == PRODUCER_DOMAIN
    assert auth.reason == "dmarc=pass (dkim aligned)"
    assert auth.results.startswith(f"{ID}; ")
    assert "dkim=pass header.d=brokers.example header.s=s1" in auth.results
    assert "dmarc=pass header.from=brokers.example policy.dmarc=none" in auth.results


def test_a_subdomain_signature_aligns_relaxed(auth_dns: AuthDns) -> None:
    auth = verify(auth_dns, auth_dns.sign(mail(), f"news.{PRODUCER_DOMAIN}"))
    assert auth.authenticated, auth


def test_a_strict_dmarc_record_wants_the_very_domain(auth_dns: AuthDns) -> None:
    by_subdomain = auth_dns.sign(mail(STRICT_DOMAIN), f"mail.{STRICT_DOMAIN}")
    by_domain = auth_dns.sign(mail(STRICT_DOMAIN), STRICT_DOMAIN)
    assert not verify(auth_dns, by_subdomain, STRICT_DOMAIN).authenticated
    assert verify(auth_dns, by_domain, STRICT_DOMAIN).authenticated


def test_a_signature_of_another_domain_does_not_authenticate(auth_dns: AuthDns) -> None:
    auth = verify(auth_dns, auth_dns.sign(mail(), EVIL_DOMAIN))
    assert not auth.authenticated
    assert "dkim=pass header.d=evil.example" in auth.results  # valid, but not aligned
    assert "dmarc=fail header.from=brokers.example" in auth.results
    assert auth.reason == "dmarc=fail"


def test_a_signature_made_with_another_key_fails(auth_dns: AuthDns) -> None:
    auth = verify(auth_dns, auth_dns.sign(mail(), PRODUCER_DOMAIN, key_of=EVIL_DOMAIN))
    assert not auth.authenticated
    assert "dkim=fail header.d=brokers.example" in auth.results


def test_a_body_altered_after_signing_fails(auth_dns: AuthDns) -> None:
    signed = auth_dns.sign(mail(body="Please pay invoice 17."), PRODUCER_DOMAIN)
    altered = signed.replace(b"invoice 17", b"invoice 71")
    assert verify(auth_dns, signed).authenticated
    auth = verify(auth_dns, altered)
    assert not auth.authenticated
    assert "dkim=fail" in auth.results


def test_only_the_first_five_signatures_are_checked(auth_dns: AuthDns) -> None:
    bogus = b"DKIM-Signature: v=1; a=rsa-sha256; d=evil.example; s=s1; h=from; bh=AAAA; b=AAAA\r\n"
    auth = verify(auth_dns, bogus * 6 + auth_dns.sign(mail(), PRODUCER_DOMAIN))
    assert auth.results.count("dkim=") == 5
    assert not auth.authenticated  # the good one was the seventh


# --- SPF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("ip", [PRODUCER_IP, PRODUCER_MX_IP], ids=["ip4", "mx"])
def test_spf_pass_with_an_aligned_envelope_sender_authenticates(auth_dns: AuthDns, ip: str) -> None:
    auth = verify(auth_dns, mail(), ip=ip, mail_from=f"bounces@{PRODUCER_DOMAIN}")
    assert auth.authenticated
    assert auth.reason == "dmarc=pass (spf aligned)"
    assert "spf=pass smtp.mailfrom=brokers.example" in auth.results


def test_spf_pass_for_another_envelope_domain_is_not_aligned(auth_dns: AuthDns) -> None:
    auth = verify(auth_dns, mail(), ip=EVIL_IP, mail_from=f"bounces@{EVIL_DOMAIN}")
    assert not auth.authenticated
    assert "spf=pass smtp.mailfrom=evil.example" in auth.results
    assert "dmarc=fail" in auth.results


def test_a_forged_from_sent_from_an_outside_address_fails(auth_dns: AuthDns) -> None:
    auth = verify(auth_dns, mail(), ip=OUTSIDER_IP, mail_from=f"sam@{PRODUCER_DOMAIN}")
    assert not auth.authenticated
    assert "spf=fail smtp.mailfrom=brokers.example" in auth.results
    assert "dkim=none" in auth.results


def test_helo_is_checked_for_a_null_sender(auth_dns: AuthDns) -> None:
    helo = f"mail.{PRODUCER_DOMAIN}"
    auth = verify(auth_dns, mail(), ip=PRODUCER_MX_IP, mail_from="", helo=helo)
    assert auth.authenticated, auth
    assert f"spf=pass smtp.helo={helo}" in auth.results


def test_a_long_spf_record_is_read_over_tcp(auth_dns: AuthDns) -> None:
    auth = verify(auth_dns, mail(WIDE_DOMAIN), WIDE_DOMAIN, ip=WIDE_IP, mail_from="a@wide.example")
    assert auth.authenticated, auth


def test_spf_is_not_checked_without_the_client_address(auth_dns: AuthDns) -> None:
    auth = verify(auth_dns, mail(), ip=None, mail_from=f"sam@{PRODUCER_DOMAIN}")
    assert "spf=" not in auth.results
    assert not auth.authenticated


# --- DMARC -------------------------------------------------------------------------------------


def test_unsigned_mail_of_a_p_reject_domain_fails(auth_dns: AuthDns) -> None:
    auth = verify(auth_dns, mail(REJECT_DOMAIN), REJECT_DOMAIN, ip=OUTSIDER_IP, mail_from="")
    assert not auth.authenticated
    assert "dmarc=fail header.from=reject.example policy.dmarc=reject" in auth.results


def test_a_subdomain_without_a_record_follows_its_organisation(auth_dns: AuthDns) -> None:
    domain = f"alerts.{REJECT_DOMAIN}"
    auth = verify(auth_dns, auth_dns.sign(mail(domain), REJECT_DOMAIN), domain)
    assert auth.authenticated
    assert f"dmarc=pass header.from={domain} policy.dmarc=reject" in auth.results


def test_a_domain_without_dmarc_authenticates_with_an_aligned_pass(auth_dns: AuthDns) -> None:
    signed = verify(
        auth_dns, auth_dns.sign(mail(NO_DMARC_DOMAIN), NO_DMARC_DOMAIN), NO_DMARC_DOMAIN
    )
    unsigned = verify(auth_dns, mail(NO_DMARC_DOMAIN), NO_DMARC_DOMAIN)
    assert signed.authenticated and signed.reason == "no DMARC record (dkim aligned)"
    assert "dmarc=none header.from=plain.example" in signed.results
    assert not unsigned.authenticated and unsigned.reason == "dmarc=none"


def test_no_from_domain_is_never_authenticated(auth_dns: AuthDns) -> None:
    auth = verify(auth_dns, auth_dns.sign(mail(), PRODUCER_DOMAIN), None)
    assert not auth.authenticated
    assert auth.reason == "no From: domain"
    assert "dkim=pass" in auth.results  # still recorded


# --- ARC ---------------------------------------------------------------------------------------


def test_arc_is_recorded_but_never_authenticates_alone(auth_dns: AuthDns) -> None:
    forwarded = make_mail(
        sender=f"Sam <sam@{PRODUCER_DOMAIN}>",
        headers={"Authentication-Results": f"{RELAY_DOMAIN}; dkim=pass header.d={PRODUCER_DOMAIN}"},
    )
    auth = verify(auth_dns, auth_dns.arc_seal(forwarded))
    assert "arc=pass" in auth.results
    assert not auth.authenticated


# --- DNS failures ------------------------------------------------------------------------------


def test_an_unreachable_dns_server_leaves_the_sender_unauthenticated_in_time(
    auth_dns: AuthDns,
) -> None:
    dead = DnsSettings((dead_nameserver(),), timeout=1.0)
    signed = auth_dns.sign(mail(), PRODUCER_DOMAIN)
    started = time.monotonic()
    auth = verify(auth_dns, signed, ip=PRODUCER_IP, mail_from="sam@brokers.example", dns=dead)
    elapsed = time.monotonic() - started
    assert not auth.authenticated
    assert auth.reason.startswith("dns temperror"), auth.reason
    assert "dmarc=temperror" in auth.results and "spf=temperror" in auth.results
    # one deadline for all the message's lookups, not one each (+ dnspython's 0.1 s pause)
    assert elapsed < 1.5


def test_servfail_is_a_temporary_failure(auth_dns: AuthDns) -> None:
    sender = f"sam@{BROKEN_DOMAIN}"
    auth = verify(auth_dns, mail(BROKEN_DOMAIN), BROKEN_DOMAIN, ip=PRODUCER_IP, mail_from=sender)
    assert not auth.authenticated
    assert auth.reason == "dns temperror (no server answered)"
    assert "spf=temperror" in auth.results


@pytest.mark.parametrize("entry", ["127.0.0.1@port", "127.0.0.1@70000", "resolver.example"])
def test_a_malformed_nameserver_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="nameserver"):
        DnsSettings((entry,))


# --- hostile input -----------------------------------------------------------------------------

_FROM = b"From: sam@brokers.example\r\n"
_BODY = b"\r\n\r\nbody\r\n"
HOSTILE: dict[str, bytes] = {
    "empty": b"",
    "garbage": bytes(range(256)) * 40,
    "no headers": b"\r\n\r\nhello",
    "folded first line": b" folded\r\n" + _FROM + _BODY,
    "empty tags": b"DKIM-Signature: v=1; a=rsa-sha256; d=; s=;; b=!!!\r\n" + _FROM + _BODY,
    "no tags": b"DKIM-Signature: garbage\r\n" + _FROM + _BODY,
    "8-bit d=": "DKIM-Signature: v=1; a=rsa-sha256; d=\u00e9.example; s=s1; h=from; bh=AAAA; "
    "b=AAAA\r\n".encode()
    + _FROM
    + _BODY,
    "overlong d=": b"DKIM-Signature: v=1; a=rsa-sha256; d="
    + b"a" * 300
    + b".example; s=s1; h=from; bh=AAAA; b=AAAA\r\n"
    + _FROM
    + _BODY,
    "huge l=": b"DKIM-Signature: v=1; a=rsa-sha256; d=brokers.example; s=s1; h=from; l="
    + b"9" * 70
    + b"; bh=AAAA; b=AAAA\r\n"
    + _FROM
    + _BODY,
    "fifty signatures": b"DKIM-Signature: v=1; d=brokers.example; s=s1; h=from; b=A\r\n" * 50
    + _FROM
    + _BODY,
    "huge folded header": _FROM + b"X-Big: x\r\n" + b" 123456789\r\n" * 30_000 + _BODY,
    "NUL and 8-bit": b"From: \x00\xff@brokers.example\r\nSubject: \xfe\xfd\r\n" + _BODY,
    "ARC seal alone": b"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=relay.example; s=s1; b=AAAA\r\n"
    + _FROM
    + _BODY,
    "ARC instance 99": b"ARC-Seal: i=99; cv=pass; d=x; s=y; b=A\r\n"
    b"ARC-Message-Signature: i=99; d=x; s=y; h=from; bh=A; b=A\r\n"
    b"ARC-Authentication-Results: i=99; x; none\r\n" + _FROM + _BODY,
}


@pytest.mark.parametrize("raw", list(HOSTILE.values()), ids=list(HOSTILE))
@pytest.mark.parametrize("from_domain", [PRODUCER_DOMAIN, "", "a" * 300, ".."])
def test_hostile_mail_is_never_authenticated_and_never_raises(
    auth_dns: AuthDns, raw: bytes, from_domain: str
) -> None:
    started = time.monotonic()
    auth = verify(auth_dns, raw, from_domain, ip=OUTSIDER_IP, mail_from="sam@brokers.example")
    assert not auth.authenticated
    assert auth.results.startswith(f"{ID}; ")
    assert "\n" not in auth.results and "\r" not in auth.results
    assert time.monotonic() - started < 3


def test_real_signed_mail_whose_keys_are_gone_fails_quietly(
    auth_dns: AuthDns, shared_dir: Path
) -> None:
    """Every corpus message that carries a DKIM signature: the keys are not published
    (the private server knows none of those domains), so no signature passes."""
    signed = [
        path
        for path in sorted((shared_dir / "corpus").rglob("*"))
        if path.is_file() and _has_dkim_signature(path.read_bytes())
    ]
    assert len(signed) >= 10
    for path in signed:
        raw = path.read_bytes()
        domain = (parse_message(raw).from_address or "@").rpartition("@")[2] or None
        auth = verify(auth_dns, raw, domain)
        assert not auth.authenticated, path
        assert "dkim=" in auth.results and "dkim=pass" not in auth.results, path


def _has_dkim_signature(raw: bytes) -> bool:
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    return any(line.lower().startswith(b"dkim-signature:") for line in head.splitlines())


# --- several threads at once -------------------------------------------------------------------


def test_threads_checking_at_once_keep_their_own_dns(auth_dns: AuthDns) -> None:
    """SPF resolves through pyspf's one module-level hook: each thread still gets the
    resolver of its own settings (here a live one and a dead one, interleaved)."""
    live, dead = auth_dns.settings(), DnsSettings((dead_nameserver(),), timeout=1.0)

    def check(settings: DnsSettings) -> SenderAuth:
        sender = f"bounces@{PRODUCER_DOMAIN}"
        return verify(auth_dns, mail(), ip=PRODUCER_IP, mail_from=sender, dns=settings)

    plan = [live, dead] * 6
    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        answers = list(pool.map(check, plan))
    for settings, auth in zip(plan, answers, strict=True):
        assert auth.authenticated == (settings is live), auth


# --- organisational domain ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "organization"),
    [
        ("mail.brokers.example", "brokers.example"),
        ("brokers.example", "brokers.example"),
        ("EVIL.Example.", "evil.example"),
        ("a.b.foo.co.uk", "foo.co.uk"),
        ("www.city.kawasaki.jp", "city.kawasaki.jp"),  # an exception rule
        ("x.y.kawasaki.jp", "x.y.kawasaki.jp"),  # a wildcard rule
        ("user.github.io", "user.github.io"),  # the private section counts too
    ],
)
def test_organizational_domain(domain: str, organization: str) -> None:
    assert organizational_domain(domain) == organization


# --- trusted Authentication-Results ------------------------------------------------------------


def test_a_real_gmail_header_is_believed_when_its_id_is_trusted(shared_dir: Path) -> None:
    parsed = parse_message(corpus_message(shared_dir, "django_helpdesk/tests/test_files/pgp.eml"))
    values = parsed.headers["authentication-results"]
    auth = trusted_results(values, ["mx.google.com"], "gmail.com", ID)
    assert auth is not None and auth.authenticated
    assert auth.method == "trusted_results"
    assert auth.results.startswith(f"{ID}; ")
    assert "dmarc=pass header.from=gmail.com" in auth.results
    assert trusted_results(values, [MX], "gmail.com", ID) is None


def test_results_of_other_ids_are_ignored_above_and_below(shared_dir: Path) -> None:
    forged = f"mx.evil.example; dmarc=pass header.from={PRODUCER_DOMAIN}"
    lookalike = f"{MX}.evil.example; dmarc=pass header.from={PRODUCER_DOMAIN}"
    ours = (
        f"{MX}; spf=fail smtp.mailfrom={PRODUCER_DOMAIN}; dmarc=fail header.from={PRODUCER_DOMAIN}"
    )
    auth = trusted_results([forged, ours, lookalike], [MX], PRODUCER_DOMAIN, ID)
    assert auth is not None and not auth.authenticated
    assert auth.reason == f"{MX}: dmarc=fail"
    assert trusted_results([forged, lookalike], [MX], PRODUCER_DOMAIN, ID) is None


def test_a_trusted_header_speaks_only_for_its_header_from() -> None:
    value = f"{MX}; dmarc=pass header.from={EVIL_DOMAIN}"
    auth = trusted_results([value], [MX], PRODUCER_DOMAIN, ID)
    assert auth is not None and not auth.authenticated


@pytest.mark.parametrize(("stamped", "trusted"), [("MX.Corp.Example", MX), (MX, MX.upper())])
def test_trusted_ids_are_compared_case_insensitively(stamped: str, trusted: str) -> None:
    value = f"{stamped}; dmarc=pass header.from={PRODUCER_DOMAIN}"
    auth = trusted_results([value], [trusted], PRODUCER_DOMAIN, ID)
    assert auth is not None and auth.authenticated


@pytest.mark.parametrize(
    ("results", "authenticated"),
    [
        ("dkim=pass header.d=news.brokers.example", True),
        ("dkim=pass header.i=@brokers.example", True),
        ("spf=pass smtp.mailfrom=bounces@brokers.example", True),
        ("dmarc=none header.from=brokers.example; dkim=pass header.d=brokers.example", True),
        ("dkim=pass header.d=evil.example", False),
        ("spf=pass smtp.mailfrom=evil.example", False),
        ("dkim=fail header.d=brokers.example", False),
        ("arc=pass", False),
        # the record's verdict decides: it knows the alignment modes, we do not
        ("dmarc=fail header.from=brokers.example; dkim=pass header.d=news.brokers.example", False),
        ("none", False),
    ],
)
def test_an_aligned_pass_in_a_trusted_header_authenticates(
    results: str, authenticated: bool
) -> None:
    auth = trusted_results([f"{MX}; {results}"], [MX], PRODUCER_DOMAIN, ID)
    assert auth is not None and auth.authenticated is authenticated


def test_an_unparseable_trusted_header_is_ignored() -> None:
    broken = f"{MX}; spf=pass (unclosed comment smtp.mailfrom={PRODUCER_DOMAIN}"
    assert trusted_results([broken], [MX], PRODUCER_DOMAIN, ID) is None


def test_nothing_of_a_hostile_value_reaches_our_stamp() -> None:
    value = f'{MX}; dkim=pass header.d="x; dmarc=pass header.from={PRODUCER_DOMAIN}@y"'
    auth = trusted_results([value], [MX], PRODUCER_DOMAIN, ID)
    assert auth is not None and not auth.authenticated
    assert auth.results == f"{ID}; dkim=pass"


def test_an_encoded_word_is_not_an_authserv_id() -> None:
    """Pass the values as written: a border MTA strips headers claiming its id, but not
    this one, which RFC 2047 decoding would turn into "mx.corp.example; ..."."""
    value = f"=?us-ascii?q?{MX}?=; dmarc=pass header.from={PRODUCER_DOMAIN}"
    assert trusted_results([value], [MX], PRODUCER_DOMAIN, ID) is None


def test_an_oversized_trusted_header_is_not_parsed() -> None:
    value = f"{MX}; " + f"dkim=pass header.d={PRODUCER_DOMAIN}; " * 1000
    assert trusted_results([value], [MX], PRODUCER_DOMAIN, ID) is None


def test_mangled_results_are_judged_or_ignored_never_raised() -> None:
    """Seeded random edits of well-formed headers: quotes, comments and escapes left open."""
    rng = random.Random(8601)
    seeds = [f"{MX}; {CONTOSO}", CONTOSO, f'{MX} 1; dkim=pass (a (b) c) header.d="x\\"y"']
    started = time.monotonic()
    for _ in range(500):
        value = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            value.insert(rng.randrange(len(value) + 1), rng.choice(' ;=()."\\@\r\n\x00'))
        text = "".join(value)
        for auth in (
            trusted_results([text], [MX], PRODUCER_DOMAIN, ID),
            topmost_results([text], PRODUCER_DOMAIN, ID),
        ):
            stamp = "" if auth is None else auth.results
            assert auth is None or stamp.startswith(f"{ID}; ")
            assert "\n" not in stamp and "\r" not in stamp
    assert time.monotonic() - started < 5


# --- the topmost Authentication-Results (Exchange Online) --------------------------------------


def test_exchange_online_results_without_an_authserv_id() -> None:
    auth = topmost_results([CONTOSO], "contoso.com", ID)
    assert auth is not None and auth.authenticated
    assert auth.method == "mailbox_results"
    assert auth.results == (
        f"{ID}; spf=pass smtp.mailfrom=contoso.com; dkim=pass header.d=contoso.com; "
        "dmarc=pass header.from=contoso.com"
    )
    other = topmost_results([CONTOSO], PRODUCER_DOMAIN, ID)
    assert other is not None and not other.authenticated


def test_real_exchange_online_results_with_stray_domains(shared_dir: Path) -> None:
    """Exchange writes "header.d=none;outlook.com;": the recipient's domain, bare."""
    raw = corpus_message(shared_dir, "sisimai/maildir/bsd/lhost-office365-05.eml")
    parsed = parse_message(raw)
    values = parsed.headers["authentication-results"]
    assert "outlook.com;" in values[0] and not values[0].startswith("outlook.com")
    auth = topmost_results(values, "outlook.com", ID)
    assert parsed.from_address == "postmaster@outlook.com"
    assert auth is not None and auth.authenticated, auth
    assert "dmarc=pass header.from=outlook.com" in auth.results


def test_real_exchange_results_of_a_null_sender_believe_nothing(shared_dir: Path) -> None:
    raw = corpus_message(shared_dir, "flanker/tests/fixtures/messages/bounce/office365.eml")
    values = parse_message(raw).headers["authentication-results"]
    assert topmost_results(values, "example.no", ID) is None  # "smtp.mailfrom=<>" only


def test_only_the_topmost_header_is_believed() -> None:
    fail = f"spf=fail (sender IP is 192.0.2.99) smtp.mailfrom={PRODUCER_DOMAIN}; dmarc=fail "
    fail += f"action=oreject header.from={PRODUCER_DOMAIN}"
    forged = f"spf=pass smtp.mailfrom={PRODUCER_DOMAIN}; dmarc=pass header.from={PRODUCER_DOMAIN}"
    below = topmost_results([fail, forged], PRODUCER_DOMAIN, ID)
    assert below is not None and not below.authenticated
    on_top = topmost_results([forged, fail], PRODUCER_DOMAIN, ID)
    assert on_top is not None and on_top.authenticated
    assert topmost_results([], PRODUCER_DOMAIN, ID) is None


def test_exchange_bestguesspass_is_an_aligned_pass_without_a_record() -> None:
    value = (
        f"spf=pass (sender IP is 198.51.100.7) smtp.mailfrom={PRODUCER_DOMAIN}; dkim=none "
        "(message not signed) header.d=none;desk.example; dmarc=bestguesspass action=none "
        f"header.from={PRODUCER_DOMAIN};compauth=pass reason=109"
    )
    auth = topmost_results([value], PRODUCER_DOMAIN, ID)
    assert auth is not None and auth.authenticated


# --- Exchange's organisation headers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "internal"),
    [
        ("redmine/test/fixtures/mail_handler/outlook_web_access_2010_html_only.eml", True),
        ("zammad/test/fixtures/mail57.box", False),  # AuthAs: Anonymous
        ("mikel_mail/spec/fixtures/emails/error_emails/header_fields_with_empty_values.eml", False),
        ("sisimai/maildir/bsd/lhost-office365-05.eml", False),
        ("talon/tests/fixtures/standard_replies/gmail.eml", False),  # no Exchange headers
    ],
)
def test_exchange_internal_on_real_mail(shared_dir: Path, rel: str, internal: bool) -> None:
    headers = parse_message(corpus_message(shared_dir, rel)).headers
    assert exchange_internal(headers) is internal


def test_exchange_internal_wants_every_mark_internal() -> None:
    name = "x-ms-exchange-organization-authas"
    assert exchange_internal({name: ("Internal",)})
    assert not exchange_internal({name: ("Internal", "Anonymous")})
    assert not exchange_internal({name: ()})
