"""Screening: is this a person writing, or a machine?

Rules run in order and the first that matches decides (a table, as in
Mailman's chains).  Anything automatic is recorded but never answered and
never opens an incident — RFC 3834's rules for responders, plus the habits of
real mail systems (Outlook, Gmail, Apple Mail, Lotus Notes, list servers).

=====================  ==========  =================================================
rule                   kind        what it matches
=====================  ==========  =================================================
``_from_ourselves``    loop        our own address, Message-ID or X-Loop marker
``_challenge``         challenge   challenge-response (TMDA, SpamArrest, Boxbe,
                                   Bluebottle: "please verify you are human"); before
                                   the DSN rule, since Boxbe wraps its challenge in one
``_report``            bounce,     multipart/report by its report-type: delivery-status
                       feedback,   (a DSN), feedback-report (ARF: Hotmail, Yahoo, AOL
                       receipt,    complaint loops), disposition-notification (an MDN),
                       report      tlsrpt (RFC 8460 TLS report)
``_read_receipt``      receipt     an MDN part elsewhere; Outlook's receipt in TNEF
                                   (winmail.dat of class ``REPORT.IPM.Note.IPNRN`` &c.);
                                   a "Read:" subject whose text says "was read on"
``_mail_report``       report      DMARC aggregate (rua) and TLS reports sent without
                                   multipart/report: "Report domain: … Submitter: …"
                                   subject, ``TLS-Report-Domain``, a report attachment
                                   named ``submitter!domain!begin!end…``
``_bounce_content``    bounce      a robot or null sender with a failure subject (even
                                   with ``Auto-Submitted: auto-replied``), or one whose
                                   failed recipients ``mailer/bounces.py`` finds
``_list_admin``        list        a list server's own notices: X-List-Administrivia,
                                   or an owner/request/admin/bounces/mailman/sympa
                                   sender of a list, or a mail-loop notice of a list
``_auto_headers``      auto_reply  Auto-Submitted, X-Autoreply & co., Precedence:
                       bulk        auto_reply → auto_reply; Precedence bulk/junk/list,
                                   List-Id → bulk
``_robot_sender``      bounce,     mailer-daemon / postmaster (any spelling) → bounce;
                       auto_reply  no-reply, do-not-reply, bounces, abuse; a null return
                                   path → auto_reply
``_out_of_office``     auto_reply  out-of-office subjects and short texts
=====================  ==========  =================================================

The null return path is the envelope sender when the adapter knows it (SMTP, or
``ticketd ingest --sender``); where it is unknown (IMAP, the pipe) the
``Return-Path: <>`` the delivering MTA wrote stands for it — never when an
envelope sender is known, since anyone can write that header.

What stays a person: ``Auto-Submitted: no`` declares one, so the weaker signs
(Precedence, List-Id, a no-reply-like address, an out-of-office subject) do not
make the mail automatic: it is handled, and with Precedence bulk/junk/list or a
no-reply-like address never auto-answered (``no_reply``), like mail carrying
Outlook's ``X-Auto-Response-Suppress``.  A request for a read receipt
(``Disposition-Notification-To``) is not a receipt.
A sender whose address is no-reply-like is a notification system, not a producer:
our answer could not reach it, so its mail is recorded for staff, unanswered.
A subject that only quotes a failure (``Fwd: Undeliverable: …``) is a person
forwarding a bounce, and only a robot's notice is read for failed addresses
(``mailer/bounce_notices.py``).  Marketing mail with Precedence: bulk is bulk
(RFC 3834): recorded, never answered, never an incident.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from typing import Literal

from tnefparse import TNEF

from mailer.addresses import base_address
from mailer.bounces import Failure, failures
from mailer.headers import message_ids
from mailer.parsing import ParsedMessage

__all__ = ["Kind", "OwnIdentity", "Screening", "screen"]

Kind = Literal[
    "normal",
    "auto_reply",
    "bulk",
    "bounce",
    "feedback",
    "report",
    "receipt",
    "list",
    "challenge",
    "loop",
]


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

    @property
    def local_part(self) -> str:
        """The From address's local part, lower-case, without ``+tag``, ``-``, ``_``, ``.``."""
        local = (self.message.from_address or "").split("@", 1)[0].split("+", 1)[0]
        return re.sub(r"[-_.]", "", local.lower())

    @property
    def null_sender(self) -> bool:
        """A null return path: the envelope's when known, else the ``Return-Path: <>``
        the delivering MTA wrote."""
        if self.envelope_from is not None:
            return not self.envelope_from.strip("<> ")
        return bool(_NULL_PATH.fullmatch(self.message.header("return-path")))

    @property
    def declared_human(self) -> bool:
        """``Auto-Submitted: no``: the writer says a person wrote it."""
        return _auto_submitted(self.message) == "no"


