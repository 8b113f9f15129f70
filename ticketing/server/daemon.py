"""``ticketd serve``: the one place that builds the daemon from the config and runs it.

    build(config, source, engine)   check what it needs, build every part once
    Daemon.run(shutdown_trigger)    run them all until the trigger returns, then stop them

``run`` owns every background loop in one ``asyncio.TaskGroup`` (as
hypercorn's ``worker_serve`` does): the SMTP and LMTP servers (aiosmtpd, on the loop),
the outbox dispatcher (woken after each commit) and one thread per IMAP mailbox.
The timed jobs — the SLA sweep, the template reload, composing orders a dead
process left, the quarantine's retention, and (without workers) recording what
waits in the spool — run on one APScheduler
(``server/jobs.py``) that ``run`` starts and shuts down.  ``run`` also starts and
stops the worker processes (``[smtp] workers``); the operators' HTTP endpoint
opens in ``build`` (a taken port stops the start) and closes when ``run`` ends.

Signals are the command line's business (``run_daemon``): SIGTERM and SIGINT
end the shutdown trigger, SIGHUP calls ``Daemon.hangup``.  Tests pass their own
trigger (an event's ``wait``) and run the daemon in-process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from mailer.lmtp_server import SocketListener, start_lmtp_socket, start_lmtp_tcp
from mailer.recipients import RecipientMap
from mailer.smtp_server import (
    Delivery,
    IntakeHandler,
    SessionLimits,
    SmtpSettings,
    start_smtp_server,
)
from mailer.spool import Spool
from ticketing.config import Config, environment_problems
from ticketing.console.app import build_console
from ticketing.console.context import ConsoleDesk
from ticketing.errors import ConfigError, ConfigProblem, SmtpListenError
from ticketing.intake.build import Services, build_intake
from ticketing.intake.imap.poller import MailboxPoller, imap_settings, mailbox_pollers
from ticketing.intake.quarantine import purge_expired
from ticketing.intake.smtp import (
    smtp_delivery,
    spool_delivery,
    storage_reserve,
    worker_delivery,
)
from ticketing.intake.spooled import drain_spool
from ticketing.intake.workers import WorkerPool
from ticketing.metrics import count_smtp_refused, count_smtp_timed_out
from ticketing.outbound.desk_transport import DeskTransport, ImapTarget
from ticketing.outbound.notices import TemplatedNotices
from ticketing.outbound.orders import ORDER_LEASE, compose_orphans
from ticketing.outbound.outbox import OutboxDispatcher, transport_from_config
from ticketing.outbound.templated import TemplatedReplies
from ticketing.server.console import ConsoleListener, bind_console, serve_console
from ticketing.server.jobs import TimedJob, timed_jobs
from ticketing.server.operations import Operations, start_operations
from ticketing.sla.sweeper import run_sweep
from ticketing.store.migrate import require_current
from ticketing.store.models import utcnow
from ticketing.templating.reload import reload_templates

__all__ = ["Daemon", "ShutdownTrigger", "build", "run_daemon"]

log = logging.getLogger(__name__)

ShutdownTrigger = Callable[[], Awaitable[object]]

_QUARANTINE_PURGE_SECONDS = 3600.0  # quarantined mail past its retention goes within the hour
_WAITING_DELIVERIES = 64  # SMTP/LMTP messages handed to the workers at once, at most
_SPOOL_DRAIN_SECONDS = 60.0  # without workers, mail released into the spool waits this long


def run_daemon(config: Config, source: str, engine: Engine) -> None:
    """``ticketd serve``: build, then run until SIGTERM or SIGINT; SIGHUP reloads."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the reload handler is installed
    daemon = build(config, source, engine)
    asyncio.run(_run_with_signals(daemon))


async def _run_with_signals(daemon: Daemon) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, daemon.hangup)
    await daemon.run(stop.wait)


