"""The new text of a reply: the writer's own words, without the quoted history, the
attribution line above it, signatures, device footers and list footers.

Three steps, and the whole text whenever they leave nothing (a forward with no comment,
a body that is all quote): a caseworker must always see something.

1. quotequail (Close's maintained quote finder) splits the body at the history: reply
   intros in eight languages (wrapped over two lines), the separators of forwards and of
   Outlook, header blocks (From:/Von:/De:/Från: ...).  It gives the text above the history
   and, when the history is a ``>`` quote, the text below it, where a bottom-posted or
   interleaved reply goes on; that part is split again.  A header block it takes for a
   forward must look like one (an address in From:, or three headers): a producer's
   "From: 01/01/2025 / To: 03/31/2025" is a coverage period, not a forward.
2. Each piece of the writer's text is walked line by line with what quotequail does not
   know (the rule table below): quoted lines in every form (``>``, indented, supercite
   ``LK>``), attributions in more languages and wrapped over up to three lines ("Le lun.
   3 févr. 2025 à 10:12, Jean <j@x.fr> a\\nécrit :"), separators of more clients.  The
   attribution above a quote goes with it; an attribution or separator with no quote
   under it starts history that is not marked, so the rest is cut.
3. A signature ("-- "), a mailing list's footer, device footers ("Sent from my iPhone",
   "Enviado desde mi iPhone") and a "-Name" sign-off are cut from the end of each run of
   the writer's lines.

The writer's lines are never stripped or reflowed: indentation (code, lists) survives.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

from mailer.quote_finder import unwrap

__all__ = ["MAX_REPLY_PARSE", "new_text"]

log = logging.getLogger(__name__)

MAX_REPLY_PARSE = 100_000  # longer bodies are kept whole: pathological quoting is not parsed
# quotequail tries some 90 patterns on every line, and its header-block search takes time
# that grows with the square of a run of "Word: value" lines: it is shown at most
# _WINDOW_LINES lines at a time, at most _MAX_SPLITS times; the rules walk the rest.
_WINDOW_LINES = 300
_MAX_SPLITS = 20
_MAX_RULE_LINE = 1_000  # a longer line is never an attribution, separator or footer
_MAX_ATTRIBUTION_LINES = 3  # "On <date>, <name> <<address>> wrote:" wraps over up to three
_MAX_SIGNATURE_LINES = 15  # a "-- " with more under it divides the text; it is no signature
_MAX_FOOTER_LINE = 120  # a device footer is one short line, not a sentence that starts alike
_FORWARD_HEADERS = frozenset({"from", "to", "cc", "bcc", "reply-to", "date", "subject"})

# --- the rule table: what quotequail does not know -------------------------------------------

# ">" (also indented) and supercite's initials ("LK> ", "  LK>> ").
_QUOTED = re.compile(r"^[ \t]*(?:>|[A-Za-z]{1,5}>+(?=[ \t]|$))")
_COLON = r"[:\uff1a]"  # and the full-width colon of Chinese and Japanese clients
# The verb of an attribution, in the producers' and their clients' languages (the Cyrillic
# and Turkish letters are meant: ruff's warning about look-alike letters is silenced).
_WROTE = (
    r"(?:\b(?:wrote|writes|schrieb|schreibt|geschrieben|escribió|escreveu|scritto|schreef|"
    r"geschreven|skrev|napisał(?:\(a\))?|написал(?:\(а\)|а)?|пише|написав|kirjoitti|írta|"  # noqa: RUF001
    r"yazdı|a\s+écrit|nous\s+a\s+dit)|写道|寫道)(?!\w)"  # noqa: RUF001
)
_ENDS_WITH_COLON = re.compile(rf"{_COLON}\s*$")
# No verb at all (Gmail in Russian, Yandex, mail.ru): "<weekday>, 4 <month> 2025 at 10:12,
# Name <address>:", "26.06.2014, 14:41, "Name" <address>:": a date first, a year, the address.
_DATED_ADDRESS = re.compile(
    rf"^[ \t>]*(?:\d|\w{{2,3}}[.,]).*\b(?:19|20)\d\d\b.*<[^<>@\s]+@[^<>\s]+>\s*{_COLON}\s*$"
)
_HAS_WROTE = re.compile(_WROTE, re.IGNORECASE)
# How an attribution starts: a date first, or the word before it ("On", "Le", "Am", ...).
_OPENER = re.compile(
    r"^[ \t>*-]*(?:\d|(?:On|At|In message|Am|Le|El|Em|No dia|Il|Op|Den|Dnia|W dniu|Dne|Dňa)\b|在)",
)
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DATE_OR_ADDRESS = re.compile(r"\d|@")
_TIME = re.compile(r"\b\d{1,2}[:.h]\d{2}\b")  # 10:12, 20.42 (Norwegian), 10h12 (French)
# "Dana Whitfield wrote:" right above a quote (no date, no address).
_BARE_ATTRIBUTION = re.compile(rf"^[^:>]{{1,80}}{_WROTE}\s*{_COLON}\s*$", re.IGNORECASE)
_SEPARATOR = re.compile(
    r"^[ \t>*]*-{2,}\s*(?:original message|forwarded message|reply message|mensaje original|"
    r"mensaje reenviado|ursprüngliche nachricht|weitergeleitete nachricht|"
    r"message d['\u2019]origine|message transféré|messaggio originale|messaggio inoltrato|"
    r"mensagem original|mensagem encaminhada|oorspronkelijk bericht|doorgestuurd bericht|"
    r"originalmeddelande|vidarebefordrat meddelande|opprinnelig melding|"
    r"videresendt melding|oprindelig meddelelse|wiadomość oryginalna|"
    r"wiadomość przekazana|исходное сообщение|пересылаемое сообщение|"
    r"переслане повідомлення|原始邮件|转发邮件)\s*-{2,}[ \t*]*$"
    r"|^[ \t>]*(?:begin forwarded message|début du message (?:réexpédié|transféré)|"
    r"anfang der weitergeleiteten (?:e-mail|nachricht)|inicio del mensaje reenviado|"
    r"início da mensagem (?:encaminhada|reencaminhada)|inizio messaggio inoltrato)\s*:",
    re.IGNORECASE,
)
# Outlook's rule line above the header block of the message answered.
_OUTLOOK_RULE = re.compile(r"^[ \t]*_{20,}[ \t]*$")
_FROM_HEADER = re.compile(
    rf"^[ \t*]*(?:From|De|Von|Van|Da|Från|Fra|Od|От|Від|发件人|寄件者)\s*\*?\s*{_COLON}",
    re.IGNORECASE,
)
_SIGNATURE_DASHES = re.compile(r"^--[ \t]*$")
_LIST_RULE = re.compile(r"^[ \t]*[_=-]{10,}[ \t]*$")
_LIST_FOOTER = re.compile(
    r"mailing list|listinfo|mailman|to unsubscribe|unsubscribe from this group|"
    r"you received this message because",
    re.IGNORECASE,
)
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_DEVICE_FOOTER = re.compile(
    r"^[ \t(<]*(?:"
    r"sent (?:from|via|with|by|using) [^,]*(?:,\s*please excuse.*)?$|"
    r"get (?:the )?outlook for |from my \S+(?: \S+){0,2}$|\w+ from mobile$|"
    r"envoyé (?:depuis|de|avec|par) |von meinem .* gesendet|gesendet (?:von|mit) |"
    r"diese nachricht wurde von .* gesendet|enviado (?:desde|con|do|de) |"
    r"inviato da|verzonden (?:met|vanaf|van) |verstuurd vanaf |sendt fra |"
    r"skickat från |wysłano z |odesláno z |(?:从|從|发自|寄自)我的)",
    re.IGNORECASE,
)
_DEVICE_NAMED = re.compile(
    r"\b(?:my|mi|mon|ma|mein\w*|mijn|mio|mia|min|mitt|mój|mého)\b|我的|"
    r"\b(?:mobile|m[oó]vil|phone|tel[eé]fono|cell|celular|device|dispositivo|galaxy|tablet|handy|"
    r"portable|appareil|mobiel|cellulare|telefon|windows|android|ios\b|iphone|ipad|outlook)",
    re.IGNORECASE,
)
_RULE_LINE = re.compile(r"^[ \t]*[-_=*~]{5,}[ \t]*$")
# "-Abhishek Kona": a name signed with a leading dash, alone after a blank line.
_DASH_SIGNOFF = re.compile(r"^-[A-Z][\w.'\u2019]*(?: [A-Z][\w.'\u2019-]*){0,2}[ \t]*$")
# Characters after which a client wraps an attribution without a space ("<\naddr>").
_NO_SPACE_AFTER = "<([{\"'"


def new_text(text: str) -> str:
    """The writer's own words of ``text``; the whole text (trimmed) when unsure. Never
    raises."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    whole = _trimmed(text)
    if not whole or len(text) > MAX_REPLY_PARSE:
        return whole
    try:
        runs = [_without_tail(run) for run in _writer_runs(text)]
    except (ValueError, LookupError, TypeError, AttributeError, RuntimeError, re.error) as exc:
        log.warning("reply parsing failed (%s); keeping the whole text", type(exc).__name__)
        return whole
    own = "\n\n".join("\n".join(run) for run in runs if run)
    return _trimmed(own) or whole


