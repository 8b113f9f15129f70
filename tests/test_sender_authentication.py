"""Sender authentication in the pipeline and through ``ticketd serve``: which rule vouches
for a ``From:`` (pipeline/authenticate.py), and what mail that no rule vouches for may do.

The wire-level checks (SPF, DKIM, DMARC, Authentication-Results parsing) are tested in
test_sender_auth.py; here a real pipeline on a real database, or a real daemon with a
client on 127.0.0.2, meets the private DNS of ``auth_dns``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from ticketing.config import AuthenticationConfig, Config, ImapConfig, MailboxConfig
from ticketing.config.auth_schema import LimitsConfig
from ticketing.config.desk_schema import StaffConfig
from ticketing.intake.build import build_pipeline
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import Outcome, RawMessage, Source
from ticketing.store.db import transaction
from ticketing.store.models import Incident, Message, OutboxMessage, Producer

from .builders import LOCAL_MTA, SECRET, RecordedReplies
from .daemon import Ticketd, import_roster, smtp_session
from .dns_server import PRODUCER_DOMAIN, AuthDns
from .mail import make_mail

OUTSIDE = ("127.0.0.2", 0)
TRUSTED_MTA = "mx.exchange.example"
SAM = f"sam@{PRODUCER_DOMAIN}"


def _passed(domain: str, authserv_id: str = TRUSTED_MTA) -> bytes:
    return (
        f"Authentication-Results: {authserv_id}; spf=pass smtp.mailfrom={domain}; "
        f"dmarc=pass header.from={domain}\r\n"
    ).encode()


def _config(dns: AuthDns, **authentication: object) -> Config:
    """Verify against the private DNS; "exchange" is a mailbox on Microsoft 365 whose own
    results and tenant marks are trusted."""
    imap = ImapConfig(host="imap.example", username="desk")
    boxes = (
        MailboxConfig(
            name="escalations",
            address="escalations@exchange.example",
            team="escalated_cases",
            pii_policy="redact",
        ),
        MailboxConfig(
            name="exchange",
            address="desk@exchange.example",
            team="escalated_cases",
            imap=imap.model_copy(update={"trust_results": "topmost", "trust_internal": True}),
        ),
    )
    checks = AuthenticationConfig.model_validate(
        {"nameservers": (dns.nameserver,), **authentication}
    )
    return Config(
        authentication=checks,
        mailboxes=boxes,
        staff=StaffConfig(domains=("exchange.example",)),
        limits=LimitsConfig(new_incidents_per_sender_hour=2),
    )


@pytest.fixture
def roster(engine: Engine) -> Engine:
    with transaction(engine) as session:
        session.add(Producer(npn="1234567", name="Sam Amsung", email=SAM))
    return engine


def _pipeline(
    engine: Engine, config: Config, replies: RecordedReplies | None = None
) -> IntakePipeline:
    return build_pipeline(config, engine, replies=replies or RecordedReplies(), secret=SECRET)


def _process(
    pipeline: IntakePipeline,
    raw: bytes,
    source: Source = "smtp",
    mailbox: str = "escalations",
    peer: str | None = "127.0.0.2",
) -> Outcome:
    return pipeline.process(
        RawMessage(raw, source, (mailbox,), f"bounce@{PRODUCER_DOMAIN}", peer=peer)
    )


def _stored(engine: Engine, row_id: int | None) -> Message:
    with transaction(engine, readonly=True) as session:
        message = session.get(Message, row_id)
        assert message is not None
        return message


def test_a_signed_producer_is_verified_and_stamped(roster: Engine, auth_dns: AuthDns) -> None:
    pipeline = _pipeline(roster, _config(auth_dns))
    outcome = _process(pipeline, auth_dns.sign(make_mail(sender=SAM), PRODUCER_DOMAIN))
    assert (outcome.action, outcome.new_incident) == ("recorded", True)
    stored = _stored(roster, outcome.message_row_id)
    assert stored.authentication == "verified"
    assert stored.authentication_results.startswith("exchange.example; ")
    assert "dkim=pass" in stored.authentication_results
    assert f"dmarc=pass header.from={PRODUCER_DOMAIN}" in stored.authentication_results


def test_unsigned_mail_from_outside_waits_unattached(roster: Engine, auth_dns: AuthDns) -> None:
    replies = RecordedReplies()
    pipeline = _pipeline(roster, _config(auth_dns), replies)
    outcome = _process(pipeline, make_mail(sender=SAM))
    assert (outcome.action, outcome.incident_number) == ("unverified", None)
    stored = _stored(roster, outcome.message_row_id)
    assert (stored.disposition, stored.authentication, stored.incident_id) == (
        "unverified",
        "none",
        None,
    )
    assert replies.orders == []


def test_the_host_itself_is_trusted_and_nothing_else(roster: Engine, auth_dns: AuthDns) -> None:
    pipeline = _pipeline(roster, _config(auth_dns))
    assert _process(pipeline, make_mail(sender=SAM), peer=LOCAL_MTA).action == "recorded"
    assert _process(pipeline, make_mail(sender=SAM, subject="other"), peer=None).action == (
        "unverified"
    )


def test_trust_mode_believes_only_the_configured_authserv_id(
    roster: Engine, auth_dns: AuthDns
) -> None:
    pipeline = _pipeline(roster, _config(auth_dns, mode="trust", authserv_ids=(TRUSTED_MTA,)))
    trusted = _passed(PRODUCER_DOMAIN) + make_mail(sender=SAM, subject="trusted")
    assert _process(pipeline, trusted).action == "recorded"
    forged = _passed(PRODUCER_DOMAIN, "mx.evil.example") + make_mail(sender=SAM, subject="f1")
    assert _process(pipeline, forged).action == "unverified"
    # An encoded word that decodes to the trusted id is not that id: MTAs strip such
    # headers as they are written.
    encoded = _passed(PRODUCER_DOMAIN, "=?us-ascii?q?mx.exchange.example?=")
    assert _process(pipeline, encoded + make_mail(sender=SAM, subject="f2")).action == (
        "unverified"
    )
    # Trust mode checks nothing itself: a valid signature alone is not enough.
    signed = auth_dns.sign(make_mail(sender=SAM, subject="signed"), PRODUCER_DOMAIN)
    assert _process(pipeline, signed).action == "unverified"


def test_a_trusted_stamp_for_another_domain_vouches_for_nothing(
    roster: Engine, auth_dns: AuthDns
) -> None:
    pipeline = _pipeline(roster, _config(auth_dns, mode="trust", authserv_ids=(TRUSTED_MTA,)))
    raw = _passed("evil.example") + make_mail(sender=SAM)
    assert _process(pipeline, raw).action == "unverified"


def test_an_imap_mailbox_may_vouch_with_its_own_topmost_results(
    roster: Engine, auth_dns: AuthDns
) -> None:
    pipeline = _pipeline(roster, _config(auth_dns, mode="trust"))
    exchange = (
        f"Authentication-Results: spf=pass (sender IP is 198.51.100.7) "
        f"smtp.mailfrom={PRODUCER_DOMAIN}; dkim=pass (signature was verified) "
        f"header.d={PRODUCER_DOMAIN};dmarc=pass action=none header.from={PRODUCER_DOMAIN};"
        "compauth=pass reason=100\r\n"
    ).encode()
    raw = exchange + make_mail(sender=SAM, to="desk@exchange.example")
    assert _process(pipeline, raw, "imap", "exchange", None).action == "recorded"
    # The same header means nothing on mail that did not come from that mailbox,
    assert _process(pipeline, exchange + make_mail(sender=SAM, subject="smtp")).action == (
        "unverified"
    )
    # and only the topmost counts: a forger's header below Exchange's is ignored.
    failed = exchange.replace(b"dmarc=pass", b"dmarc=fail").replace(b"dkim=pass", b"dkim=fail")
    below = failed + exchange + make_mail(sender=SAM, subject="below", to="desk@exchange.example")
    assert _process(pipeline, below, "imap", "exchange", None).action == "unverified"


def test_a_caseworker_inside_the_tenant_is_vouched_for_by_exchange(
    roster: Engine, auth_dns: AuthDns
) -> None:
    pipeline = _pipeline(roster, _config(auth_dns, mode="trust"))
    internal = b"X-MS-Exchange-Organization-AuthAs: Internal\r\n"
    casey = make_mail(sender="casey@exchange.example", subject="note", to="desk@exchange.example")
    outcome = _process(pipeline, internal + casey, "imap", "exchange", None)
    assert _stored(roster, outcome.message_row_id).authentication == "exchange_internal"
    smtp = _process(pipeline, internal + make_mail(sender="casey@exchange.example"))
    assert smtp.action == "unverified"


def test_new_incidents_past_the_hourly_limit_wait(roster: Engine, auth_dns: AuthDns) -> None:
    pipeline = _pipeline(roster, _config(auth_dns))
    actions = [
        _process(
            pipeline, make_mail(sender=SAM, subject=f"Enrollment PID {n}"), peer=LOCAL_MTA
        ).action
        for n in range(4)
    ]
    assert actions == ["recorded", "recorded", "rate_limited", "rate_limited"]
    with transaction(roster, readonly=True) as session:
        opened = session.exec(select(func.count()).select_from(Incident)).one()
        held = session.exec(
            select(func.count()).where(col(Message.disposition) == "rate_limited")
        ).one()
    assert (opened, held) == (2, 2)


# --- through ``ticketd serve``, a client on 127.0.0.2 ---------------------------------------------


def test_serve_over_smtp_from_outside(
    ticketd: Ticketd, auth_dns: AuthDns, engine: Engine, tmp_path: Path
) -> None:
    """A signed producer gets the incident named in the 250 and an acknowledgement; the
    same producer forged from outside gets a 250 that names nothing, and no mail."""
    daemon = ticketd(f'[authentication]\nnameservers = ["{auth_dns.nameserver}"]\n')
    import_roster(daemon.config, tmp_path, f"1234567,Sam Amsung,{SAM}\n")
    signed = auth_dns.sign(make_mail(sender=SAM, subject="Enrollment PID 1001"), PRODUCER_DOMAIN)
    forged = make_mail(sender=SAM, subject="Enrollment PID 1002")
    rcpts = ["escalations@exchange.example"]
    with daemon.serve():
        code, text = smtp_session(daemon.port, signed, SAM, rcpts, source=OUTSIDE)
        assert code == 250 and "incident" in text, text
        code, text = smtp_session(daemon.port, forged, SAM, rcpts, source=OUTSIDE)
        assert (code, "incident" in text) == (250, False), text
    with transaction(engine, readonly=True) as session:
        rows = session.exec(select(Message.disposition, Message.authentication)).all()
        replies = session.exec(select(OutboxMessage.kind)).all()
    assert sorted(rows) == [("recorded", "verified"), ("unverified", "none")]
    # one answer, to the signed producer; the team sees both (the forged one as unverified)
    assert sorted(replies) == ["ack_new", "desk_copy", "desk_copy"]
