"""The fast outbound path: compat32 MIME, the composer's visible text, batched claims."""

from __future__ import annotations

import asyncio
import random
import shutil
import string
import uuid
from dataclasses import replace
from datetime import timedelta
from email.errors import HeaderParseError
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import Compat32, compat32, default
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailer.bodies import html_to_text
from mailer.delivery import MaildirTransport
from ticketing.outbound import mime
from ticketing.outbound.mime import MailParts, build_mime, visible_text
from ticketing.outbound.outbox import dispatch_due, transport_from_config
from ticketing.outbound.request import ReplyRequest
from ticketing.store.models import AuditEvent, OutboxMessage

from .builders import (
    NOW,
    Sink,
    add_case,
    make_composer,
    make_config,
    queue_mail,
    relay_config,
    withheld_ack,
)
from .daemon import free_port

PARTS = MailParts(
    from_name="Équipe «MHBE», Operations",
    from_address="escalations@exchange.example",
    to="sam@brokers.example",
    subject="Caso escalado:  Comisión.PID #:174097 — ünïcödé " * 3,
    text="Hola sam\n\nlínea con espacio al final  \n" + "é" * 120 + "\n",
    html="<p>Hola <b>sam</b> &amp; équipe</p>\n",
    message_id="<abc.1@exchange.example>",
    in_reply_to="<CAF1@mail.brokers.example>",
    references=tuple(f"<ref{i}.xxxxxxxxxxxxxxxx@mail.brokers.example>" for i in range(8)),
    date=NOW,
    auto_submitted="auto-replied",
)


COMPAT32 = compat32.clone(linesep="\r\n", max_line_length=76)


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def test_non_ascii_subject_and_name_round_trip_through_a_parser() -> None:
    raw = build_mime(PARTS)
    message = parse(raw)
    assert message["Subject"] == " ".join(PARTS.subject.split())
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (PARTS.from_name, PARTS.from_address)
    assert message["References"].split()[-1] == "<CAF1@mail.brokers.example>"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    assert text is not None and text["Content-Transfer-Encoding"] == "quoted-printable"
    assert text.get_content().replace("\r\n", "\n") == PARTS.text
    assert all(not part.defects for part in message.walk())


def test_lines_are_crlf_ascii_and_folded() -> None:
    raw = build_mime(PARTS)
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert max(len(line) for line in head) <= 78
    assert all(len(word) <= 75 for line in head for word in line.split() if word.startswith(b"=?"))


def parsed_visible_text(raw: bytes) -> str:
    """What a recipient reads of ``raw``, parsed back: the subject, then each text part."""
    message = parse(raw)
    texts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            content = part.get_content()
            texts.append(html_to_text(content) if part.get_content_subtype() == "html" else content)
    return "\n".join([str(message.get("Subject", "")), *texts])


def test_visible_text_is_what_a_parser_reads_back() -> None:
    for parts in (
        PARTS,
        replace(PARTS, html=None),
        replace(PARTS, text="", subject="plain ascii"),
        replace(PARTS, subject="Re: =?utf-8?q?SSN_219-09-9999?= again", text="a\rb\r\nc"),
    ):
        assert visible_text(parts) == parsed_visible_text(build_mime(parts))


def test_encoded_word_look_alikes_are_shown_literally_as_scanned() -> None:
    parts = replace(PARTS, subject="Re: =?utf-8?q?SSN_219-09-9999?= hi")
    message = parse(build_mime(parts))
    assert message["Subject"] == "Re: =?utf-8?q?SSN_219-09-9999?= hi"
    assert visible_text(parts).startswith(message["Subject"])


def test_a_non_ascii_message_id_of_a_sender_is_encoded_not_fatal() -> None:
    parts = replace(PARTS, in_reply_to="<caf\u00e9@x.example>", references=("<a\udcff@x.example>",))
    message = parse(build_mime(parts))
    assert message["In-Reply-To"] == "<caf\u00e9@x.example>"
    assert message["References"] == "<a\ufffd@x.example> <caf\u00e9@x.example>"