Rule = Callable[[_Input], Screening | None]

_NULL_PATH = re.compile(r"\s*<\s*>\s*")
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
# local parts as ``_Input.local_part`` gives them (no separators)
_BOUNCE_SENDER = re.compile(r"daemon|postmaster|^mailer|bounce|maildelivery|mdaemon")
_DAEMON = re.compile(r"^(mailerdaemon|maildaemon|mailerdeamon|postmaster|mdaemon)$")
_NOREPLY = re.compile(r"^(noreply|donotreply|dontreply|noresponse|abuse|bounces?)")
_FORWARDED = re.compile(r"^\s*(re|fwd?|aw|wg|rv|tr|sv|vs)\s*:", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|deliver(y|ed)?\s+(status|fail|notification|problem|report)|returned mail"
    r"|failure notice|mail delivery|could not be delivered|non-?delivery|delivery has failed"
    r"|nicht zustellbar|unzustellbar|not delivered|rejected|bounced?\b|returned to sender"
    r"|mail system error|warning: could not send|failed mail|mail failure|delivery failure"
    r"|mail(ing)? loop|loop detected|too many hops",
    re.IGNORECASE,
)
_BULK_PRECEDENCE = {"bulk", "junk", "list"}
_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoreply-from", "x-mail-autoreply")
_OOO_BODY_MAX = 800
_CHALLENGE_HEADERS = re.compile(r"^x-(bluebottle|boxbe|tmda|spamarrest|challenge)")
_CHALLENGE_TEXT = re.compile(
    r"verify (that )?you(['\u2019]re| are) (a )?(human|real person|not a (robot|spammer))"
    r"|prove (that )?you(['\u2019]re| are) (a )?(human|real person)"
    r"|i must verify that you are|complete the verification process|has been waitlisted"
    r"|\b(boxbe|my) guest list\b"
    r"|sender not pre-?approved|added to my list of approved senders"
    r"|(add(ed)?|add yourself|add your (e-?mail )?address) to (my|the recipient['\u2019]?s?|their)"
    r" (allowed|approved|guest|white|safe|trusted)[ -]?(list|senders)",
    re.IGNORECASE,
)
_CHALLENGE_ACTION = re.compile(r"https?://|\bclick\b|reply to this (message|e-?mail)", re.I)
_RECEIPT_SUBJECT = re.compile(
    r"^\s*(read|not read|gelesen|nicht gelesen|lu|non lu|le[ií]do|no le[ií]do|letto"
    r"|gelezen|l[äa]st|l[æa]st)\s*:",
    re.IGNORECASE,
)
_RECEIPT_TEXT = re.compile(
    r"\bwas read on\b|\bwas deleted without being read\b|\bwurde (am .{0,40})?gelesen\b"
    r"|\ba [ée]t[ée] lu\b|\bfue le[ií]do\b|\bse ley[oó]\b|\bis gelezen\b",
    re.IGNORECASE,
)
_TNEF_RECEIPT = re.compile(r"^report\..*\.(ipnrn|ipnnrn|dr)$|receipt", re.IGNORECASE)
_TNEF_NDR = re.compile(r"^report\..*\.ndr$", re.IGNORECASE)
_REPORT_SUBJECT = re.compile(r"^\s*report\s+domain:\s*\S+.*\bsubmitter:\s*\S+", re.IGNORECASE)
_REPORT_FILE = re.compile(r"![^!\s]+!\d{9,11}!\d{9,11}(![^.\s]*)?(\.(xml|json))?(\.gz|\.zip)?$")
_REPORT_TYPES = ("application/tlsrpt+gzip", "application/tlsrpt+json")
_LIST_HEADERS = (
    "list-id",
    "list-help",
    "list-post",
    "list-owner",
    "list-subscribe",
    "list-unsubscribe",
    "mailing-list",
    "x-mailman-version",
    "x-mlserver",
    "x-ml-name",
    "x-sympa-to",
    "x-listserver",
)
_LIST_ROBOT = re.compile(
    r"^(owner.+|.+(owner|request|admin|bounces?|confirm|approval)"
    r"|mailman|majordomo|listserv|listproc|listmaster|sympa|ezmlm|lyris|ecartis|listar|smartlist)$"
)
_LOOP_SUBJECT = re.compile(r"mail(ing)? loop|loop detected|looping", re.IGNORECASE)


