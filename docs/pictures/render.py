"""Render the pictures of docs/desk.md: what a caseworker sees, drawn by a real browser.

    .venv/bin/python docs/pictures/render.py   # needs Debian's chromium (apt-get install chromium)

A producer's escalation with consumer data goes through the real intake pipeline
(embedded default configuration, a throw-away SQLite database); its desk copy,
and the notice a caseworker gets when their reply held consumer data, are shown
as a mail program shows them: the headers, then the HTML part (the text part
for a mail without one), screenshot by headless Chromium into PNG files here.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
import tempfile
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from sqlmodel import select

from ticketing.config import Config, DatabaseConfig
from ticketing.config.desk_schema import StaffConfig
from ticketing.intake.build import build_composer, build_pipeline
from ticketing.outbound.templated import TemplatedReplies
from ticketing.pipeline.guard import PiiGuardStage
from ticketing.pipeline.types import RawMessage
from ticketing.privacy.allow import desk_allow
from ticketing.privacy.settings import build_guard
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.migrate import upgrade
from ticketing.store.models import OutboxMessage, Producer, utcnow

HERE = Path(__file__).resolve().parent
SECRET = b"pictures-only-secret-" + b"x" * 20
ESCALATION = (
    "Hello,\n\nMy client Maria Gonzalez (SSN 219-09-9999, DOB 03/14/1962) was terminated "
    "although the binder payment went through on 11/02. Person ID 175301.\n\n"
    "Could you reinstate the coverage?\n\nThanks,\nSam Amsung\nAmsung Insurance Agency\n"
    "410-555-0142\n"
)


def _mail(sender: str, to: str, subject: str, body: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">"))
    message.set_content(body)
    return message.as_bytes(policy=policy.SMTP)


def _mails(folder: Path) -> dict[str, bytes]:
    """The desk copy of an escalation and the refusal of a reply with an SSN, as composed."""
    config = Config(
        database=DatabaseConfig(url=f"sqlite:///{folder / 'pictures.db'}"),
        staff=StaffConfig(addresses=("casey@exchange.example",)),
    )
    engine = create_db_engine(config.database)
    upgrade(engine)
    with transaction(engine) as session:
        session.add(
            Producer(
                npn="7100001",
                name="Sam Amsung",
                email="sam@amsung-agency.example",
                agency="Amsung Insurance Agency",
                phones=["410-555-0142"],
            )
        )
    guard = build_guard(config.pii)
    composer, _ = build_composer(config, engine, secret=SECRET)
    pipeline = build_pipeline(
        config,
        engine,
        guard=PiiGuardStage(guard, desk_allow(config)),
        replies=TemplatedReplies(composer, engine, guard),
        secret=SECRET,
    )
    subject = "Escalated Case: Termination.PID #:175301"
    sam = "Sam Amsung <sam@amsung-agency.example>"
    raw = _mail(sam, "escalations@exchange.example", subject, ESCALATION)
    pipeline.process(RawMessage(raw, "smtp", ("escalations",), peer="127.0.0.1"))
    copy = _row(engine, "desk_copy")
    reply_to = str(message_from_bytes(copy, policy=policy.default)["Reply-To"])
    casey = "Casey Caseworker <casey@exchange.example>"
    answer = _mail(casey, reply_to, f"RE: {subject}", "Hi Sam,\n\nIs her SSN 219-09-9999?\n")
    pipeline.process(
        RawMessage(answer, "smtp", ("escalations",), recipients=(reply_to,), peer="127.0.0.1")
    )
    engine.dispose()
    return {"desk-copy": copy, "desk-reply-refused": _row(engine, "desk_reply_refused")}


def _row(engine: object, kind: str) -> bytes:
    with transaction(engine, readonly=True) as session:  # type: ignore[arg-type]
        row = session.exec(select(OutboxMessage).where(OutboxMessage.kind == kind)).one()
        return bytes(row.mime)


def _page(raw: bytes) -> str:
    """The mail as a mail program lays it out: a header pane, then the body."""
    mail = message_from_bytes(raw, policy=policy.default)
    rows = "".join(
        f"<tr><th>{name}</th><td>{html.escape(str(mail[name]))}</td></tr>"
        for name in ("From", "Reply-To", "To", "Subject", "Date")
        if mail[name] is not None
    )
    body = mail.get_body(("html", "plain"))
    assert body is not None
    content = str(body.get_content())
    if body.get_content_subtype() == "plain":
        content = f"<pre style='white-space:pre-wrap'>{html.escape(content)}</pre>"
    style = (
        "body{font-family:'DejaVu Sans',sans-serif;font-size:14px;margin:0}"
        ".head{background:#eef1f5;padding:10px 16px;border-bottom:1px solid #ccd}"
        ".head th{text-align:right;color:#556;padding-right:10px;font-weight:normal}"
        ".body{padding:12px 16px}"
    )
    return (
        f"<html><head><meta charset='utf-8'><style>{style}</style></head><body>"
        f"<div class='head'><table>{rows}</table></div><div class='body'>{content}</div>"
        "</body></html>"
    )


def _screenshot(browser: str, page: Path, png: Path) -> None:
    subprocess.run(  # noqa: S603 - the browser found on PATH, our own files
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=900,760",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main() -> int:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("render: Debian's chromium is needed (apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for name, raw in _mails(folder).items():
            page = folder / f"{name}.html"
            page.write_text(_page(raw), encoding="utf-8")
            _screenshot(browser, page, HERE / f"{name}.png")
            print(f"wrote {HERE / f'{name}.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
