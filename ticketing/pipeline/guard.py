"""Stage *guard*: the PII policy of the mailbox, applied before anything is stored.

The pipeline depends on the small ``PiiStage`` protocol; the daemon passes
``PiiGuardStage``, backed by ``pii_guard`` (its own recognizers, fully
offline, with Presidio only where a spaCy model is installed).

Subject, text and every scannable attachment are scanned under the mailbox's
policy; the new text of a reply is redacted with the same findings rules.
A huge body costs bounded memory: the guard scans long texts in overlapping
pieces (``pii_guard.chunks``), and bounded time: one budget of processor time
per message (``[pii] scan_budget_seconds``); what it does not reach is not kept
(``pii_guard.budget``).
Attachments that cannot be scanned (images, PDFs, office files) and scannable
ones that hold personal data are not stored unless the policy is ``off``:
what cannot be read cannot be vouched for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from mailer.headers import decode_bytes
from mailer.parsing import Attachment, ParsedMessage
from pii_guard import NO_ALLOW, AllowList, GuardOutcome, PiiGuard, evaluate, is_scannable
from ticketing.incidents.parties import Identity
from ticketing.pipeline.types import GuardResult
from ticketing.privacy.allow import party_allow

__all__ = ["NoGuard", "PiiGuardStage", "PiiStage", "Policy", "strictest"]

Policy = Literal["reject", "redact", "off"]
_STRICTNESS: dict[Policy, int] = {"off": 0, "redact": 1, "reject": 2}
_MAX_ATTACHMENT_TEXT = 200_000


def strictest(policies: Iterable[Policy]) -> Policy:
    """reject > redact > off: a message that reached several mailboxes is held to the
    strictest promise any of them makes (``off`` when there is none)."""
    return max(policies, key=_STRICTNESS.__getitem__, default="off")


class PiiStage(Protocol):
    def check(self, policy: Policy, message: ParsedMessage, identity: Identity) -> GuardResult:
        """Decide pass, redact or reject for ``message`` under ``policy``."""
        ...


class NoGuard:
    """Stores everything as it came: the behaviour of ``pii_policy = "off"``."""

    def check(self, policy: Policy, message: ParsedMessage, identity: Identity) -> GuardResult:
        return GuardResult("pass", message.subject, message.text, message.new_text)


@dataclass(frozen=True)
class PiiGuardStage:
    guard: PiiGuard
    desk: AllowList = NO_ALLOW  # the desk's own identity (``ticketing.privacy.allow``)

    def check(self, policy: Policy, message: ParsedMessage, identity: Identity) -> GuardResult:
        if policy == "off":
            stored = ("stored",) * len(message.attachments)
            return GuardResult(
                "pass", message.subject, message.text, message.new_text, attachments=stored
            )
        allow = party_allow(
            self.desk,
            producer=identity.producer,
            address=identity.address,
            names=(identity.name, message.from_name),
        )
        texts = _attachment_texts(message.attachments)
        fields = {"subject": message.subject, "text": message.text}
        fields.update({f"attachment:{i}": text for i, text in texts.items()})
        budget = self.guard.budget()
        outcome = evaluate(self.guard, policy, fields, allow, budget)
        text, new_text = outcome.fields["text"], message.new_text
        if outcome.action != "pass":
            scan = self.guard.scan_within(new_text, budget, allow)
            # the stored text, read and redacted, says more than a note alone would
            new_text = self.guard.redact(new_text, scan.findings) if scan.whole else text
        return GuardResult(
            outcome.action,
            outcome.fields["subject"],
            text,
            new_text,
            outcome.counts,
            tuple(_disposition(i, a, outcome, texts) for i, a in enumerate(message.attachments)),
        )


def _attachment_texts(attachments: tuple[Attachment, ...]) -> dict[int, str]:
    return {
        index: decode_bytes(part.payload[:_MAX_ATTACHMENT_TEXT])
        for index, part in enumerate(attachments)
        if is_scannable(part.content_type) and part.size <= _MAX_ATTACHMENT_TEXT
    }


def _disposition(index: int, part: Attachment, outcome: GuardOutcome, texts: dict[int, str]) -> str:
    name = f"attachment:{index}"
    if index not in texts or name in outcome.unscanned:
        return "dropped_unscannable"
    return "dropped_pii" if outcome.findings.get(name) else "stored"
