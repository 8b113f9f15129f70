"""``ticketd serve``: check everything it needs, then run intake, outbox and SLA sweep
until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from mailer.recipients import RecipientMap
from mailer.smtp_server import Delivery, IntakeHandler, SmtpSettings, start_smtp_server
from mailer.spool import Spool
from ticketing.config import Config, environment_problems
from ticketing.errors import ConfigError, ConfigProblem
from ticketing.intake.build import Services, build_intake
from ticketing.intake.imap.threads import start_pollers
from ticketing.intake.smtp import smtp_delivery, spool_delivery, storage_reserve
from ticketing.intake.spooled import drain_spool
from ticketing.intake.workers import WorkerPool
from ticketing.outbound.notices import TemplatedNotices
from ticketing.outbound.orders import watch_orders
from ticketing.outbound.outbox import OutboxDispatcher, transport_from_config
from ticketing.pipeline.runner import IntakePipeline
from ticketing.server.operations import Operations, start_operations
from ticketing.sla.sweeper import start_sweeper
from ticketing.store.migrate import require_current
from ticketing.templating.reload import watch_templates

__all__ = ["run_daemon"]

log = logging.getLogger(__name__)


def preflight(config: Config, source: str, engine: Engine) -> Services:
    """Fail before listening: missing secrets, an unmigrated database."""
    problems = environment_problems(config)
    if problems:
        raise ConfigError(source, problems)
    require_current(engine)
    if config.smtp.workers:
        try:
            Spool(config.smtp.spool_dir).create()
        except OSError as exc:
            problem = ConfigProblem("smtp.spool_dir", f"cannot create the spool: {exc.strerror}")
            raise ConfigError(source, [problem]) from None
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
    dispatcher = OutboxDispatcher(engine, transport_from_config(config.outbound), config.outbound)
    tasks = [
        asyncio.create_task(dispatcher.run(stop)),
        asyncio.create_task(
            watch_templates(
                services.store, engine, stop, interval=config.templates.reload_interval_seconds
            )
        ),
        asyncio.create_task(
            watch_orders(engine, services.composer, services.guard, stop, wake=dispatcher.wake)
        ),
    ]
    intake = _start_intake(config, services, dispatcher.wake)
    loop.add_signal_handler(signal.SIGHUP, intake.hangup(ops.reloader.request))
    tasks += intake.background()
    recipients = RecipientMap((box.name, box.address) for box in config.mailboxes)
    ops.state.reserve = storage_reserve(config)
    handler = IntakeHandler(recipients, intake.delivery, ops.state.reserve)
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
    await asyncio.to_thread(intake.stop, float(config.smtp.shutdown_grace_seconds))
    await asyncio.gather(*tasks, ops.reloader.wait())


@dataclass(frozen=True)
class _Intake:
    """How SMTP mail is recorded: in the daemon (``pool`` is ``None``) or by worker processes."""

    config: Config
    delivery: Delivery
    spool: Spool
    pipeline: IntakePipeline
    wake: Callable[[], None]
    pool: WorkerPool | None

    def hangup(self, reload: Callable[[], None]) -> Callable[[], None]:
        """The SIGHUP handler: the daemon's reload, passed on to the workers."""

        def handler() -> None:
            reload()
            if self.pool is not None:
                self.pool.hangup()

        return handler

    def background(self) -> list[asyncio.Task[None]]:
        """Without workers, mail a previous run left in the spool is recorded here."""
        if self.pool is not None or not self.spool.path.is_dir():
            return []
        limit = self.config.smtp.spool_max_attempts
        return [asyncio.create_task(asyncio.to_thread(self._drain, limit))]

    def _drain(self, limit: int) -> None:
        recorded = drain_spool(self.spool, self.pipeline, limit, self.wake)
        if recorded:
            log.info("recorded %d messages a previous run left in the spool", recorded)

    def stop(self, timeout: float) -> None:
        if self.pool is not None:
            self.pool.stop(timeout)


def _start_intake(config: Config, services: Services, wake: Callable[[], None]) -> _Intake:
    spool = Spool(config.smtp.spool_dir)
    if config.smtp.workers == 0:
        delivery = smtp_delivery(services.pipeline, wake)
        return _Intake(config, delivery, spool, services.pipeline, wake, None)
    pool = WorkerPool(config, spool, wake)
    pool.start()
    delivery = spool_delivery(config, spool, pool.submit)
    return _Intake(config, delivery, spool, services.pipeline, wake, pool)


def _smtp_settings(config: Config) -> SmtpSettings:
    return SmtpSettings(
        host=config.smtp.host,
        port=config.smtp.port,
        max_message_size=config.smtp.max_message_size,
        tls_cert=config.smtp.tls_cert,
        tls_key=config.smtp.tls_key,
    )