def build(config: Config, source: str, engine: Engine) -> Daemon:
    """Fail before listening (missing secrets, an unmigrated database, an unusable spool or
    roster); otherwise every part of the daemon, built once."""
    services = _preflight(config, source, engine)
    ops = start_operations(config, source, engine, services.store)
    try:
        console = bind_console(config)
    except Exception:
        ops.close()
        raise
    return Daemon(config, engine, services, ops, source, console)


def _preflight(config: Config, source: str, engine: Engine) -> Services:
    problems = environment_problems(config)
    if problems:
        raise ConfigError(source, problems)
    require_current(engine)
    _open_spool(config, source)
    for key, team in config.teams.items():
        if team.lead is None:
            log.warning("team %s has no lead address: SLA notices are audited, not mailed", key)
    return build_intake(config, engine)


def _open_spool(config: Config, source: str) -> None:
    """Make the spool (with workers) and empty its ``tmp/``: what is there, a session killed
    before its 250 left (the sender still has the message).  Nothing listens yet, so
    nothing is being written there."""
    spool = Spool(config.smtp.spool_dir)
    try:
        if config.smtp.worker_count:
            spool.create()
        removed = spool.remove_unfinished()
    except OSError as exc:
        problem = ConfigProblem("smtp.spool_dir", f"cannot open the spool: {exc.strerror}")
        raise ConfigError(source, [problem]) from None
    if removed:
        log.warning("removed %d unfinished messages from %s", removed, spool.path / "tmp")


def desk_folders(config: Config) -> dict[str, ImapTarget]:
    """The desk folder of each mailbox read over IMAP: where its team's desk copies go."""
    return {
        box.name: ImapTarget(imap_settings(box.imap), box.imap.desk_folder)
        for box in config.mailboxes
        if box.imap is not None
    }


