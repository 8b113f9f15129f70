"""The intake pipeline: the one place that knows the order of the stages.

    parse -> screen -> identify -> guard -> [ match -> record -> replies ] -> outcome
                                            one transaction

Parsing, screening and the PII guard (the CPU-heavy part) run before the
transaction; matching runs inside it, so what it found cannot change before
the commit.  The adapter (SMTP, pipe, IMAP) acknowledges only after
``process`` returns, that is after the commit.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from mailer.parsing import ParsedMessage, parse_message
from mailer.screening import OwnIdentity, Screening, screen
from ticketing import metrics
from ticketing.config import Config, MailboxConfig
from ticketing.db import transaction
from ticketing.pipeline.guard import PiiStage
from ticketing.pipeline.identify import identify
from ticketing.pipeline.limits import check_header_count, check_size
from ticketing.pipeline.match import MatchContext, match_incident
from ticketing.pipeline.record import (
    Prepared,
    find_duplicate,
    note_duplicate,
    record,
)
from ticketing.pipeline.replies import ReplySink
from ticketing.pipeline.types import (
    GuardResult,
    Identity,
    Outcome,
    PermanentRejection,
    RawMessage,
)
from ticketing.sla.clocks import SlaClocks
from ticketing.tokens import RefTokens

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
    replies: ReplySink
    own: OwnIdentity
    clocks: SlaClocks

    def process(self, raw: RawMessage) -> Outcome:
        """Record ``raw`` once; raise ``PermanentRejection`` or ``StorageError``.

        Every call is counted and timed for ``/metrics``, refusals and failures too.
        """
        with metrics.observe_intake(raw.source) as observed:
            outcome, findings = self._process(raw)
            observed(outcome, findings)
        return outcome

    def _process(self, raw: RawMessage) -> tuple[Outcome, dict[str, int]]:
        check_size(raw.raw, self.config.smtp)
        parsed = parse_message(raw.raw)
        check_header_count(sum(len(v) for v in parsed.headers.values()), self.config.smtp)
        mailbox = self._mailbox(raw)
        identity, screening, guarded = self._assess(raw, parsed, mailbox)
        prep = Prepared(raw, parsed, dedup_key(parsed), mailbox, screening, identity, guarded)
        try:
            outcome = self._record(prep)
        except IntegrityError:  # the same message committed meanwhile by another worker
            outcome = self._record(prep)
        log.info(
            "message %s from %s: %s (incident %s, %s)",
            outcome.message_row_id,
            raw.source,
            outcome.action,
            outcome.incident_number or "-",
            outcome.kind,
        )
        return outcome, guarded.counts

    def _assess(
        self, raw: RawMessage, parsed: ParsedMessage, mailbox: MailboxConfig
    ) -> tuple[Identity, Screening, GuardResult]:
        """Who wrote, whether a machine did, and what of it may be stored.

        Mail from a shared mailbox's sent folder was written by a caseworker, often
        from the mailbox's own address, so that address does not mark it as our own
        mail coming back; our Message-IDs and X-Loop still do.  It is redacted, never
        rejected: a reject would answer the caseworker and lose the reply.
        """
        if raw.origin == "sent":
            identity = Identity(parsed.from_address, name=parsed.from_name, is_staff=True)
            own = replace(self.own, addresses=frozenset())
            policy = "redact" if mailbox.pii_policy == "reject" else mailbox.pii_policy
            screening = screen(parsed, raw.envelope_from, own)
            return identity, screening, self.guard.check(policy, parsed, identity)
        with transaction(self.engine, readonly=True) as session:
            identity = identify(session, parsed, self.config.staff)
        screening = screen(parsed, raw.envelope_from, self.own)
        return identity, screening, self.guard.check(mailbox.pii_policy, parsed, identity)

    def _record(self, prep: Prepared) -> Outcome:
        with transaction(self.engine) as session:
            existing = find_duplicate(session, prep.dedup_key)
            if existing is not None:
                return note_duplicate(session, existing, prep.raw)
            context = MatchContext(self.tokens, self.secret)
            match = match_incident(session, prep.parsed, prep.screening, prep.identity, context)
            return record(session, prep, match, self.config, self.replies, self.clocks)

    def _mailbox(self, raw: RawMessage) -> MailboxConfig:
        if not raw.mailboxes:
            raise PermanentRejection("no mailbox of ours among the recipients")
        try:
            return self.config.mailbox(raw.mailboxes[0])
        except KeyError:
            raise PermanentRejection(f"unknown mailbox '{raw.mailboxes[0]}'") from None
