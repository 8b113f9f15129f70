"""The intake services of one process: the pipeline with its PII guard, and the composer
and template store behind its auto-replies.

The signing secret (ref tokens, Message-IDs) is loaded here and only here, once
per process, and handed to the parts that sign: loading may warn, or read and
even create the generated secret's file."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from mailer.addresses import base_address
from mailer.recipients import RecipientMap
from mailer.screening import OwnIdentity
from pii_guard import PiiGuard
from ticketing.config import Config
from ticketing.outbound.compose import ReplyComposer
from ticketing.outbound.sinks import Immediate, NoReplies, Replies, ReplySink
from ticketing.outbound.templated import TemplatedReplies
from ticketing.pipeline.attachments import attachment_rules
from ticketing.pipeline.guard import NoGuard, PiiGuardStage, PiiStage
from ticketing.pipeline.runner import IntakePipeline
from ticketing.privacy.allow import desk_allow
from ticketing.privacy.settings import build_guard
from ticketing.signing.key import load_signing_secret
from ticketing.signing.message_ids import MESSAGE_ID_PREFIX
from ticketing.signing.tokens import RefTokens
from ticketing.sla.clocks import SlaClocks
from ticketing.store.db import transaction
from ticketing.store.models import utcnow
from ticketing.templating.reload import audit_refused
from ticketing.templating.template_store import TemplateStore

__all__ = [
    "Services",
    "build_composer",
    "build_intake",
    "build_pipeline",
    "own_identity",
    "signing_secret",
]


@dataclass(frozen=True)
class Services:
    pipeline: IntakePipeline
    composer: ReplyComposer
    store: TemplateStore
    guard: PiiGuard
    # for the dispatcher, which signs each mail's return path with it (VERP)
    secret: bytes = field(repr=False)


def signing_secret(config: Config, given: bytes | None = None, *, generate: bool = True) -> bytes:
    """``given``, or the secret ``[security]`` names (the one place that loads it)."""
    if given is not None:
        return given
    return load_signing_secret(config.security, generate=generate)


def build_composer(
    config: Config, engine: Engine, secret: bytes | None = None, *, audit_templates: bool = True
) -> tuple[ReplyComposer, TemplateStore]:
    """The templates (a broken one refused, and audited unless ``audit_templates`` is false:
    worker processes leave that to the daemon) and the composer that uses them."""
    secret = signing_secret(config, secret)
    store = TemplateStore.from_config(config)
    if audit_templates:
        with transaction(engine) as session:
            audit_refused(session, store.initial_result, utcnow())
    tokens = RefTokens(secret, config.security.token_org)
    return ReplyComposer(config, store, tokens, secret), store


def build_intake(
    config: Config, engine: Engine, *, audit_templates: bool = True, generate_secret: bool = True
) -> Services:
    """The intake pipeline with the PII guard and templated auto-replies (serve, ingest,
    worker processes); ``generate_secret``: whether a missing generated secret is made."""
    guard = build_guard(config.pii)
    secret = signing_secret(config, generate=generate_secret)
    composer, store = build_composer(config, engine, secret, audit_templates=audit_templates)
    pipeline = build_pipeline(
        config,
        engine,
        guard=PiiGuardStage(guard, desk_allow(config), attachment_rules(config.pii)),
        replies=TemplatedReplies(composer, engine, guard),
        secret=secret,
    )
    return Services(pipeline, composer, store, guard, secret)


def own_identity(config: Config) -> OwnIdentity:
    """Our addresses, Message-ID domain and X-Loop marker, to spot our own mail coming back."""
    sender = config.outbound.from_address
    addresses = {base_address(box.address) for box in config.mailboxes} | {base_address(sender)}
    return OwnIdentity(frozenset(addresses), config.outbound.id_domain, sender, MESSAGE_ID_PREFIX)


def build_pipeline(
    config: Config,
    engine: Engine,
    *,
    guard: PiiStage | None = None,
    replies: Replies | ReplySink | None = None,
    secret: bytes | None = None,
) -> IntakePipeline:
    """The pipeline; ``secret`` is loaded from the environment (or its file) when not given.

    ``replies`` may be a bare ``ReplySink``, which writes each reply inside the
    recording transaction (``Immediate``).
    """
    secret = signing_secret(config, secret)
    return IntakePipeline(
        config=config,
        engine=engine,
        tokens=RefTokens(secret, config.security.token_org),
        secret=secret,
        guard=guard or NoGuard(),
        replies=replies if isinstance(replies, Replies) else Immediate(replies or NoReplies()),
        own=own_identity(config),
        recipients=RecipientMap((box.name, box.address) for box in config.mailboxes),
        clocks=SlaClocks.from_config(config.sla),
    )
