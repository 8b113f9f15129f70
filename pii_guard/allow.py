"""What is never PII here: the desk's own identifiers, public contact points, the sender.

System identifiers are found as spans first; a finding that overlaps one is
dropped.  Spans are narrow (the number after "NPN", not the sentence) so an
allowed identifier cannot shelter a neighbouring SSN.  Public phone numbers
and addresses are compared by value, so any formatting of the hotline passes.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from operator import attrgetter

from pii_guard import entities as E
from pii_guard.findings import AllowList, Finding
from pii_guard.recognizers.base import CARRIER_NAMES, fold
from pii_guard.recognizers.checksums import phone_key
from pii_guard.recognizers.gazetteer import (
    ORG_WORDS,
    Gazetteer,
    load_gazetteer,
    word_before,
    words,
)
from pii_guard.signature import (
    SignatureAnchors,
    names_the_writer,
    office_blocks,
    signature_blocks,
)
from pii_guard.world import STAFFED, load_world

__all__ = ["PUBLIC_EMAILS", "PUBLIC_PHONES", "Allowance"]

PUBLIC_PHONES = frozenset({"8442246761"})
PUBLIC_EMAILS = frozenset({"mhbe.producers@maryland.gov", "mhc.trainingsupport@maryland.gov"})

# what may stand between "Person ID" and its value: "is", "#:", "for the new account is"
_ID_GAP = (
    r"[\s:#.,]*(?:(?:is|was|number|no|num|nbr|es|of)\b[\s:#.,]*){0,2}"
    r"(?:(?:for|on|in|of|under|del?|en|para)\s+(?:[a-z]+\s+){0,3}?(?:is|es|was)\b[\s:#.,]*)?"
)
_PID_NPN = re.compile(
    # (a first letter, then the word boundary: the engine skips to those letters)
    r"[pn](?<![\w][pn])(?:ids?|erson\s+ids?|pns?|ational\s+producer\s+numbers?)"
    + _ID_GAP
    + r"(?P<v>\d{1,10}(?:\s*(?:,|and|&|/)\s*\d{1,10})*)"
)
# All run on the folded (lower-cased) text: case-insensitive flags cost five times more.
# (literals, pattern): a pattern runs only when one of its literals is in the text, and
# patterns open with a digit class rather than \b so that the engine skips non-digits fast.
_SYSTEM_SPANS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    # incident numbers YYMMDD-NNNNNNN and ref tokens
    (("-",), re.compile(r"\d(?<!\d\d)\d{5}-\d{7}(?!\d)")),
    (("ref:_",), re.compile(r"ref:_[a-z0-9]+\._[a-z0-9]+:ref")),
    # Person IDs and NPNs name the value that follows (lists of them too)
    (("pid", "person", "npn", "national"), _PID_NPN),
    # money, form names, times, timestamps, UUIDs
    (("$",), re.compile(r"\$\s?\d[\d,]*(?:\.\d{1,2})?")),  # ("US$": the $ is enough)
    (("usd", "dollar"), re.compile(r"(?<![\d,.])\d[\d,]*(?:\.\d{2})?\s?(?:usd|dollars)\b")),
    (
        ("1095", "1094", "1040", "8962", "8965", "w2", "w-2", "1099"),
        re.compile(r"\b(?:1095|1094|1040|8962|8965|w-?2|1099)-?[a-c]?\b(?:-?[a-z]{1,3})?"),
    ),
    ((":",), re.compile(r"\d(?<![\w]\d)\d?:\d{2}(?::\d{2}(?:\.\d+)?)?\s?(?:[ap]\.?m\.?)?")),
    (
        (":",),
        re.compile(
            r"\d(?<![\w]\d)\d{3}-\d{2}-\d{2}[t ]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?"
            r"(?:z|[+-]\d{2}:?\d{2})?"
        ),
    ),
    (
        ("-",),
        re.compile(
            r"[0-9a-f](?<![\w][0-9a-f])[0-9a-f]{7}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}"
            r"-[0-9a-f]{12}\b"
        ),
    ),
)
# What a signature block holds that looks like a consumer's: never identifiers or dates.
# (and a producer's licence number: "MD Producer License 2099155")
_SIGNATURE_KINDS = frozenset(
    {E.PERSON, E.PHONE_NUMBER, E.EMAIL_ADDRESS, E.ADDRESS, E.US_DRIVER_LICENSE}
)
_NAME_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
# Starting only where a run of address characters starts: from inside one, a failed
# match would re-read the rest of the run from each character (quadratic on a long word).
_DIGIT = re.compile(r"\d")
_COLUMNS = re.compile(r"\t|\||   ")
_PLAN = re.compile(r"\b(?:gold|silver|bronze|platinum|hmo|ppo|epo|plan|member)\b", re.IGNORECASE)
# The words of an office's or a firm's name ("Escalated Cases Team", "Fitzgerald Benefits")
# (not the suffixes any company has, "Inc", "LLC", "Group": a consumer's employer
# signs with them as well as an office)
_OFFICE_WORDS = (
    ORG_WORDS
    | words(
        """team cases department dept office services service dss ldss dhhs dhs mdh
        administration division bureau unit program commission authority council center
        centre cpas cpa seguros benefits advisors advisers brokerage associates solutions
        partners firm law attorneys llp pc pa equipo departamento oficina casos operations"""
    )
) - words("ltd limited gmbh plc srl inc corp company llc group")
# what stands between an office's name and its address on a line: "DHHS, 1335 ...",
# "Frederick (100 East ...", "office at 8401 ..."
_OFFICE_JOIN = re.compile(r"(?:[ \t]*(?:[,:(\u2013-]|\b(?:at|en|in)\b))*[ \t]*\Z")
_OFFICE_REACH = 100
_PHONE_KINDS = words("home work cell mobile direct main fax my her his their client office line")
_LABEL_EDGES = re.compile(r"^[\s>*\u2022-]+|[\s:#.(\u2013\u2014-]+$")
_OFFICE_CONTINUES = re.compile(r"[ \t]*,?[ \t]*")
_OFFICE_PARTICLES = frozenset(("of", "the", "for", "and", "de", "del", "la", "los", "las", "y"))
_PUBLIC_OFFICE_WORDS = words(
    """department dept dss ldss dhhs dhs mdh administration division bureau commission
    authority office services team cases exchange departamento oficina servicios"""
)
_COLLEAGUE_BEFORE = re.compile(
    r"(?:\b(?:my|our|mi|mis|nuestr[oa]|nuestr[oa]s|their|his|her|your|su|sus|the|an?|el|la"
    r"|[\w.&-]+['\u2019]s)[ \t]+"
    # up to two words saying which: "UHC's broker services rep", "my office assistant"
    r"(?:(?!(?:client|consumer|member|son|daughter|wife|husband)\b)[\w-]+[ \t]+){0,2}"
    r"(?:assistant|colleague|co-?worker|office[ \t]+manager|manager|supervisor|team[ \t]+lead"
    r"|specialist|coordinator|analyst|representante|supervisora"
    r"|(?:fellow[ \t]+)?agent|rep|representative|case[ \t]?worker|case[ \t]+manager"
    r"|social[ \t]+worker|navigator|cpa|accountant|tax[ \t]+preparer|attorney|lawyer"
    r"|interpreter|translator|asistente|compa[ñn]er[oa]|agente|corredor(?:a)?|contador(?:a)?"
    r"|abogad[oa]|trabajador(?:a)?[ \t]+social|int[ée]rprete|associate|business[ \t]+partner"
    r"|broker|productor(?:a)?|compa[ñn]er[oa][ \t]+de[ \t]+(?:oficina|trabajo))"
    r"|\b(?:hotline|carrier|call[ \t]+cent(?:er|re)|customer[ \t]+service|phone|help[ \t]+desk"
    rf"|{CARRIER_NAMES})[ \t]+(?:rep|representative|agent|supervisor)"
    r"|\b(?:case|care|social|foster[ \t]+care)[ \t]+(?:worker|manager)|\bfinancial[ \t]+counselor"
    r"|\bcaseworker|\bnavigator|\bcounselor|\bnotary)"
    r"[ \t]*[,(]?[ \t]*(?:is[ \t]+|es[ \t]+|named[ \t]+)?(?:(?:mr|mrs|ms|dr)\.?[ \t]*)?\Z"
    r"|\b(?:rep|representative)[ \t]*[(:][ \t]*\Z",
    re.IGNORECASE,
)
# "at" only: "remove Mr. Choi from the Kaiser plan" is a consumer leaving a carrier
_CONTACT_GAP = 30  # characters between a professional's name and their number
_CONTACT_JOIN = re.compile(
    r"[ \t]*(?:[,:(\u2013\u2014-]|at|on)?[ \t]*(?:(?:phone|tel|cell|office|fax)\.?[ \t:#]*)?",
    re.IGNORECASE,
)
_TITLE_FIRST = re.compile(r"(?:CPA|Atty|Dr|Esq|Mr|Ms|Mrs)\.?[ \t]*,?[ \t]*")
_NEAR = 60  # characters between a name and the email address it answers
# a word every _COLLEAGUE_BEFORE phrase holds: most windows hold none, and a search of the
# window for the phrases costs far more than these substring tests
_COLLEAGUE_HINTS = (
    "lead",
    "special",
    "coordinat",
    "analyst",
    "assist",
    "colleag",
    "worker",
    "manager",
    "supervis",
    "agent",
    "rep",
    "navigat",
    "cpa",
    "account",
    "prepar",
    "attorney",
    "lawyer",
    "interpret",
    "translat",
    "compa",
    "contador",
    "abogad",
    "trabajador",
    "counsel",
    "notary",
    "corredor",
    "int\u00e9rprete",
    "associat",
    "asist",
    "partner",
    "broker",
    "product",
)
# "Will Patterson from my office", "Ruth A. on your team", "la Sra. Bustamante de mi oficina",
# "Keisha on the hotline", "Brenda said on the hotline"
_COLLEAGUE_AFTER = re.compile(
    r"(?:[ \t]+[A-Z]\.)?[ \t]*,?[ \t]*(?:(?:from|of|at|in|on)[ \t]+(?:my|our|your|the)[ \t]+"
    r"(?:[A-Z][\w&-]*[ \t]+){0,3}(?:office|team|agency|staff|firm|unit)"
    r"|(?:de|en)[ \t]+(?:mi|nuestra|su|la)[ \t]+(?:oficina|agencia|equipo)"
    # "Shanice Porter, a navigator at ...", "Mr. Oyelaran, the financial counselor", "Esperanza,
    # mi asistente"
    r"|(?:a|an|the|our|my|their|el|la|mi|nuestr[oa])[ \t]+(?:[\w-]+[ \t]+){0,2}?"
    r"(?:navigator|navegador[a]?|counselor|caseworker|case[ \t]+worker|social[ \t]+worker|rep"
    r"|representative|supervisor[a]?|manager|specialist|assistant|asistente|agent|agente|broker"
    r"|productor[a]?|cpa|accountant|contador[a]?|colleague|compa[ñn]er[oa])"
    # (an apposition, not the subject of the next clause: "mi agente no me contesta")
    r"(?=[ \t]*(?:[,;.)]|\n|\Z|(?:at|from|with|for|of|in|on|de|del|en|con)\b))"
    # "Brenda Mullins in CareFirst's exchange reconciliation unit", "from Humana's broker desk"
    r"|(?:from|at|in|of|with)[ \t]+[A-Z][\w&.-]*(?:[ \t]+[A-Z][\w&.-]*){0,3}['\u2019]s[ \t]+"
    r"(?:[\w-]+[ \t]+){0,3}(?:unit|desk|team|department|dept|operations|office|services|line))\b",
    re.IGNORECASE,
)
# a firm named after a person: "el Sr. Alfredo Quintero de Quintero Tax Services", "Mr.
# Darnell Whitfield of Chesapeake Benefits Group (NPN ...)"; its name is capitalised words
_OF_A_FIRM = re.compile(
    r"[ \t]*,?[ \t]+(?:of|from|with|de|del)[ \t]+"
    r"(?P<firm>[A-Z][\w&.'\u2019-]*(?:[ \t]+(?:&|and|y|of|de|del|[A-Z][\w&.'\u2019-]*)){0,6})"
)
_LAST_PARTICLE = re.compile(r"[ \t]+(?:de|del|of)[ \t]+[A-Z][^ \t]*\Z")
# the names listed with one ("Brenda Mullins and Victor Oduya from CareFirst's ..."): what is
# said after the last is said of each
_LISTED_NAME = re.compile(
    r"(?:[ \t]*,[ \t]*|[ \t]+(?:and|y|&)[ \t]+)(?:(?:Mr|Mrs|Ms|Dr|Sr|Sra)\.?[ \t]+)?"
    r"[A-Z][\w'\u2019-]*(?:[ \t]+[A-Z][\w'\u2019.-]*){0,3}"
)
# an office or a role, then the name in parentheses: "the Wicomico County DSS worker (Mr.
# Ennis)", "The Cambridge DSS office (Ms. Travers)", "del condado de Prince George's (la Sra. "
_OFFICE_PAREN = re.compile(
    r"\b(?:worker|office|oficina|officer|rep|representative|supervisor|caseworker|counselor"
    r"|navigator|trabajador[a]?|dss|ldss|dhhs|department|departamento)\b[^()\n]{0,40}"
    r"\([ \t]*(?:(?:la|el)[ \t]+)?(?:(?:mr|mrs|ms|dr|sr|sra|srta)\.?[ \t]*)?\Z",
    re.IGNORECASE,
)
# a doctor's or a minister's title: "Dr. Rebecca Holloway", "Pastor Grayson", "la Dra. Ruiz"
_PROFESSIONAL_TITLE = re.compile(
    r"\b(?:dr|dra|doctor|doctora|pastor|rev|reverend)\.?[ \t]+\Z", re.IGNORECASE
)
# "Keisha on the hotline", "Brenda said on the hotline": staff of a line, unless a consumer's
# role stands before the name ("my client Maria Lopez on the hotline")
_LINE_STAFF_AFTER = re.compile(
    r"[ \t]*,?[ \t]*(?:(?:said|says|told[ \t]+me|mentioned|confirmed)[ \t]+)?(?:on|at|from)"
    r"[ \t]+(?:the[ \t]+)?(?:hotline|call[ \t]+cent(?:er|re)|broker[ \t]+(?:line|desk)"
    r"|help[ \t]+desk)\b|[ \t]*,?[ \t]*(?:de|en)[ \t]+la[ \t]+l[ií]nea\b",
    re.IGNORECASE,
)
_CONSUMER_BEFORE = re.compile(
    r"\b(?:clients?|consumers?|members?|enrollees?|applicants?|son|daughter|wife|husband|spouse"
    r"|mother|father|mom|dad|child|kid|baby|clienta?s?|hij[oa]s?|espos[oa]|madre|padre)"
    r"[ \t,:(]*\Z",
    re.IGNORECASE,
)
_TITLE_AT_END = re.compile(
    r"\b(?:mr|mrs|ms|mx|dr|dra|sr|sra|srta|doctor|doctora|pastor|rev|reverend)\.?[ \t]*\Z",
    re.IGNORECASE,
)
_TITLE_AFTER = re.compile(
    r"[ \t]*[,(][ \t]*(?:CPA|EA|Esq\.?|CFP|CLU|ChFC|LCSW|MSW|RN|NPN|attorney|agent|broker|rep"
    r"|caseworker|navigator|supervisor|Caseworker|Supervisor|Navigator|Agent|Broker)\b"
)
# ", Escalated Cases Team", " (Producer Operations)", " - Billing Department" to the line end
_OFFICE_AFTER = re.compile(
    r"[ \t]*(?:,|\(|[-\u2013\u2014|][ \t])[ \t]*(?P<office>[^\n()]{3,60})\)?[ \t]*$", re.MULTILINE
)
_TEAM_WORDS = words(
    "team department dept office operations unit division desk bureau services equipo"
    " departamento oficina cases casos"
)
_TEAM_CHARS = 8  # "Producer Operations" in "MHBE Producer Operations Team"; not "Team"
_AT_AN_OFFICE = re.compile(r"[ \t]+at[ \t]+(?:the[ \t]+)?")
# Words of firms in a mail domain or a mailbox: insurance agencies, carriers, practices.
_FIRM_WORD = re.compile(
    r"insurance|insure|seguros|benefits|brokerage|broker|agency|advisors|financial"
    r"|^(?:carefirst|kaiser|kp|uhc|unitedhealthcare|aetna|cigna|wellpoint|amerigroup|elevance"
    r"|anthem|humana|molina|jaimedical|ppmco|mpc|medstar|jhhc|hopkins|umms|lifebridge"
    r"|marylandhealthconnection|mhbe|deltadental|guardian|metlife)"
    r"|cpas?$|law$|legal"
)
_INSURANCE_FIRM = re.compile(
    r"\b(?:insurance|insurers?|seguros|brokers?|brokerage|benefits|agency|agencia)\b",
    re.IGNORECASE,
)
# a mailbox a firm runs at a mail provider: "tgranger.insurance@gmail.com"
_FIRM_MAILBOX = re.compile(r"insurance|seguros|brokerage|agency|benefits")
_TOLL_FREE = frozenset({"800", "833", "844", "855", "866", "877", "888"})
_PUBLIC_DOMAIN = re.compile(r"(?:^|\.)(?:gov|mil)$|\.state\.[a-z]{2}\.us$|(?:^|\.)[a-z]{2}\.us$")
# Local parts that name a function: a shared mailbox, not a person.
_ROLE_MAILBOX = re.compile(
    r"^(?:no-?reply|do-?not-?reply|info|support|help|helpdesk|service|services|admin|office"
    r"|contact|enroll|enrollment|billing|claims|appeals|escalations?|cases|team|desk"
    r"|notifications?|alerts?|postmaster|mailer-daemon|webmaster|hr|payroll|benefits|sales"
    r"|customerservice|customer\.?service|brokerservices?|broker\.?services?|producers?"
    r"|memberservices?|member\.?services?|agentsupport|agent\.?support|eligibility)\b"
    r"|(?:services?|support|team|desk|help|enrollment|escalations?|cases)$"
)
# The first line of a mail: a greeting, a name, and nothing after it but punctuation.
_READER = (
    r"(?i:(?:mr|mrs|ms|dr|sr|sra|srta)\.?[ \t]+)?"  # "Good morning Mr. Quinn,"
    r"[A-ZÀ-ÖØ-Þ][^\W\d_]*(?:[ \t]+(?:[/&][ \t]*|and[ \t]+|y[ \t]+)?[A-ZÀ-ÖØ-Þ][^\W\d_]*){0,2}"
)
_OPENING_GREETING = re.compile(
    # a greeting or thanks, then a name: one to three capitalised words, or one lower-case
    # word ("hi dana,"); then only punctuation, a dash or a full stop before the rest of the
    # line ("Hi Keisha - client is ...", "Got it, thanks Bethany. Will wait")
    r"\s*(?:(?i:got[ \t]+it|ok(?:ay)?|perfect|perfecto|listo)[ \t]*[,!.]?[ \t]*)?"
    r"(?i:hi|hello|hey|dear|good\s+(?:morning|afternoon)|hola|buen[oa]s\s+(?:d[ií]as|tardes)"
    r"|estimad[oa]|querid[oa]|thanks|thank[ \t]+you|gracias|muchas[ \t]+gracias)"
    rf"[ \t]+(?P<name>{_READER}|[^\W\d_]+)"
    r"[ \t]*(?:[,:;!.\-\u2013\u2014][^\n]*)?(?:\n|\Z)"
    # or the name alone with its comma, as people open mail: "Brian," "Olivia / Tamika,",
    # or a greeting after it ("Yesenia, buenas tardes:"); one word with a dash after it
    # ("Gloria — forwarding what my client sent me")
    rf"|\s*(?P<bare>{_READER}),[ \t]*(?:(?i:buen[oa]s|good|hi|hello|hope|thanks|gracias)\b[^\n]*)?"
    r"(?:\n|\Z)"
    r"|\s*(?P<dashed>[A-ZÀ-ÖØ-Þ][^\W\d_]+)[ \t]+[-\u2013\u2014][ \t]"
)
_WEB_GLUE = frozenset("./@:_-=?&#%~+")  # what joins a word into a host name or a path
_WEB_REACH = 200  # characters around a finding that a web address around it may span
# A host name with a top-level domain, a URL's scheme or "www.", or an address's "@".
_WEB_NAME = re.compile(
    r"://|\bwww\.|@[\w-]+\.|[\w-]\.(?:com|org|net|edu|gov|us|io|info|biz|co|mil|app|health"
    r"|insure|insurance|agency)\b",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"(?<![\w.+'-])[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")


class Allowance:
    """The allow rules for one scan: system spans of the text plus the sender's identity."""

    def __init__(self, allow: AllowList, terms: Sequence[str] = ()) -> None:
        phones = (allow.sender_phone, *allow.phones)
        emails = (allow.sender_email, *allow.emails)
        names = (allow.sender_name, *allow.names)
        self.phones = PUBLIC_PHONES | {phone_key(p) for p in phones if p}
        self.emails = PUBLIC_EMAILS | {e.strip().lower() for e in emails if e}
        self.domains = frozenset(d.strip().lower().lstrip("@") for d in allow.email_domains)
        self.terms = tuple(t.lower() for t in (*terms, *allow.terms) if t.strip())
        self.address = _squash(allow.sender_address or "")
        self.name_words = frozenset(
            w.lower() for name in names if name for w in _NAME_WORD.findall(name)
        )
        self.greeting_names_the_desk = allow.greeting_names_the_desk
        # a roster producer or a caseworker: their name, not only the address they wrote from
        self.writer_known = bool(allow.sender_name or allow.names or allow.phones)
        self._last: tuple[str, _SpanIndex, tuple[int, int] | None] | None = None
        self.anchors = SignatureAnchors(
            self.name_words,
            frozenset(e.strip().lower() for e in (allow.sender_email,) if e),
            frozenset(phone_key(p) for p in phones if p),
            tuple(o.lower() for o in allow.organisations if o.strip()),
        )

    def filter(self, text: str, findings: Iterable[Finding]) -> list[Finding]:
        findings = list(findings)
        if not findings:
            return []
        spans, reader = self._read(text)
        offices = _public_offices_addresses(text, findings)
        kept = [
            f
            for f in findings
            if not spans.overlaps(f)
            and not self._is_sender(text, f)
            and not _of_world(text, f)
            and not _in_a_web_name(text, f)
            and not (f.entity_type == E.PERSON and self._names_the_reader(text, f, reader))
            and not _public_contact(text, f)
            and not (f.entity_type == E.PERSON and self._beside_an_office_address(text, f))
            and f not in offices
        ]
        # people who work with the writer or for an office, and their phone or address
        # written right after them ("Ms. Renee Dorsey, 410-555-0193")
        professionals = [
            f for f in kept if _works_with_the_writer(text, f) or self._signs_for(text, f)
        ]
        if professionals:
            kept = [
                f
                for f in kept
                if f not in professionals and not _just_after(text, f, professionals)
            ]
        return self._outside_signature(text, kept, professionals)

    def _read(self, text: str) -> tuple[_SpanIndex, tuple[int, int] | None]:
        """The allowed spans of ``text`` and where its reader is named, worked out once for
        the findings of a text and again for the names carried over in it (the engine
        filters both)."""
        if self._last is None or self._last[0] is not text:
            spans = system_spans(text) + self._term_spans(text) + self._email_spans(text)
            self._last = (text, _SpanIndex(spans), self._reader(text))
        return self._last[1], self._last[2]

    @staticmethod
    def _names_the_reader(text: str, finding: Finding, reader: tuple[int, int] | None) -> bool:
        """The reader's name where the greeting has it, or again elsewhere, alone or in part
        ("Hola Luz Marina," then "Marina"): the caseworker's, not a consumer's."""
        if reader is None:
            return False
        if reader[0] <= finding.start and finding.end <= reader[1]:
            return True
        words = {w.lower() for w in _NAME_WORD.findall(text, *reader)}
        mine = [w.lower() for w in _NAME_WORD.findall(text, finding.start, finding.end)]
        return bool(mine) and set(mine) <= words

    def _reader(self, text: str) -> tuple[int, int] | None:
        """Where the name a mail to the desk opens with stands, after a greeting and alone
        on its line: "Hi Dana,", "Hola Marisol:".  That is the reader, the caseworker the
        mail is written to, not a consumer.  Only the first line counts: a greeting
        further down opens quoted or forwarded mail, which may be written to a consumer."""
        if not self.greeting_names_the_desk:
            return None
        opening = _OPENING_GREETING.match(text)
        if opening is None:
            return None
        for group in ("name", "bare", "dashed"):
            if opening.group(group):
                return opening.span(group)
        return None

    def _signs_for(self, text: str, finding: Finding) -> bool:
        """A name with its office after it on its line: "Casey Morgan, Escalated Cases
        Team", "Monique Whitley, Producer Operations", "Tamika R. (Escalated Cases Team)"."""
        if finding.entity_type != E.PERSON:
            return False
        after = _OFFICE_AFTER.match(text, finding.end)
        if after is None:
            return False
        # the desk's own team, or an office's words ("Team", "Department"): a carrier's or
        # a firm's name alone may be where a listed consumer is enrolled or works
        office = after.group("office").strip()
        lowered = office.lower()
        desk = any(lowered in term for term in self.terms) and len(lowered) >= _TEAM_CHARS
        return desk or (_organisation_line(office) and _names_a_team(office))

    def _beside_an_office_address(self, text: str, finding: Finding) -> bool:
        """A name on the line of a firm's or the desk's email address ("Colleen Marsh
        <cmarsh@fitzgeraldbenefits.com>", "cc: Trevor Ashby, tashby.broker@carefirst.com"):
        the person who answers that address, not a consumer."""
        # the address stands close by on the same line: a paragraph may name anyone
        low = max(0, finding.start - _NEAR)
        line_start = max(low, text.rfind("\n", low, finding.start) + 1)
        high = min(len(text), finding.end + _NEAR)
        line_end = text.find("\n", finding.end, high)
        line = text[line_start : high if line_end < 0 else line_end]
        if "@" not in line:
            return False
        return any(
            _business_address(m.group()) or self._allowed_email(m.group())
            for m in _EMAIL.finditer(line)
        )

    def _outside_signature(
        self, text: str, findings: list[Finding], professionals: Sequence[Finding] = ()
    ) -> list[Finding]:
        """Drop the contact findings in the writer's own signature blocks and in the blocks
        that sign for an office; then the other mentions of the people signing there (and
        of the professionals named)."""
        if not any(f.entity_type in _SIGNATURE_KINDS for f in findings):
            return findings
        offices = list(
            office_blocks(
                text, _organisation_line, self.writer_known, _public_office_line, _sells_insurance
            )
        )
        blocks = [(start, end) for start, end, _ in offices]
        # a public office's address (its letterhead) is public; a firm's is kept from the
        # redaction only in the writer's own block: a consumer's employer signs like a firm
        public = [(start, end) for start, end, is_public in offices if is_public]
        if self.anchors:
            public += signature_blocks(text, self.anchors)
        if not blocks and not public and not professionals:
            return findings
        inside = [
            f
            for f in findings
            if f.entity_type in _SIGNATURE_KINDS
            and _within(f, public if f.entity_type == E.ADDRESS else blocks + public)
        ]
        signers = _name_words(
            text, (f for f in (*inside, *professionals) if f.entity_type == E.PERSON)
        )
        return [f for f in findings if f not in inside and not _only_words_of(text, f, signers)]

    def _email_spans(self, text: str) -> list[tuple[int, int]]:
        """Allowed addresses shelter what lies inside them ("casey" in casey@desk)."""
        if "@" not in text:
            return []
        return [m.span() for m in _EMAIL.finditer(text) if self._allowed_email(m.group())]

    def _allowed_email(self, value: str) -> bool:
        value = value.lower()
        return value in self.emails or value.rpartition("@")[2] in self.domains

    def _term_spans(self, text: str) -> list[tuple[int, int]]:
        # str.find, not a pattern a term: a conversation allows some thirty terms (team
        # names, the words for kinds of data) and most are in no given text.
        lowered = text.lower()
        spans = []
        for term in self.terms:
            at = lowered.find(term)
            while at >= 0:
                spans.append((at, at + len(term)))
                at = lowered.find(term, at + 1)
        return spans

    def _is_sender(self, text: str, finding: Finding) -> bool:
        value = text[finding.start : finding.end]
        kind = finding.entity_type
        if kind == E.PHONE_NUMBER:
            return phone_key(value) in self.phones
        if kind == E.EMAIL_ADDRESS:
            return self._allowed_email(value)
        if kind == E.PERSON and self.name_words:
            return self._is_sender_name(value, word_before(text, finding.start))
        if kind == E.ADDRESS and self.address:
            squashed = _squash(value)
            return bool(squashed) and (squashed in self.address or self.address in squashed)
        return False

    def _is_sender_name(self, value: str, before: str) -> bool:
        """Made of the sender's name words, once the greeting or function words a span may
        have swallowed are set aside ("Hola Rosa Martinez", "Estimada Sra. Adeyemi").

        Only words no list knows as a name are set aside, so "Will Martinez" is not
        Rosa Martinez; a span of such words alone must itself be the sender's words.
        """
        words = [w.lower() for w in _NAME_WORD.findall(value)]
        fillers = load_gazetteer().fillers(words, before)
        core = {w for w, filler in zip(words, fillers, strict=True) if not filler}
        return bool(words) and all(
            names_the_writer(w, self.name_words) for w in (core or set(words))
        )


