"""Stage *guard*: the PII policy of the mailbox, applied before anything is stored.

The pipeline depends on the small ``PiiStage`` protocol; the daemon passes
``PiiGuardStage``, backed by ``pii_guard`` (its own recognizers, fully
offline, with Presidio only where a spaCy model is installed).

Subject, text and the text read of every attachment are scanned under the mailbox's
policy; the new text of a reply is redacted with the same findings rules.
A huge body costs bounded memory: the guard scans long texts in overlapping
pieces (``pii_guard.chunks``), and bounded time: one budget of processor time
per message (``[pii] scan_budget_seconds``); what it does not reach is not kept
(``pii_guard.budget``).
Attachments (``ticketing.pipeline.attachments``): text files, forwarded mail, PDF
text layers, Word and Excel files are read and scanned like text, and every file name
too.  A file whose text holds personal data is never stored with it: under ``redact``
its redacted text is kept as a ``.txt`` file (``[pii] attachments_with_pii =
"redacted_text"``) or nothing is (``"drop"``); a clean file is kept as it came, under
its name redacted.  What cannot be read (images, encrypted or damaged documents, files
over ``[pii] max_document_bytes``, what the budget did not reach) is dropped with a
note unless the policy is ``off``: what cannot be read cannot be vouched for.
Recipients (the envelope's, else To and Cc) are stored redacted too: an address that
is neither the desk's nor the writer's as ``[REDACTED:EMAIL_ADDRESS]``, personal data in
a ``+tag`` in place.  They route the mail, they are not what it says: they neither count
as findings nor make a ``reject`` mailbox refuse it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from mailer.parsing import Attachment, ParsedMessage
from pii_guard import (
    NO_ALLOW,
    UNLIMITED,
    UNSCANNED,
    AllowList,
    Finding,
    GuardOutcome,
    PiiGuard,
    ScanBudget,
    evaluate,
    findings_in_piece,
)
from ticketing.incidents.parties import Identity
from ticketing.pipeline.attachments import (
    DEFAULT_RULES,
    AttachmentRules,
    Reading,
    read_attachment,
)
from ticketing.pipeline.types import GuardResult, KeptAttachment
from ticketing.privacy.allow import party_allow

__all__ = ["NoGuard", "PiiGuardStage", "PiiStage", "Policy", "strictest"]

Policy = Literal["reject", "redact", "off"]
_STRICTNESS: dict[Policy, int] = {"off": 0, "redact": 1, "reject": 2}
_ACTIONS = ("pass", "redact", "reject")  # in rising order
# The first line of a document kept as its redacted text: what it is and what it is not.
_TEXT_TITLE = (
    "Text of the attachment {name} ({type}) as the PII guard read it, with the personal"
    " data it found replaced; the original file was not kept."
)
_MAX_EXTENSION = 5  # characters after a file name's last dot that make it an extension
_LEFT_OUT = " Parts that could not be read were left out ({why})."
_REMEMBERED_RECIPIENTS = 1024  # (address, allow list) answers a stage keeps, then forgets


def strictest(policies: Iterable[Policy]) -> Policy:
    """reject > redact > off: a message that reached several mailboxes is held to the
    strictest promise any of them makes (``off`` when there is none)."""
    return max(policies, key=_STRICTNESS.__getitem__, default="off")


class PiiStage(Protocol):
    def check(
        self,
        policy: Policy,
        message: ParsedMessage,
        identity: Identity,
        recipients: Sequence[str] = (),
    ) -> GuardResult:
        """Decide pass, redact or reject for ``message`` under ``policy``; ``recipients``
        are the addresses that will be stored for it."""
        ...


class NoGuard:
    """Stores everything as it came: the behaviour of ``pii_policy = "off"``."""

    def check(
        self,
        policy: Policy,
        message: ParsedMessage,
        identity: Identity,
        recipients: Sequence[str] = (),
    ) -> GuardResult:
        return _as_it_came(message)


@dataclass(frozen=True)
class PiiGuardStage:
    guard: PiiGuard
    desk: AllowList = NO_ALLOW  # the desk's own identity (``ticketing.privacy.allow``)
    rules: AttachmentRules = DEFAULT_RULES  # [pii]: what is read of a file, and what kept
    # each recipient as stored, by (address, allow list): ``_recipient`` depends on nothing
    # else, and a writer's mail reaches the same mailbox of ours again and again
    _recipients: dict[tuple[str, AllowList], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def check(
        self,
        policy: Policy,
        message: ParsedMessage,
        identity: Identity,
        recipients: Sequence[str] = (),
    ) -> GuardResult:
        if policy == "off":
            return _as_it_came(message)
        allow = party_allow(
            self.desk,
            producer=identity.producer,
            address=identity.address,
            names=identity.own_names(message.from_name),  # a stranger's are not vouched for
        )
        budget = self.guard.budget()
        outcome, readings = self._scan(policy, message, allow, budget)
        return GuardResult(
            outcome.action,
            outcome.fields["subject"],
            outcome.fields["text"],
            self._new_text(message, outcome, allow, budget),
            outcome.counts,
            self._kept(message.attachments, readings, outcome),
            tuple(self._recipient(address, allow) for address in recipients),
        )

    def _new_text(
        self, message: ParsedMessage, outcome: GuardOutcome, allow: AllowList, budget: ScanBudget
    ) -> str:
        """The new text as it may be stored: as it came when nothing was found, else
        redacted by its own scan, or the stored text when the budget cut that scan."""
        text = outcome.fields["text"]
        if outcome.action == "pass":
            return message.new_text
        if message.new_text == message.text:
            # Exactly the text ``_scan`` just read, under the same allow list: the same
            # findings, so its redaction is the stored text, which is also what a scan the
            # budget cut (there, or here) keeps: one scan of it is enough.
            return text
        if "text" not in outcome.unscanned:  # the text's findings, all of them, in hand
            moved = findings_in_piece(message.text, message.new_text, outcome.findings["text"])
            if moved is not None:
                return self.guard.redact(message.new_text, moved)
        scan = self.guard.scan_within(message.new_text, budget, allow)
        # the stored text, read and redacted, says more than a note alone would
        return self.guard.redact(message.new_text, scan.findings) if scan.whole else text

    def _scan(
        self, policy: Policy, message: ParsedMessage, allow: AllowList, budget: ScanBudget
    ) -> tuple[GuardOutcome, list[Reading]]:
        """Subject and text first, then the file names (short: never cut by the budget),
        then what the budget leaves for reading and scanning the files."""
        head = {"subject": message.subject, "text": message.text}
        names = {f"name:{i}": _name_words(a) for i, a in enumerate(message.attachments)}
        outcomes = [
            evaluate(self.guard, policy, head, allow, budget),
            evaluate(self.guard, policy, names, allow, UNLIMITED),
        ]
        readings = [read_attachment(part, self.rules, budget) for part in message.attachments]
        files = {f"file:{i}": r.text for i, r in enumerate(readings) if r.text is not None}
        outcomes.append(evaluate(self.guard, policy, files, allow, budget))
        stopped = sum(r.stopped for r in readings)
        return _merged(policy, outcomes, stopped), readings

    def _kept(
        self, parts: tuple[Attachment, ...], readings: list[Reading], outcome: GuardOutcome
    ) -> tuple[KeptAttachment, ...]:
        return tuple(
            self._kept_one(part, reading, self._name(i, part, outcome), outcome, f"file:{i}")
            for i, (part, reading) in enumerate(zip(parts, readings, strict=True))
        )

    def _kept_one(
        self, part: Attachment, reading: Reading, name: str, outcome: GuardOutcome, key: str
    ) -> KeptAttachment:
        """The file as it came when all of it was read and nothing found; else its
        redacted text or nothing (``[pii] attachments_with_pii``); nothing when unread."""
        if outcome.action == "reject":  # listed only: nothing of a refused message is kept
            return _listed(part, name, "not_stored")
        if reading.text is None or key in outcome.unscanned:
            return _listed(part, name, "dropped_unscannable")
        found = bool(outcome.findings.get(key))
        if reading.whole and not found:
            return _listed(part, name, "stored", part.payload)
        if self.rules.with_pii == "drop":
            return _listed(part, name, "dropped_pii" if found else "dropped_unscannable")
        return _as_text(part, name, outcome.fields[key], reading)

    def _name(self, index: int, part: Attachment, outcome: GuardOutcome) -> str:
        """The file name redacted where its spaced-out copy had findings (same offsets)."""
        found = outcome.findings.get(f"name:{index}")
        return self.guard.redact(part.filename, found) if found else part.filename

    def _recipient(self, address: str, allow: AllowList) -> str:
        """``_stored_recipient``, remembered: the same address under an equal allow list
        (the same writer, desk and roster entry) is scanned once by this guard."""
        key = (address, allow)
        stored = self._recipients.get(key)
        if stored is None:
            if len(self._recipients) >= _REMEMBERED_RECIPIENTS:
                self._recipients.clear()  # (one call: threads may share the stage)
            stored = self._recipients[key] = self._stored_recipient(address, allow)
        return stored

    def _stored_recipient(self, address: str, allow: AllowList) -> str:
        """An address as it may be stored: redacted whole when it is a stranger's (its
        tag with it), else with personal data in its ``+tag`` redacted in place."""
        local, at, domain = address.rpartition("@")
        base, plus, tag = local.partition("+")
        plain = f"{base}@{domain}" if at else address
        found = self.guard.scan(plain, allow)
        if found:
            return self.guard.redact(plain, found)
        tagged = self.guard.scan(_spaced(tag), allow) if plus else []
        return f"{base}+{self.guard.redact(tag, tagged)}@{domain}" if tagged else address


def _as_it_came(message: ParsedMessage) -> GuardResult:
    """Everything stored as it came (``off``; no guard)."""
    files = tuple(_listed(a, a.filename, "stored", a.payload) for a in message.attachments)
    return GuardResult("pass", message.subject, message.text, message.new_text, attachments=files)


def _name_words(part: Attachment) -> str:
    """What a file name says: its stem as words (an extension, ``eml``, ``xlsx``, reads as
    a name to the tagger).  Outlook's ``winmail.dat`` is no one's."""
    if part.is_tnef:
        return ""
    stem, dot, extension = part.filename.rpartition(".")
    if not (dot and stem and extension.isalnum() and len(extension) <= _MAX_EXTENSION):
        stem = part.filename
    return _spaced(stem)


def _spaced(name: str) -> str:
    """``Maria_Gonzalez.SSN`` as words, for the recognizers; the same length, so a finding's
    offsets hold in the name as written."""
    return name.replace("_", " ").replace(".", " ").replace("+", " ")


def _merged(policy: Policy, outcomes: list[GuardOutcome], stopped: int) -> GuardOutcome:
    """One outcome of several scans of the message; ``stopped`` files whose reading the
    budget cut are not read, as a field the budget did not reach."""
    counts: Counter[str] = Counter()
    fields: dict[str, str] = {}
    findings: dict[str, list[Finding]] = {}
    unscanned: dict[str, int] = {}
    for outcome in outcomes:
        counts.update(outcome.counts)
        fields.update(outcome.fields)
        findings.update(outcome.findings)
        unscanned.update(outcome.unscanned)
    action = max((o.action for o in outcomes), key=_ACTIONS.index)
    if stopped:
        counts[UNSCANNED] += stopped
        action = "reject" if policy == "reject" else max(action, "redact", key=_ACTIONS.index)
    return GuardOutcome(action, fields, dict(counts), findings, unscanned)


def _listed(
    part: Attachment, name: str, disposition: str, content: bytes | None = None
) -> KeptAttachment:
    return KeptAttachment(disposition, name, part.content_type, part.size, part.sha256, content)


def _as_text(part: Attachment, name: str, text: str, reading: Reading) -> KeptAttachment:
    """The redacted text as a UTF-8 text file, its first line saying what it is."""
    title = _TEXT_TITLE.format(name=name or "(no name)", type=part.content_type)
    if not reading.whole:
        title += _LEFT_OUT.format(why=reading.why or "unreadable")
    content = f"{title}\n\n{text}".encode()
    filename = name if name.lower().endswith(".txt") else f"{name or 'attachment'}.txt"
    digest = hashlib.sha256(content).hexdigest()
    return KeptAttachment("stored_redacted", filename, "text/plain", len(content), digest, content)
