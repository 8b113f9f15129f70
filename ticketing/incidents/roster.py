"""The producers roster: import from CSV (upsert by NPN) and list.

A roster file comes from a spreadsheet, so it is read forgivingly (BOM,
header case and spacing, blank lines) but each row is checked strictly; bad
rows are reported with their line number and reason and the good rows are
still imported.

Columns: ``npn``, ``name``, ``email`` (required), ``language`` (``en``/``es``),
``phones`` (the producer's own numbers, separated by ``;``) and ``agency``.
The phones and the agency are what a producer signs their mail with: the PII
guard does not take them for a consumer's data.

``[roster] file`` is imported the same way when ``serve`` starts (an unreadable
file stops the start) and on each SIGHUP (``server/operations.py``).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from mailer.addresses import normalize_address
from mailer.errors import InvalidAddressError
from ticketing.config import Config
from ticketing.errors import RosterError
from ticketing.store.db import transaction
from ticketing.store.models import Producer, utcnow

__all__ = [
    "LANGUAGES",
    "ImportReport",
    "RosterRow",
    "import_roster",
    "import_roster_file",
    "list_producers",
    "read_roster",
    "roster_path",
]

log = logging.getLogger(__name__)

LANGUAGES = ("en", "es")
REQUIRED_COLUMNS = ("npn", "name", "email")
_NPN = re.compile(r"^[0-9]{1,10}$")
_PHONE_SEPARATORS = re.compile(r"[;|\n]")
_PHONE_DIGITS = (7, 15)  # a local number to an international one (E.164)


@dataclass(frozen=True)
class RosterRow:
    line: int
    npn: str
    name: str
    email: str
    language: str
    phones: tuple[str, ...] = ()
    agency: str | None = None

    @property
    def fields(self) -> tuple[object, ...]:
        """What a producer row holds of this row (to tell an update from no change)."""
        return (self.name, self.email, self.language, list(self.phones), self.agency)


@dataclass(frozen=True)
class RejectedRow:
    line: int
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


def read_roster(path: Path) -> tuple[list[RosterRow], list[RejectedRow]]:
    """Parse and check a roster file; ``RosterError`` if it cannot be used at all."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise RosterError(f"{path}: empty file")
    header = [(name or "").strip().lower() for name in reader.fieldnames]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise RosterError(f"{path}: missing column(s): {', '.join(missing)}")
    reader.fieldnames = header
    return _check_rows(_numbered(reader))


def _numbered(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str, str]]]:
    for row in reader:
        if any((value or "").strip() for value in row.values() if isinstance(value, str)):
            yield reader.line_num, row


def _check_rows(
    rows: Iterable[tuple[int, dict[str, str]]],
) -> tuple[list[RosterRow], list[RejectedRow]]:
    good: list[RosterRow] = []
    bad: list[RejectedRow] = []
    seen_npn: dict[str, int] = {}
    seen_email: dict[str, int] = {}
    for line, row in rows:
        try:
            checked = _check_row(line, row)
        except ValueError as exc:
            bad.append(RejectedRow(line, str(exc)))
            continue
        if checked.npn in seen_npn:
            bad.append(RejectedRow(line, f"npn repeats line {seen_npn[checked.npn]}"))
        elif checked.email in seen_email:
            bad.append(RejectedRow(line, f"email repeats line {seen_email[checked.email]}"))
        else:
            seen_npn[checked.npn] = seen_email[checked.email] = line
            good.append(checked)
    return good, bad


def _check_row(line: int, row: dict[str, str]) -> RosterRow:
    if None in row:
        raise ValueError("more fields than columns")
    npn = (row.get("npn") or "").strip()
    name = " ".join((row.get("name") or "").split())
    language = (row.get("language") or "").strip().lower() or "en"
    if not _NPN.match(npn):
        raise ValueError("npn must be 1 to 10 digits")
    if not name or len(name) > 200:
        raise ValueError("name must be 1 to 200 characters")
    try:
        email = normalize_address(row.get("email") or "")
    except InvalidAddressError:
        raise ValueError("email is not a valid address") from None
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    phones = _phones(row.get("phones") or "")
    agency = " ".join((row.get("agency") or "").split()) or None
    if agency is not None and len(agency) > 200:
        raise ValueError("agency must be at most 200 characters")
    return RosterRow(line, npn, name, email, language, phones, agency)


def _phones(value: str) -> tuple[str, ...]:
    """The numbers of a ``phones`` cell (``;`` between them), each checked for its digits."""
    phones = [" ".join(p.split()) for p in _PHONE_SEPARATORS.split(value) if p.strip()]
    for phone in phones:
        count = sum(c.isdigit() for c in phone)
        if not _PHONE_DIGITS[0] <= count <= _PHONE_DIGITS[1]:
            raise ValueError(f"phones: '{phone}' is not a phone number (7 to 15 digits)")
    return tuple(dict.fromkeys(phones))


def import_roster(session: Session, rows: list[RosterRow], report: ImportReport) -> None:
    """Upsert ``rows`` by NPN; a row whose email belongs to another NPN is rejected."""
    by_npn = {p.npn: p for p in session.exec(select(Producer))}
    by_email = {p.email: p for p in by_npn.values()}
    for row in rows:
        owner = by_email.get(row.email)
        if owner is not None and owner.npn != row.npn:
            report.rejected.append(RejectedRow(row.line, f"email belongs to NPN {owner.npn}"))
            continue
        producer = by_npn.get(row.npn)
        if producer is None:
            producer = Producer(npn=row.npn, name=row.name, email=row.email)
            _fill(producer, row)
            report.created += 1
        elif _fields_of(producer) == row.fields:
            report.unchanged += 1
            continue
        else:
            by_email.pop(producer.email, None)
            _fill(producer, row)
            producer.updated_at = utcnow()
            report.updated += 1
        session.add(producer)
        session.flush()
        by_npn[row.npn] = by_email[row.email] = producer
    report.rejected.sort(key=lambda r: r.line)


def _fields_of(producer: Producer) -> tuple[object, ...]:
    return (producer.name, producer.email, producer.language, producer.phones, producer.agency)


def _fill(producer: Producer, row: RosterRow) -> None:
    producer.name, producer.email, producer.language = row.name, row.email, row.language
    producer.phones, producer.agency = list(row.phones), row.agency


def list_producers(session: Session) -> list[Producer]:
    return list(session.exec(select(Producer).order_by(Producer.name, Producer.npn)))


def roster_path(config: Config, source: str) -> Path | None:
    """``[roster] file``, a relative path taken from the config file's folder."""
    if config.roster.file is None:
        return None
    path = Path(config.roster.file).expanduser()
    if path.is_absolute():
        return path
    source_path = Path(source)
    base = source_path.resolve().parent if source_path.is_file() else Path.cwd()
    return base / path


def import_roster_file(engine: Engine, path: Path) -> ImportReport:
    """Upsert the roster from ``path``; ``RosterError`` when the file cannot be used at all."""
    rows, rejected = read_roster(path)
    report = ImportReport(rejected=rejected)
    with transaction(engine) as session:
        import_roster(session, rows, report)
    for bad in report.rejected:  # reasons name columns and NPNs, never the row's values
        log.warning("roster %s:%d rejected: %s", path, bad.line, bad.reason)
    log.info(
        "roster %s imported: %d created, %d updated, %d unchanged, %d rejected",
        path,
        report.created,
        report.updated,
        report.unchanged,
        len(report.rejected),
    )
    return report
