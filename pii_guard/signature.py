"""The writer's own signature block: their name, firm, phones, address and web site.

A producer signs every mail with a block like

    Thanks,
    Kevin Brooks, Senior Agent
    Brooks Insurance Group | 12 Main St, Suite 200, Towson, MD 21204
    Cell 410-555-0142 · Fax 410-555-0143 · www.brooksins.com

Most of it is not in the roster (a fax, the office address, a title), and
all of it looks like a person's contact data, so without this rule it made
three quarters of the markers that covered no consumer data.  When the writer
is known (``AllowList``: their name, address, phones or agency), the block
that holds one of those is theirs, and the contact findings in it (names,
phones, addresses, email addresses) are dropped.  Identifiers and birth dates
never are: a signature has none, so one there was pasted by mistake.

A block is found from an anchor line (a short line that holds the writer's
name, agency, address or phone), taken upwards to a sign-off line right above
it ("Thanks,", "Saludos,") and downwards through the lines that follow without
a blank one; every line must be short, as a signature's are.  An unknown
writer has no block: the consumer writing about themselves signs with their
own data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from pii_guard.recognizers.checksums import phone_key
from pii_guard.recognizers.gazetteer import PARTICLES

__all__ = ["SignatureAnchors", "names_the_writer", "office_blocks", "signature_blocks"]

_LINE = re.compile(r"[^\n]*\n?")
# a name's particles, and the ones a card's line may join two surnames with
_PARTICLES = PARTICLES | {"do", "dos", "y"}
_LONGEST_LINE = 90  # characters: a signature line is short; a sentence of mail is not
_MOST_LINES = 10
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_DIGITS = re.compile(r"\d")
_PHONE_RUN = re.compile(r"\+?\d[\d ().-]{8,}\d")
_SIGN_OFF = re.compile(
    r"^[\s>-]*(?:thanks?(?:\s+(?:you|again|so\s+much))?|thank\s+you(?:\s+so\s+much)?|many\s+thanks"
    r"|regards|best(?:\s+regards)?|kind\s+regards|warm\s+regards|sincerely|respectfully|cheers"
    r"|have\s+a\s+(?:good|great|nice)\s+\w+|take\s+care|talk\s+soon|all\s+the\s+best|v/r|vr"
    r"|gracias|muchas\s+gracias|saludos(?:\s+cordiales)?|atentamente|cordialmente|un\s+saludo"
    r"|quedo\s+atent[oa]|bendiciones|--|—|-)[\s,.!:;]*$",
    re.IGNORECASE,
)
# A greeting names the reader, not the writer ("Hi Sam Amsung," in our own replies).
_GREETING = re.compile(
    r"^[\s>]*(?:hi|hello|hey|dear|good\s+(?:morning|afternoon|evening)|hola|estimad[oa]s?"
    r"|querid[oa]s?|buen[oa]s\s+(?:d[ií]as|tardes|noches))\b",
    re.IGNORECASE,
)
# Another mail starts (an attribution or a forward's header): a block ends before it.
_NEW_PART = re.compile(
    r"^\s*(?:on\s.{4,200}\swrote:?|el\s.{4,200}\sescribi[óo]:?|-{2,}\s*original message"
    r"|-{2,}\s*forwarded message|from:\s|de:\s|sent:\s|enviado:\s)",
    re.IGNORECASE,
)
_LABEL = re.compile(r"^[\s*\u2022-]*([^\W\d_][\w .'/()-]{0,30}?)[ \t]*:(?!//)")
_CONTACT_LABELS = frozenset(
    re.split(
        r"\s+",
        """phone tel tel. telephone cell mobile fax office direct main email e-mail web website
        teléfono telefono celular correo oficina p m o f t c e w""",
    )
)
_ROLE_WORDS = re.compile(
    r"\b(?:client|clients|consumer|member|patient|applicant|enrollee|subscriber|dependent"
    r"|spouse|cliente|clienta|miembro|paciente|solicitante|dob|ssn|birth)\b",
    re.IGNORECASE,
)
_QUOTE_MARKS = re.compile(r"[ \t]*(?:>[ \t]?)*")


@dataclass(frozen=True)
class SignatureAnchors:
    """What marks the writer's own lines: their name words, email addresses, phones (digits)
    and organisation (lower-cased)."""

    name_words: frozenset[str]
    emails: frozenset[str]
    phones: frozenset[str]
    organisations: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.name_words or self.emails or self.phones or self.organisations)

    def holds(self, line: str) -> bool:
        lowered = line.lower()
        if any(email in lowered for email in self.emails):
            return True
        if any(org in lowered for org in self.organisations):
            return True
        if self.phones and any(
            phone_key(m.group()) in self.phones for m in _PHONE_RUN.finditer(line)
        ):
            return True  # by digits: "(410) 555-0142" is the roster's 410-555-0142
        return self._names_the_writer(line)

    def opens_a_card(self, line: str) -> bool:
        """A line that opens with the writer's name and holds no prose: "Christine Bauer,
        NPN 14402236" (not "To: Christine Bauer", nor "Christine Bauer here, about")."""
        first = _WORD.search(line)
        return (
            first is not None
            and self._writers_word(first.group().lower())
            and self._names_the_writer(line)
            and _no_prose_words(line)
        )

    def _names_the_writer(self, line: str) -> bool:
        """A short line whose capitalised words are the writer's name: "Kevin Brooks",
        "Kevin B.", "- Kevin", "Kevin Brooks | Senior Agent", "Kevin Brooks Jr"."""
        words = _WORD.findall(line.split("|", 1)[0].split(",", 1)[0])
        capitalised = [w for w in words if w[0].isupper() and len(w) > 1]
        if not capitalised or len(words) > 5:
            return False
        mine = [w for w in capitalised if self._writers_word(w.lower())]
        # one other word at most ("Jr", "CPA") beside two of the writer's
        return len(mine) == len(capitalised) or (
            len(mine) >= 2 and len(capitalised) - 1 == len(mine)
        )

    def _writers_word(self, word: str) -> bool:
        # particles ("de", "la" of "maria de la cruz") are no one's name alone
        return len(word) > 2 and names_the_writer(word, self.name_words)


