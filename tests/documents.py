"""Attachments as producers send them, built in the test: text exports in their encodings,
forwarded mail, PDFs written by hand (a text content stream, plain or FlateDecode),
Word and Excel files written with the libraries that read them."""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from datetime import datetime
from email import policy
from email.message import EmailMessage

# Made-up values of each kind the guard must keep out of every stored copy.
SSN = "219-09-9999"
NAME = "Maria Gonzalez"
DOB = "03/14/1962"
MEDICAID = "12345678901"


def pdf(lines: Sequence[str], *, compressed: bool = False) -> bytes:
    """A one-page PDF whose text layer holds ``lines`` (Helvetica, one Tj a line), with a
    correct cross-reference table; the content stream FlateDecode-compressed or not."""
    ops = "BT /F1 12 Tf 14 TL 72 720 Td " + " ".join(f"({_pdf_escape(s)}) Tj T*" for s in lines)
    stream = (ops + " ET").encode("latin-1")
    extra = b""
    if compressed:
        stream, extra = zlib.compress(stream), b" /Filter /FlateDecode"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d%s >>\nstream\n" % (len(stream), extra) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def docx(paragraphs: Sequence[str], table: Sequence[Sequence[str]] = ()) -> bytes:
    """A Word file: paragraphs, then a table of ``table``'s rows."""
    import docx as python_docx

    document = python_docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def xlsx(rows: Sequence[Sequence[object]], title: str = "Clients") -> bytes:
    """An Excel workbook of one sheet holding ``rows`` (dates as Excel dates)."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def birth_date() -> datetime:
    return datetime(1962, 3, 14)


def excel_unicode_text(rows: Sequence[Sequence[str]]) -> bytes:
    """Excel's "Unicode text" export: UTF-16 LE with its BOM, tab-separated, CRLF."""
    text = "\r\n".join("\t".join(row) for row in rows) + "\r\n"
    return "\ufeff".encode("utf-16-le") + text.encode("utf-16-le")


def forwarded(
    body: str,
    *,
    sender: str = f"{NAME} <maria.gonzalez@example.net>",
    to: str = "Sam Amsung <sam@brokers.example>",
    subject: str = "my enrollment",
    attachments: Sequence[tuple[str, str, bytes]] = (),
    inner: Sequence[EmailMessage] = (),
) -> EmailMessage:
    """The consumer's mail the producer forwards: its body base64-encoded (so that the raw
    bytes of the forward hide it), its own files, and messages forwarded within it."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = "<forwarded-1@example.net>"
    message.set_content(body, cte="base64")
    for filename, content_type, payload in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    for nested in inner:
        message.add_attachment(nested)
    return message


def eml_bytes(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=policy.SMTP)