def _trimmed(text: str) -> str:
    """Without blank lines around it and trailing space; the first line's indentation
    stays (it may be code)."""
    lines = text.rstrip().split("\n")
    first = next((index for index, line in enumerate(lines) if line.strip()), len(lines))
    return "\n".join(lines[first:])


# --- step 1: quotequail's split --------------------------------------------------------------


@dataclass(frozen=True)
class _Split:
    top: str  # the writer's text above the history
    bottom: str | None  # the text below a ``>`` quote, where the writer may go on
    rest: str  # everything from the history on


def _writer_runs(text: str) -> list[list[str]]:
    """Runs of the writer's lines, in order, until history that is not marked starts."""
    runs: list[list[str]] = []
    for piece in _pieces(text):
        piece_runs, history_starts = _walk(piece.split("\n"))
        runs.extend(piece_runs)
        if history_starts:
            break
    return runs


def _pieces(text: str) -> Iterator[str]:
    """The parts of ``text`` outside the history quotequail finds, top to bottom."""
    for _ in range(_MAX_SPLITS):
        lines = text.split("\n")
        window, beyond = "\n".join(lines[:_WINDOW_LINES]), lines[_WINDOW_LINES:]
        split = _split(window)
        if split is None:
            yield text
            return
        yield split.top
        if split.bottom is None:
            if beyond and _ends_in_quote(window):  # the quote goes on past the window
                yield "\n".join([split.rest, *beyond])
            return
        text = "\n".join([split.bottom, *beyond])
    yield text  # past the cap the rest is only walked: its quoted lines still go