class _SpanIndex:
    """Allowed spans sorted by start, with the furthest end so far: an overlap test is a
    binary search, so a long text with many identifiers and findings stays linear-ish."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        spans.sort()
        self.starts = [start for start, _ in spans]
        self.reach: list[int] = []
        furthest = -1
        for _, end in spans:
            furthest = max(furthest, end)
            self.reach.append(furthest)

    def overlaps(self, finding: Finding) -> bool:
        before = bisect.bisect_left(self.starts, finding.end)  # spans starting before its end
        return before > 0 and self.reach[before - 1] > finding.start


def _of_world(text: str, finding: Finding) -> bool:
    """A name or an address that is one of the desk's places, carriers, agencies, hospitals
    or employers (``pii_guard.world``): "Havre de Grace", "Kaiser", "Johns Hopkins"."""
    if finding.entity_type not in (E.PERSON, E.ADDRESS):
        return False
    gazetteer = load_gazetteer()
    words = list(_NAME_WORD.finditer(text, finding.start, finding.end))
    # the function words a span took with it ("Pero Jai Medical Systems") are no part of it
    while words and _filler(gazetteer, words[0].group()):
        words.pop(0)
    while words and _filler(gazetteer, words[-1].group()):
        words.pop()
    if not words:
        return False
    return load_world().covers(text, words[0].start(), words[-1].end(), gazetteer.knows)


def _filler(gazetteer: Gazetteer, word: str) -> bool:
    lowered = word.lower()
    return gazetteer.is_filler(lowered) or lowered in gazetteer.spanish_stop_words


def _organisation_line(line: str) -> bool:
    """A line that names an office or a firm: no digits, no plan, and a word of a firm or an
    office ("Team", "Department", "CPAs", "Seguros") or one of the desk's world's
    organisations ("Maryland Health Connection", "CareFirst")."""
    if _DIGIT.search(line) or _PLAN.search(line):
        return False
    if line.count("|") == 1 and "\t" not in line:
        # "Escalated Cases Team | Maryland Health Connection": a title or a team beside it
        return any(_organisation_line(part.strip()) for part in line.split("|"))
    if _COLUMNS.search(line):
        return False  # (a table's header is no office: "Nombre   Parentesco   Programa")
    words = _NAME_WORD.findall(line)
    if not 0 < len(words) <= 8 or not words[0][0].isupper():
        return False
    if _office_words(line):
        return True
    start = line.index(words[0])
    return load_world().names_an_office(line, start)


def _office_words(line: str) -> bool:
    return any(w.lower() in _OFFICE_WORDS and w[0].isupper() for w in _NAME_WORD.findall(line))


def _names_a_team(line: str) -> bool:
    """A unit of an organisation ("Escalated Cases Team", "Billing Department"), not the
    organisation alone ("Kaiser Permanente"): a consumer may be listed with their carrier."""
    return any(w.lower() in _TEAM_WORDS for w in _NAME_WORD.findall(line))


def _sells_insurance(line: str) -> bool:
    """An organisation's line that names an insurance agency or brokerage ("Bay Country
    Insurance", "Ibarra Seguros", "Keystone Health Brokers | Elkton, MD")."""
    return _INSURANCE_FIRM.search(line) is not None


