"""Journey: Sam attaches his client's data in every form producers do — a text note, an
Excel "Unicode text" export, a Latin-1 CSV, forwarded mail (base64 body, a forward within a
forward, a PDF inside), a PDF text layer (plain and compressed), a Word table, an Excel
sheet, a file named after the client — with the client in Cc and in the mailbox's +tag.
Through a real ``ticketd serve`` on a redact mailbox and a reject mailbox, nothing of it is
stored anywhere: not in the database files, not in any mail written (every MIME part
decoded, forwarded mail opened, UTF-16 tried); clean files are kept byte for byte, and the
caseworker still gets the redacted text of each document."""

from __future__ import annotations

import base64
import binascii
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

import pytest

from tests.conftest import migrated_database
from tests.dns_server import AuthDns
from tests.documents import (
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

from .conftest import (
    ESCALATIONS,
    PRODUCER_OPERATIONS,
    CommandLine,
    Desk,
    Steps,
    compose,
    incident_in,
    running_desk,
    sam,
)

SAM_FILES = sam("7100101", "sam.files")
SAM_FILES_REJECT = sam("7100102", "sam.files.reject")
VALUES = (SSN, NAME, DOB, MEDICAID, "gonzalez")
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CLIENT_ADDRESS = "maria.gonzalez@example.net"
TAGGED = "escalations+Maria.Gonzalez@exchange.example"
# Lines of base64 (a forwarded message's body inside a text we keep would be one).
BASE64_RUN = re.compile(rb"(?:[A-Za-z0-9+/]{16,}={0,2}\r?\n?)+")

CLEAN = {
    "plan.pdf": ("application/pdf", pdf(["Plan year 2026, form 1095-A for the household."])),
    "plans.xlsx": (XLSX_TYPE, xlsx([["Plan", "Year"], ["Silver", 2026]])),
    f"{NAME} 1095-A request.pdf": ("application/pdf", pdf(["Form 1095-A, plan year 2025."])),
}
WITH_PII = {
    "notes.txt": ("text/plain", f"Client {NAME}, DOB {DOB}, SSN {SSN}.".encode()),
    "export.txt": (
        "text/plain",
        excel_unicode_text([["Name", "DOB", "SSN"], [NAME, DOB, SSN]]),
    ),
    "clients.csv": (
        "text/csv",
        f"Nombre;Fecha de nacimiento;SSN\n{NAME} Núñez;{DOB};{SSN}\n".encode("latin-1"),
    ),
    "fwd.eml": (
        "application/octet-stream",
        eml_bytes(forwarded(f"Hi Sam, my SSN is {SSN} and my date of birth is {DOB}.")),
    ),
    "chain.eml": (
        "application/octet-stream",
        eml_bytes(
            forwarded(
                "The member wrote to us, below.",
                sender="Carrier Desk <desk@exchange.example>",
                inner=[forwarded(f"My Medicaid ID is {MEDICAID}, SSN {SSN}.")],
            )
        ),
    ),
    "card.eml": (
        "application/octet-stream",
        eml_bytes(
            forwarded(
                "My card is attached.",
                attachments=[("card.pdf", "application/pdf", pdf([f"SSN {SSN}"], compressed=True))],
            )
        ),
    ),
    "intake.pdf": ("application/pdf", pdf([f"Client: {NAME}", f"DOB {DOB}", f"SSN {SSN}"])),
    "intake-compressed.pdf": (
        "application/pdf",
        pdf([f"Client: {NAME}", f"Medicaid ID {MEDICAID}"], compressed=True),
    ),
    "intake.docx": (DOCX_TYPE, docx(["Intake notes"], [["Client", NAME], ["SSN", SSN]])),
    "clients.xlsx": (XLSX_TYPE, xlsx([["Name", "DOB"], [NAME, birth_date()]])),
}


@pytest.fixture(scope="module")
def files_desk(
    commands: CommandLine,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    auth_dns: AuthDns,
) -> Iterator[Desk]:
    """A desk of its own (SQLite), so that its files hold this journey's mail only."""
    folder = tmp_path_factory.mktemp("desk-attachments")
    roster = (SAM_FILES, SAM_FILES_REJECT)
    with (
        contextmanager(migrated_database)("sqlite", folder, request) as url,
        running_desk(commands, "sqlite", url, folder, roster, auth_dns) as running,
    ):
        yield running


def _mail(sender: str, to: str, subject: str) -> bytes:
    raw = compose(
        sender,
        to,
        subject,
        "My client's documents are attached.\n\nThanks,\nSam Amsung",
        cc=f"{NAME} <{CLIENT_ADDRESS}>",
    )
    message = message_from_bytes(raw, policy=policy.default)
    for filename, (content_type, data) in {**CLEAN, **WITH_PII}.items():
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=policy.SMTP)


