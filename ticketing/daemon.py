"""``ticketd serve``: check everything it needs, start the intake, run until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal

from sqlalchemy.engine import Engine

from mailer.recipients import RecipientMap
from mailer.smtp_server import IntakeHandler, SmtpSettings, start_smtp_server
from ticketing.config import Config, environment_problems
from ticketing.errors import ConfigError
from ticketing.intake import build_pipeline, smtp_delivery
from ticketing.pipeline import IntakePipeline
from ticketing.schema import require_current

__all__ = ["run_daemon"]

log = logging.getLogger(__name__)


def preflight(config: Config, source: str, engine: Engine) -> IntakePipeline:
    """Fail before listening: missing secrets, an unmigrated database."""
    problems = environment_problems(config)
    if problems:
        raise ConfigError(source, problems)
    require_current(engine)
    return build_pipeline(config, engine)


def run_daemon(config: Config, source: str, engine: Engine) -> None:
    pipeline = preflight(config, source, engine)
    asyncio.run(_serve(config, pipeline))


async def _serve(config: Config, pipeline: IntakePipeline) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    recipients = RecipientMap((box.name, box.address) for box in config.mailboxes)
    handler = IntakeHandler(recipients, smtp_delivery(pipeline))
    settings = SmtpSettings(
        host=config.smtp.host,
        port=config.smtp.port,
        max_message_size=config.smtp.max_message_size,
        tls_cert=config.smtp.tls_cert,
        tls_key=config.smtp.tls_key,
    )
    server = await start_smtp_server(settings, handler)
    log.info("ticketd ready: mailboxes %s", ", ".join(b.name for b in config.mailboxes))
    await stop.wait()
    log.info("stopping: no new SMTP sessions")
    server.close()
    await server.wait_closed()
    log.info("stopped")
