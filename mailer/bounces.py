"""Failed recipients of a bounce, and how each failed.

A standard DSN (RFC 3464, ``message/delivery-status``) says per recipient what
happened (``Action``) and why (``Status``, an RFC 3463 code: 5.x.x permanent,
4.x.x transient); those fields are read here, also where a field's folded line
lost its indentation (MessageLabs) or the per-message block is missing.  For
everything else, in this order, the first that names an address decides:

1. ``X-Failed-Recipients`` (Exim, Gmail);
2. flufl.bounce (Mailman's bounce library, some forty MTA formats);
3. the notice's own words (``mailer/bounce_notices.py``: Exchange, Gmail, qmail,
   Postfix, Sendmail, Exim, Notes prose, DSN fields copied into the text).

Outside a DSN an address is kept only if it is a well-formed address and not the
bounce's own From, To or Cc (the daemon, the sender of the returned mail) nor a
Message-ID; its status is the code the notice gives next to it, else 5.0.0 (4.0.0
in a delay warning).  Measured on the corpus sets that publish expectations:
``bench/bounce_eval.py``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email.message import Message

from flufl.bounce import all_failures

from mailer.bounce_notices import ADDRESS, giving_up, notice_of, recipients_in, status_near
from mailer.parsing import ParsedMessage

__all__ = ["Failure", "failed_recipients", "failures"]

log = logging.getLogger(__name__)

_STATUS = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})")
_FAILED_ACTIONS = {"failed": True, "delayed": False}  # action -> the mail was given up
_MAX_DEPTH = 10  # a report nested in parts this deep is not a report
# an address as a bounce may write it (``user@#host`` too), but no quotes, brackets, spaces
_VALID = re.compile(r"[^\s\"'<>(){}\[\],;:@]{1,64}@[^\s\"'<>(){}\[\],;:@]{1,253}")
_ADDRESS_IN = re.compile(rf"(?<![\w.@-])({ADDRESS})")  # after a source route's "@host:"
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]{1,40}):[ \t]*(.*)$")
_QUOTED_ID = re.compile(r"Message-I[Dd]:\s*<([^<>\s]+)>")


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports: the address it failed at, the address the sender
    gave when the DSN says (``Original-Recipient``), the status, and whether the mail was
    given up (``Action: failed``) or is still being tried (``delayed``)."""

    recipient: str
    original: str | None
    status: str
    given_up: bool

    @property
    def permanent(self) -> bool:
        """A 5.x.x status: this address will not take mail (4.x.x may work later)."""
        return self.status.startswith("5")

    @property
    def addresses(self) -> frozenset[str]:
        return frozenset(a for a in (self.recipient, self.original) if a)


def failed_recipients(message: ParsedMessage) -> tuple[str, ...]:
    """The addresses a bounce reports as failed (and, where its DSN says, as given)."""
    return tuple(sorted({a for failure in failures(message) for a in failure.addresses}))


def failures(message: ParsedMessage, *, prose: bool = True) -> tuple[Failure, ...]:
    """Each recipient a bounce reports, with its status: from the DSN's per-recipient
    fields when it has them, else from the first of the other sources (module docstring)
    that names an address; the notice's words only with ``prose`` (screening reads them
    only when a robot wrote the mail)."""
    notice = notice_of(message.text)
    reported = tuple(_dsn_failures(message.message))
    if reported:
        return tuple(_specific(f, notice) for f in reported)
    own = _own_addresses(message)
    given_up = giving_up(message.subject, notice)
    temporary, permanent = _flufl_failures(message)
    for found in (
        _header_addresses(message),
        sorted(permanent | temporary),
        recipients_in(notice, own) if prose else [],
    ):
        kept = [a for a in dict.fromkeys(found) if _VALID.fullmatch(a) and a not in own]
        if kept:
            tried = {a: given_up and a not in temporary - permanent for a in kept}
            return tuple(Failure(a, None, status_near(notice, a, g), g) for a, g in tried.items())
    return ()


