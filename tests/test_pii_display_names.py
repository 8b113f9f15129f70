"""A display name is the writer's own only when the writer is vouched for.

``From: Maria Gonzalez <anyone@anywhere>`` costs nothing to write: if the guard
allowed every sender's display name, a consumer's name used as one (by a
forger, or by a stranger writing about that consumer) would be stored
unredacted wherever the mail repeats it.  Only an authenticated roster
producer or caseworker writes under names the guard leaves alone.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from mailer.parsing import parse_message
from pii_guard import PiiGuard
from ticketing.config import AuthenticationConfig, Config
from ticketing.config.pii_schema import PiiConfig
from ticketing.incidents.parties import Identity
from ticketing.intake.build import build_pipeline
from ticketing.pipeline.guard import PiiGuardStage
from ticketing.pipeline.types import RawMessage
from ticketing.privacy.allow import desk_allow
from ticketing.privacy.settings import build_guard
from ticketing.store.db import transaction
from ticketing.store.models import Message, Producer

from .builders import SECRET, RecordedReplies
from .dns_server import AuthDns
from .mail import make_mail

SAM = Producer(id=1, npn="1234567", name="Sam Amsung", email="sam@brokers.example")
CONSUMER = "Maria Gonzalez"
BODY = f"Please call me back about my enrollment.\n\nThanks,\n{CONSUMER}"


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return build_guard(PiiConfig())


def _stored_text(guard: PiiGuard, identity: Identity, sender: str, body: str = BODY) -> str:
    message = parse_message(make_mail(sender=sender, body=body))
    return PiiGuardStage(guard).check("redact", message, identity).text.replace("\r\n", "\n")


@pytest.mark.parametrize(
    "identity",
    [
        Identity("forged@brokers.example", name=CONSUMER),  # as identify() leaves a stranger
        Identity("new@agency.example", name=CONSUMER, authenticated=True),  # not on the roster
        Identity("sam@brokers.example", name=CONSUMER),  # a roster address, unauthenticated
    ],
    ids=["unauthenticated", "unknown", "roster-address-forged"],
)
def test_a_strangers_display_name_is_redacted(guard: PiiGuard, identity: Identity) -> None:
    text = _stored_text(guard, identity, f"{CONSUMER} <{identity.address}>")
    assert CONSUMER not in text and "[REDACTED:PERSON]" in text


def test_an_authenticated_producers_display_name_is_kept(guard: PiiGuard) -> None:
    sender = "Samuel Amsung <sam@brokers.example>"  # not the roster's spelling
    body = "My client cannot complete enrollment.\n\nThanks,\nSamuel Amsung"
    producer = Identity(SAM.email, SAM.id, SAM.name, authenticated=True, producer=SAM)
    assert _stored_text(guard, producer, sender, body).rstrip().endswith("\nSamuel Amsung")
    stranger = Identity(SAM.email, name="Samuel Amsung")
    assert "Samuel Amsung" not in _stored_text(guard, stranger, sender, body)


def test_a_caseworkers_display_name_is_kept(guard: PiiGuard) -> None:
    casey = Identity("casey@exchange.example", name="Casey Marlowe", is_staff=True)
    sender = "Casey Marlowe <casey@exchange.example>"
    body = "We fixed the enrollment.\n\nCasey Marlowe"
    vouched = Identity(casey.address, name=casey.name, is_staff=True, authenticated=True)
    assert _stored_text(guard, vouched, sender, body).rstrip().endswith("\nCasey Marlowe")
    assert "Casey Marlowe" not in _stored_text(guard, casey, sender, body)


def test_forged_mail_signed_with_a_consumers_name_is_stored_redacted(
    engine: Engine, guard: PiiGuard, auth_dns: AuthDns
) -> None:
    """Through intake: mail from outside that nothing vouches for, from a roster address,
    is kept for staff (``unverified``), and the consumer's name it signs with is not."""
    with transaction(engine) as session:
        session.add(Producer(npn=SAM.npn, name=SAM.name, email=SAM.email))
    checks = AuthenticationConfig.model_validate({"nameservers": (auth_dns.nameserver,)})
    stage = PiiGuardStage(guard, desk_allow(Config()))
    pipeline = build_pipeline(
        Config(authentication=checks), engine, guard=stage, replies=RecordedReplies(), secret=SECRET
    )
    raw = make_mail(sender=f"{CONSUMER} <{SAM.email}>", body=BODY)
    outcome = pipeline.process(RawMessage(raw, "smtp", ("escalations",), peer="127.0.0.2"))
    assert outcome.action == "unverified"
    with transaction(engine, readonly=True) as session:
        stored = session.get(Message, outcome.message_row_id)
        assert stored is not None
        assert CONSUMER not in stored.text and "[REDACTED:PERSON]" in stored.text
