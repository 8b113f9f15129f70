"""The SMTP intake: an aiosmtpd server whose handler decides, nothing more.

The server speaks SMTP (SIZE, STARTTLS when a certificate is configured); the
handler refuses recipients that are not ours at RCPT and passes each accepted
message to a *delivery* callable, run in a worker thread so that database and
PII work never block the event loop.  The callable's reply is what the client
hears: ``250`` only once the message is durably recorded.  An MTA in front that
may (a trusted host) says who its client was with XFORWARD (``xforward``); the LMTP
listeners (``lmtp_server``) run the same sessions.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from mailer.recipients import RecipientMap
from mailer.smtp_drain import SessionGate
from mailer.smtp_sessions import LimitedSMTP, SessionCount, SessionLimits
from mailer.storage import INSUFFICIENT_STORAGE, StorageReserve
from mailer.xforward import (
    EXTENSION,
    IN_TRANSACTION,
    REFUSED,
    ForwardingEnvelope,
    XForwardAccess,
    apply_xforward,
)

__all__ = [
    "Delivery",
    "InboundEnvelope",
    "IntakeHandler",
    "SessionLimits",
    "SmtpSettings",
    "intake_protocols",
    "start_smtp_server",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundEnvelope:
    """One message as it came off the wire, before anything looked inside it."""

    raw: bytes
    mail_from: str
    recipients: tuple[str, ...]
    mailboxes: tuple[str, ...]
    peer: str
    helo: str = ""  # the client's HELO/EHLO name (SPF checks it for a null sender)


Delivery = Callable[[InboundEnvelope], str]
"""Records a message and returns the SMTP reply line (``"250 2.0.0 …"`` or a 4xx/5xx)."""


class IntakeHandler:
    """aiosmtpd handler: the storage reserve, RCPT policy and the hand-off of DATA to ``deliver``.

    With a ``reserve``, MAIL is refused (452) when the size the client announces
    (``SIZE=``) would not fit above it, and DATA when the message itself would not.
    """

    def __init__(
        self, recipients: RecipientMap, deliver: Delivery, reserve: StorageReserve | None = None
    ) -> None:
        self._recipients = recipients
        self._deliver = deliver
        self._reserve = reserve or StorageReserve((), 0)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """EHLO (and LMTP's LHLO): XFORWARD is offered only to a client allowed to send it."""
        session.host_name = hostname  # aiosmtpd leaves it to a handler with this hook
        if isinstance(server, _IntakeSMTP) and server.xforward_allowed:
            responses.insert(-1, f"250-{EXTENSION}")  # the last line ("250 HELP") ends the list
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not self._reserve.admits(_announced_size(options)):
            return INSUFFICIENT_STORAGE
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._recipients.mailbox_for(address) is None:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if not self._reserve.admits(len(content)):
            return INSUFFICIENT_STORAGE
        mailboxes = tuple(
            dict.fromkeys(
                box for box in map(self._recipients.mailbox_for, envelope.rcpt_tos) if box
            )
        )
        peer, helo = _client(session, envelope)
        inbound = InboundEnvelope(
            raw=content,
            mail_from=envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
            mailboxes=mailboxes,
            peer=peer,
            helo=helo,
        )
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self._deliver, inbound)
        except Exception:
            log.exception("delivery failed; answering 451")
            return "451 4.3.0 Temporary failure, try again later"


def _client(session: Session, envelope: Envelope) -> tuple[str, str]:
    """Who sent the message, address and HELO name: what XFORWARD said (``""`` where it
    said nothing), else the connection itself (no address on a Unix socket)."""
    forwarded = envelope.forwarded if isinstance(envelope, ForwardingEnvelope) else None
    if forwarded is not None:
        return forwarded.addr, forwarded.helo
    return _address_of(session.peer), session.host_name or ""


def _address_of(peer: object) -> str:
    """The IP address of a TCP peer (``(host, port, …)``); ``""`` on a Unix socket."""
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def _announced_size(options: list[str]) -> int:
    """The ``SIZE=`` of MAIL's parameters (aiosmtpd has checked it is digits), else 0."""
    for option in options:
        name, _, value = option.partition("=")
        if name.upper() == "SIZE" and value.isdigit():
            return int(value)
    return 0


_ADDRESSES_KEPT = 4096