def screen(message: ParsedMessage, envelope_from: str | None, own: OwnIdentity) -> Screening:
    """Classify ``message``; the first matching rule wins."""
    given = _Input(message, envelope_from, own)
    for rule in RULES:
        verdict = rule(given)
        if verdict is not None:
            return verdict
    return Screening("normal", "", no_reply=_not_to_answer(given))


def _not_to_answer(given: _Input) -> bool:
    """A person's mail that still must not be auto-answered: Outlook's
    X-Auto-Response-Suppress, or (declared human) Precedence bulk/junk/list or a
    no-reply address."""
    precedence = given.message.header("precedence").strip().lower()
    return (
        bool(given.message.header("x-auto-response-suppress"))
        or precedence in _BULK_PRECEDENCE
        or bool(_NOREPLY.match(given.local_part))
    )


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


def _challenge(given: _Input) -> Screening | None:
    """Challenge-response: a robot asking us to prove we are human before it delivers."""
    named = [h for h in given.message.headers if _CHALLENGE_HEADERS.match(h)]
    agent = given.message.header("x-delivery-agent")
    if named or "tmda" in agent.lower():
        return Screening("challenge", f"challenge-response ({(named or [agent])[0]})", True)
    text = given.message.new_text[:3000]
    if _CHALLENGE_TEXT.search(text) and _CHALLENGE_ACTION.search(text):
        return Screening("challenge", "challenge-response (asks to verify the sender)", True)
    return None


def _report(given: _Input) -> Screening | None:
    """multipart/report: a DSN (bounce or delay), an ARF complaint, a read receipt or a
    TLS report; a report of another or no type is taken for a DSN."""
    if given.message.content_type != "multipart/report":
        return None
    report_type = _param(given.message, "report-type")
    parts = set(_part_types(given.message.message))
    if report_type == "feedback-report" or "message/feedback-report" in parts:
        return Screening("feedback", "ARF feedback report", no_reply=True)
    if report_type == "disposition-notification" or "message/disposition-notification" in parts:
        return Screening("receipt", "read receipt (MDN)", no_reply=True)
    if report_type == "tlsrpt":
        return Screening("report", "TLS report (RFC 8460)", no_reply=True)
    return _bounce(given, "delivery status notification")


def _read_receipt(given: _Input) -> Screening | None:
    """A receipt outside multipart/report: an MDN part, Outlook's receipt in TNEF, or a
    "Read:" subject whose text says when the mail was read."""
    if "message/disposition-notification" in _part_types(given.message.message):
        return Screening("receipt", "read receipt (MDN)", no_reply=True)
    for attachment in given.message.attachments:
        found = _tnef_class(attachment.payload) if attachment.is_tnef else ""
        if _TNEF_RECEIPT.search(found):
            return Screening("receipt", f"Outlook receipt ({found})", no_reply=True)
        if _TNEF_NDR.search(found):
            return _bounce(given, f"Outlook non-delivery report ({found})")
    subject = _RECEIPT_SUBJECT.match(given.message.subject)
    if subject and _RECEIPT_TEXT.search(given.message.text[:2000]):
        return Screening("receipt", "read receipt (subject and text)", no_reply=True)
    return None


def _mail_report(given: _Input) -> Screening | None:
    """DMARC aggregate and TLS reports mailed as ordinary mail with an attachment."""
    message = given.message
    if _REPORT_SUBJECT.match(message.subject):
        return Screening("report", "DMARC/TLS report (subject)", no_reply=True)
    if message.header("tls-report-domain"):
        return Screening("report", "TLS report (TLS-Report-Domain)", no_reply=True)
    for attachment in message.attachments:
        if attachment.content_type in _REPORT_TYPES or _REPORT_FILE.search(attachment.filename):
            return Screening("report", "DMARC/TLS report (attachment)", no_reply=True)
    return None


