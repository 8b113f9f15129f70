"""The guard's time budget per message: what it cannot read in time is never kept.

Under ``redact`` the part read is stored (redacted) with a note in place of the rest;
under ``reject`` the message is refused.  Unit tests drive the budget with a clock that
ticks once per question, so where the scan stops is exact; the pipeline and the real
``ticketd serve`` run with a budget that the first piece of a long body exhausts.
"""

from __future__ import annotations

import itertools
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from pii_guard import (
    UNREAD_NOTE,
    UNSCANNED,
    GuardSettings,
    PiiGuard,
    PiiGuardError,
    ScanBudget,
    Scanned,
    evaluate,
    kept_text,
)
from pii_guard.labels import finding_labels
from ticketing.config import Config
from ticketing.config.pii_schema import PiiConfig
from ticketing.intake.build import build_pipeline
from ticketing.pipeline.guard import PiiGuardStage
from ticketing.pipeline.runner import IntakePipeline
from ticketing.pipeline.types import RawMessage
from ticketing.privacy.settings import build_guard
from ticketing.store.db import transaction
from ticketing.store.models import Attachment, Message, OutboxMessage, Producer

from .builders import LOCAL_MTA, TOKEN_SECRET, RecordedReplies
from .daemon import Ticketd
from .mail import make_mail

SSN = "219-09-9999"
PIECE = 1_000  # the test guard's piece of text: a small text is several pieces
# Street-shaped filler: no PII of its own, many pieces long.
FILLER = "Plan year 2026, renewal notice sent twice.\n" * 60


def ticking_budget(ticks: int) -> ScanBudget:
    """A budget spent after ``ticks`` questions: the clock moves one second per reading."""
    clock = itertools.count()
    return ScanBudget(ticks + 0.5, clock=lambda: float(next(clock)))


@pytest.fixture(scope="module")
def guard() -> PiiGuard:
    return PiiGuard.build(chunking=(PIECE, 200))


def test_the_scan_stops_between_pieces_and_says_how_far_it_read(guard: PiiGuard) -> None:
    text = f"SSN {SSN} first.\n" + FILLER + f"SSN {SSN} last."
    scanned = guard.scan_within(text, ticking_budget(2))
    assert (scanned.read, scanned.whole) == (2 * PIECE, False)
    assert [f.start for f in scanned.findings] == [text.index(SSN)]
    assert guard.scan_within(text, ticking_budget(100)).whole


def test_redact_keeps_what_was_read_and_notes_the_rest(guard: PiiGuard) -> None:
    text = "Person ID 1001 lost coverage.\n" + FILLER + f"Her SSN is {SSN}."
    outcome = evaluate(
        guard, "redact", {"subject": "Renewal", "text": text}, budget=ticking_budget(2)
    )
    kept = outcome.fields["text"]
    assert outcome.action == "redact"
    assert SSN not in kept and kept.startswith("Person ID 1001 lost coverage.")
    assert kept.endswith(UNREAD_NOTE.format(len(text) - PIECE))  # the subject took a tick
    assert outcome.unscanned == {"text": len(text) - PIECE}
    assert outcome.counts == {UNSCANNED: 1}
    assert outcome.fields["subject"] == "Renewal"  # read before the budget ran out


def test_the_note_never_splits_a_line_break(guard: PiiGuard) -> None:
    """Mail keeps CRLF: a cut between CR and LF would leave a lone CR before the note."""
    text = "Renewal notice.\r\n" * 200
    cut = text.index("\n", PIECE - 20)  # the piece ends right after a CR
    kept = kept_text(guard, text, Scanned([], cut, len(text)))
    assert "\r[" not in kept and kept.endswith(UNREAD_NOTE.format(len(text) - cut))
    assert kept_text(
        guard, "Renewal notice", Scanned([], 7, 14)
    ) == "Renewal " + UNREAD_NOTE.format(7)


def test_reject_refuses_what_it_could_not_read(guard: PiiGuard) -> None:
    text = "Nothing personal here.\n" + FILLER
    outcome = evaluate(guard, "reject", {"text": text}, budget=ticking_budget(1))
    assert (outcome.action, outcome.counts) == ("reject", {UNSCANNED: 1})
    assert evaluate(guard, "reject", {"text": text}, budget=ticking_budget(100)).action == "pass"


def test_a_field_after_the_budget_is_not_read_at_all(guard: PiiGuard) -> None:
    fields = {"text": FILLER, "attachment:0": f"SSN {SSN}"}
    outcome = evaluate(guard, "redact", fields, budget=ticking_budget(3))
    assert outcome.unscanned == {"attachment:0": len(fields["attachment:0"])}
    assert SSN not in outcome.fields["attachment:0"]


