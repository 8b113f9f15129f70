"""Pasted spreadsheet rows: the column's header says what each cell is.

Producers paste tables (tab-, pipe-, comma- or space-aligned, with a header
line) of the households they write about.  Read as prose, a row is a run of
names, dates and numbers that the other recognizers can only guess at, and an
address pattern may run across the Person ID and the effective date a
caseworker needs.  Read row by row, a cell under ``Name``/``Nombre`` is a
person, under ``DOB`` a birth date, under ``SSN``/``SS#`` an SSN, under
``Member ID``, ``Medicaid``, ``Phone``, ``Address`` or ``Email`` what those
say (0.85), and a cell under ``Person ID``/``PID``, ``Effective date``,
``Plan``, ``Carrier``, ``Premium`` or ``Status`` is the desk's own and must
stay: ``keep_spans`` names those cells and the header cells, and ``settle``
trims any finding off them.

A header is a line of at least two known column names (and no more unknown
ones than known); the rows are the lines after it with the same separator,
up to a blank line or a line without it.  Cells map to columns by position;
a row of comma-separated values with more cells than headers (an address
written with commas) gives the extra cells to its one address column, and a
space-aligned row maps each cell to the column it stands under.  Every line is
read once: the cost is linear, and a text with no header costs one split of
each line that holds a separator.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from pii_guard import entities as E
from pii_guard.findings import Finding
from pii_guard.recognizers.base import CARRIER_NAMES, fold
from pii_guard.recognizers.gazetteer import PARTICLES

__all__ = [
    "KEEP",
    "Table",
    "TableRecognizer",
    "column_kind",
    "keep_spans",
    "plausible",
    "settle",
    "tables",
]

KEEP = "KEEP"  # a column the desk needs as written


def _labels(kind: str, names: str) -> dict[str, str]:
    return {name.replace("_", " "): kind for name in names.split()}


def _people(roles: str) -> dict[str, str]:
    """Who a column lists, as a person: each role, and its name ("covered individual
    name", "nombre del hijo")."""
    found: dict[str, str] = {}
    for role in roles.split():
        words = role.replace("_", " ")
        found |= {words: E.PERSON, f"{words} name": E.PERSON, f"{words}s name": E.PERSON}
        found |= {f"{words} names": E.PERSON, f"nombre del {words}": E.PERSON}
    return found


# Column names, folded, punctuation other than "#" and "/" read as blanks ("D.O.B." is
# "d o b", then also looked up without blanks: "dob").
_COLUMNS: dict[str, str] = {
    **_labels(
        E.PERSON,
        """name names full_name client client_name consumer consumer_name member_name
        applicant applicant_name enrollee enrollee_name first_name last_name first last
        given_name surname middle_name primary primary_name dependent dependent_name
        dependents spouse subscriber_name patient beneficiary household_member nombre
        nombres nombre_completo apellido apellidos cliente nombre_del_cliente
        miembro_del_hogar dependiente conyuge cónyuge previous_name former_name
        maiden_name legal_name other_name other_names preferred_name name_on_card aka
        also_known_as alias nickname subscriber cardholder card_holder head_of_household
        primary_applicant nombre_anterior nombre_legal apellido_de_soltera apodo""",
    ),
    **_people(
        """covered_individual individual person insured policyholder policy_holder child
        children kid baby son daughter husband wife parent guardian household_member
        responsible_party tax_filer hijo hija esposo esposa asegurado titular"""
    ),
    **_labels(
        E.DATE_OF_BIRTH,
        """dob dobs date_of_birth birth_date birthdate birthday fecha_de_nacimiento
        fecha_nacimiento f nac fnac fecha_nac fecha_de_nac nacimiento fdn nac born birth
        cumpleaños""",
    ),
    **_labels(
        E.US_SSN,
        """ssn ssns ss# ssn# social social_security social_security_number ssn_last_4
        last_4_ssn ssn/itin itin/ssn ss seguro_social número_de_seguro_social
        numero_de_seguro_social ssn_(last_4)""",
    ),
    **_labels(E.US_ITIN, "itin itin#"),
    **_labels(
        E.MEMBER_ID,
        """member_id member_# member_number member# subscriber_id subscriber_#
        subscriber_number carrier_member_id carrier_id policy_# policy_number policy_id
        id_de_miembro número_de_miembro numero_de_miembro mrn insurance_id""",
    ),
    **_labels(
        E.MEDICAID_ID,
        """medicaid medicaid_id medicaid_# medicaid_number ma_id ma# ma_# ma_number mmis
        mchp mchp_id medical_assistance medical_assistance_id""",
    ),
    **_labels(E.MEDICARE_MBI, "mbi medicare medicare_id medicare_# medicare_number"),
    **_labels(
        E.PHONE_NUMBER,
        """phone phone_# phone_number phones cell cell_phone mobile tel telephone home_phone
        work_phone contact_number teléfono telefono celular número_de_teléfono""",
    ),
    **_labels(E.EMAIL_ADDRESS, "email e_mail email_address correo correo_electrónico"),
    **_labels(
        E.ADDRESS,
        """address home_address mailing_address street street_address address_1 address_2
        address_line_1 address_line_2 residential_address city zip zip_code zipcode
        postal_code dirección direccion domicilio ciudad código_postal codigo_postal""",
    ),
    **_labels(
        E.US_DRIVER_LICENSE,
        "dl dl# driver's_license drivers_license driver_license license_# licencia",
    ),
    **_labels(
        E.US_BANK_NUMBER,
        "account account_# account_number bank_account acct acct_# cuenta",
    ),
    **_labels(E.ABA_ROUTING_NUMBER, "routing routing_# routing_number aba"),
    **_labels(E.CREDIT_CARD, "card card_number card_# credit_card tarjeta"),
    **_labels(
        KEEP,
        """person_id person_ids pid pids npn incident incident_# incident_number case case_#
        case_number effective effective_date eff_date eff eff_dt start_date end_date start end
        term_date termination_date termination coverage coverage_start coverage_end plan plan_name
        plan_id carrier carrier_name issuer premium premiums aptc csr status enrollment
        enrollment_status metal metal_level application_id app_id tax_year notes_id
        fecha_efectiva fecha_de_vigencia vigencia plan_de_salud aseguradora prima estado
        estatus relationship relation relación relacion parentesco eligibility
        elegibilidad program programa""",
    ),
}
# a carrier's own number for its member: "UHC ID", "ID UHC", "Kaiser #", "número de UHC"
_CARRIER_COLUMN = re.compile(
    rf"(?:{CARRIER_NAMES}) (?:member )?(?:id|#|no|number|mrn)"
    rf"|(?:member )?(?:id|#|no|number|n[uú]mero)(?: de miembro)?(?: de| del)? (?:{CARRIER_NAMES})"
)
_STATES = frozenset({"state", "st", "estado_postal", "county", "condado"})
_HEADER_WORD = re.compile(r"(?:[^\w#/']|_)+")  # "member_id" of a CSV export too
# "A. ", "(c) ", "12) " before a column name; "D.O.B." has no blank after its "D."
_ENUMERATOR = re.compile(r"\A[ \t]*\(?(?:[a-z]|\d{1,2})[.)][ \t]+")

_SEPARATORS = ("\t", "|", ";", ",", "  ")
_MAX_HEADER_CELL, _MAX_HEADER_WORDS = 40, 4
_RULE_LINE = re.compile(r"[\s|:+=-]*\Z")  # "|---|---|", "-----  -----"
_QUOTE = re.compile(r"[ \t]*(?:>[ \t]?)*")
_THOUSANDS = re.compile(r"\d,\d{3}(?![\d/.-])")  # "3,500", not "12,07/01/2025"
_SPACED_CELL = re.compile(r"\S+(?:[ ]\S+)*")  # cells of a space-aligned line
_PLACEHOLDER = frozenset(("n/a", "na", "none", "tbd", "unknown", "pending", "same", "-", "--", "?"))
_DIGIT = re.compile(r"\d")
_SCORE = 0.85
_BETWEEN_CELLS = frozenset('|,;">')
_NAME_WORDS = 5


def column_kind(header: str) -> str | None:
    """The entity (or ``KEEP``) a column name stands for; None when no list knows it.
    A form's enumerator before it ("A. Name", "(c) DOB", "3) SSN") is not part of it."""
    name = _HEADER_WORD.sub(" ", _ENUMERATOR.sub("", fold(header), count=1)).strip()
    if not name:
        return None
    kind = _COLUMNS.get(name) or _COLUMNS.get(name.replace(" ", ""))
    if kind is None and _CARRIER_COLUMN.fullmatch(name):
        return E.MEMBER_ID
    return kind


Span = tuple[int, int]


@dataclass(frozen=True)
class Table:
    """A header line's cells and kinds, and its rows' cells mapped to those columns."""

    header: tuple[Span, ...]
    kinds: tuple[str | None, ...]
    rows: tuple[tuple[tuple[int, Span], ...], ...]  # (column, cell) per row
    end: int  # where its last line ends

    @property
    def start(self) -> int:
        return self.header[0][0]

    def open_cells(self) -> Iterator[Span]:
        """The cells of its rows that a finding may cover: all but the kept columns'."""
        for row in self.rows:
            yield from (cell for column, cell in row if self.kinds[column] != KEEP)


def tables(text: str) -> Iterator[Table]:
    """The tables in ``text``, each a header line and the rows under it."""
    lines = list(_lines(text))
    index = 0
    while index < len(lines):
        start, end = lines[index]
        header = _header(text, start, end)
        if header is None:
            index += 1
            continue
        separator, cells, kinds = header
        rows, index = _rows(text, lines, index + 1, separator, cells, kinds)
        yield Table(tuple(cells), tuple(kinds), tuple(rows), lines[index - 1][1])


def _lines(text: str) -> Iterator[Span]:
    """Each line's span, past its quote marks ("> ")."""
    position = 0
    while position <= len(text):
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        quote = _QUOTE.match(text, position, end)
        yield (quote.end() if quote else position), end
        position = end + 1


def _header(text: str, start: int, end: int) -> tuple[str, list[Span], list[str | None]] | None:
    """The separator, cells and kinds of a header line, or None."""
    for separator in _SEPARATORS:
        if separator not in text[start:end]:
            continue
        cells = [c for c in _cells(text, start, end, separator) if c[0] < c[1]]
        if len(cells) < 2 or not all(_header_cell(text[s:e]) for s, e in cells):
            continue
        kinds = [column_kind(text[s:e]) for s, e in cells]
        known = sum(k is not None for k in kinds)
        states = sum(fold(text[s:e]).strip() in _STATES for s, e in cells)
        if known >= 2 and known + states >= len(cells) - known:
            return separator, cells, kinds
    return None


def _header_cell(value: str) -> bool:
    """Short enough for a column name: a sentence split at its commas is no header."""
    return len(value) <= _MAX_HEADER_CELL and len(value.split()) <= _MAX_HEADER_WORDS


def _thousands_joined(text: str, cells: list[Span]) -> list[Span]:
    """Comma-separated cells with "$3,500" (a plan's name written without quotes) made
    one cell again."""
    joined: list[Span] = []
    for cell in cells:
        if joined and _THOUSANDS.match(text, joined[-1][1] - 1, cell[1]):
            joined[-1] = (joined[-1][0], cell[1])
        else:
            joined.append(cell)
    return joined


def _cells(text: str, start: int, end: int, separator: str) -> list[Span]:
    if separator == "  ":
        return [m.span() for m in _SPACED_CELL.finditer(text, start, end)]
    if separator not in ",;" or '"' not in text[start:end]:
        return _split(text, start, end, separator)
    spans: list[Span] = []
    cell_start, quoted = start, False
    for position in range(start, end):
        char = text[position]
        if char == '"' and separator in ",;":
            quoted = not quoted
        elif char == separator and not quoted:
            spans.append(_trimmed(text, cell_start, position))
            cell_start = position + 1
    spans.append(_trimmed(text, cell_start, end))
    return spans


def _split(text: str, start: int, end: int, separator: str) -> list[Span]:
    spans: list[Span] = []
    cell_start = start
    for part in text[start:end].split(separator):
        spans.append(_trimmed(text, cell_start, cell_start + len(part)))
        cell_start += len(part) + 1
    if separator == "|":  # "| a | b |": no cell before the first bar or after the last
        if spans and spans[0][0] == spans[0][1]:
            spans = spans[1:]
        if spans and spans[-1][0] == spans[-1][1]:
            spans = spans[:-1]
    return spans


def _trimmed(text: str, start: int, end: int) -> Span:
    while start < end and (text[start].isspace() or text[start] == '"'):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] == '"'):
        end -= 1
    return start, end