def _texts(raw: bytes, depth: int = 0) -> Iterator[str]:
    """Every way a reader could see text in ``raw``: the bytes in UTF-8 and UTF-16, any
    base64 run in them decoded, and, for mail, every part decoded (base64,
    quoted-printable), forwarded mail opened."""
    for codec in ("utf-8", "latin-1", "utf-16-le", "utf-16-be"):
        yield raw.decode(codec, "replace")
        yield raw[1:].decode(codec, "replace")
    if depth > 4:
        return
    for run in BASE64_RUN.findall(raw):
        with suppress(binascii.Error, ValueError):
            yield from _texts(base64.b64decode(re.sub(rb"\s", b"", run) + b"=="), depth + 1)
    if not re.match(rb"(?:[\x21-\x39\x3b-\x7e]+:[^\n]*\r?\n)+", raw[:4096]):
        return
    for part in message_from_bytes(raw, policy=policy.compat32).walk():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            yield from _texts(payload, depth + 1)
        elif isinstance(part.get_payload(), list) and part.get_content_type() == "message/rfc822":
            for inner in part.get_payload():
                if isinstance(inner, Message):
                    yield from _texts(inner.as_bytes(), depth + 1)


def _leaks(raw: bytes) -> list[str]:
    return sorted({v for text in _texts(raw) for v in VALUES if v.lower() in text.lower()})


def _stored_attachments(desk: Desk) -> list[tuple[str, str, bytes | None]]:
    path = Path(desk.db_url.removeprefix("sqlite:///"))
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT filename, disposition, content FROM attachments ORDER BY id")
        return [(str(f), str(d), c) for f, d, c in rows]


def test_client_data_in_attachments_is_kept_nowhere(files_desk: Desk) -> None:
    desk = files_desk
    with Steps() as steps:
        code, text = desk.send_mail(
            _mail(SAM_FILES.sender, TAGGED, "Escalated Case: Enrollment.PID #:174601"),
            rcpts=[TAGGED],
        )
        number = incident_in(text)
        assert code == 250 and number, f"the redact mailbox refused: {code} {text}"
        code, text = desk.send_mail(
            _mail(SAM_FILES_REJECT.sender, PRODUCER_OPERATIONS, "Commission Issue"),
            rcpts=[PRODUCER_OPERATIONS],
        )
        steps.check(code == 250 and not incident_in(text), f"reject mailbox: {code} {text}")
        desk.mail_for(SAM_FILES.email, 1, incident=number, what="the acknowledgement")
        desk.mail_for(SAM_FILES_REJECT.email, 1, what="the refusal")
        (copy,) = desk.mail_for(ESCALATIONS, 1, incident=number, what="the desk copy")

        stored = _stored_attachments(desk)
        by_name = {(f, d): c for f, d, c in stored}
        for name, (_, data) in CLEAN.items():
            kept = [c for (f, d), c in by_name.items() if d == "stored" and c == data]
            steps.check(len(kept) == 1, f"clean {name} is not kept byte for byte: {stored}")
        for name in WITH_PII:
            text_name = name if name.endswith(".txt") else f"{name}.txt"
            content = by_name.get((text_name, "stored_redacted"))
            steps.check(content is not None, f"{name} is not kept as its text: {stored}")
        stored_as_is = [f for f, d, c in stored if d == "stored"]
        steps.check(len(stored_as_is) == len(CLEAN), f"files kept as they came: {stored_as_is}")
        refused = [d for f, d, c in stored if d == "not_stored"]
        steps.check(len(refused) == len(CLEAN) + len(WITH_PII), f"refused mail's: {stored}")

        files = {part.get_filename(): part for part in copy.message.iter_attachments()}
        pdf_text = files.get("intake.pdf.txt")
        steps.check(pdf_text is not None, f"the desk copy's files: {sorted(files, key=str)}")
        if pdf_text is not None:
            shown = str(pdf_text.get_content())
            steps.check(
                "Client: [REDACTED:PERSON]" in shown and "SSN [REDACTED:US_SSN]" in shown,
                f"the caseworker's text of intake.pdf: {shown!r}",
            )
        steps.check(
            files.get("plan.pdf") is not None
            and files["plan.pdf"].get_content() == CLEAN["plan.pdf"][1],
            "the clean PDF did not reach the desk as it came",
        )

        database = Path(desk.db_url.removeprefix("sqlite:///"))
        for path in (database, Path(f"{database}-wal")):
            if path.exists():
                found = _leaks(path.read_bytes())
                steps.check(not found, f"{path.name} holds {found}")
        mails = [p for sub in ("new", "cur") for p in (desk.maildir / sub).glob("*")]
        steps.check(len(mails) >= 3, f"only {len(mails)} mails written")
        for path in mails:
            found = _leaks(path.read_bytes())
            steps.check(not found, f"mail {path.name} holds {found}")
        found = _leaks((desk.folder / "serve.log").read_bytes())
        steps.check(not found, f"the daemon's log holds {found}")