def test_the_budget_is_processor_time_and_must_be_positive() -> None:
    with pytest.raises(PiiGuardError, match="scan budget"):
        GuardSettings(scan_budget_seconds=0)
    assert not ScanBudget(60).spent() and not ScanBudget(None).spent()
    assert finding_labels([UNSCANNED], "es") != finding_labels([UNSCANNED], "en") != [UNSCANNED]


# --- through the pipeline -----------------------------------------------------------------


@pytest.fixture(scope="module")
def hurried_guard() -> PiiGuard:
    """The daemon's guard with a budget that the subject leaves room in and the first
    piece of a long body (about 0.1 s) exhausts: checked between pieces, it stops there."""
    return build_guard(PiiConfig(scan_budget_seconds=0.01))


def hurried_pipeline(engine: Engine, guard: PiiGuard, policy: str) -> IntakePipeline:
    with transaction(engine) as session:
        session.add(Producer(npn="1234567", name="Sam Amsung", email="sam@brokers.example"))
    config = Config()
    boxes = tuple(box.model_copy(update={"pii_policy": policy}) for box in config.mailboxes)
    config = config.model_copy(update={"mailboxes": boxes})
    return build_pipeline(config, engine, guard=PiiGuardStage(guard), replies=RecordedReplies())


def long_mail() -> bytes:
    """A producer's mail whose SSN lies past the first 32,000-character piece."""
    body = "My client, Person ID 1001, lost coverage.\n" + FILLER * 20 + f"SSN {SSN}\n"
    attachment = ("notes.txt", "text/plain", b"Plan notes, nothing personal.")
    return make_mail(body=body, attachments=[attachment])


def smtp(raw: bytes) -> RawMessage:
    return RawMessage(raw, "smtp", ("escalations",), "sam@brokers.example", peer=LOCAL_MTA)


def test_a_redact_mailbox_stores_the_part_read_and_drops_what_was_not(
    engine: Engine, hurried_guard: PiiGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", TOKEN_SECRET)
    outcome = hurried_pipeline(engine, hurried_guard, "redact").process(smtp(long_mail()))
    assert outcome.new_incident
    with transaction(engine, readonly=True) as session:
        row = session.exec(select(Message)).one()
        attachment = session.exec(select(Attachment)).one()
    assert SSN not in row.text and SSN not in row.new_text
    assert row.new_text == row.text  # not read in time: the stored text stands in for it
    assert row.text.startswith("My client, Person ID 1001") and "could not be checked" in row.text
    assert row.pii_findings == {UNSCANNED: 2}  # the body, and the attachment after it
    assert row.subject == "Escalated Case: Enrollment.PID #:174097"  # read whole in time
    assert attachment.disposition == "dropped_unscannable"


def test_a_reject_mailbox_refuses_what_it_could_not_read(
    engine: Engine, hurried_guard: PiiGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETD_TOKEN_SECRET", TOKEN_SECRET)
    outcome = hurried_pipeline(engine, hurried_guard, "reject").process(smtp(long_mail()))
    assert outcome.action == "pii_rejected"
    assert outcome.reason.startswith("too long to check for personal data in time")
    with transaction(engine, readonly=True) as session:
        row = session.exec(select(Message)).one()
    assert (row.text, row.new_text) == ("", "")


def test_serve_answers_a_producer_whose_mail_was_too_long_to_check(
    ticketd: Ticketd, engine: Engine, tmp_path: Path
) -> None:
    """Through ``ticketd serve``: the mail is taken (250), the part read is kept, and the
    acknowledgement tells the producer, in words, what was not kept."""
    roster = "npn,name,email\n1234567,Sam Amsung,sam@brokers.example\n"
    (tmp_path / "roster.csv").write_text(roster)
    daemon = ticketd('[pii]\nscan_budget_seconds = 0.01\n[roster]\nfile = "roster.csv"\n')
    with daemon.serve():
        code, reply = daemon.send(long_mail())
    assert code == 250, reply
    with transaction(engine, readonly=True) as session:
        row = session.exec(select(Message)).one()
        acks = session.exec(select(OutboxMessage).where(OutboxMessage.kind != "desk_copy")).all()
    assert SSN not in row.text and "could not be checked" in row.text
    assert [ack.kind for ack in acks] == ["ack_new"]
    body = message_from_bytes(acks[0].mime, policy=policy.default).get_body(("plain",))
    assert body is not None
    assert finding_labels([UNSCANNED], "en")[0] in str(body.get_content())
