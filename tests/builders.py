"""Builders the tests share (no tests and no fixtures here: those are in ``conftest.py``).

Secrets and a clock; a configuration, a composer and the cases and replies it writes; an
SMTP relay sink (a real aiosmtpd server on a loopback port that can be stopped and started
on the same port, and told to answer DATA with an error); certificate files from a test CA;
a reply sink that records the intake's orders.
"""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pii_guard import PiiGuard
from ticketing.config import Config, OutboundConfig
from ticketing.config.pii_schema import PiiConfig
from ticketing.config.templates_schema import TemplatesConfig
from ticketing.outbound.compose import ReplyComposer
from ticketing.outbound.orders import compose_orders, order_reply
from ticketing.outbound.request import ReplyRequest
from ticketing.outbound.sinks import ReplyOrder
from ticketing.privacy.settings import build_guard
from ticketing.signing.tokens import RefTokens
from ticketing.store.db import transaction
from ticketing.store.models import Incident, IncidentConsumer, OutboxMessage, Producer
from ticketing.templating.template_store import TemplateStore

# the signing secret a composer is built with (make_composer)
SECRET = b"test-secret-" + b"x" * 30
# The host itself, which the embedded default trusts ([authentication] trusted_hosts):
# the peer of mail in tests of other stages than sender authentication, as if a local
# MTA that authenticated it handed it over.
LOCAL_MTA = "127.0.0.1"
# ``ticketd ingest``'s arguments for the same: Postfix's pipe passes ${client_address}.
LOCAL_CLIENT = ("--client-address", LOCAL_MTA)
# the value of TICKETD_TOKEN_SECRET for an intake pipeline built from the environment
TOKEN_SECRET = "s" * 40
NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


# --- the intake's replies ----------------------------------------------------------------------


class RecordedReplies:
    """A ReplySink that keeps the orders instead of rendering them: the replies to the
    sender in ``orders``, the desk copies for the team apart, in ``desk_copies``."""

    def __init__(self) -> None:
        self.orders: list[ReplyOrder] = []
        self.desk_copies: list[ReplyOrder] = []

    def queue(self, session: Session, order: ReplyOrder, now: datetime) -> bool:
        (self.desk_copies if order.kind == "desk_copy" else self.orders).append(order)
        return True

    @property
    def kinds(self) -> list[str]:
        return [o.kind for o in self.orders]


# --- a relay -----------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SinkHandler:
    """Records what it accepts; ``answer`` (e.g. ``"451 4.3.0 later"``) refuses DATA instead."""

    received: list[Received] = field(default_factory=list)
    answer: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.answer is not None:
            return self.answer
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 OK"


class Sink:
    """An SMTP relay sink that can go down and come back on the same port."""

    def __init__(self, port: int, **smtp_kwargs: Any) -> None:
        self.port = port
        self.handler = SinkHandler()
        self._kwargs = smtp_kwargs
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, **self._kwargs
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received


def relay_config(port: int, **extra: Any) -> OutboundConfig:
    values: dict[str, Any] = {
        "transport": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "starttls": False,
        "timeout_seconds": 5,
    }
    return OutboundConfig(**{**values, **extra})


# --- configuration, composer, cases, the outbox ------------------------------------------------


def make_config(**outbound: Any) -> Config:
    return Config(outbound=OutboundConfig(**outbound)) if outbound else Config()


_SHIPPED: list[TemplateStore] = []


def shipped_only(config: Config) -> Config:
    """``config`` without an override folder: the embedded default names one (relative to
    the working folder), and a developer's own edits there must not reach the tests."""
    return config.model_copy(update={"templates": TemplatesConfig(override_dir="")})


def shipped_store() -> TemplateStore:
    """One store of the shipped templates for the whole session (loading validates them all)."""
    if not _SHIPPED:
        _SHIPPED.append(TemplateStore.from_config(shipped_only(Config())))
    return _SHIPPED[0]


def _has_overrides(config: Config) -> bool:
    """An override folder of the test's own (a loaded config's paths are absolute)."""
    folder = Path(config.templates.override_dir or "")
    return folder.is_absolute() and folder.is_dir()


def make_composer(config: Config, store: TemplateStore | None = None) -> ReplyComposer:
    if store is None:
        custom = _has_overrides(config) or config.teams != Config().teams
        store = TemplateStore.from_config(config) if custom else shipped_store()
    return ReplyComposer(config, store, RefTokens(SECRET, config.security.token_org), SECRET)


def queue_mail(
    engine: Engine,
    composer: ReplyComposer,
    request: ReplyRequest,
    *,
    now: datetime,
    guard: PiiGuard | None = None,
) -> OutboxMessage | None:
    """The outbox row of ``request`` as the one path writes it, or ``None`` when a loop or
    rate rule suppressed it: ordered in a transaction, composed (and scanned by ``guard``)
    after its commit, then read back."""
    with transaction(engine) as session:
        ordered = order_reply(session, composer, request, sender_name=None, now=now)
    if ordered is None:
        return None
    compose_orders(engine, composer, guard, [ordered])
    with transaction(engine, readonly=True) as session:
        row = session.get(OutboxMessage, ordered.row_id)
    assert row is not None
    return row


def withheld_ack(engine: Engine) -> OutboxMessage:
    """An ack the outbound scan withholds: the producer's roster name is an SSN, and the
    ack greets the producer by name."""
    incident, producer = add_case(engine)
    with transaction(engine) as session:
        leaky = session.get(Producer, producer.id)
        assert leaky is not None
        leaky.name = "SSN 219-09-9999"
    request = ReplyRequest(kind="ack_new", to=producer.email, incident=incident, producer=leaky)
    guard = build_guard(PiiConfig())
    row = queue_mail(engine, make_composer(make_config()), request, now=NOW, guard=guard)
    assert row is not None
    return row


def add_case(
    engine: Engine,
    *,
    number: str = "200528-2866868",
    case_type: str = "enrollment",
    person_ids: tuple[str, ...] = ("174097",),
    language: str = "en",
    email_address: str = "sam@brokers.example",
    npn: str = "19283746",
) -> tuple[Incident, Producer]:
    """A producer and an incident of theirs, committed (as the intake would leave them)."""
    with transaction(engine) as session:
        producer = Producer(npn=npn, name="sam amsung", email=email_address, language=language)
        session.add(producer)
        session.flush()
        incident = Incident(
            number=number,
            type=case_type,
            team="escalated_cases",
            mailbox="escalations",
            producer_id=producer.id,
            opened_at=NOW,
            updated_at=NOW,
        )
        session.add(incident)
        session.flush()
        assert incident.id is not None
        for pid in person_ids:
            session.add(IncidentConsumer(incident_id=incident.id, person_id=pid))
    return incident, producer


# --- TLS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A certificate for 127.0.0.1 issued by a test CA: its chain and key as files (what a
    server's config or Dovecot reads), and the CA's certificate (``ca``, what clients trust)."""

    authority: trustme.CA
    cert: Path
    key: Path
    ca: Path

    @classmethod
    def issue(cls, authority: trustme.CA, folder: Path) -> TlsFiles:
        """Write ``cert.pem``, ``key.pem`` and ``ca.pem`` into ``folder``."""
        issued = authority.issue_cert("127.0.0.1")
        files = cls(authority, folder / "cert.pem", folder / "key.pem", folder / "ca.pem")
        files.cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
        issued.private_key_pem.write_to_path(str(files.key))
        authority.cert_pem.write_to_path(str(files.ca))
        return files

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Trusts the test CA, and nothing else."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.authority.configure_trust(context)
        return context