def _ends_in_quote(window: str) -> bool:
    last = window.rstrip().rpartition("\n")[2]
    return bool(_QUOTED.match(last))


def _split(text: str) -> _Split | None:
    found = unwrap(text)
    if found is None or not _believable(found):
        return None
    top = _with_indentation(found.get("text_top", ""), text, last=False)
    bottom = found.get("text_bottom")
    rest = text[text.find(top) + len(top) :] if top else text
    return _Split(top, None if bottom is None else _with_indentation(bottom, text, last=True), rest)


def _believable(found: dict[str, str]) -> bool:
    """Whether history quotequail finds with nothing of the writer's under it is history.

    A header block needs an address in From: or three headers: "From: 01/01/2025" and
    "To: 03/31/2025" are a coverage period.  A reply intro needs a sender quotequail can
    read from it ("On <date> at <time>, <name> wrote:"): "On 2/3 the member wrote:" may
    introduce the member's words, pasted.  What is not believed is left to the walk.
    """
    if "text_bottom" in found:
        return True
    if found["type"] == "reply":
        return "from" in found
    if found["type"] == "forward":
        return "@" in found.get("from", "") or len(_FORWARD_HEADERS & found.keys()) >= 3
    return True


def _with_indentation(part: str, text: str, *, last: bool) -> str:
    """``part`` as it stands in ``text``: quotequail strips the blank space around a part,
    and with it the indentation of its first line."""
    at = text.rfind(part) if last else text.find(part)
    if not part or at < 0:
        return part
    line_start = text.rfind("\n", 0, at) + 1
    indentation = text[line_start:at]
    return indentation + part if not indentation.strip() else part


# --- step 2: the walk over one piece ---------------------------------------------------------


class _Kind(Enum):
    TEXT = "text"  # the writer's (blank lines too)
    QUOTE = "quote"  # quoted lines, and the attribution above them
    HISTORY = "history"  # unmarked history starts here: the rest is not the writer's


def _walk(lines: Sequence[str]) -> tuple[list[list[str]], bool]:
    """The runs of the writer's lines in one piece, and whether unmarked history starts
    in it."""
    runs: list[list[str]] = [[]]
    index = 0
    while index < len(lines):
        kind, width = _classify(lines, index)
        if kind is _Kind.HISTORY:
            return _closed(runs), True
        if kind is _Kind.TEXT:
            runs[-1].append(lines[index])
        elif runs[-1]:
            runs.append([])
        index += width
    return _closed(runs), False


def _classify(lines: Sequence[str], index: int) -> tuple[_Kind, int]:
    """What line ``index`` starts, and how many lines that takes."""
    line = lines[index]
    if _QUOTED.match(line):
        return _Kind.QUOTE, 1
    if len(line) > _MAX_RULE_LINE:
        return _Kind.TEXT, 1
    if _SEPARATOR.match(line) or _outlook_rule_at(lines, index):
        return _Kind.HISTORY, 1
    width = _attribution_at(lines, index)
    if width and _quote_follows(lines, index + width):
        return _Kind.QUOTE, width
    if width and _names_sender_or_time(lines[index : index + width]):
        return _Kind.HISTORY, width
    if _BARE_ATTRIBUTION.match(line) and _quote_follows(lines, index + 1):
        return _Kind.QUOTE, 1
    return _Kind.TEXT, 1