def _rows(
    text: str,
    lines: list[Span],
    index: int,
    separator: str,
    header: list[Span],
    kinds: list[str | None],
) -> tuple[list[tuple[tuple[int, Span], ...]], int]:
    """The rows under a header, from line ``index``, and the index of the line after."""
    rows: list[tuple[tuple[int, Span], ...]] = []
    while index < len(lines):
        start, end = lines[index]
        if _RULE_LINE.match(text, start, end) and start < end:
            index += 1
            continue
        cells = _cells(text, start, end, separator) if separator in text[start:end] else []
        if separator == "," and not _fits(cells, header, kinds, separator):
            cells = _thousands_joined(text, cells)
        if len([c for c in cells if c[0] < c[1]]) < 2 or not _fits(cells, header, kinds, separator):
            break
        rows.append(tuple(_columns(text, cells, header, kinds, separator, lines[index][0])))
        index += 1
    return rows, index


def _fits(cells: list[Span], header: list[Span], kinds: list[str | None], separator: str) -> bool:
    """Whether a line can be a row: comma- and semicolon-separated prose has commas too,
    so there a row has the header's count of cells, or more for an address column."""
    if separator not in ",;":
        return True
    return len(cells) == len(header) or (len(cells) > len(header) and E.ADDRESS in kinds)


