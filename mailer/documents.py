"""The text of attached documents: PDF text layers, Word (.docx) and Excel (.xlsx).

Producers attach their clients' documents; what cannot be read cannot be vouched for,
so the guard reads what these libraries can: pypdf (a PDF's text layer, not its
images), python-docx and openpyxl.  They are imported on first use: most messages carry
no document, and a process that never reads one should not hold them (the 25 MB
message's memory budget has little to spare, docs/benchmarks.md).

Reading is bounded, since a document is a stranger's input:

- the caller checks a file's size first (``DocumentLimits.max_bytes``);
- DOCX and XLSX are zips: before a library opens one, its directory is checked (files
  inside, their declared sizes unpacked, how much each inflates); ``zipfile`` never
  inflates a member past its declared size, so a lying directory only breaks the file;
- pypdf inflates no stream past ``_MAX_STREAM`` bytes (its ``Configuration``), and a
  page too dense for its text extraction (which grows faster than the page) is skipped;
- pages, sheets, cells and characters are capped: past a cap the rest is not read and
  the result says so (``complete=False``, ``cut``);
- ``stop`` (the message's processor-time budget) is asked between pages, paragraphs
  and rows: once it says so, ``ReadingStopped`` is raised.

An encrypted or damaged document raises ``DocumentError`` with a reason in words; the
libraries raise many kinds of exception on broken input, all translated here.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal

from mailer.errors import DocumentError, ReadingStopped

__all__ = ["DocumentKind", "DocumentLimits", "DocumentText", "document_kind", "document_text"]

DocumentKind = Literal["pdf", "docx", "xlsx"]

_MB = 1024 * 1024
_MAX_STREAM = 20 * _MB  # bytes one PDF stream may inflate to
_MAX_PAGE_CONTENT = 512 * 1024  # bytes of a PDF page's content streams, inflated
_MAX_PAGE_TEXT_OPERATORS = 5_000  # Tj, TJ and ' on one page (a dense page has ~1,000)
_STOP_EVERY = 200  # paragraphs or rows read between two looks at the clock
_TYPES: dict[str, DocumentKind] = {
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
_EXTENSIONS: dict[str, DocumentKind] = {".pdf": "pdf", ".docx": "docx", ".xlsx": "xlsx"}
# The parts of a Word file that hold text a person wrote (not styles, settings, themes).
_WORD_TEXT = re.compile(r"/word/(document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml")
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@dataclass(frozen=True)
class DocumentLimits:
    """How much of one document is read.  ``max_bytes`` is the file as attached (the
    caller checks it: ``[pii] max_document_bytes``); the rest bound what reading costs."""

    max_bytes: int = 10 * _MB
    max_pages: int = 500
    max_sheets: int = 50
    max_cells: int = 500_000
    max_chars: int = 2_000_000
    max_unzipped_bytes: int = 50 * _MB  # declared sizes of every file in a DOCX or XLSX
    max_zip_members: int = 2_000
    max_zip_ratio: int = 100  # unpacked/packed of one member over 1 MB: a zip bomb


@dataclass(frozen=True)
class DocumentText:
    """The text read, and whether it is all of it (``cut`` says what was left unread)."""

    text: str = field(repr=False)
    complete: bool = True
    cut: str = ""


def document_kind(filename: str, content_type: str, payload: bytes) -> DocumentKind | None:
    """Which reader a file needs, by its declared type, else its name; a PDF also by its
    first bytes (it is often sent as application/octet-stream)."""
    kind = _TYPES.get(content_type.split(";", 1)[0].strip().lower())
    if kind is None:
        dot = filename.rfind(".")
        kind = _EXTENSIONS.get(filename[dot:].lower()) if dot >= 0 else None
    if kind is None and payload[:1024].lstrip().startswith(b"%PDF-"):
        kind = "pdf"
    return kind


def document_text(
    kind: DocumentKind, payload: bytes, limits: DocumentLimits, stop: Callable[[], bool]
) -> DocumentText:
    """The text of ``payload``; ``DocumentError`` when it cannot be read."""
    reader = {"pdf": _pdf_text, "docx": _docx_text, "xlsx": _xlsx_text}[kind]
    try:
        # openpyxl and pypdf warn about what they skip in odd files; none of it is ours
        # to show (and a test run turns warnings into errors)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return reader(payload, limits, stop)
    except DocumentError:
        raise
    except MemoryError:
        raise DocumentError("too large to read") from None
    except Exception as exc:  # noqa: BLE001  (broken input raises anything in these libraries)
        raise DocumentError(f"damaged ({type(exc).__name__})") from None


class _Text:
    """Text gathered up to ``limit`` characters; past it, ``full`` and the rest dropped."""

    def __init__(self, limit: int) -> None:
        self._pieces: list[str] = []
        self._left = limit
        self.cut = ""

    @property
    def full(self) -> bool:
        return bool(self.cut)

    def add(self, piece: str) -> None:
        if self.full:
            return
        if len(piece) > self._left:
            piece, self.cut = piece[: self._left], "the text after its first characters"
        self._pieces.append(piece)
        self._left -= len(piece)

    def stop_at(self, what: str) -> None:
        self.cut = self.cut or what

    def result(self, joiner: str = "\n") -> DocumentText:
        return DocumentText(joiner.join(self._pieces), not self.cut, self.cut)


def _checked(stop: Callable[[], bool], count: int) -> None:
    if count % _STOP_EVERY == 0 and stop():
        raise ReadingStopped("out of time")


# --- PDF -----------------------------------------------------------------------------------


def _pdf_text(payload: bytes, limits: DocumentLimits, stop: Callable[[], bool]) -> DocumentText:
    from pypdf import PdfReader, apply_configuration

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings quote damaged objects
    with apply_configuration(
        zlib_maximum_output_length=_MAX_STREAM,
        lzw_maximum_output_length=_MAX_STREAM,
        run_length_maximum_output_length=_MAX_STREAM,
        maximum_declared_stream_length=_MAX_STREAM,
    ):
        reader = PdfReader(io.BytesIO(payload), strict=False)
        if reader.is_encrypted:
            raise DocumentError("encrypted")
        text = _Text(limits.max_chars)
        for number, page in enumerate(reader.pages):
            if number >= limits.max_pages:
                text.stop_at(f"the pages after page {limits.max_pages}")
                break
            if stop():
                raise ReadingStopped("out of time")
            if _too_dense(page):
                text.stop_at(f"page {number + 1}, too dense to read in time")
                continue
            text.add(page.extract_text())
            if text.full:
                break
        return text.result("\n\n")


def _too_dense(page: Any) -> bool:
    """A page whose content (its own and its forms', one level down) is too large for
    pypdf, whose text extraction takes time that grows with the number of text operators
    times the text: 20,000 lines on one page took 20 s, the caps keep a page near 0.3 s."""
    streams = [page.get_contents()]
    forms = page.get("/Resources", {}).get("/XObject", {})
    objects = (forms[name].get_object() for name in forms)
    streams += [form for form in objects if form.get("/Subtype") == "/Form"]  # not images
    data = [s.get_data() for s in streams if s is not None and hasattr(s, "get_data")]
    size = sum(len(d) for d in data)
    operators = sum(d.count(b"Tj") + d.count(b"TJ") + d.count(b"'") for d in data)
    return size > _MAX_PAGE_CONTENT or operators > _MAX_PAGE_TEXT_OPERATORS


# --- Word and Excel: zips ------------------------------------------------------------------


def _check_zip(payload: bytes, limits: DocumentLimits) -> None:
    """Refuse a zip whose directory promises too much, before anything unpacks it."""
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise DocumentError("damaged (not a readable zip)") from None
    if len(members) > limits.max_zip_members:
        raise DocumentError("a zip bomb (too many files inside)")
    if sum(m.file_size for m in members) > limits.max_unzipped_bytes:
        raise DocumentError("a zip bomb (too large unpacked)")
    if any(
        m.file_size > _MB and m.file_size > limits.max_zip_ratio * m.compress_size for m in members
    ):
        raise DocumentError("a zip bomb (a file inflates too much)")


def _docx_text(payload: bytes, limits: DocumentLimits, stop: Callable[[], bool]) -> DocumentText:
    _check_zip(payload, limits)
    import docx

    document = docx.Document(io.BytesIO(payload))
    text = _Text(limits.max_chars)
    for part in document.part.package.iter_parts():
        element = getattr(part, "element", None)
        if element is not None and _WORD_TEXT.fullmatch(str(part.partname)):
            text.add("".join(_word_text(element, stop)))
            if text.full:
                break
    return text.result()


def _word_text(root: Any, stop: Callable[[], bool]) -> Iterator[str]:
    """The text of one Word part in document order: paragraphs on lines, table cells
    apart by tabs, rows on lines; deleted text too (a tracked change still holds it)."""
    for count, element in enumerate(root.iter(*_WORD_ELEMENTS)):
        _checked(stop, count)
        tag = element.tag
        if tag in (_W + "t", _W + "delText"):
            yield element.text or ""
        elif tag == _W + "p":
            yield _paragraph_break(element)
        else:
            yield _WORD_BREAKS[tag]


def _paragraph_break(paragraph: Any) -> str:
    """A new line before a paragraph; in a table cell, a space between its paragraphs
    (the cell's tab comes first), so that a row stays on one line."""
    if paragraph.getparent().tag != _W + "tc":
        return "\n"
    previous = paragraph.getprevious()
    return " " if previous is not None and previous.tag == _W + "p" else ""


_WORD_BREAKS = {
    _W + "tab": "\t",
    _W + "br": "\n",
    _W + "cr": "\n",
    _W + "tr": "\n",
    _W + "tc": "\t",
}
_WORD_ELEMENTS = (_W + "t", _W + "delText", _W + "p", *_WORD_BREAKS)


def _xlsx_text(payload: bytes, limits: DocumentLimits, stop: Callable[[], bool]) -> DocumentText:
    _check_zip(payload, limits)
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(payload), read_only=True, data_only=True)
    try:
        text = _Text(limits.max_chars)
        cells = 0
        for number, sheet in enumerate(workbook.worksheets):
            if number >= limits.max_sheets:
                text.stop_at(f"the sheets after sheet {limits.max_sheets}")
                break
            # the sheet's title on a line of its own (a title may be a client's name); not
            # "Sheet: title", which reads as a label and its value
            text.add(f"=== {sheet.title} ===")
            for count, row in enumerate(sheet.iter_rows(values_only=True)):
                _checked(stop, count)
                cells += len(row)
                if cells > limits.max_cells:
                    text.stop_at(f"the cells after the first {limits.max_cells:,}")
                    break
                text.add("\t".join(_cells(row)))
            if text.full:
                break
        return text.result()
    finally:
        workbook.close()


def _cells(row: Iterable[Any]) -> list[str]:
    shown = [_cell(value) for value in row]
    while shown and not shown[-1]:
        shown.pop()
    return shown


def _cell(value: Any) -> str:
    """A cell as Excel would show it in the US; dates without a midnight time, which
    would make a birth date look like a timestamp."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%m/%d/%Y}" if value.time() == time() else f"{value:%m/%d/%Y %H:%M}"
    if isinstance(value, date):
        return f"{value:%m/%d/%Y}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