def _public_office_line(line: str) -> bool:
    """An office of the state, a county, a carrier or the exchange ("Anne Arundel County
    Department of Social Services", "Motor Vehicle Administration", "Maryland Health
    Connection"): its letterhead's address is public.  (Asked of organisations' lines.)"""
    words = _NAME_WORD.findall(line)
    if any(w.lower() in _PUBLIC_OFFICE_WORDS for w in words):
        return True
    return load_world().names_an_office(line, line.index(words[0]), STAFFED)


def _public_offices_addresses(text: str, findings: Sequence[Finding]) -> list[Finding]:
    """The addresses written after a public office's name, and the parts of each that a
    recognizer found apart ("Rockville, MD 20850" in or after "DHHS, 1335 Piccard Drive")."""
    addresses = sorted((f for f in findings if f.entity_type == E.ADDRESS), key=attrgetter("start"))
    offices: list[Finding] = []
    for finding in addresses:
        continued = any(
            o.start <= finding.start
            and (
                finding.end <= o.end
                or _OFFICE_CONTINUES.fullmatch(text, o.end, finding.start) is not None
            )
            for o in offices
        )
        if continued or _after_a_public_office(text, finding):
            offices.append(finding)
    return offices


def _line_before(text: str, finding: Finding) -> str:
    """What stands before ``finding`` on its line, within an office's name's reach."""
    line_start = max(finding.start - _OFFICE_REACH, text.rfind("\n", 0, finding.start) + 1)
    return text[line_start : finding.start]


