"""The guard stage backed by ``pii_guard`` (its own recognizers, fully offline).

Subject, text and every scannable attachment are scanned under the mailbox's
policy; the new text of a reply is redacted with the same findings rules.
A huge body costs bounded memory: the guard scans long texts in overlapping
pieces (``pii_guard.chunks``).
Attachments that cannot be scanned (images, PDFs, office files) and scannable
ones that hold personal data are not stored unless the policy is ``off``:
what cannot be read cannot be vouched for.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailer.headers import decode_bytes
from mailer.parsing import Attachment, ParsedMessage
from pii_guard import NO_ALLOW, AllowList, GuardOutcome, PiiGuard, evaluate, is_scannable
from ticketing.pii_allow import party_allow
from ticketing.pipeline.guard import Policy
from ticketing.pipeline.types import GuardResult, Identity

__all__ = ["PresidioStage"]

_MAX_ATTACHMENT_TEXT = 200_000


@dataclass(frozen=True)
class PresidioStage:
    guard: PiiGuard
    desk: AllowList = NO_ALLOW  # the desk's own identity (``ticketing.pii_allow``)

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
        outcome = evaluate(self.guard, policy, fields, allow)
        new_text = message.new_text
        if outcome.action != "pass":
            new_text = self.guard.redact(new_text, self.guard.scan(new_text, allow))
        return GuardResult(
            outcome.action,
            outcome.fields["subject"],
            outcome.fields["text"],
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
    if index not in texts:
        return "dropped_unscannable"
    return "dropped_pii" if outcome.findings.get(f"attachment:{index}") else "stored"
