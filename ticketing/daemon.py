"""``ticketd serve``: check everything it needs, then run intake, outbox and SLA sweep
until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from mailer.recipients import RecipientMap
from mailer.smtp_server import IntakeHandler, SmtpSettings, start_smtp_server
from pii_guard import PiiGuard
from ticketing.config import Config, environment_problems
from ticketing.db import transaction
from ticketing.errors import ConfigError
from ticketing.imap import start_pollers
from ticketing.intake import build_pipeline, smtp_delivery
from ticketing.models import utcnow
from ticketing.operations import Operations, start_operations
from ticketing.outbox import OutboxDispatcher, transport_from_config
from ticketing.pii_settings import build_guard
from ticketing.pipeline import IntakePipeline
from ticketing.pipeline.pii_stage import PresidioStage
from ticketing.pipeline.templated import TemplatedReplies
from ticketing.replies import ReplyComposer, TemplateStore, audit_refused, watch_templates
from ticketing.schema import require_current
from ticketing.signing_key import load_signing_secret
from ticketing.sla.notices import TemplatedNotices
from ticketing.sla.service import start_sweeper
from ticketing.tokens import RefTokens

__all__ = ["build_composer", "build_intake", "run_daemon"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    pipeline: IntakePipeline
    composer: ReplyComposer
    store: TemplateStore
    guard: PiiGuard


def build_composer(
    config: Config, engine: Engine, secret: bytes | None = None
) -> tuple[ReplyComposer, TemplateStore]:
    """The templates (a broken one refused and audited) and the composer that uses them."""
    secret = secret if secret is not None else load_signing_secret(config.security)
    store = TemplateStore.from_config(config)
    with transaction(engine) as session:
        audit_refused(session, store.initial_result, utcnow())
    tokens = RefTokens(secret, config.security.token_org)
    return ReplyComposer(config, store, tokens, secret), store


def build_intake(config: Config, engine: Engine) -> Services:
    """The intake pipeline with the PII guard and templated auto-replies (serve, ingest)."""
    guard = build_guard(config.pii)
    secret = load_signing_secret(config.security)  # once: it may warn and read a file
    composer, store = build_composer(config, engine, secret)
    pipeline = build_pipeline(
        config,
        engine,
        guard=PresidioStage(guard),
        replies=TemplatedReplies(composer, guard),
        secret=secret,
    )
    return Services(pipeline, composer, store, guard)


def preflight(config: Config, source: str, engine: Engine) -> Services:
    """Fail before listening: missing secrets, an unmigrated database."""
    problems = environment_problems(config)
    if problems:
        raise ConfigError(source, problems)
    require_current(engine)
    for key, team in config.teams.items():
        if team.lead is None:
            log.warning("team %s has no lead address: SLA notices are audited, not mailed", key)
    return build_intake(config, engine)


def run_daemon(config: Config, source: str, engine: Engine) -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the reload handler is installed
    services = preflight(config, source, engine)
    notices = TemplatedNotices(config, services.composer, services.guard)
    ops = start_operations(config, source, engine, services.store)
    sweeper = start_sweeper(config, engine, notices)
    try:
        asyncio.run(_serve(config, engine, services, ops))
    finally:
        sweeper.shutdown(wait=True)
        ops.close()
        log.info("stopped")


async def _serve(config: Config, engine: Engine, services: Services, ops: Operations) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, ops.reloader.request)
    dispatcher = OutboxDispatcher(engine, transport_from_config(config.outbound), config.outbound)
    tasks = [
        asyncio.create_task(dispatcher.run(stop)),
        asyncio.create_task(
            watch_templates(
                services.store, engine, stop, interval=config.templates.reload_interval_seconds
            )
        ),
    ]
    recipients = RecipientMap((box.name, box.address) for box in config.mailboxes)
    handler = IntakeHandler(recipients, smtp_delivery(services.pipeline, dispatcher.wake))
    server = await start_smtp_server(_smtp_settings(config), handler, ops.gate)
    ops.smtp_started()
    pollers = start_pollers(config, services.pipeline, dispatcher.wake)
    log.info("ticketd ready: mailboxes %s", ", ".join(b.name for b in config.mailboxes))
    await stop.wait()
    log.info("stopping: new SMTP sessions get 421, messages in flight may finish")
    # the pollers finish (record and move) the message in hand meanwhile
    await asyncio.gather(asyncio.to_thread(pollers.stop), ops.drain_smtp())
    server.close()
    await server.wait_closed()
    await asyncio.gather(*tasks, ops.reloader.wait())


def _smtp_settings(config: Config) -> SmtpSettings:
    return SmtpSettings(
        host=config.smtp.host,
        port=config.smtp.port,
        max_message_size=config.smtp.max_message_size,
        tls_cert=config.smtp.tls_cert,
        tls_key=config.smtp.tls_key,
    )