def _bounce_content(given: _Input) -> Screening | None:
    """Non-standard bounces.  Only mail that looks like one is handed to the bounce
    detectors (on ordinary replies they find "failed recipients" that are not), and a
    notice's words are read only when a robot wrote it."""
    robot = _robot_or_missing_sender(given)
    subject = _bounce_subject(given.message.subject)
    if not (robot or subject):
        return None
    found = failures(given.message, prose=robot)
    if found or (robot and subject):
        return _bounce(given, "bounce", found)
    return None


def _bounce_subject(subject: str) -> bool:
    """A failure subject, not one a person quotes (``Fwd: Undeliverable: …``)."""
    return not _FORWARDED.match(subject) and bool(_BOUNCE_SUBJECT.search(subject))


def _robot_or_missing_sender(given: _Input) -> bool:
    local = given.local_part
    return given.null_sender or not local or bool(_BOUNCE_SENDER.search(local))


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


def _list_admin(given: _Input) -> Screening | None:
    """A mailing list's own notices (owner, moderation, confirmation, loop), not its posts."""
    message = given.message
    if message.header("x-list-administrivia").strip().lower() == "yes":
        return Screening("list", "list administrivia (X-List-Administrivia)", no_reply=True)
    if not any(name in message.headers for name in _LIST_HEADERS):
        return None
    if _LIST_ROBOT.match(given.local_part):
        return Screening("list", f"from the list's {given.local_part} address", no_reply=True)
    if _LOOP_SUBJECT.search(message.subject):
        return Screening("list", "mail-loop notice of a list", no_reply=True)
    return None


def _auto_headers(given: _Input) -> Screening | None:
    if given.declared_human:
        return None
    auto_submitted = _auto_submitted(given.message)
    if auto_submitted:
        return Screening("auto_reply", f"Auto-Submitted: {auto_submitted}", no_reply=True)
    for name in _AUTO_HEADERS:
        if name in given.message.headers:
            return Screening("auto_reply", f"{name} header", no_reply=True)
    precedence = given.message.header("precedence").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return Screening("bulk", f"Precedence: {precedence}", no_reply=True)
    if precedence == "auto_reply":
        return Screening("auto_reply", "Precedence: auto_reply", no_reply=True)
    if "list-id" in given.message.headers:
        return Screening("bulk", "mailing list (List-Id)", no_reply=True)
    return None


def _auto_submitted(message: ParsedMessage) -> str:
    return message.header("auto-submitted").split(";")[0].strip().lower()


def _robot_sender(given: _Input) -> Screening | None:
    local = given.local_part
    if _DAEMON.match(local):
        return _bounce(given, f"from {local}")
    if given.null_sender:
        return Screening("auto_reply", "null return path", no_reply=True)
    if _NOREPLY.match(local) and not given.declared_human:
        return Screening("auto_reply", "sent from a role address that takes no replies", True)
    return None


def _out_of_office(given: _Input) -> Screening | None:
    if given.declared_human:
        return None
    if _OOO_SUBJECT.search(given.message.subject):
        return Screening("auto_reply", "out-of-office subject", no_reply=True)
    text = given.message.new_text
    if len(text) <= _OOO_BODY_MAX and _OOO_BODY.search(text[:300]):
        return Screening("auto_reply", "out-of-office text", no_reply=True)
    return None


RULES: tuple[Rule, ...] = (
    _from_ourselves,
    _challenge,
    _report,
    _read_receipt,
    _mail_report,
    _bounce_content,
    _list_admin,
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


def _part_types(part: Message, depth: int = 0) -> Iterator[str]:
    """The content types of a message's parts, not looking into returned messages."""
    try:
        content_type = part.get_content_type()
        children = part.get_payload() if part.is_multipart() else []
    except (ValueError, IndexError, AttributeError):
        return
    yield content_type
    if content_type == "message/rfc822" or depth >= 10 or not isinstance(children, list):
        return
    for child in children[:50]:
        if isinstance(child, Message):
            yield from _part_types(child, depth + 1)


def _tnef_class(payload: bytes) -> str:
    """The message class a TNEF stream (winmail.dat) declares, or ``""``."""
    try:
        props = TNEF(payload, do_checksum=False).msgprops
    except Exception:  # noqa: BLE001  (tnefparse raises many kinds on damaged streams)
        return ""
    for prop in props:
        if prop.name == TNEF.ATTMESSAGECLASS and isinstance(prop.data, str):
            return prop.data.strip("\x00 ")
    return ""


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