class _IntakeSMTP(LimitedSMTP):
    """aiosmtpd's session, within the abuse limits (``smtp_sessions``), with the address
    of MAIL and RCPT parsed once per address.

    ``SMTP._getaddr`` defines a ``typing.Protocol`` class and runs the email
    package's header parser for every command: a third of a session's CPU.
    Producers write from the same addresses to the same mailboxes again and
    again, so the result for a plain ``<address>`` is kept (the parameters after
    it, such as ``SIZE=``, change with each message and are passed on as they
    are).  Anything else (quotes, comments, no angle brackets) is parsed as before.

    The stdlib parser raises ``IndexError`` on some arguments (``x@``); aiosmtpd
    then logs a traceback and answers 500.  Such an address is malformed: 553.

    XFORWARD (``mailer/xforward.py``) is taken from the clients ``xforward`` allows.
    """

    _addresses: dict[tuple[str, int], tuple[str | None, str | None]] = {}  # noqa: RUF012

    def __init__(
        self, handler: Any, *, xforward: XForwardAccess | None = None, **options: Any
    ) -> None:
        super().__init__(handler, **options)
        self._xforward = xforward or XForwardAccess()

    def _create_envelope(self) -> Envelope:
        return ForwardingEnvelope()

    @property
    def xforward_allowed(self) -> bool:
        """May this client say who its own client was (XFORWARD)?"""
        session = self.session
        return session is not None and self._xforward.allows(_address_of(session.peer))

    @syntax("XFORWARD attribute=value ...", when="xforward_allowed")
    async def smtp_XFORWARD(self, arg: str | None) -> None:
        await self.push(self._xforwarded(arg))

    def _xforwarded(self, arg: str | None) -> str:
        """Apply ``XFORWARD arg`` to the transaction about to start; the reply."""
        envelope = self.envelope
        if not self.xforward_allowed:
            return REFUSED
        assert isinstance(envelope, ForwardingEnvelope)
        if envelope.mail_from is not None:
            return IN_TRANSACTION
        envelope.forwarded, reply = apply_xforward(envelope.forwarded, arg)
        return reply

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        end = arg.find(">") + 1
        head, rest = arg[:end], arg[end:].lstrip(" \t")  # the parser drops that space too
        plain = head.startswith("<") and "@" in head and not any(c in head for c in '"( \t\\')
        if not plain or rest[:1] == "(":
            return self._parsed(arg)
        key = (head, self.local_part_limit)
        found = self._addresses.get(key)
        if found is None:
            found = self._parsed(head)
            if len(self._addresses) >= _ADDRESSES_KEPT:
                self._addresses.clear()
            self._addresses[key] = found
        address, after = found
        if address is None or after:  # refused, or the address ended before the ">"
            return self._parsed(arg)
        return address, rest

    def _parsed(self, arg: str) -> tuple[str | None, str | None]:
        try:
            return super()._getaddr(arg)
        except IndexError:
            return None, None


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    max_message_size: int
    tls_cert: str | None = None
    tls_key: str | None = None
    hostname: str | None = None
    limits: SessionLimits = field(default_factory=SessionLimits)
    # TCP clients that may send XFORWARD (an MTA in front): the trusted hosts
    xforward_hosts: tuple[str, ...] = ()


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if not settings.tls_cert or not settings.tls_key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def start_smtp_server(
    settings: SmtpSettings, handler: IntakeHandler, gate: SessionGate | None = None
) -> asyncio.Server:
    """Listen on ``settings.host:port``; the caller closes the returned server.

    With a ``gate``, the caller can drain the sessions before closing (``smtp_drain``).
    """
    _warn_if_few_descriptors(settings.limits)
    factory = intake_protocols(
        settings,
        handler,
        gate or SessionGate(),
        xforward=XForwardAccess(frozenset(settings.xforward_hosts)),
        tls=_tls_context(settings),
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host=settings.host, port=settings.port)
    log.info("SMTP intake listening on %s:%d", settings.host, settings.port)
    return server


def intake_protocols(
    settings: SmtpSettings,
    handler: IntakeHandler,
    gate: SessionGate,
    *,
    kind: type[_IntakeSMTP] = _IntakeSMTP,
    xforward: XForwardAccess | None = None,
    tls: ssl.SSLContext | None = None,
) -> Callable[[], Any]:
    """The protocol factory of one listener: a ``kind`` session per connection, within
    ``settings.limits`` (counted for this listener alone), ended by ``gate``'s drain."""
    loop = asyncio.get_running_loop()
    count = SessionCount(settings.limits)
    _AcceptErrors.install(loop)

    def session() -> SMTP:
        return kind(
            handler,
            count=count,
            data_size_limit=settings.max_message_size,
            hostname=settings.hostname,
            ident="ticketd",
            tls_context=tls,
            xforward=xforward,
            loop=loop,
        )

    def factory() -> Any:
        return gate.protocol(session)

    return factory


_OTHER_DESCRIPTORS = 256  # database pool, spool files, IMAP, HTTP, workers' pipes: generous


def _warn_if_few_descriptors(limits: SessionLimits) -> None:
    """Say so at start when full sessions could leave no descriptor for anything else."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = limits.max_sessions + _OTHER_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "open-file limit %d is below max_sessions + %d: raise it (systemd LimitNOFILE)",
            soft,
            _OTHER_DESCRIPTORS,
        )


_ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


class _AcceptErrors:
    """The loop's exception handler, with asyncio's failed ``accept()`` said once a minute.

    Out of descriptors (EMFILE, ENFILE) or memory, asyncio stops accepting for a
    second and tries again; connections wait in the kernel's backlog meanwhile, so
    the server recovers by itself once descriptors are free.  But it logs a
    traceback for each of up to 100 attempts per wake-up, hundreds a second
    (CPython issue 151615), which would bury every other line.
    """

    MESSAGE = "socket.accept() out of system resource"  # asyncio's context["message"]
    EVERY_SECONDS = 60.0

    def __init__(self, previous: _ExceptionHandler | None) -> None:
        self._previous = previous
        self._next = 0.0
        self._missed = 0

    @classmethod
    def install(cls, loop: asyncio.AbstractEventLoop) -> None:
        previous = loop.get_exception_handler()
        if not isinstance(previous, cls):
            loop.set_exception_handler(cls(previous))

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != self.MESSAGE:
            if self._previous is None:
                loop.default_exception_handler(context)
            else:
                self._previous(loop, context)
            return
        self._missed += 1
        if loop.time() < self._next:
            return
        self._next = loop.time() + self.EVERY_SECONDS
        log.warning(
            "cannot accept connections: %s (%d failed accept() since the last warning); "
            "retrying every second",
            context.get("exception"),
            self._missed,
        )
        self._missed = 0