def _columns(
    text: str,
    cells: list[Span],
    header: list[Span],
    kinds: list[str | None],
    separator: str,
    line_start: int,
) -> Iterator[tuple[int, Span]]:
    """Each non-empty cell of a row with the column it stands in."""
    if len(cells) == len(header):
        mapped = list(enumerate(cells))
    elif separator == "  ":
        mapped = _by_position(text, cells, header, line_start)
    elif len(cells) > len(header) and kinds.count(E.ADDRESS) == 1:
        mapped = _extra_to_address(cells, kinds)
    elif len(cells) < len(header):
        mapped = list(enumerate(cells))
    else:
        mapped = []  # more cells than columns and no place for them: no column is sure
    for column, (start, end) in mapped:
        if start < end:
            yield column, (start, end)


def _by_position(
    text: str, cells: list[Span], header: list[Span], line_start: int
) -> list[tuple[int, Span]]:
    """Cells of a space-aligned row under the header cell they start beneath; neighbours
    under one column are one cell ("Baltimore, MD  21214")."""
    header_line = text.rfind("\n", 0, header[0][0]) + 1
    header_quote = _QUOTE.match(text, header_line)
    header_base = header_quote.end() if header_quote else header_line
    starts = [s - header_base for s, _ in header]
    merged: dict[int, Span] = {}
    for start, end in _at_columns(text, cells, [line_start + s for s in starts]):
        offset = start - line_start
        column = max((i for i, s in enumerate(starts) if s <= offset + 1), default=0)
        first = merged.get(column, (start, end))[0]
        merged[column] = (first, end)
    return sorted(merged.items())


