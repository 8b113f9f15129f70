"""Failed recipients of a bounce, and how each failed.

A standard DSN (RFC 3464, ``message/delivery-status``) says per recipient what
happened (``Action``) and why (``Status``, an RFC 3463 code: 5.x.x permanent,
4.x.x transient); those fields are read here.  For everything else
flufl.bounce (Mailman's bounce library, some forty MTA formats) finds the
addresses and splits them into permanent and temporary failures.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

from flufl.bounce import all_failures

from mailer.parsing import ParsedMessage

__all__ = ["Failure", "failed_recipients", "failures"]

log = logging.getLogger(__name__)

_STATUS = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})")
_FAILED_ACTIONS = {"failed": True, "delayed": False}  # action -> the mail was given up
_MAX_DEPTH = 10  # a report nested in parts this deep is not a report


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
    """The addresses a bounce reports as failed; empty when it is not a bounce."""
    temporary, permanent = _flufl_failures(message)
    return tuple(sorted({*temporary, *permanent}))


def failures(message: ParsedMessage) -> tuple[Failure, ...]:
    """Each recipient a bounce reports, with its status: from the DSN's per-recipient
    fields when it has them, else flufl.bounce's split (a permanent failure without a
    status counts as 5.0.0, a temporary one as 4.0.0)."""
    reported = tuple(_dsn_failures(message.message))
    if reported:
        return reported
    temporary, permanent = _flufl_failures(message)
    return (
        *(Failure(a, None, "5.0.0", True) for a in sorted(permanent)),
        *(Failure(a, None, "4.0.0", False) for a in sorted(temporary - permanent)),
    )


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
        for block in blocks[1:]:  # the first block is about the message, then one per recipient
            failure = _failure(block) if isinstance(block, Message) else None
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


def _failure(block: Message) -> Failure | None:
    """A recipient's block as a failure; ``None`` when it was delivered, relayed or expanded,
    or names no address."""
    action = str(block.get("Action", "")).strip().lower()
    found = _STATUS.match(str(block.get("Status", "")))
    recipient = _address(block.get("Final-Recipient"))
    if action in _FAILED_ACTIONS:
        given_up = _FAILED_ACTIONS[action]
        status = found.group(1) if found else ("5.0.0" if given_up else "4.0.0")
    elif not action and found and found.group(1)[0] in "45":
        status, given_up = found.group(1), found.group(1).startswith("5")
    else:
        return None
    if recipient is None:
        return None
    return Failure(recipient, _address(block.get("Original-Recipient")), status, given_up)


def _address(field: object) -> str | None:
    """The address of ``rfc822; <a@b>`` (any address type), lower-case."""
    if field is None:
        return None
    value = str(field).rpartition(";")[2].strip().strip("<>").strip().lower()
    return value if "@" in value and " " not in value else None
