"""Attachments under the PII guard: text in any encoding, forwarded mail, PDF text layers,
Word and Excel files are read and scanned; a file whose text holds personal data is kept
as its redacted text (or dropped), a clean one as it came; file names and recipients are
stored redacted; reading is bounded."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import pytest

from mailer.documents import DocumentLimits, document_kind, document_text
from mailer.errors import DocumentError, ReadingStopped
from mailer.parsing import Attachment, parse_message
from mailer.text_files import decode_text_file
from pii_guard import UNSCANNED, PiiGuard
from ticketing.config.pii_schema import PiiConfig
from ticketing.incidents.parties import Identity
from ticketing.pipeline.attachments import AttachmentRules, attachment_rules, read_attachment
from ticketing.pipeline.guard import PiiGuardStage, Policy
from ticketing.pipeline.types import GuardResult, KeptAttachment
from ticketing.privacy.settings import build_guard

from .documents import (
    DOB,
    MEDICAID,
    NAME,
    SSN,
    birth_date,
    docx,
    eml_bytes,
    excel_unicode_text,
    forwarded,
    pdf,
    xlsx,
)
from .mail import make_mail

VALUES = (SSN, NAME, DOB, MEDICAID, "Gonzalez")
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SAM = Identity("sam@brokers.example", name="Sam Amsung")
ROWS = [["Name", "DOB", "SSN"], [NAME, DOB, SSN]]
CLEAN_PDF = pdf(["Plan year 2026, form 1095-A requested for the household."])


class Never:
    def spent(self) -> bool:
        return False


class Spent:
    def spent(self) -> bool:
        return True


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return build_guard(PiiConfig())


def _check(
    guard: PiiGuard,
    files: Sequence[tuple[str, str, bytes]],
    policy: Policy = "redact",
    rules: AttachmentRules | None = None,
) -> GuardResult:
    stage = PiiGuardStage(guard, rules=rules or AttachmentRules())
    return stage.check(policy, parse_message(make_mail(attachments=list(files))), SAM)


def _leaks(data: bytes | str | None) -> list[str]:
    """The values in ``data``, read as UTF-8 or as UTF-16 (either order)."""
    if not isinstance(data, bytes):
        return [value for value in VALUES if value in (data or "")]
    texts = [data.decode(codec, "replace") for codec in ("utf-8", "utf-16-le", "utf-16-be")]
    return [value for value in VALUES if any(value in text for text in texts)]


def _only(result: GuardResult) -> KeptAttachment:
    (kept,) = result.attachments
    return kept


# --- text files in their encodings -----------------------------------------------------------


def test_an_excel_unicode_text_export_is_read_by_its_bom() -> None:
    data = excel_unicode_text(ROWS)
    assert SSN.encode() not in data  # UTF-16: the old decoding saw no SSN
    assert decode_text_file(data) == f"Name\tDOB\tSSN\r\n{NAME}\t{DOB}\t{SSN}\r\n"


@pytest.mark.parametrize("declared", [None, "us-ascii", "utf-8"])
def test_utf16_without_a_bom_is_told_by_its_nuls(declared: str | None) -> None:
    data = "\t".join(ROWS[1]).encode("utf-16-le")
    assert decode_text_file(data, declared) == "\t".join(ROWS[1])
    assert decode_text_file("\t".join(ROWS[1]).encode("utf-16-be")) == "\t".join(ROWS[1])


def test_the_declared_charset_comes_before_detection_and_latin1_is_the_last_resort() -> None:
    csv = "Nombre;SSN\nJosé Núñez;219-09-9999\n"
    assert decode_text_file(csv.encode("latin-1")) == csv  # not UTF-8: cp1252
    assert decode_text_file(csv.encode("utf-8")) == csv
    assert decode_text_file(csv.encode("cp1252"), "iso-8859-1") == csv
    assert decode_text_file("Plan ₿".encode("koi8-u", "replace"), "koi8-u") == "Plan ?"


# --- documents --------------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "flate"])
def test_a_pdf_text_layer_is_read(compressed: bool) -> None:
    data = pdf([f"Client: {NAME}", f"SSN {SSN}"], compressed=compressed)
    assert (SSN.encode() in data) is not compressed
    read = document_text("pdf", data, DocumentLimits(), Never().spent)
    assert read.complete and NAME in read.text and SSN in read.text


def test_word_tables_and_excel_dates_are_read_as_rows() -> None:
    word = docx(["Intake notes"], [["SSN", SSN], ["Name", NAME]])
    assert "SSN\t219-09-9999" in document_text("docx", word, DocumentLimits(), Never().spent).text
    sheet = xlsx([["Name", "DOB", "Medicaid ID"], [NAME, birth_date(), MEDICAID]])
    text = document_text("xlsx", sheet, DocumentLimits(), Never().spent).text
    assert f"{NAME}\t{DOB}\t{MEDICAID}" in text  # a date as a date, not a timestamp


def test_kinds_are_told_by_type_name_and_first_bytes() -> None:
    assert document_kind("a.bin", "application/pdf", b"") == "pdf"
    assert document_kind("scan", "application/octet-stream", CLEAN_PDF) == "pdf"
    assert document_kind("Intake.DOCX", "application/octet-stream", b"PK") == "docx"
    assert document_kind("x.xlsx", "application/zip", b"PK") == "xlsx"
    assert document_kind("photo.jpg", "image/jpeg", b"\xff\xd8") is None


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_broken_encrypted_and_bomb_documents_raise_a_reason() -> None:
    limits = DocumentLimits()
    bomb = _zip({"word/document.xml": b"\0" * (60 * 1024 * 1024)})
    assert len(bomb) < 100_000
    cases = {
        "pdf": b"%PDF-1.4\nnot really",
        "docx": b"PK\x03\x04 not a zip",
        "xlsx": bomb,
    }
    for kind, data in cases.items():
        with pytest.raises(DocumentError):
            document_text(kind, data, limits, Never().spent)  # type: ignore[arg-type]
    ratio = _zip({"xl/sharedStrings.xml": b"a" * (2 * 1024 * 1024)})
    with pytest.raises(DocumentError, match="zip bomb"):
        document_text("xlsx", ratio, limits, Never().spent)


def test_an_encrypted_pdf_is_not_read() -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(pdf([f"SSN {SSN}"]))))
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(DocumentError, match="encrypted"):
        document_text("pdf", out.getvalue(), DocumentLimits(), Never().spent)


def test_reading_stops_at_its_caps_and_when_time_runs_out() -> None:
    data = pdf(["first page line", f"SSN {SSN}"])
    capped = document_text("pdf", data, DocumentLimits(max_chars=10), Never().spent)
    assert not capped.complete and len(capped.text) == 10
    with pytest.raises(ReadingStopped):
        document_text("pdf", data, DocumentLimits(), Spent().spent)
    dense = pdf([f"line {i}" for i in range(6000)], compressed=True)  # pypdf: seconds
    skipped = document_text("pdf", dense, DocumentLimits(), Never().spent)
    assert (skipped.complete, skipped.text, skipped.cut) == (
        False,
        "",
        "page 1, too dense to read in time",
    )
    rows = [[f"r{i}"] for i in range(50)]
    cells = document_text("xlsx", xlsx(rows), DocumentLimits(max_cells=10), Never().spent)
    assert not cells.complete and "r9" in cells.text and "r10" not in cells.text


def test_a_file_over_the_size_is_not_read() -> None:
    part = parse_message(make_mail(attachments=[("big.txt", "text/plain", b"x" * 2000)]))
    rules = attachment_rules(PiiConfig(max_document_bytes=1000))
    reading = read_attachment(part.attachments[0], rules, Never())
    assert reading.text is None and "larger than" in reading.why


# --- what is kept ------------------------------------------------------------------------------


FILES_WITH_PII = {
    "utf-8 text": ("notes.txt", "text/plain", f"Client {NAME}, DOB {DOB}, SSN {SSN}".encode()),
    "utf-16 export": ("clients.txt", "text/plain", excel_unicode_text(ROWS)),
    "latin-1 csv": (
        "clients.csv",
        "text/csv",
        f"Nombre;Fecha de nacimiento;SSN;Revisión\n{NAME};{DOB};{SSN};Sí\n".encode("latin-1"),
    ),
    "forward": (
        "fwd.eml",
        "application/octet-stream",
        eml_bytes(forwarded(f"Hi Sam, my SSN is {SSN} and my DOB is {DOB}.")),
    ),
    "nested forward": (
        "chain.eml",
        "application/octet-stream",
        eml_bytes(
            forwarded(
                "See the member's mail below.",
                sender="Carrier Desk <desk@exchange.example>",
                inner=[forwarded(f"My Medicaid ID is {MEDICAID}, SSN {SSN}.")],
            )
        ),
    ),
    "forward with a pdf": (
        "with-card.eml",
        "application/octet-stream",
        eml_bytes(
            forwarded(
                "My card is attached.",
                attachments=[("card.pdf", "application/pdf", pdf([f"SSN {SSN}"], compressed=True))],
            )
        ),
    ),
    "pdf": ("intake.pdf", "application/pdf", pdf([f"Client: {NAME}", f"DOB {DOB}", f"SSN {SSN}"])),
    "docx": ("intake.docx", DOCX_TYPE, docx(["Intake notes"], [["SSN", SSN]])),
    "xlsx": (
        "clients.xlsx",
        XLSX_TYPE,
        xlsx([["Name", "DOB", "Medicaid ID"], [NAME, birth_date(), MEDICAID]]),
    ),
}


# What the kept text must say: proof that each file was read by its own reader.
READ_AS = {
    "utf-8 text": "SSN [REDACTED:US_SSN]",
    "utf-16 export": "[REDACTED:PERSON]\t[REDACTED:DATE_OF_BIRTH]\t[REDACTED:US_SSN]",
    "latin-1 csv": "Revisión\n[REDACTED:PERSON];[REDACTED:DATE_OF_BIRTH];[REDACTED:US_SSN];Sí",
    "forward": "my SSN is [REDACTED:US_SSN] and my DOB is [REDACTED:DATE_OF_BIRTH]",
    "nested forward": "My Medicaid ID is [REDACTED:MEDICAID_ID], SSN [REDACTED:US_SSN]",
    "forward with a pdf": "[Attachment card.pdf (application/pdf)]\nSSN [REDACTED:US_SSN]",
    "pdf": "DOB [REDACTED:DATE_OF_BIRTH]\nSSN [REDACTED:US_SSN]",
    "docx": "SSN\t[REDACTED:US_SSN]",
    "xlsx": "[REDACTED:PERSON]\t[REDACTED:DATE_OF_BIRTH]\t[REDACTED:MEDICAID_ID]",
}


@pytest.mark.parametrize("name", list(FILES_WITH_PII))
def test_a_file_with_personal_data_is_kept_as_its_redacted_text(guard: PiiGuard, name: str) -> None:
    filename, content_type, data = FILES_WITH_PII[name]
    assert _leaks(decode_text_file(data)) or SSN.encode() not in data  # the data is in there
    result = _check(guard, [(filename, content_type, data)])
    kept = _only(result)
    assert result.action == "redact" and result.counts
    assert (kept.disposition, kept.filename, kept.content_type) == (
        "stored_redacted",
        filename if filename.endswith(".txt") else f"{filename}.txt",
        "text/plain",
    )
    assert kept.content is not None and not _leaks(kept.content), kept.content
    text = kept.content.decode()
    assert text.startswith(f"Text of the attachment {filename} ({content_type})")
    assert READ_AS[name] in text


def test_a_file_with_personal_data_is_dropped_when_the_rules_say_so(guard: PiiGuard) -> None:
    result = _check(guard, [FILES_WITH_PII["pdf"]], rules=AttachmentRules(with_pii="drop"))
    assert (_only(result).disposition, _only(result).content) == ("dropped_pii", None)


def test_a_file_with_personal_data_makes_a_reject_mailbox_refuse(guard: PiiGuard) -> None:
    result = _check(guard, [FILES_WITH_PII["xlsx"]], policy="reject")
    assert result.action == "reject" and _only(result).disposition == "not_stored"


@pytest.mark.parametrize(
    "file",
    [
        ("clean.pdf", "application/pdf", CLEAN_PDF),
        ("notes.txt", "text/plain", b"Carrier called back on Tuesday."),
        ("plan.docx", DOCX_TYPE, docx(["Silver plan, form 1095-A"])),
        ("plans.xlsx", XLSX_TYPE, xlsx([["Plan", "Year"], ["Silver", 2026]])),
    ],
    ids=["pdf", "text", "docx", "xlsx"],
)
def test_a_clean_file_is_kept_as_it_came(guard: PiiGuard, file: tuple[str, str, bytes]) -> None:
    kept = _only(_check(guard, [file]))
    assert (kept.disposition, kept.filename, kept.content) == ("stored", file[0], file[2])


def test_what_cannot_be_read_is_dropped_and_a_forward_holding_it_kept_as_text(
    guard: PiiGuard,
) -> None:
    photo = ("photo.png", "image/png", b"\x89PNG\r\n\x1a\nfake")
    damaged = ("scan.pdf", "application/pdf", b"%PDF-1.4 damaged")
    with_photo = forwarded("Nothing personal here.", sender="Desk <desk@exchange.example>")
    with_photo.add_attachment(photo[2], maintype="image", subtype="png", filename="photo.png")
    fwd = ("fwd.eml", "message/rfc822", eml_bytes(with_photo))
    result = _check(guard, [photo, damaged, ("fwd.eml", "application/octet-stream", fwd[2])])
    dispositions = [k.disposition for k in result.attachments]
    assert dispositions == ["dropped_unscannable", "dropped_unscannable", "stored_redacted"]
    text = (result.attachments[2].content or b"").decode()
    assert "Parts that could not be read were left out" in text
    assert "[Attachment photo.png (image/png): not read" in text


def test_file_names_and_recipients_are_stored_redacted(guard: PiiGuard) -> None:
    files = [(f"{NAME} SSN card.pdf", "application/pdf", CLEAN_PDF)]
    stage = PiiGuardStage(guard)
    message = parse_message(make_mail(attachments=files))
    to = ("sam@brokers.example", f"{NAME.lower().replace(' ', '.')}@example.net")
    result = stage.check("redact", message, SAM, to)
    kept = _only(result)
    assert (kept.disposition, kept.filename) == ("stored", "[REDACTED:PERSON] SSN card.pdf")
    assert kept.content == CLEAN_PDF  # the file itself holds nothing: kept as it came
    assert result.recipients == ("sam@brokers.example", "[REDACTED:EMAIL_ADDRESS]")


def test_a_reading_the_budget_cut_counts_as_unscanned(guard: PiiGuard) -> None:
    part = parse_message(make_mail(attachments=[FILES_WITH_PII["pdf"]])).attachments[0]
    assert isinstance(part, Attachment)
    reading = read_attachment(part, AttachmentRules(), Spent())
    assert reading.stopped and reading.text is None
    budget = build_guard(PiiConfig(scan_budget_seconds=1e-9))
    result = _check(budget, [FILES_WITH_PII["pdf"]])
    assert UNSCANNED in result.counts and _only(result).disposition == "dropped_unscannable"