def test_short_ascii_headers_are_written_as_compat32_would() -> None:
    rng = random.Random(5)
    alphabet = string.printable.replace("\r", "").replace("\n", "") + ' =?;,<>"\t\udcff\u00e9'
    names = ("From", "To", "Subject", "References", "Content-Type", "X-Auto-Response-Suppress")
    for _ in range(20_000):
        name = rng.choice(names)
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 90)))
        assert folded(mime._POLICY, name, value) == folded(COMPAT32, name, value)


def folded(policy: Compat32, name: str, value: str) -> bytes | str:
    try:
        return policy.fold_binary(name, value)
    except (UnicodeEncodeError, HeaderParseError) as exc:  # what compat32 refuses, either way
        return type(exc).__name__


@pytest.mark.parametrize(
    "parts",
    [
        PARTS,
        replace(PARTS, html=None),
        replace(PARTS, from_name="MHBE Escalated caseworkers Team", subject="Re: short"),
        replace(PARTS, subject="x" * 200, references=()),
    ],
)
def test_mime_is_byte_for_byte_what_compat32_builds(
    parts: MailParts, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixed = uuid.UUID(int=7)
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)
    fast = build_mime(parts)
    monkeypatch.setattr(mime, "_POLICY", COMPAT32)
    assert fast == build_mime(parts)


def test_a_line_break_in_a_header_value_is_refused() -> None:
    with pytest.raises(ValueError, match="linefeed"):
        build_mime(replace(PARTS, to="sam@brokers.example\r\nBcc: x@evil.example"))


def test_composed_mail_with_personal_data_is_withheld(engine: Engine) -> None:
    withheld_ack(engine)
    with Session(engine) as session:
        [row] = session.exec(select(OutboxMessage)).all()
        [event] = session.exec(select(AuditEvent).where(AuditEvent.kind == "outbound_blocked_pii"))
    assert (row.status, row.mime, row.pii_findings) == ("withheld", b"", {"US_SSN": 1})
    assert event.detail == {"kind": "ack_new", "finding_counts": {"US_SSN": 1}}


def queue_acks(engine: Engine, count: int) -> None:
    composer = make_composer(make_config())
    for i in range(count):
        incident, producer = add_case(
            engine, number=f"200528-{4000000 + i}", email_address=f"q{i}@b.example", npn=f"8{i}"
        )
        request = ReplyRequest(kind="ack_new", to=producer.email, incident=incident)
        row = queue_mail(engine, composer, request, now=NOW)
        assert row is not None and row.status == "pending"


def test_relay_down_hands_the_untried_claims_back(engine: Engine) -> None:
    queue_acks(engine, 3)
    config = relay_config(free_port(), retry_initial_seconds=60)
    assert asyncio.run(dispatch_due(engine, transport_from_config(config), NOW, config)) == 0
    with Session(engine) as session:
        tried, *untouched = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))
    assert (tried.status, tried.attempts) == ("pending", 1)
    assert tried.next_attempt_at == NOW + timedelta(seconds=60)
    due_again = [(r.status, r.attempts, r.next_attempt_at) for r in untouched]
    assert due_again == [("pending", 0, NOW)] * 2


def test_batched_round_sends_each_row_once(engine: Engine, sink: Sink) -> None:
    queue_acks(engine, 5)
    config = relay_config(sink.port)
    transport = transport_from_config(config)
    assert asyncio.run(dispatch_due(engine, transport, NOW, config, limit=3)) == 3
    assert asyncio.run(dispatch_due(engine, transport, NOW, config, limit=3)) == 2
    assert len({r.message["Message-ID"] for r in sink.received}) == 5


def test_maildir_is_made_again_when_removed(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "out" / "sent")
    asyncio.run(transport.send("a@x.example", ["b@y.example"], b"Subject: 1\r\n\r\nx\r\n"))
    shutil.rmtree(tmp_path / "out")
    asyncio.run(transport.send("a@x.example", ["b@y.example"], b"Subject: 2\r\n\r\nx\r\n"))
    assert len(list((tmp_path / "out" / "sent" / "new").iterdir())) == 1