def _at_columns(text: str, cells: list[Span], columns: list[int]) -> Iterator[Span]:
    """Cells split where a column starts after a single blank ("883120 Robert Chen" under
    "PID    Name" is two cells)."""
    for start, end in cells:
        for column in columns:
            if start < column < end and text[column - 1] == " " and text[column] != " ":
                yield _trimmed(text, start, column)
                start = column
        yield start, end


def _extra_to_address(cells: list[Span], kinds: list[str | None]) -> list[tuple[int, Span]]:
    """A comma-separated row with an address written with commas: the cells before the
    address column map from the left, those after it from the right, the rest is it."""
    column = kinds.index(E.ADDRESS)
    after = len(kinds) - column - 1
    tail = len(cells) - after
    mapped = list(enumerate(cells[:column]))
    mapped.append((column, (cells[column][0], cells[tail - 1][1])))
    mapped += [(column + 1 + i, cell) for i, cell in enumerate(cells[tail:])]
    return mapped


def plausible(kind: str, value: str) -> bool:
    """Whether a cell holds a value of its column's kind (not "N/A", not a header again)."""
    folded = fold(value).strip()
    if folded in _PLACEHOLDER or column_kind(value) is not None:
        return False
    count = len(_DIGIT.findall(value))
    if kind == E.PERSON:
        named = [w for w in folded.split() if w not in PARTICLES]  # "maría de los ángeles ..."
        return count == 0 and value[:1].isalpha() and len(named) <= _NAME_WORDS
    if kind == E.EMAIL_ADDRESS:
        return "@" in value
    if kind == E.ADDRESS:
        return (count >= 5 or any(c.isalpha() for c in value)) and len(value) <= 120
    if kind == E.DATE_OF_BIRTH:
        return count >= 1 and len(value) <= 24
    if kind == E.PHONE_NUMBER:
        return count >= 7 and len(value) <= 30
    return count >= 4 and len(value) <= 30  # identifiers, "last 4" included