def _specific(failure: Failure, notice: str) -> Failure:
    """A DSN's generic status (``5.0.0``) made specific by the code the notice gives the
    same recipient, when that code is of the same class (``5.1.1``)."""
    if not failure.status.endswith(".0.0"):
        return failure
    said = status_near(notice, failure.recipient, failure.given_up)
    if said[0] != failure.status[0] or said.endswith(".0.0"):
        return failure
    return replace(failure, status=said)


def _own_addresses(message: ParsedMessage) -> frozenset[str]:
    """What is never a failed recipient outside a DSN: the bounce's own From, To and Cc,
    and Message-IDs (flufl.bounce takes some for addresses)."""
    ids = (
        *(i.strip("<>") for i in (message.message_id or "", *message.references) if i),
        *_QUOTED_ID.findall(message.text),
    )
    found = (message.from_address or "", *message.to, *message.cc, *ids)
    return frozenset(a.lower() for a in found if a)


def _header_addresses(message: ParsedMessage) -> list[str]:
    values = message.headers.get("x-failed-recipients", ())
    return [a.lower() for value in values for a in _ADDRESS_IN.findall(value)]


def _flufl_failures(message: ParsedMessage) -> tuple[set[str], set[str]]:
    try:
        temporary, permanent = all_failures(message.message)
    except Exception as exc:  # noqa: BLE001  (detectors raise many kinds on odd mail)
        log.debug("bounce detection failed: %s", type(exc).__name__)
        return set(), set()
    return _addresses(temporary), _addresses(permanent)


def _addresses(found: frozenset[bytes] | set[bytes]) -> set[str]:
    decoded = (a.decode("utf-8", "replace").strip().lower() for a in found)
    return {a for a in decoded if "@" in a}


def _dsn_failures(message: Message) -> Iterator[Failure]:
    for part in _report_parts(message, 0):
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks:  # a block per recipient, after one about the message (if any)
            failure = _failure(_fields(block)) if isinstance(block, Message) else None
            if failure is not None:
                yield failure


def _report_parts(part: Message, depth: int) -> Iterator[Message]:
    """The ``message/delivery-status`` parts of a bounce, not those of the mail it returns
    (a returned ``message/rfc822`` is not looked into)."""
    content_type = part.get_content_type()
    if content_type == "message/delivery-status":
        yield part
    elif part.is_multipart() and content_type != "message/rfc822" and depth < _MAX_DEPTH:
        for child in part.get_payload():
            if isinstance(child, Message):
                yield from _report_parts(child, depth + 1)


def _fields(block: Message) -> dict[str, str]:
    """A DSN block's fields, lower-case names, the first of each.  A folded line that
    lost its indentation ends the stdlib's header block; the fields after it are read
    from the rest."""
    fields: dict[str, str] = {}
    for name, value in block.items():
        fields.setdefault(name.lower(), str(value))
    rest = block.get_payload()
    for line in rest.splitlines() if isinstance(rest, str) else ():
        found = _FIELD.match(line)
        if found:
            fields.setdefault(found.group(1).lower(), found.group(2))
    return fields


def _failure(fields: dict[str, str]) -> Failure | None:
    """A recipient's block as a failure; ``None`` when it was delivered, relayed or expanded,
    or names no address."""
    action = fields.get("action", "").strip().lower()
    found = _STATUS.match(fields.get("status", ""))
    if action in _FAILED_ACTIONS:
        given_up = _FAILED_ACTIONS[action]
        status = found.group(1) if found else ("5.0.0" if given_up else "4.0.0")
    elif not action and found and found.group(1)[0] in "45":
        status, given_up = found.group(1), found.group(1).startswith("5")
    else:
        return None
    final = _address(fields.get("final-recipient"))
    original = _address(fields.get("original-recipient"))
    recipient = final or original
    if recipient is None:
        return None
    return Failure(recipient, original if final else None, status, given_up)


def _address(field: str | None) -> str | None:
    """The address of ``rfc822; <a@b>`` (any address type, a display name or a source
    route around it), lower-case."""
    if field is None:
        return None
    found = _ADDRESS_IN.search(field.rpartition(";")[2])
    return found.group(1).lower() if found else None