def _after_a_public_office(text: str, finding: Finding) -> bool:
    """An address written right after a public office's name on its line: "Maryland Health
    Connection, P.O. Box 857, Lanham", "el Departamento de Servicios Sociales del Condado
    de Frederick (100 East All Saints Street, ...)": the office's, as on its letterhead."""
    before = _OFFICE_JOIN.sub("", _line_before(text, finding))
    if not before:
        return False
    # the office's name is the last words before the address, capitalised but for its
    # particles ("of", "del"): the run of them, then each start in it, longest first
    words = list(_NAME_WORD.finditer(before))
    run = len(words)
    while run and (
        words[run - 1].group()[0].isupper() or words[run - 1].group() in _OFFICE_PARTICLES
    ):
        run -= 1
    for word in words[run:]:
        name = before[word.start() :]
        if word.group()[0].isupper() and _organisation_line(name) and _public_office_line(name):
            return True
    return False


def _within(finding: Finding, blocks: Sequence[tuple[int, int]]) -> bool:
    return any(start <= finding.start and finding.end <= end for start, end in blocks)


def _name_words(text: str, findings: Iterable[Finding]) -> frozenset[str]:
    return frozenset(
        w.lower()
        for f in findings
        for w in _NAME_WORD.findall(text, f.start, f.end)
        if len(w) > 2 and w[0].isupper()
    )


