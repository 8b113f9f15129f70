"""Journey 7 with the caseworker's side: Casey answers Sam (Cc to the mailbox, or from the
shared mailbox's sent folder) and the first-response clock stops; Sam's reply threads;
resolving tells Sam, once per resolution."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlmodel import select

from tests.dns_server import AuthDns
from tests.dovecot import PASSWORD, DovecotServer
from ticketing.config import DatabaseConfig
from ticketing.store.db import create_db_engine, transaction
from ticketing.store.models import MailboxCursor

from .conftest import (
    CASEY,
    ESCALATIONS,
    SAM_CASEWORKER,
    SAM_IMAP,
    CommandLine,
    Desk,
    Mail,
    Steps,
    compose,
    incident_in,
    outlook_reply,
    running_desk,
)

SENT = "Sent Items"


def _clock_stopped(shown: dict[str, Any]) -> bool:
    return any(
        e["kind"] == "sla_clock_stopped"
        and (e.get("detail") or {}).get("clock") == "first_response"
        for e in shown["events"]
    )


def _moves(shown: dict[str, Any]) -> list[str]:
    return [str(change["to"]) for change in shown["state_changes"]]


def test_casey_answers_sam_replies_and_each_resolution_is_mailed(desk: Desk) -> None:
    sam = SAM_CASEWORKER
    with Steps() as steps:
        code, text = desk.send_mail(
            compose(
                sam.sender,
                ESCALATIONS,
                "Escalated Case: System Error.PID #:174801",
                f"Hello,\n\nThe application shows an error page at submission.\n\n{sam.signature}",
            )
        )
        number = incident_in(text)
        assert code == 250 and number, f"the escalation's 250 names no incident: {code} {text}"
        (ack,) = desk.mail_for(sam.email, 1, incident=number, what="the acknowledgement")

        raw = outlook_reply(
            CASEY,
            ack,
            "Hi Sam,\n\nWe reset the application; please ask your client to submit it "
            "again and tell us if the error comes back.\n\nCasey\nEscalated Cases",
            to=sam.sender,
            cc=ESCALATIONS,
        )
        answer = Mail.parse(raw)
        code, text = desk.send_mail(raw)
        steps.check(
            (code, incident_in(text)) == (250, number),
            f"Casey's answer was not recorded on {number}: {code} {text}",
        )

        code, text = desk.send_mail(
            outlook_reply(
                sam.sender,
                answer,
                f"She submitted it again and it went through, thank you.\n\n{sam.signature}",
                to=ESCALATIONS,
            )
        )
        steps.check(
            (code, incident_in(text)) == (250, number),
            f"Sam's reply to Casey was not recorded on {number}: {code} {text}",
        )
        shown = desk.show(number)
        steps.check(
            _clock_stopped(shown), f"Casey's answer did not stop the clock: {shown['events']}"
        )
        moves = _moves(shown)
        steps.check(
            moves[-2:] == ["awaiting_producer", "open"],
            f"{number} went {moves}, not to awaiting_producer on Casey's answer and back to "
            "open on Sam's reply",
        )
        steps.check(shown["status"] == "open", f"{number} is {shown['status']}, not open")
        before = len(desk.mail_for(sam.email, 2, incident=number, what="the ack of Sam's reply"))

        for round_, commands in enumerate(
            (
                [("incidents", "resolve", number, "--by", "casey")],
                [
                    ("incidents", "reopen", number, "--by", "casey"),
                    ("incidents", "resolve", number, "--by", "casey"),
                ],
            ),
            start=1,
        ):
            for command in commands:
                desk.cli(*command)
            mails = desk.mail_for(
                sam.email, before + round_, incident=number, what=f"resolved mail {round_}"
            )
            resolved = mails[-1]
            steps.check(
                resolved.names(number) and resolved.token,
                f"resolved mail {round_} lacks the number or the token: {resolved.text!r}",
            )
        kinds = [r["kind"] for r in desk.outbox_to(sam.email)]
        steps.check(
            kinds.count("resolved") == 2, f"Sam is sent {kinds}: not one resolved per resolution"
        )


# --- the shared mailbox's sent folder, over IMAP -----------------------------------------------


@contextmanager
def _imap(dovecot: DovecotServer, user: str) -> Iterator[IMAPClient]:
    client = IMAPClient("127.0.0.1", dovecot.port, ssl=False)
    client.login(user, PASSWORD)
    try:
        yield client
    finally:
        client.logout()


def _wait_for_cursor(db_url: str, folder: str, timeout: float = 20) -> None:
    """Until the poller has seen ``folder`` once: it follows what arrives after that."""
    engine = create_db_engine(DatabaseConfig(url=db_url))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with transaction(engine, readonly=True) as session:
                if session.exec(
                    select(MailboxCursor).where(MailboxCursor.folder == folder)
                ).first():
                    return
            time.sleep(0.1)
    finally:
        engine.dispose()
    raise AssertionError(f"the poller never looked at {folder!r}")


def test_casey_answering_from_the_shared_sent_folder_stops_the_clock(
    backend: str,
    commands: CommandLine,
    db_url: str,
    dovecot: DovecotServer,
    imap_user: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    auth_dns: AuthDns,
) -> None:
    sam = SAM_IMAP
    monkeypatch.setenv("TICKETD_TEST_IMAP_PASSWORD", PASSWORD)
    imap = f"""[mailboxes.imap]
host = "127.0.0.1"
port = {dovecot.port}
tls = "none"
username = "{imap_user}"
password_env = "TICKETD_TEST_IMAP_PASSWORD"
sent_folder = "{SENT}"
poll_interval = 1
reconnect_max_seconds = 2
"""
    with _imap(dovecot, imap_user) as client:
        client.create_folder(SENT)
    env = {"TICKETD_TEST_IMAP_PASSWORD": PASSWORD}
    with (
        running_desk(commands, backend, db_url, tmp_path, [sam], auth_dns, imap, env) as desk,
        Steps() as steps,
    ):
        with _imap(dovecot, imap_user) as client:
            client.append(
                "INBOX",
                desk.signed(
                    compose(
                        sam.sender,
                        ESCALATIONS,
                        "Escalated Case: Enrollment.PID #:174901",
                        f"Hello,\n\nMy client's plan selection did not save.\n\n{sam.signature}",
                    )
                ),
            )
        (ack,) = desk.mail_for(sam.email, 1, 20, what="the acknowledgement", queued=False)
        number = incident_in(ack.text)
        assert number, f"the ack gives no incident number: {ack.text!r}"
        _wait_for_cursor(db_url, SENT)
        with _imap(dovecot, imap_user) as client:
            client.append(
                SENT,
                outlook_reply(
                    CASEY,
                    ack,
                    "Hi Sam,\n\nThe selection is saved now; please check the plan with your "
                    "client.\n\nCasey\nEscalated Cases",
                    to=sam.sender,
                ),
            )
        deadline = time.monotonic() + 15  # the poller reads the folder every second
        shown = desk.show(number)
        while shown["status"] in ("new", "open") and time.monotonic() < deadline:
            time.sleep(0.3)
            shown = desk.show(number)
        steps.check(
            shown["status"] == "awaiting_producer",
            f"{number} is {shown['status']} after Casey's answer, not awaiting_producer",
        )
        steps.check(
            _clock_stopped(shown), f"Casey's answer did not stop the clock: {shown['events']}"
        )
        outbound = [m for m in shown["messages"] if m["direction"] != "in"]
        steps.check(outbound, f"Casey's answer is not on {number}: {shown['messages']}")