class TableRecognizer:
    """Cells of pasted tables under a column header that names personal data."""

    name = "TableRecognizer"

    def analyze(self, text: str, entities: Collection[str]) -> list[Finding]:
        if not _maybe_table(text):
            return []
        wanted = set(entities)
        results: list[Finding] = []
        for table in tables(text):
            for row in table.rows:
                for column, (start, end) in row:
                    kind = table.kinds[column]
                    if kind in wanted and kind is not None and plausible(kind, text[start:end]):
                        results.append(Finding(kind, start, end, _SCORE))
        return results


def _maybe_table(text: str) -> bool:
    """A cheap first test: a table needs a separator other than a lone comma."""
    return "\t" in text or "|" in text or "  " in text or text.count(",") >= 2


def keep_spans(text: str) -> list[Span]:
    """Header cells, and cells of the columns the desk needs (Person ID, effective date,
    plan, carrier, premium, status), in every table of ``text``."""
    if not _maybe_table(text):
        return []
    spans: list[Span] = []
    for table in tables(text):
        spans.extend(table.header)
        for row in table.rows:
            spans.extend(cell for column, cell in row if table.kinds[column] == KEEP)
    return spans


def settle(text: str, findings: Sequence[Finding]) -> list[Finding]:
    """``findings`` held to the cells of the tables of ``text``: inside a table a finding
    keeps only its parts on cells of columns that are not kept (never a header, a
    Person ID or an effective date, never across a separator or a row's end), each part
    its own finding; outside tables nothing changes."""
    regions = list(tables(text)) if findings and _maybe_table(text) else []
    if not regions:
        return list(findings)
    settled: list[Finding] = []
    for finding in findings:
        settled.extend(_settled(text, finding, regions))
    return settled


def _settled(text: str, finding: Finding, regions: list[Table]) -> Iterator[Finding]:
    start = finding.start
    for table in regions:
        if table.end <= start or table.start >= finding.end:
            continue
        yield from _piece(text, finding, start, table.start)
        for cell_start, cell_end in table.open_cells():
            if cell_end > finding.start and cell_start < finding.end:
                yield from _piece(text, finding, max(cell_start, start), cell_end)
        start = max(start, table.end)
    yield from _piece(text, finding, start, finding.end)


def _piece(text: str, finding: Finding, start: int, end: int) -> Iterator[Finding]:
    """``finding`` cut to ``text[start:end]`` (within it), less blanks and punctuation."""
    start, end = max(start, finding.start), min(end, finding.end)
    while start < end and (text[start].isspace() or text[start] in _BETWEEN_CELLS):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in _BETWEEN_CELLS):
        end -= 1
    if start < end:
        yield Finding(finding.entity_type, start, end, finding.score)