def _only_words_of(text: str, finding: Finding, words: frozenset[str]) -> bool:
    """A name made only of the words of the people signing for the writer or an office
    ("Tamika" in "Thanks Tamika" when "Tamika R." signs a quoted reply)."""
    if finding.entity_type != E.PERSON or not words:
        return False
    mine = [w.lower() for w in _NAME_WORD.findall(text, finding.start, finding.end)]
    return bool(mine) and all(w in words for w in mine if len(w) > 1)


def _just_after(text: str, finding: Finding, people: Sequence[Finding]) -> bool:
    """A phone, an email address or an address written right after one of ``people``."""
    if finding.entity_type not in (E.PHONE_NUMBER, E.EMAIL_ADDRESS, E.ADDRESS):
        return False
    return any(
        0 <= finding.start - p.end <= _CONTACT_GAP
        and _CONTACT_JOIN.fullmatch(text, p.end, finding.start) is not None
        for p in people
    )


def _works_with_the_writer(text: str, finding: Finding) -> bool:
    """A name introduced as someone who works with the writer or at a carrier or an agency:
    "my assistant Jenny", "our office manager, Dawn", "Karen at CareFirst", "Ms. Diaz at
    the LDSS".  The desk's mail names them to say who said what; none is a consumer."""
    if finding.entity_type != E.PERSON:
        return False
    start = finding.start
    title = _TITLE_FIRST.match(text, start, finding.end)  # a span that took "CPA, " with it
    if title:
        start = title.end()
    window = text[max(0, start - 50) : start].lower()
    if any(hint in window for hint in _COLLEAGUE_HINTS) and _COLLEAGUE_BEFORE.search(window):
        return True
    if _TITLE_AFTER.match(text, finding.end):
        return True  # "Tom Whitcomb, CPA", "Mary Jo Kline (agent)"
    # a consumer's role right before the name ("my client Dr. Amina Yusuf", "her son (Omar)")
    # outweighs what follows it
    if _CONSUMER_BEFORE.search(_TITLE_AT_END.sub("", window)):
        return False
    return _placed_at_work(text, finding, window)


