"""Intake from an MTA's pipe (Postfix pipe, fetchmail --mda, procmail): one message.

Which of our mailboxes it is for comes from ``--mailbox``, else from the
envelope recipients the MTA passes (``--recipient``: Postfix's ``${recipient}``
with one recipient a delivery), else from the recipient headers an MTA leaves
(Delivered-To, X-Original-To) and To/Cc, else the only mailbox there is.

The exit status follows sysexits: 0 recorded (or already recorded), 65 a
message that can never be accepted or that failed in the pipeline with a
defect (a value the database refuses, a structure the parser cannot take: the
same message would fail the same way on every retry), 75 anything that may
work later — the database is down, the configuration or the setup cannot be
loaded or used (a file the pipe's user cannot read or write) — the MTA keeps
the message and retries, so nothing is lost while an operator fixes it.

The MTA can say who handed it the message (Postfix's ``${client_address}``,
``${client_helo}`` and ``${sender}``): sender authentication then checks SPF
too, and trusts a client among ``[authentication] trusted_hosts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from sqlalchemy.engine import Engine

from mailer.recipients import RecipientMap
from ticketing.config import Config
from ticketing.errors import NotFoundError, PermanentRejection
from ticketing.intake.build import build_intake
from ticketing.pipeline.types import RawMessage
from ticketing.pipeline.verdict import Verdict, describe_defect, verdict_of
from ticketing.store.migrate import require_current

__all__ = [
    "EX_DATAERR",
    "EX_OK",
    "EX_TEMPFAIL",
    "PipeEnvelope",
    "exit_status",
    "ingest_piped",
    "pipe_mailboxes",
    "setup_problem",
]

EX_OK, EX_DATAERR, EX_TEMPFAIL = 0, 65, 75

_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")
_HEADER_BYTES = 256_000


@dataclass(frozen=True)
class PipeEnvelope:
    """What the MTA says about a piped message beside it (each unknown when not said)."""

    mailbox: str | None = None
    client_address: str | None = None
    recipients: tuple[str, ...] = ()  # the envelope's, as the MTA says them
    helo: str | None = None
    sender: str | None = None


def ingest_piped(config: Config, engine: Engine, raw: bytes, envelope: PipeEnvelope) -> Verdict:
    """Record one piped message; whatever happens comes back as a verdict.  Nothing is
    logged: the command prints the one line an MTA keeps."""
    try:
        mailboxes = pipe_mailboxes(config, raw, envelope.mailbox, envelope.recipients)
    except Exception as exc:  # noqa: BLE001  the verdict decides what it means
        return verdict_of(exc)
    try:
        require_current(engine)
        pipeline = build_intake(config, engine, generate_secret=False).pipeline
    except Exception as exc:  # noqa: BLE001  not the message's doing: it waits
        return _not_ready(exc)
    message = RawMessage(
        raw,
        "pipe",
        mailboxes,
        envelope_from=envelope.sender,
        recipients=envelope.recipients,
        peer=envelope.client_address or None,
        helo=envelope.helo or None,
    )
    try:
        return Verdict("accepted", pipeline.process(message))
    except Exception as exc:  # noqa: BLE001  the verdict decides what it means
        return verdict_of(exc)


def _not_ready(error: Exception) -> Verdict:
    """Setting up the pipeline failed: whatever the error, the message was not judged."""
    verdict = verdict_of(error)
    if verdict.kind in ("temporary", "storage_full"):
        return verdict
    return Verdict("temporary", reason=f"cannot start: {setup_problem(error)}", error=error)


def setup_problem(error: BaseException) -> str:
    """What an operator must fix: for a file the pipe's user cannot use (a secret file, a
    lock left by another user), the system's words and the path; else the error's type
    (a library's text may quote the message)."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    return describe_defect(error)


def exit_status(verdict: Verdict) -> int:
    if verdict.outcome is not None:
        return EX_OK
    return EX_DATAERR if verdict.kind in ("permanent", "defect") else EX_TEMPFAIL


def pipe_mailboxes(
    config: Config, raw: bytes, explicit: str | None, envelope: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The mailboxes a piped message is for; ``PermanentRejection`` when none is ours."""
    names = {box.name for box in config.mailboxes}
    if explicit is not None:
        if explicit not in names:
            known = ", ".join(sorted(names))
            raise NotFoundError(f"unknown mailbox '{explicit}' (known: {known})")
        return (explicit,)
    recipients = RecipientMap((box.name, box.address) for box in config.mailboxes)
    if envelope:  # what the MTA says outranks what the headers claim
        return _envelope_mailboxes(recipients, envelope)
    headers = BytesHeaderParser().parsebytes(raw[:_HEADER_BYTES])
    found = (
        recipients.mailbox_for(addr)
        for header in _RECIPIENT_HEADERS
        for _, addr in getaddresses([str(v) for v in headers.get_all(header, [])])
    )
    mailboxes = tuple(dict.fromkeys(box for box in found if box))
    if not mailboxes and len(config.mailboxes) == 1:
        return (config.mailboxes[0].name,)
    if not mailboxes:
        raise PermanentRejection("no mailbox of ours among the recipients; pass --mailbox")
    return mailboxes


def _envelope_mailboxes(recipients: RecipientMap, envelope: tuple[str, ...]) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(box for box in map(recipients.mailbox_for, envelope) if box))
    if not found:
        raise PermanentRejection(f"no mailbox of ours among the recipients: {', '.join(envelope)}")
    return found
