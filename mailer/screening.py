"""Screening: is this a person writing, or a machine (auto-reply, bounce, list, loop)?

Rules run in order and the first that matches decides (a table, as in
Mailman's chains).  Anything automatic is recorded but never answered and
never opens an incident — RFC 3834's rules for responders, plus the habits of
real mail systems (Outlook, Gmail, Apple Mail, Lotus Notes, list servers).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from typing import Literal

from mailer.addresses import base_address
from mailer.bounces import Failure, failures
from mailer.headers import message_ids
from mailer.parsing import ParsedMessage

__all__ = ["OwnIdentity", "Screening", "screen"]

Kind = Literal["normal", "auto_reply", "bulk", "bounce", "feedback", "loop"]


@dataclass(frozen=True)
class OwnIdentity:
    """How ticketd recognises its own mail coming back."""

    addresses: frozenset[str]
    message_id_domain: str
    loop_marker: str
    # How our Message-IDs begin: the desk's own people write from the same domain, so
    # the domain alone would take a caseworker's mail for ours.
    message_id_prefix: str = ""


@dataclass(frozen=True)
class Screening:
    """What screening found; for a bounce, its failed recipients (``failures`` with the
    status of each) and the Message-ID of the mail it returns."""

    kind: Kind
    reason: str
    no_reply: bool = False
    failed_recipients: tuple[str, ...] = ()
    original_message_id: str | None = None
    failures: tuple[Failure, ...] = ()

    @property
    def automatic(self) -> bool:
        return self.kind != "normal"


@dataclass(frozen=True)
class _Input:
    message: ParsedMessage
    envelope_from: str | None
    own: OwnIdentity


Rule = Callable[[_Input], Screening | None]

_OOO_SUBJECT = re.compile(
    r"^\s*(auto(matic|matische)?[ -]?(reply|response|antwort)\b|auto:|out of (the )?office"
    r"|respuesta autom[aá]tica|r[ée]ponse automatique|abwesenheit|autosvar|fuera de la oficina"
    r"|\[auto generated\]|on vacation\b|vacation reply)",
    re.IGNORECASE,
)
_OOO_BODY = re.compile(
    r"\b(i am|i['\u2019]m|i will be)\b[^.\n]{0,40}"
    r"\b(out of (the )?office|on vacation|on leave|away from)"
    r"|\bestoy fuera de la oficina\b|\bthis is an automatic(ally generated)? (reply|response)\b",
    re.IGNORECASE,
)
_BOUNCE_SENDER = re.compile(r"daemon|postmaster|mailer|bounce|mail-?delivery|mdaemon", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|deliver(y|ed)?\s+(status|fail|notification|problem|report)|returned mail"
    r"|failure notice|mail delivery|could not be delivered|non-?delivery|delivery has failed"
    r"|nicht zustellbar|unzustellbar|not delivered|rejected|bounced?\b|returned to sender"
    r"|mail system error|warning: could not send|failed mail",
    re.IGNORECASE,
)
_BULK_PRECEDENCE = {"bulk", "junk", "list"}
_ROBOT_LOCALPARTS = re.compile(r"^(mailer-daemon|postmaster)$", re.IGNORECASE)
_NOREPLY_LOCALPARTS = re.compile(r"^(no-?reply|do-?not-?reply|abuse|bounces?)([+.-].*)?$", re.I)
_OOO_BODY_MAX = 800


def screen(message: ParsedMessage, envelope_from: str | None, own: OwnIdentity) -> Screening:
    """Classify ``message``; the first matching rule wins."""
    given = _Input(message, envelope_from, own)
    for rule in RULES:
        verdict = rule(given)
        if verdict is not None:
            return verdict
    suppress = bool(message.header("x-auto-response-suppress"))
    return Screening("normal", "", no_reply=suppress)


def _from_ourselves(given: _Input) -> Screening | None:
    sender = given.message.from_address
    if sender and base_address(sender) in given.own.addresses:
        return Screening("loop", "sent from our own address", no_reply=True)
    msgid = (given.message.message_id or "").lower()
    own = given.own
    if (
        own.message_id_domain
        and msgid.startswith(own.message_id_prefix)
        and msgid.endswith(f"@{own.message_id_domain}>")
    ):
        return Screening("loop", "carries our own Message-ID", no_reply=True)
    if any(given.own.loop_marker in v for v in given.message.headers.get("x-loop", ())):
        return Screening("loop", "carries our X-Loop marker", no_reply=True)
    return None


def _report(given: _Input) -> Screening | None:
    """multipart/report: a DSN (bounce or delay), an ARF complaint, or a read receipt."""
    if given.message.content_type != "multipart/report":
        return None
    report_type = _param(given.message, "report-type")
    if report_type == "feedback-report":
        return Screening("feedback", "ARF feedback report", no_reply=True)
    if report_type == "disposition-notification":
        return Screening("auto_reply", "read receipt (MDN)", no_reply=True)
    return _bounce(given, "delivery status notification")


def _bounce_content(given: _Input) -> Screening | None:
    """Non-standard bounces.  Only mail that looks like one is handed to the bounce
    detectors: on ordinary replies they find "failed recipients" that are not."""
    robot = _robot_or_missing_sender(given)
    subject = bool(_BOUNCE_SUBJECT.search(given.message.subject))
    if not (robot or subject):
        return None
    found = failures(given.message)
    # A robot's failure notice with no recipient found: a bounce unless it declares
    # itself an auto-reply (then the header rules below decide).
    declared = bool(given.message.header("auto-submitted"))
    if found or (robot and subject and not declared):
        return _bounce(given, "bounce", found)
    return None


def _robot_or_missing_sender(given: _Input) -> bool:
    local = (given.message.from_address or "").split("@", 1)[0]
    null_sender = given.envelope_from is not None and not given.envelope_from.strip("<> ")
    return null_sender or not local or bool(_BOUNCE_SENDER.search(local))


def _bounce(given: _Input, reason: str, found: tuple[Failure, ...] | None = None) -> Screening:
    found = failures(given.message) if found is None else found
    return Screening(
        "bounce",
        reason,
        no_reply=True,
        failed_recipients=tuple(sorted({a for failure in found for a in failure.addresses})),
        original_message_id=_original_message_id(given.message),
        failures=found,
    )


def _auto_headers(given: _Input) -> Screening | None:
    headers = given.message.headers
    auto_submitted = given.message.header("auto-submitted").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return Screening("auto_reply", f"Auto-Submitted: {auto_submitted}", no_reply=True)
    for name in ("x-autoreply", "x-autorespond", "x-autoreply-from", "x-mail-autoreply"):
        if name in headers:
            return Screening("auto_reply", f"{name} header", no_reply=True)
    precedence = given.message.header("precedence").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return Screening("bulk", f"Precedence: {precedence}", no_reply=True)
    if precedence == "auto_reply":
        return Screening("auto_reply", "Precedence: auto_reply", no_reply=True)
    if "list-id" in headers:
        return Screening("bulk", "mailing list (List-Id)", no_reply=True)
    return None


def _robot_sender(given: _Input) -> Screening | None:
    sender = given.message.from_address or ""
    local = sender.split("@", 1)[0]
    if _ROBOT_LOCALPARTS.match(local):
        return _bounce(given, f"from {local.lower()}")
    if _NOREPLY_LOCALPARTS.match(local):
        return Screening("auto_reply", "sent from a role address that takes no replies", True)
    if given.envelope_from is not None and given.envelope_from.strip("<> ") == "":
        return Screening("auto_reply", "null return path", no_reply=True)
    return None


def _out_of_office(given: _Input) -> Screening | None:
    if _OOO_SUBJECT.search(given.message.subject):
        return Screening("auto_reply", "out-of-office subject", no_reply=True)
    text = given.message.new_text
    if len(text) <= _OOO_BODY_MAX and _OOO_BODY.search(text[:300]):
        return Screening("auto_reply", "out-of-office text", no_reply=True)
    return None


RULES: tuple[Rule, ...] = (
    _from_ourselves,
    _report,
    _bounce_content,
    _auto_headers,
    _robot_sender,
    _out_of_office,
)


def _param(message: ParsedMessage, name: str) -> str:
    try:
        value = message.message.get_param(name, header="content-type")
    except (ValueError, IndexError, AttributeError):
        return ""
    return value.lower() if isinstance(value, str) else ""


def _original_message_id(message: ParsedMessage) -> str | None:
    """The Message-ID of the mail a bounce returns: from its attached copy or headers,
    else from a ``Message-ID:`` line quoted in the notice."""
    for part in message.message.walk():
        found = _returned_ids(part)
        if found:
            return found[0]
    match = re.search(r"^\s*Message-ID:\s*(<[^<>\s]+>)", message.text, re.IGNORECASE | re.M)
    return match.group(1) if match else None


def _returned_ids(part: Message) -> tuple[str, ...]:
    try:
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                return message_ids(str(inner.get("Message-ID", "")))
            return ()
        if content_type == "text/rfc822-headers":
            data = part.get_payload(decode=True)
            headers = message_from_bytes(data if isinstance(data, bytes) else b"")
            return message_ids(str(headers.get("Message-ID", "")))
    except (ValueError, IndexError, AttributeError, LookupError, TypeError):
        return ()
    return ()