def _placed_at_work(text: str, finding: Finding, window: str) -> bool:
    """Where a name stands says they work somewhere: "Keisha on the hotline", "the DSS worker
    (Mr. Ennis)", "Dr. Holloway", "Karen at CareFirst", "… of Chesapeake Benefits Group"."""
    end = _past_listed_names(text, finding.end)
    if _COLLEAGUE_AFTER.match(text, end) or _LINE_STAFF_AFTER.match(text, end):
        return True  # "... from my office", "Keisha on the hotline"
    if _OFFICE_PAREN.search(window) or _PROFESSIONAL_TITLE.search(window):
        return True
    if _of_a_firm(text, finding, end):
        return True
    at = _AT_AN_OFFICE.match(text, finding.end)
    return at is not None and load_world().names_an_office(text, at.end(), STAFFED)


def _of_a_firm(text: str, finding: Finding, end: int) -> bool:
    """ "Mr. Darnell Whitfield of Chesapeake Benefits Group", also when the firm's first word
    was taken into the name as a surname after its particle ("Alfredo Quintero de Quintero
    Tax Services")."""
    inner = _LAST_PARTICLE.search(text, finding.start, finding.end)
    for position in (end, inner.start() if inner else None):
        of = _OF_A_FIRM.match(text, position) if position is not None else None
        firm = of.group("firm") if of is not None else ""
        if firm and _office_words(firm) and _organisation_line(firm):
            return True
    return False


