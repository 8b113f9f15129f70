"""The desk's and the producer's own identities are never a consumer's data, in and out."""

from __future__ import annotations

import pytest

from mailer.parsing import parse_message
from pii_guard import PiiGuard
from ticketing.config import Config, TeamConfig
from ticketing.config.desk_schema import StaffConfig
from ticketing.config.pii_schema import PiiConfig
from ticketing.incidents.parties import Identity
from ticketing.outbound.scan import personal_data_in, recipient_allow
from ticketing.pipeline.guard import PiiGuardStage
from ticketing.pipeline.types import GuardResult
from ticketing.privacy.allow import desk_allow
from ticketing.privacy.settings import build_guard
from ticketing.store.models import Producer

from .mail import make_mail

SAM = Producer(
    id=1,
    npn="1234567",
    name="Sam Amsung",
    email="sam@brokers.example",
    phones=["(410) 555-0134", "443-555-0178"],
    agency="Amsung Family Insurance",
)
# A reply as Outlook writes it: the producer's signature, then our acknowledgement quoted
# under its header block, with our address and our team's signature.
REPLY = """Any news on this one? The client called again.

Sam Amsung
Amsung Family Insurance
Office (410) 555-0134 | Cell 443.555.0178
sam@brokers.example

-----Original Message-----
From: MHBE Escalated caseworkers Team <escalations@exchange.example>
Sent: Monday, December 7, 2026 9:00 AM
To: Sam Amsung <sam@brokers.example>
Cc: casey.worker@exchange.example; lead@exchange.example
Subject: Escalated Case: Enrollment.PID #:174097

Hi Sam Amsung,

We have received your inquiry. The assigned incident number is 261207-0000001.

Thanks
MHBE Escalated caseworkers Team
"""


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return build_guard(PiiConfig())


def _config() -> Config:
    teams = {
        "escalated_cases": TeamConfig(
            name="MHBE Escalated caseworkers Team", lead="lead@exchange.example"
        ),
        "producer_operations": TeamConfig(name="MHBE Producer Operations Team"),
    }
    return Config(teams=teams, staff=StaffConfig(domains=("exchange.example",)))


def _check(guard: PiiGuard, body: str) -> GuardResult:
    stage = PiiGuardStage(guard, desk_allow(_config()))
    message = parse_message(make_mail(sender="Sam Amsung <sam@brokers.example>", body=body))
    identity = Identity("sam@brokers.example", 1, SAM.name, producer=SAM)
    return stage.check("redact", message, identity)


def test_a_reply_quoting_our_mail_holds_no_consumer_data(guard: PiiGuard) -> None:
    result = _check(guard, REPLY)
    assert (result.action, result.counts) == ("pass", {})
    assert "escalations@exchange.example" in result.text


def test_a_consumers_data_beside_the_identities_is_still_removed(guard: PiiGuard) -> None:
    body = REPLY.replace(
        "The client called again.",
        "The client Maria Gonzalez (SSN 219-09-9999, maria.g@gmail.example, 410-555-0199)"
        " called again.",
    )
    result = _check(guard, body)
    assert result.action == "redact"
    assert {"US_SSN", "EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON"} <= set(result.counts)
    for value in ("219-09-9999", "maria.g@gmail.example", "410-555-0199", "Maria Gonzalez"):
        assert value not in result.text
    for own in ("(410) 555-0134", "443.555.0178", "Amsung Family Insurance", "sam@brokers.example"):
        assert own in result.text


def test_without_the_desk_our_own_address_would_be_flagged(guard: PiiGuard) -> None:
    """The allow-list is what keeps our address: the guard itself does see an address."""
    stage = PiiGuardStage(guard)
    message = parse_message(make_mail(body=REPLY))
    result = stage.check("redact", message, Identity("sam@brokers.example"))
    assert "EMAIL_ADDRESS" in result.counts


def test_outbound_allows_the_recipient_and_the_desk(guard: PiiGuard) -> None:
    text = "Hi Sam Amsung,\nWe called you at (410) 555-0134.\nMHBE Escalated caseworkers Team\n"
    assert personal_data_in(guard, recipient_allow(_config(), SAM, SAM.email), text) == {}
    leaky = text + "Your client's number is 410-555-0199.\n"
    counts = personal_data_in(guard, recipient_allow(_config(), SAM, SAM.email), leaky)
    assert counts == {"PHONE_NUMBER": 1}