@dataclass
class Daemon:
    config: Config
    engine: Engine
    services: Services
    ops: Operations
    source: str = ""  # the config file: start-up errors name it
    console: ConsoleListener | None = None  # the console's bound socket ([web])
    dispatcher: OutboxDispatcher = field(init=False)
    lmtp: list[SocketListener | asyncio.Server] = field(init=False, default_factory=list)
    pool: WorkerPool | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        transport = DeskTransport(
            transport_from_config(self.config.outbound), desk_folders(self.config)
        )
        self.dispatcher = OutboxDispatcher(
            self.engine, transport, self.config.outbound, secret=self.services.secret
        )

    def hangup(self) -> None:
        """SIGHUP: reload templates and the roster, here and in the worker processes."""
        self.ops.reloader.request()
        if self.pool is not None:
            self.pool.hangup()

    async def run(self, shutdown_trigger: ShutdownTrigger) -> None:
        """Serve until ``shutdown_trigger`` returns; then stop taking mail, let what is in
        hand finish, and stop every loop."""
        scheduler = timed_jobs(self._timed_jobs())
        scheduler.start()
        try:
            async with asyncio.TaskGroup() as tasks:
                await self._serve(tasks, shutdown_trigger)
        except BaseExceptionGroup as group:
            # one failure (a port taken, a bug in a loop) is reported as itself, so the
            # command line can say what it is
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            await asyncio.to_thread(scheduler.shutdown, True)
            self.ops.close()
            if self.console is not None:  # closed by its server too; here if it never ran
                self.console.sock.close()
            log.info("stopped")

    async def _serve(self, tasks: asyncio.TaskGroup, shutdown_trigger: ShutdownTrigger) -> None:
        stop, stop_threads = asyncio.Event(), threading.Event()
        imap_boxes = sum(box.imap is not None for box in self.config.mailboxes)
        polling = ThreadPoolExecutor(max(imap_boxes, 1), thread_name_prefix="imap")
        server: asyncio.Server | None = None
        polled: list[asyncio.Task[None]] = []
        try:  # whatever fails to start, what did start is stopped below
            tasks.create_task(self.dispatcher.run(stop))
            delivery = self._intake()  # first: with workers, the pollers hand them their batches
            wake = self.dispatcher.wake
            for poller in mailbox_pollers(self.config, self.services.pipeline, wake, self.pool):
                polled.append(tasks.create_task(_in_thread(polling, poller, stop_threads)))
            server = await self._smtp_server(delivery)
            await self._start_lmtp(delivery)
            self._start_console(tasks, stop)
            log.info(
                "ticketd ready: mailboxes %s", ", ".join(b.name for b in self.config.mailboxes)
            )
            await shutdown_trigger()
        finally:
            log.info("stopping: new SMTP sessions get 421, messages in flight may finish")
            stop_threads.set()  # the pollers finish (record and move) the batch in hand
            await self._stop_intake(server, polled)
            stop.set()
            polling.shutdown(wait=False)
            await self.ops.reloader.wait()

    async def _stop_intake(
        self, server: asyncio.Server | None, polled: list[asyncio.Task[None]]
    ) -> None:
        await self.ops.drain_smtp()
        for listener in [server, *self.lmtp]:  # an LMTP socket file is removed
            if listener is not None:
                listener.close()
                await listener.wait_closed()
        if self.pool is not None:
            grace = float(self.config.smtp.shutdown_grace_seconds)
            if polled:  # their batches in the workers' hands are recorded and moved first
                await asyncio.wait(polled, timeout=grace)
            await asyncio.to_thread(self.pool.stop, grace)

    def _intake(self) -> Delivery:
        """How SMTP and LMTP mail is recorded: in this process, by a worker process before
        the 250, or by a worker from the spool after it (``[smtp] workers``, ``spool``)."""
        smtp, wake = self.config.smtp, self.dispatcher.wake
        spool = Spool(smtp.spool_dir)
        if not smtp.worker_count:
            return smtp_delivery(self.services.pipeline, wake)
        self.pool = WorkerPool(self.config, spool, wake)
        self.pool.start()
        if smtp.spooled:
            return spool_delivery(self.config, spool, self.pool.submit)
        # a delivery's thread waits for its worker: enough of them that the workers find
        # several sessions' messages waiting and record them with one commit
        threads = ThreadPoolExecutor(_WAITING_DELIVERIES, thread_name_prefix="delivery")
        asyncio.get_running_loop().set_default_executor(threads)
        return worker_delivery(self.pool, self.config, wake)

    def _start_console(self, tasks: asyncio.TaskGroup, stop: asyncio.Event) -> None:
        """The console on the parts intake uses: its composer, guard and templates."""
        if self.console is None:
            return
        services = self.services
        desk = ConsoleDesk(
            config=self.config,
            engine=self.engine,
            replies=TemplatedReplies(services.composer, self.engine, services.guard),
            guard=services.guard,
            templates=services.store,
            secret=services.secret,
            mail_ordered=self.dispatcher.wake,
        )
        tasks.create_task(serve_console(build_console(desk), self.console, stop))

    def _drain_spool(self) -> None:
        """Without workers: record what a previous run (with workers) left in the spool,
        or an operator released from its quarantine (a timed job, the first run at start)."""
        spool = Spool(self.config.smtp.spool_dir)
        if not (spool.path / "new").is_dir():
            return
        limit, wake = self.config.smtp.spool_max_attempts, self.dispatcher.wake
        recorded = drain_spool(spool, self.services.pipeline, limit, wake)
        if recorded:
            log.info("recorded %d messages waiting in the spool", recorded)

    async def _smtp_server(self, delivery: Delivery) -> asyncio.Server:
        config = self.config
        recipients = RecipientMap((box.name, box.address) for box in config.mailboxes)
        self.ops.state.reserve = storage_reserve(config)
        handler = IntakeHandler(recipients, delivery, self.ops.state.reserve)
        settings = _smtp_settings(config)
        try:
            server = await start_smtp_server(settings, handler, self.ops.gate)
        except OSError as exc:
            where = f"{settings.host}:{settings.port}"
            why = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio's text repeats it
            raise SmtpListenError(f"cannot receive SMTP on {where}: {why}") from None
        self.ops.smtp_started()
        return server

    async def _start_lmtp(self, delivery: Delivery) -> None:
        """``[lmtp]``: the SMTP intake's delivery, limits, reserve and drain, spoken as
        LMTP on a Unix socket and/or a TCP port (``self.lmtp``, closed with the SMTP server)."""
        config, lmtp = self.config, self.config.lmtp
        recipients = RecipientMap((box.name, box.address) for box in config.mailboxes)
        handler = IntakeHandler(recipients, delivery, self.ops.state.reserve)
        settings, gate = _smtp_settings(config), self.ops.gate
        if lmtp.socket:
            try:
                listener = await start_lmtp_socket(Path(lmtp.socket), settings, handler, gate)
            except OSError as exc:
                why = f"cannot listen on {lmtp.socket}: {exc.strerror or exc}"
                raise ConfigError(self.source, [ConfigProblem("lmtp.socket", why)]) from None
            self.lmtp.append(listener)
        if lmtp.host:
            try:
                server = await start_lmtp_tcp(lmtp.host, lmtp.port, settings, handler, gate)
            except OSError as exc:
                why = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio's text repeats it
                problem = ConfigProblem("lmtp", f"cannot listen on {lmtp.host}:{lmtp.port}: {why}")
                raise ConfigError(self.source, [problem]) from None
            self.lmtp.append(server)

    def _timed_jobs(self) -> list[TimedJob]:
        config, engine, services = self.config, self.engine, self.services
        notices = TemplatedNotices(config, services.composer, engine, services.guard)

        def compose_left_orders() -> None:
            if compose_orphans(engine, services.composer, services.guard):
                self.dispatcher.wake()

        return [
            TimedJob(
                "SLA sweep",
                lambda: run_sweep(config, engine, utcnow(), notices),
                config.sla.sweep_interval_seconds,
            ),
            TimedJob(
                "template reload",
                lambda: reload_templates(services.store, engine, utcnow()),
                config.templates.reload_interval_seconds,
            ),
            TimedJob("orders left composing", compose_left_orders, ORDER_LEASE.total_seconds() / 2),
            TimedJob(
                "quarantine purge",
                lambda: purge_expired(config, engine, utcnow()),
                _QUARANTINE_PURGE_SECONDS,
            ),
            *self._spool_jobs(),
        ]

    def _spool_jobs(self) -> list[TimedJob]:
        if self.config.smtp.worker_count:  # the workers drain the spool themselves
            return []
        return [TimedJob("spool drain", self._drain_spool, _SPOOL_DRAIN_SECONDS)]


async def _in_thread(
    pool: ThreadPoolExecutor, poller: MailboxPoller, stop: threading.Event
) -> None:
    """A poller in a thread of its own (it blocks on IMAP IDLE): not the loop's default
    pool, which the SMTP deliveries need."""
    await asyncio.get_running_loop().run_in_executor(pool, poller.run, stop)


def _smtp_settings(config: Config) -> SmtpSettings:
    return SmtpSettings(
        host=config.smtp.host,
        port=config.smtp.port,
        max_message_size=config.smtp.max_message_size,
        tls_cert=config.smtp.tls_cert,
        tls_key=config.smtp.tls_key,
        limits=SessionLimits(
            max_sessions=config.smtp.max_sessions,
            max_sessions_per_client=config.smtp.max_sessions_per_client,
            idle_timeout_seconds=config.smtp.idle_timeout_seconds,
            session_max_seconds=config.smtp.session_max_seconds,
            on_refused=count_smtp_refused,
            on_timed_out=count_smtp_timed_out,
        ),
        xforward_hosts=config.authentication.trusted_hosts,
    )