def _past_listed_names(text: str, end: int) -> int:
    """Past the names listed right after one (two at most)."""
    for _ in range(2):
        listed = _LISTED_NAME.match(text, end)
        if listed is None:
            break
        end = listed.end()
    return end


def _public_contact(text: str, finding: Finding) -> bool:
    """A business's or an office's contact point, never a consumer's own: a toll-free
    number (a call centre: "1-855-642-8572"), a government address (".gov", ".md.us") or
    an address named after a role, not a person ("brokerservices@", "enrollment@")."""
    value = text[finding.start : finding.end]
    if finding.entity_type == E.PHONE_NUMBER:
        return phone_key(value)[:3] in _TOLL_FREE or _labelled_by_an_office(text, finding)
    if finding.entity_type == E.EMAIL_ADDRESS:
        return _business_address(value)
    return False


def _labelled_by_an_office(text: str, finding: Finding) -> bool:
    """A number whose line names a public office before it: "MVA Customer Service:
    410-768-7000", "Anne Arundel County DSS - 410-269-4500" (a letter's contact line)."""
    label = _LABEL_EDGES.sub("", _line_before(text, finding))
    words = [w.lower() for w in _NAME_WORD.findall(label)]
    # an office's name, not a kind of number ("Office", "Home office", "Work")
    if len(words) < 2 or not _PHONE_KINDS.isdisjoint(words):
        return False
    return _organisation_line(label) and _public_office_line(label)