# The usual short forms of given names that are not their beginnings ("Bob" of Robert,
# "Pepe" of José): a producer signs with them.
_SHORT_FORMS = {
    short: frozenset(full.split())
    for short, full in {
        "bob": "robert",
        "bobby": "robert",
        "rob": "robert",
        "bill": "william",
        "billy": "william",
        "will": "william",
        "liam": "william",
        "jim": "james",
        "jimmy": "james",
        "mike": "michael",
        "mikey": "michael",
        "dick": "richard",
        "rick": "richard",
        "ricky": "richard",
        "tony": "anthony antonio",
        "liz": "elizabeth",
        "beth": "elizabeth",
        "betty": "elizabeth",
        "lisa": "elizabeth",
        "peggy": "margaret",
        "maggie": "margaret",
        "meg": "margaret",
        "kate": "katherine catherine kathleen",
        "katie": "katherine catherine",
        "cathy": "catherine",
        "jen": "jennifer",
        "jenny": "jennifer",
        "chuck": "charles",
        "charlie": "charles",
        "hank": "henry",
        "harry": "henry harold",
        "jack": "john",
        "johnny": "john",
        "ted": "edward theodore",
        "ned": "edward",
        "sue": "susan suzanne",
        "sally": "sarah",
        "patty": "patricia",
        "trish": "patricia",
        "pepe": "josé jose",
        "paco": "francisco",
        "pancho": "francisco",
        "lupe": "guadalupe",
        "lupita": "guadalupe",
        "chuy": "jesús jesus",
        "memo": "guillermo",
        "beto": "alberto roberto",
        "toño": "antonio",
        "nacho": "ignacio",
        "quique": "enrique",
        "lalo": "eduardo",
        "rafa": "rafael",
        "chema": "josé jose",
        "manny": "manuel",
        "lety": "leticia",
        "yoli": "yolanda",
        "maru": "maría maria",
        "lola": "dolores",
        "tom": "thomas",
        "tommy": "thomas",
        "dave": "david",
        "davey": "david",
        "steve": "steven stephen",
        "joe": "joseph josé jose",
        "joey": "joseph",
        "debbie": "deborah debra",
        "deb": "deborah debra",
        "debby": "deborah debra",
        "nick": "nicholas nicolás",
        "andy": "andrew andrés",
        "danny": "daniel",
        "larry": "lawrence",
        "jerry": "gerald jerome jeremiah",
        "terry": "terrence terence teresa",
        "cindy": "cynthia",
        "sandy": "sandra",
        "mandy": "amanda",
        "becky": "rebecca",
        "vicky": "victoria",
        "kenny": "kenneth",
        "ronnie": "ronald",
        "donny": "donald",
        "eddie": "edward eduardo",
        "abby": "abigail",
        "nate": "nathan nathaniel",
        "gus": "gustavo augusto",
        "chelo": "consuelo",
        "chayo": "rosario",
        "nando": "fernando",
    }.items()
}