def _attribution_at(lines: Sequence[str], index: int) -> int:
    """How many lines (up to three) the attribution starting at ``index`` spans; 0 if none
    starts there."""
    first = lines[index]
    if not (_OPENER.match(first) or _ADDRESS.search(first)):
        return 0
    joined = ""
    for width in range(1, _MAX_ATTRIBUTION_LINES + 1):
        line = lines[index + width - 1] if index + width - 1 < len(lines) else ""
        if not line.strip() or _QUOTED.match(line) or len(line) > _MAX_RULE_LINE:
            return 0
        joined = _joined(joined, line.strip())
        if _is_attribution(joined):
            return width
    return 0


def _joined(head: str, line: str) -> str:
    if not head:
        return line
    return head + line if head[-1] in _NO_SPACE_AFTER else f"{head} {line}"


def _is_attribution(text: str) -> bool:
    if not _ENDS_WITH_COLON.search(text):
        return False
    wrote = _HAS_WROTE.search(text) and _DATE_OR_ADDRESS.search(text)
    return bool(wrote or _DATED_ADDRESS.match(text))


def _names_sender_or_time(lines: Sequence[str]) -> bool:
    """An attribution with no quote under it starts history when it is a client's (an
    address or a time in it), not a writer's "On 2/3 the member wrote:" above pasted
    words."""
    return any(_ADDRESS.search(line) or _TIME.search(line) for line in lines)


def _quote_follows(lines: Sequence[str], index: int) -> bool:
    """Whether the next line that is not blank is quoted (or there is none: quotequail
    took the quote away)."""
    for line in lines[index:]:
        if line.strip():
            return bool(_QUOTED.match(line))
    return True


def _outlook_rule_at(lines: Sequence[str], index: int) -> bool:
    """Outlook's rule line with a From: line under it (the underscores of a list footer
    have the list's name under them instead)."""
    if not _OUTLOOK_RULE.match(lines[index]):
        return False
    following = [line for line in lines[index + 1 : index + 4] if line.strip()]
    return bool(following) and bool(_FROM_HEADER.match(following[0]))


def _closed(runs: list[list[str]]) -> list[list[str]]:
    """The runs without the blank lines around them; empty ones dropped."""
    trimmed = [_trimmed("\n".join(run)) for run in runs]
    return [text.split("\n") for text in trimmed if text]


# --- step 3: the end of a run ----------------------------------------------------------------


def _without_tail(run: list[str]) -> list[str]:
    """The run less a signature or list footer under it, then less the device footers,
    sign-off and rule lines left at its end."""
    return _without_footer_lines(_before_signature(run))


def _before_signature(run: list[str]) -> list[str]:
    for index in range(len(run)):
        starts = _SIGNATURE_DASHES.match(run[index]) or _list_footer_at(run, index)
        if starts and len(run) - index - 1 <= _MAX_SIGNATURE_LINES:
            return run[:index]
    return run


def _list_footer_at(run: Sequence[str], index: int) -> bool:
    if not _LIST_RULE.match(run[index]):
        return False
    return any(_LIST_FOOTER.search(line) for line in run[index + 1 : index + 4])


def _without_footer_lines(run: list[str]) -> list[str]:
    end = len(run)
    while end and _is_footer_line(run, end - 1):
        end -= 1
    return run[:end]


def _is_footer_line(run: Sequence[str], index: int) -> bool:
    line = run[index]
    if not line.strip():
        return True
    if len(line) > _MAX_FOOTER_LINE:
        return False
    if _RULE_LINE.match(line) or _is_device_footer(_MARKDOWN_LINK.sub(r"\1", line)):
        return True
    return bool(_DASH_SIGNOFF.match(line)) and index > 0 and not run[index - 1].strip()


def _is_device_footer(line: str) -> bool:
    """A client's "Sent from my iPhone" line, not a producer's last sentence: after its
    first word it names a device or an app (a capital: "Airmail", "iPhone", "TI-85"), a
    possession ("my", "mi", "meinem") or a kind of device ("mobile", "phone").  "Sent by
    certified mail on 11/02" and "sent with the renewal packet" are the writer's."""
    if not _DEVICE_FOOTER.match(line):
        return False
    rest = line.strip(" \t(<").partition(" ")[2]
    return any(c.isupper() for c in rest) or _DEVICE_NAMED.search(rest) is not None