def _business_address(value: str) -> bool:
    """An office's or a firm's address: a government domain, a mailbox named after a
    function, a firm's domain or a mailbox named after one ("…@villalobosinsurance.com",
    "tgranger.insurance@gmail.com", "tashby.broker@carefirst.com")."""
    local, _, domain = value.lower().rpartition("@")
    if _PUBLIC_DOMAIN.search(domain) or _ROLE_MAILBOX.search(local):
        return True
    label = domain.split(".", 1)[0]
    return _FIRM_WORD.search(label) is not None or _FIRM_MAILBOX.search(local) is not None


def _in_a_web_name(text: str, finding: Finding) -> bool:
    """A name or an address inside a host name, a URL or an email address: "harvard.edu",
    "www.brooksins.com/team".  An email address is its own finding; a person's name in a
    web address is the firm's or the page's, and redacting it leaves a broken link."""
    if finding.entity_type not in (E.PERSON, E.ADDRESS):
        return False
    before = text[finding.start - 1 : finding.start]
    after = text[finding.end : finding.end + 1]
    if before not in _WEB_GLUE and after not in _WEB_GLUE:
        return False  # the usual case: nothing joins the finding to a host name or a path
    # a web address is one run without blanks, and a finding inside one lies within reach
    # of its ends: the searches stay in a window, so thousands of findings stay linear
    low, high = max(0, finding.start - _WEB_REACH), finding.end + _WEB_REACH
    start = max(text.rfind(c, low, finding.start) for c in " \t\n<(\"'") + 1
    start = max(start, low)
    ends = [at for c in " \t\n>)\"'" if (at := text.find(c, finding.end, high)) >= 0]
    token = text[start : min(ends, default=min(len(text), high))]
    if not token or any(c.isspace() for c in text[finding.start : finding.end]):
        return False
    return _WEB_NAME.search(token) is not None


def system_spans(text: str) -> list[tuple[int, int]]:
    """Where the desk's own identifiers and other never-PII tokens are in ``text``."""
    spans: list[tuple[int, int]] = []
    lower = fold(text)
    for literals, pattern in _SYSTEM_SPANS:
        if not any(literal in lower for literal in literals):
            continue
        for match in pattern.finditer(lower):
            spans.append(match.span("v") if "v" in pattern.groupindex else match.span())
    return spans


def _squash(value: str) -> str:
    return re.sub(r"[\W_]+", "", value.lower())