def names_the_writer(word: str, name_words: frozenset[str]) -> bool:
    """``word`` (lower-cased) is one of the writer's name words, its beginning ("Greg" of
    Gregory, "Kev") or a usual short form of it ("Bob" of Robert)."""
    if word in name_words:
        return True
    if len(word) >= 3 and any(n.startswith(word) for n in name_words):
        return True
    return bool(_SHORT_FORMS.get(word, frozenset()) & name_words)


def signature_blocks(text: str, anchors: SignatureAnchors) -> Iterator[tuple[int, int]]:
    """The spans of ``text`` that are signature blocks of the writer (or, in quoted mail,
    of the desk or the writer's earlier mail), in text order."""
    if not anchors:
        return
    lines = [_Line.of(m.start(), m.group()) for m in _LINE.finditer(text) if m.group()]
    index = 0
    while index < len(lines):
        line = lines[index]
        if not (line.short and not _GREETING.match(line.content) and anchors.holds(line.content)):
            index += 1
            continue
        first, last = _upwards(lines, index), _downwards(lines, index)
        if first is None and _name_line_above(lines, index):
            index -= 1  # "Trevor" over "MHBE Escalated Cases": the signer's first name
        # a line naming the writer mid-mail ("Kevin Brooks here, about my client") opens no
        # block: a signature follows a sign-off or ends what the writer wrote, or is a card
        # of contact lines under a line of the writer's name and titles alone ("My
        # information:" / "Christine Bauer, NPN 14402236" / "45 E. Main Street, ...")
        card = last > index and anchors.opens_a_card(line.content)
        if first is not None or card or _ends_the_part(lines, last):
            start = index if first is None else first
            yield lines[start].start, lines[last].start + len(lines[last].raw)
        index = last + 1


def office_blocks(
    text: str,
    is_organisation: Callable[[str], bool],
    writer_known: bool = True,
    is_public: Callable[[str], bool] = lambda line: False,
    sells_insurance: Callable[[str], bool] = lambda line: False,
) -> Iterator[tuple[int, int, bool]]:
    """The spans of ``text`` that sign for an office or a firm, or head its letter: an
    organisation's line ("Escalated Cases Team", "Anne Arundel County DSS", "Whitcomb &
    Daley CPAs") with the name and title lines right above it and the address, phone
    and email lines right below it:

        Tamika R.                             Anne Arundel County Department of Social Services
        Escalated Cases Team                  80 West Street, Annapolis, MD 21401
        Maryland Health Connection            410-269-4500

    Whoever signs so writes for an office (a caseworker, a carrier's representative, a
    colleague, a CPA), and the contact data there is the office's.  A line of data
    ("Member: …", "Client …") ends a block: a consumer is never part of one.

    Unless ``writer_known``, the block that closes the writer's own part is not one: an
    unknown writer may be a consumer signing with their employer's name; unless the
    organisation ``sells_insurance`` (an agency, a brokerage): who writes to the desk for
    one is a producer or works for one.  Each block
    comes with whether ``is_public`` says its organisation's line is a public office's."""
    lines = [_Line.of(m.start(), m.group()) for m in _LINE.finditer(text) if m.group()]
    own_part_end = _own_part_end(lines)
    index = 0
    while index < len(lines):
        line = lines[index]
        if not (line.short and not _data_line(line.content) and is_organisation(line.content)):
            index += 1
            continue
        first, last = _office_upwards(lines, index), _office_downwards(lines, index)
        writers = last < own_part_end and _ends_the_part(lines, last)
        trusted = writer_known or not writers or sells_insurance(line.content)
        if (first < index or last > index) and trusted:
            end = lines[last].start + len(lines[last].raw)
            yield lines[first].start, end, is_public(line.content)
        index = last + 1


def _own_part_end(lines: list[_Line]) -> int:
    """The index of the first line of quoted or forwarded mail (or the end)."""
    for index, line in enumerate(lines):
        if line.depth or _NEW_PART.match(line.content):
            return index
    return len(lines)


def _office_upwards(lines: list[_Line], anchor: int) -> int:
    """Up to three name or title lines right above an office's line (no blank between),
    and the sign-off above them."""
    first = anchor
    for above in range(anchor - 1, max(-1, anchor - 4), -1):
        line = lines[above]
        if line.depth != lines[anchor].depth or line.blank or not line.short:
            break
        if _SIGN_OFF.match(line.content):
            return above
        if _data_line(line.content) or _prose(line.content) or not _title_like(line.content):
            break
        first = above
    return first


