"""The intake services of one process: the pipeline with its PII guard, and the composer
and template store behind its auto-replies."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from pii_guard import PiiGuard
from ticketing.config import Config
from ticketing.intake.smtp import build_pipeline
from ticketing.outbound.compose import ReplyComposer
from ticketing.outbound.templated import TemplatedReplies
from ticketing.pipeline.guard import PiiGuardStage
from ticketing.pipeline.runner import IntakePipeline
from ticketing.privacy.allow import desk_allow
from ticketing.privacy.guard import build_guard
from ticketing.signing.key import load_signing_secret
from ticketing.signing.tokens import RefTokens
from ticketing.store.db import transaction
from ticketing.store.models import utcnow
from ticketing.templating.reload import audit_refused
from ticketing.templating.store import TemplateStore

__all__ = ["Services", "build_composer", "build_intake"]


@dataclass(frozen=True)
class Services:
    pipeline: IntakePipeline
    composer: ReplyComposer
    store: TemplateStore
    guard: PiiGuard


def build_composer(
    config: Config, engine: Engine, secret: bytes | None = None, *, audit_templates: bool = True
) -> tuple[ReplyComposer, TemplateStore]:
    """The templates (a broken one refused, and audited unless ``audit_templates`` is false:
    worker processes leave that to the daemon) and the composer that uses them."""
    secret = secret if secret is not None else load_signing_secret(config.security)
    store = TemplateStore.from_config(config)
    if audit_templates:
        with transaction(engine) as session:
            audit_refused(session, store.initial_result, utcnow())
    tokens = RefTokens(secret, config.security.token_org)
    return ReplyComposer(config, store, tokens, secret), store


def build_intake(config: Config, engine: Engine, *, audit_templates: bool = True) -> Services:
    """The intake pipeline with the PII guard and templated auto-replies (serve, ingest,
    worker processes)."""
    guard = build_guard(config.pii)
    secret = load_signing_secret(config.security)  # once: it may warn and read a file
    composer, store = build_composer(config, engine, secret, audit_templates=audit_templates)
    pipeline = build_pipeline(
        config,
        engine,
        guard=PiiGuardStage(guard, desk_allow(config)),
        replies=TemplatedReplies(composer, engine, guard),
        secret=secret,
    )
    return Services(pipeline, composer, store, guard)
