"""The intake pipeline: the one place that knows the order of the stages.

    parse -> authenticate -> screen -> identify -> guard -> [ match -> record -> order replies ]
                                                             one transaction       -> compose

Parsing, screening and the PII guard (the CPU-heavy part) run before the
transaction; matching runs inside it, so what it found cannot change before
the commit.  Replies are ordered in the transaction and composed (rendered
and scanned) after it, so the writers' turn is not spent on templates.  The
adapter (SMTP, pipe, IMAP) acknowledges only after ``process`` returns, that
is after the commit.  ``process_batch`` records
several messages with one commit (the spool's worker processes under load),
each as ``process`` would.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from mailer.parsing import ParsedMessage, parse_message
from mailer.recipients import RecipientMap
from mailer.screening import OwnIdentity, Screening, screen
from mailer.sender_auth import SenderAuth
from ticketing.config import Config, MailboxConfig
from ticketing.errors import PermanentRejection, StorageError
from ticketing.incidents.parties import Identity
from ticketing.outbound.sinks import Replies, ReplySink, compose_committed
from ticketing.pipeline.authenticate import Authenticator
from ticketing.pipeline.guard import PiiStage, Policy, strictest
from ticketing.pipeline.identify import addressed_producer, identify
from ticketing.pipeline.limits import check_header_count, check_size
from ticketing.pipeline.match import MatchContext, match_incident
from ticketing.pipeline.record import (
    Prepared,
    find_duplicate,
    note_duplicate,
    recipients_of,
    record,
)
from ticketing.pipeline.types import GuardResult, Outcome, RawMessage
from ticketing.pipeline.verdict import Verdict, log_defect, observe, verdict_of
from ticketing.signing.desk_addresses import DeskRoute, desk_route
from ticketing.signing.tokens import RefTokens
from ticketing.sla.clocks import SlaClocks
from ticketing.store.db import transaction
from ticketing.store.models import Incident, Producer

__all__ = ["IntakePipeline", "dedup_key"]

log = logging.getLogger(__name__)


def dedup_key(message: ParsedMessage) -> str:
    """Same Message-ID and same content (trace headers aside) = the same message."""
    basis = f"{message.message_id or ''}\0{message.content_sha256}"
    return hashlib.sha256(basis.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class IntakePipeline:
    config: Config
    engine: Engine
    tokens: RefTokens
    secret: bytes
    guard: PiiStage
    replies: Replies
    own: OwnIdentity
    clocks: SlaClocks
    recipients: RecipientMap  # our addresses, to find our other mailboxes among To and Cc

    def process(self, raw: RawMessage) -> Outcome:
        """Record ``raw`` once; raise ``PermanentRejection`` or ``StorageError``.

        Every call is counted and timed for ``/metrics``, refusals and failures too.
        """
        started = time.perf_counter()
        try:
            with transaction(self.engine, readonly=True) as lookups:
                prep = self._prepare(raw, lookups)
            outcome = self._record_alone(prep)
        except Exception as exc:
            observe(raw.source, exc, {}, started)
            raise
        observe(raw.source, outcome, prep.guard.counts, started)
        return outcome

    def judge(self, raw: RawMessage) -> Verdict:
        """``process``, with whatever happens returned as a verdict (never raised)."""
        try:
            return Verdict("accepted", self.process(raw))
        except Exception as exc:  # noqa: BLE001  every error becomes a verdict (logged below)
            verdict = verdict_of(exc)
            if verdict.kind == "defect":
                log_defect(log, "intake of a %s message failed", raw.source, error=exc)
            return verdict

    def process_batch(self, raws: Sequence[RawMessage]) -> list[Outcome | Exception]:
        """Record several messages with one commit; per message, what ``process`` would
        have returned, or the exception it would have raised.

        Under load a worker finds several messages waiting.  Recording them in one
        transaction (group commit) takes the writers' turn, the session and the
        durable commit once instead of once each, and SQLite writers are serial, so
        that is what bounds throughput.  When the shared transaction fails, each
        message is recorded alone: one bad message never costs the others theirs.
        """
        started = time.perf_counter()
        try:
            failed, prepared = self._prepare_all(raws)
        except StorageError as exc:  # no lookups: every message waits
            failed, prepared = dict.fromkeys(range(len(raws)), exc), {}
        except SQLAlchemyError:  # one message's value, maybe: each is looked up alone
            failed, prepared = self._prepare_each(raws)
        results = {**failed, **self._record_together(prepared)}
        for index, raw in enumerate(raws):
            found = prepared[index].guard.counts if index in prepared else {}
            observe(raw.source, results[index], found, started)
        return [results[index] for index in range(len(raws))]

    def _prepare_all(
        self, raws: Sequence[RawMessage]
    ) -> tuple[dict[int, Exception], dict[int, Prepared]]:
        """``_prepare`` for each message (by index), sharing one read-only transaction for
        the lookups; the exception of each message that cannot be prepared."""
        failed: dict[int, Exception] = {}
        prepared: dict[int, Prepared] = {}
        with transaction(self.engine, readonly=True) as lookups:
            for index, raw in enumerate(raws):
                try:
                    prepared[index] = self._prepare(raw, lookups)
                except SQLAlchemyError:  # the lookups' session is lost: all of them wait
                    raise
                except Exception as exc:  # noqa: BLE001  handed on, as process raises it
                    failed[index] = exc
        return failed, prepared

    def _prepare_each(
        self, raws: Sequence[RawMessage]
    ) -> tuple[dict[int, Exception], dict[int, Prepared]]:
        """``_prepare_all`` with a read-only transaction per message: the shared one failed,
        and a value one message brought (a NUL, on PostgreSQL) must not fail the others."""
        failed: dict[int, Exception] = {}
        prepared: dict[int, Prepared] = {}
        for index, raw in enumerate(raws):
            try:
                with transaction(self.engine, readonly=True) as lookups:
                    prepared[index] = self._prepare(raw, lookups)
            except Exception as exc:  # noqa: BLE001  handed on, as process raises it
                failed[index] = exc
        return failed, prepared

    def _prepare(self, raw: RawMessage, lookups: Session) -> Prepared:
        """Every stage before the recording transaction: parse, screen, identify, guard."""
        check_size(raw.raw, self.config.smtp)
        parsed = parse_message(raw.raw)
        check_header_count(sum(len(v) for v in parsed.headers.values()), self.config.smtp)
        mailbox = self._mailbox(raw)
        policy = strictest(box.pii_policy for box in self._reached(raw, parsed))
        auth = Authenticator(self.config).check(raw, parsed)
        desk = self._desk_route(raw, parsed)
        identity, screening, guarded = self._assess(raw, parsed, policy, auth, lookups, desk)
        return Prepared(
            raw, parsed, dedup_key(parsed), mailbox, screening, identity, guarded, auth, desk
        )

    def _desk_route(self, raw: RawMessage, parsed: ParsedMessage) -> DeskRoute | None:
        """The desk reply or note address (signed by us) the message was written to."""
        if raw.origin != "received":
            return None
        return desk_route((*raw.recipients, *parsed.to, *parsed.cc), self.secret)

    def _record_together(self, prepared: dict[int, Prepared]) -> dict[int, Outcome | Exception]:
        if len(prepared) > 1:
            replies = self.replies.batch()
            try:
                with transaction(self.engine) as session:
                    together = {
                        i: self._record_in(session, p, replies) for i, p in prepared.items()
                    }
            except Exception as exc:  # noqa: BLE001  a duplicate committed meanwhile, a bug, an outage
                log.info("group commit failed (%s): recording one by one", type(exc).__name__)
            else:
                compose_committed(replies.compose)
                for prep, outcome in zip(prepared.values(), together.values(), strict=True):
                    _log_outcome(prep, outcome)
                return dict(together)
        results: dict[int, Outcome | Exception] = {}
        for index, prep in prepared.items():
            try:
                results[index] = self._record_alone(prep)
            except Exception as exc:  # noqa: BLE001  handed to the caller, as process raises it
                results[index] = exc
        return results

    def _record_alone(self, prep: Prepared) -> Outcome:
        """One message, one transaction (retried once when the same message was
        committed meanwhile by another worker: then it is a duplicate)."""
        try:
            outcome = self._record(prep)
        except IntegrityError:
            outcome = self._record(prep)
        _log_outcome(prep, outcome)
        return outcome

    def _assess(
        self,
        raw: RawMessage,
        parsed: ParsedMessage,
        policy: Policy,
        auth: SenderAuth,
        lookups: Session,
        desk: DeskRoute | None = None,
    ) -> tuple[Identity, Screening, GuardResult]:
        """Who wrote, whether a machine did, and what of it may be stored.

        Mail from a shared mailbox's sent folder was written by a caseworker, often
        from the mailbox's own address, so that address does not mark it as our own
        mail coming back; our Message-IDs and X-Loop still do.  It is redacted, never
        rejected: a reject would answer the caseworker and lose the reply.
        """
        to = recipients_of(raw, parsed)  # stored with the message: the guard redacts them
        if raw.origin == "sent":
            identity = Identity(
                parsed.from_address, name=parsed.from_name, is_staff=True, authenticated=True
            )
            own = replace(self.own, addresses=frozenset())
            screening = screen(parsed, raw.envelope_from, own)
            redact = "redact" if policy == "reject" else policy
            guarded = self._guard_staff_mail(redact, parsed, identity, lookups, to)
            return identity, screening, guarded
        identity = identify(lookups, parsed, self.config.staff, authenticated=auth.authenticated)
        screening = screen(parsed, raw.envelope_from, self.own)
        if desk is not None and identity.is_staff:
            return identity, screening, self._guard_desk_mail(parsed, identity, desk, lookups, to)
        if identity.is_staff:
            guarded = self._guard_staff_mail(policy, parsed, identity, lookups, to)
            return identity, screening, guarded
        return identity, screening, self.guard.check(policy, parsed, identity, to)

    def _guard_staff_mail(
        self,
        policy: Policy,
        parsed: ParsedMessage,
        identity: Identity,
        lookups: Session,
        to: tuple[str, ...],
    ) -> GuardResult:
        """A caseworker's mail to a producer: the producer it is addressed to is allowed
        (their name and address in the greeting and the quoted mail are no consumer's)."""
        producer = addressed_producer(lookups, parsed)
        return self.guard.check(policy, parsed, replace(identity, producer=producer), to)

    def _guard_desk_mail(
        self,
        parsed: ParsedMessage,
        identity: Identity,
        desk: DeskRoute,
        lookups: Session,
        to: tuple[str, ...],
    ) -> GuardResult:
        """A caseworker's reply or note: only what they wrote is judged (the quoted desk
        copy holds nothing the guard did not pass, and names the producer), with the
        incident's producer and the caseworker themselves allowed, and always redacted,
        never rejected: a refusal would lose their words, a reply with data is held."""
        incident = lookups.get(Incident, desk.incident_id)
        producer = (
            lookups.get(Producer, incident.producer_id)
            if incident and incident.producer_id
            else None
        )
        own_words = replace(parsed, text=parsed.new_text)
        return self.guard.check("redact", own_words, replace(identity, producer=producer), to)

    def _record(self, prep: Prepared) -> Outcome:
        replies = self.replies.batch()
        with transaction(self.engine) as session:
            outcome = self._record_in(session, prep, replies)
        compose_committed(replies.compose)
        return outcome

    def _record_in(self, session: Session, prep: Prepared, replies: ReplySink) -> Outcome:
        existing = find_duplicate(session, prep.dedup_key)
        if existing is not None:
            return note_duplicate(session, existing, prep.raw)
        context = MatchContext(self.tokens, self.secret)
        match = match_incident(session, prep.parsed, prep.screening, prep.identity, context)
        return record(session, prep, match, self.config, replies, self.clocks, secret=self.secret)

    def _reached(self, raw: RawMessage, parsed: ParsedMessage) -> list[MailboxConfig]:
        """Every mailbox of ours the message reached: those it was delivered to, and our
        addresses among its To and Cc.  The latter covers the channels that see one
        mailbox (IMAP, the pipe) and an MTA that splits one message per recipient: its
        other copy would be a duplicate, already recorded under the laxer policy."""
        addressed = (self.recipients.mailbox_for(a) for a in (*parsed.to, *parsed.cc))
        names = dict.fromkeys((*raw.mailboxes, *(name for name in addressed if name)))
        return [box for box in self.config.mailboxes if box.name in names]

    def _mailbox(self, raw: RawMessage) -> MailboxConfig:
        if not raw.mailboxes:
            raise PermanentRejection("no mailbox of ours among the recipients")
        try:
            return self.config.mailbox(raw.mailboxes[0])
        except KeyError:
            raise PermanentRejection(f"unknown mailbox '{raw.mailboxes[0]}'") from None


def _log_outcome(prep: Prepared, outcome: Outcome) -> None:
    log.info(
        "message %s from %s: %s (incident %s, %s)",
        outcome.message_row_id,
        prep.raw.source,
        outcome.action,
        outcome.incident_number or "-",
        outcome.kind,
    )