def _office_downwards(lines: list[_Line], anchor: int) -> int:
    last = anchor
    for below in range(anchor + 1, min(len(lines), anchor + 7)):
        line = lines[below]
        if line.depth != lines[anchor].depth or line.blank or not line.short:
            break
        if _data_line(line.content) or _prose(line.content):
            break
        last = below
    return last


def _title_like(line: str) -> bool:
    """A name or a title on a line of its own: a few capitalised words, initials allowed
    ("Tamika R.", "Jerome W., Caseworker II", "Senior Agent")."""
    words = _WORD.findall(line)
    return 0 < len(words) <= 6 and not _DIGITS.search(line) and words[0][0].isupper()


def _data_line(line: str) -> bool:
    """A line that gives a consumer's data, not an office's: a label other than a contact
    point's ("Member: …", "DOB: …") or a role word ("Client Maria Lopez")."""
    label = _LABEL.match(line)
    if label and label.group(1).lower() not in _CONTACT_LABELS:
        return True
    return _ROLE_WORDS.search(line) is not None


class _Line(NamedTuple):
    """A line of the text: where it starts, as written, how deep it is quoted, and what
    it says without its quote marks ("> > Kevin Brooks" says "Kevin Brooks")."""

    start: int
    raw: str
    depth: int
    content: str

    @classmethod
    def of(cls, start: int, raw: str) -> _Line:
        marks = _QUOTE_MARKS.match(raw)
        cut = marks.end() if marks else 0
        return cls(start, raw, raw[:cut].count(">"), raw[cut:])

    @property
    def blank(self) -> bool:
        return not self.content.strip()

    @property
    def short(self) -> bool:
        stripped = self.content.strip()
        return 0 < len(stripped) <= _LONGEST_LINE and not _NEW_PART.match(stripped)


def _upwards(lines: list[_Line], anchor: int) -> int | None:
    """The sign-off line right above the anchor (blank lines may stand between), the
    anchor itself when it opens with one ("Thanks, Kevin"), else None."""
    if _SIGN_OFF.match(lines[anchor].content.split(",", 1)[0] + ","):
        return anchor
    for above in range(anchor - 1, max(-1, anchor - 4), -1):
        line = lines[above]
        if line.depth != lines[anchor].depth:
            break
        if _SIGN_OFF.match(line.content):
            return above
        if not line.blank:
            break
    return None


def _name_line_above(lines: list[_Line], anchor: int) -> bool:
    """One to three capitalised words alone on the line right above the anchor, with a
    blank line, a sign-off or the start of the text above them."""
    if anchor == 0 or lines[anchor - 1].depth != lines[anchor].depth:
        return False
    words = lines[anchor - 1].content.split()
    if not 0 < len(words) <= 3 or not all(w[:1].isupper() and w.isalpha() for w in words):
        return False
    if anchor == 1:
        return True
    above = lines[anchor - 2]
    return above.blank or above.depth != lines[anchor].depth or bool(_SIGN_OFF.match(above.content))


def _ends_the_part(lines: list[_Line], last: int) -> bool:
    """Nothing follows the block in its part of the mail: only blank lines, then another
    part (quoted deeper or less, an attribution, a forward) or the end."""
    depth = lines[last].depth
    for line in lines[last + 1 :]:
        if line.depth != depth or _NEW_PART.match(line.content):
            return True
        if not line.blank:
            return False
    return True


def _downwards(lines: list[_Line], anchor: int) -> int:
    last = anchor
    for below in range(anchor + 1, min(len(lines), anchor + _MOST_LINES)):
        line = lines[below]
        if line.depth != lines[anchor].depth or line.blank or not line.short:
            break
        if _prose(line.content):
            break
        last = below
    return last


def _no_prose_words(line: str) -> bool:
    """A line of names, titles and numbers: no lower-case word but a name's particles."""
    return not any(w.islower() and len(w) > 1 and w not in _PARTICLES for w in _WORD.findall(line))


def _prose(line: str) -> bool:
    """A sentence, not a signature's line: four words or more, two of them lower case,
    that end with a full stop ("Her cell is 410-555-0199.") or hold one between them; not
    "6601 Ritchie Highway, N.E." nor "Jerome W."."""
    stripped = line.strip()
    found = _WORD.findall(stripped)
    if len(found) < 4 or sum(w.islower() for w in found) < 2:
        return False
    return stripped[-1] in ".?!:" or ". " in stripped
