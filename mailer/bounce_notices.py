"""Failed recipients read from the words of a bounce that has no DSN fields.

Many mail systems still write their non-delivery notices as prose: Exchange
("Delivery has failed to these recipients or groups:"), Gmail ("Address not
found ... wasn't delivered to"), qmail ("<addr>:" blocks), Postfix ("<addr>: host
... said:"), Sendmail ("----- The following addresses had permanent fatal
errors -----"), Exim ("The following address(es) failed:"), Lotus Notes ("was
not delivered to:"), and DSN fields copied into the text.  This module reads
those, on the notice only (the text before the returned message), and says for
each address the status it finds next to it.

``mailer/bounces.py`` asks here last, when DSN fields, ``X-Failed-Recipients``
and flufl.bounce named no address (and for the code that makes a DSN's generic
``5.0.0`` specific); screening asks only about mail a robot or a null sender
wrote, so a person's words are never read for "failed recipients".  The
bounce's own From and To (the daemon, the sender of the returned mail) and
robots' role addresses ("please send mail to postmaster@…") are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["ADDRESS", "Notice", "giving_up", "notice_of", "recipients_in", "status_near"]

ADDRESS = (
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*"
)
# Where the returned message (or its headers) begins: the notice ends there.
_RETURNED = re.compile(
    r"^\s*(?:-+\s*)?(?:this is a copy of (?:the|your) message|below this line is a copy"
    r"|(?:the )?original message(?: headers?)?(?: follows?)?[.:]?\s*(?:-+)?\s*$"
    r"|(?:returned|unsent|undelivered) message|message headers? follows?"
    r"|message text follows|original message headers:)"
    r"|^(?:Received|Return-Path|Message-I[Dd]|DKIM-Signature|Delivered-To|X-Original-To"
    r"|MIME-Version):",
    re.IGNORECASE | re.MULTILINE,
)
# A line that announces the failed addresses on the lines after it.
_INTRO = re.compile(
    r"(?:following|these|one or more(?: of (?:its|the))?)\s+(?:recipients?|address|users?|e-?mail)"
    r"|recipients? or groups|(?:was|wasn't|were|could not be|couldn't be) (?:not )?delivered to:"
    r"|not (?:be )?reach(?:ed)?|incorrectly constructed|failure reasons|fatal errors"
    r"|delivery problems|non-fatal errors|failed permanently|address(?:es)? failed"
    r"|transcript of session",
    re.IGNORECASE,
)
# An address at the head of a line (``<a@b>:``, ``a@b on <date>``, ``Name (a@b)``, a
# transcript's ``550 5.1.1 <a@b>...``), not a ``MAIL FROM`` command.
_LEADING = re.compile(
    r"^\s*(?:>>>\s*|<<<\s*)?"
    r"(?:RCPT\s+TO:\s*|Recipient address:\s*|[45]\d\d[ -](?:[45]\.\d+\.\d+\s+)?)?"
    rf"(?:[^<>()@:\n]{{0,60}}[<(])?\s*(?:mailto:)?<?(?:@[^:\s]+:)?({ADDRESS})",
    re.IGNORECASE,
)
# An address named in a sentence about the failure.
_INLINE = re.compile(
    rf"(?:deliver(?:ing|ed|y)?|sent|sending|send)\s+(?:(?:your|the|this)\s+)?"
    rf"(?:(?:message|mail|e-?mail)\s+)?(?:to|failed(?: \d+ attempts)?:)\s*<?({ADDRESS})>?"
    rf"|your message to <?({ADDRESS})>? (?:was|could|couldn't|has)"
    rf"|(?:target|recipient|failed)(?: mail| e-?mail)? address(?:es)?:\s*<?({ADDRESS})>?"
    rf"|^Final-Recipient:\s*[\w-]+\s*;\s*<?({ADDRESS})>?",
    re.IGNORECASE | re.MULTILINE,
)
_TRANSCRIPT_SENDER = re.compile(r"MAIL\s+FROM", re.IGNORECASE)
_ENHANCED = re.compile(r"(?<![\w.])([45]\.\d{1,3}\.\d{1,3})(?![\w]|\.\d)")
_REPLY_CODE = re.compile(r"(?<![\w.#-])([45])\d\d(?=[ -]|$)", re.MULTILINE)
_WARNING = re.compile(
    r"\bdelay(?:ed)?\b|\bwarning\b|not yet been delivered|will (?:continue to |keep )?"
    r"(?:try|retry|attempt)|still (?:being )?(?:re)?tr(?:y|ied|ying)",
    re.IGNORECASE,
)
_ROBOT_LOCAL = re.compile(
    r"^(?:mailer[-_.]?daemon|post[-_.]?master|hostmaster|abuse|no[-_.]?reply)$", re.I
)
_MAX_NOTICE = 20_000  # characters read of a notice: real ones say it in a few hundred
_MAX_RECIPIENTS = 100
_INTRO_REACH = 40  # lines after an announcement where its addresses may stand
_STATUS_REACH = 4  # lines after an address where its status may stand

Notice = str  # the text of a bounce up to its returned message


def notice_of(text: str) -> Notice:
    """``text`` up to where the returned message begins (at most ``_MAX_NOTICE``)."""
    text = text[:_MAX_NOTICE]
    found = _RETURNED.search(text)
    return text[: found.start()] if found else text


def recipients_in(notice: Notice, exclude: frozenset[str]) -> list[str]:
    """The addresses the notice reports as failed, in order, lower-case; ``exclude`` (the
    bounce's own addresses) and robots' role addresses left out."""
    found = dict.fromkeys((*_announced(notice), *_named(notice)))
    kept = [a for a in found if a not in exclude and not _ROBOT_LOCAL.match(a.split("@")[0])]
    return kept[:_MAX_RECIPIENTS]


def _announced(notice: Notice) -> Iterator[str]:
    lines = notice.splitlines()
    for index, line in enumerate(lines):
        if not _INTRO.search(line):
            continue
        for following in lines[index + 1 : index + 1 + _INTRO_REACH]:
            if _TRANSCRIPT_SENDER.search(following):
                continue
            match = _LEADING.match(following)
            if match:
                yield match.group(1).lower()


def _named(notice: Notice) -> Iterator[str]:
    for match in _INLINE.finditer(notice):
        yield next(g for g in match.groups() if g).lower()


def status_near(notice: Notice, address: str, given_up: bool) -> str:
    """The status the notice gives ``address``: an enhanced code (``5.1.1``, ``#4.4.1``)
    on its line or the few after, else an SMTP reply code there (as ``5.0.0`` /
    ``4.0.0``), else ``5.0.0`` for a mail given up and ``4.0.0`` for a delay."""
    lines = notice.splitlines()
    nearby = [
        "\n".join(lines[i : i + _STATUS_REACH])
        for i, line in enumerate(lines)
        if address in line.lower()
    ]
    for pattern, template in ((_ENHANCED, "{}"), (_REPLY_CODE, "{}.0.0")):
        for text in nearby:
            found = pattern.search(text)
            if found:
                return template.format(found.group(1))
    return "5.0.0" if given_up else "4.0.0"


def giving_up(subject: str, notice: Notice) -> bool:
    """False for a delay warning (the mail is still being tried), else True."""
    return not _WARNING.search(f"{subject}\n{notice[:1500]}")
