"""Journey 8, the desk in the shared mailbox: every producer mail reaches the team as a
redacted desk copy, one conversation per incident; Casey answers by replying to it and
ticketd sends her words on to the producer, unless they hold consumer data; notes stay
inside; a forger or a producer at the desk addresses reaches nobody."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.dns_server import AuthDns
from tests.dovecot import PASSWORD, DovecotServer

from .conftest import (
    CASEY,
    ESCALATIONS,
    MAIL_TIMEOUT,
    CommandLine,
    Desk,
    Mail,
    Producer,
    Steps,
    address_of,
    compose,
    gmail_reply,
    incident_in,
    outlook_reply,
    running_desk,
    sam,
)

SAM_DESK = sam("7100011", "sam.desk")
SAM_DESK_FORGED = sam("7100012", "sam.desk.forged")
SSN, DOB, MEDICAID = "219-09-9999", "03/14/1962", "12345678901"
ESCALATION = (
    f"Hello,\n\nMy client (SSN {SSN}, DOB {DOB}, Medicaid ID {MEDICAID}) was terminated "
    "although the binder payment went through. Person ID 175301.\n\nThanks,\n"
)
NOTE_ADDRESS = re.compile(r"write to (\S+@\S+)")


def _desk_copies(desk: Desk, number: str, count: int) -> list[Mail]:
    """The desk copies of ``number`` in the team's mailbox (the maildir, To the mailbox),
    once there are ``count`` of them (or the mail timeout passed): other journeys' copies
    are there too."""
    deadline = time.monotonic() + MAIL_TIMEOUT
    while True:
        copies = [m for m in desk.mails_to(ESCALATIONS) if f"[#{number}]" in m.subject]
        if len(copies) >= count or time.monotonic() > deadline:
            return copies
        time.sleep(0.05)


def _raw(desk: Desk, mail: Mail) -> bytes:
    return b"".join(p.read_bytes() for p in desk.maildir.glob(f"*/{mail.name}"))


def _mails_about(desk: Desk, to: str, subject: str) -> list[Mail]:
    """The mails to ``to`` whose subject holds ``subject``, once there is one (or the mail
    timeout passed): other journeys write to the same people."""
    deadline = time.monotonic() + MAIL_TIMEOUT
    while True:
        found = [m for m in desk.mails_to(to) if subject in m.subject]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _escalate(desk: Desk, producer: Producer, subject: str, body: str) -> tuple[str, Mail]:
    """The producer escalates: the incident number the 250 names, and the acknowledgement."""
    code, text = desk.send_mail(compose(producer.sender, ESCALATIONS, subject, body))
    number = incident_in(text)
    assert code == 250 and number, f"the escalation's 250 names no incident: {code} {text}"
    (ack,) = desk.mail_for(producer.email, 1, incident=number, what="the acknowledgement")
    return number, ack


def _thread_index(mail: Mail) -> bytes:
    return base64.b64decode(str(mail.message["Thread-Index"]))


def test_sam_escalates_casey_answers_from_the_desk_copy_and_pii_never_leaves(desk: Desk) -> None:
    producer = SAM_DESK
    desk.import_producers(producer)
    with Steps() as steps:
        subject = "Escalated Case: Termination.PID #:175301"
        number, ack = _escalate(desk, producer, subject, ESCALATION + producer.signature)
        (first,) = _desk_copies(desk, number, 1)

        # what the caseworker sees
        steps.check(
            first.subject == f"[#{number}] Termination — Escalated Case: Termination.PID #:175301",
            f"desk copy subject: {first.subject!r}",
        )
        steps.check(
            first.from_address == ESCALATIONS
            and "Sam Amsung via escalations" in str(first.message["From"]),
            f"desk copy From: {first.message['From']}",
        )
        raw = _raw(desk, first)
        leaked = [v for v in (SSN, DOB, MEDICAID) if v.encode() in raw]
        steps.check(not leaked, f"the desk copy carries consumer data: {leaked}")
        for line in (
            "Incident: ",
            "Producer: ",
            "Person IDs: ",
            "Removed by the PII guard: ",
            "terminated although the binder payment went through",
        ):
            steps.check(line in first.text, f"the desk copy lacks {line!r}: {first.text!r}")
        steps.check("175301" in first.text, "the desk copy does not name the Person ID")
        steps.check(first.token == ack.token, "the desk copy lacks the incident's ref token")
        (reply_address,) = first.reply_to
        steps.check(
            reply_address.startswith("escalations+") and reply_address != ESCALATIONS,
            f"the desk copy's Reply-To is not a desk reply address: {first.reply_to}",
        )

        # Sam's follow-up lands in the same conversation, in Thunderbird and in Outlook
        code, text = desk.send_mail(
            gmail_reply(
                producer.sender, ack, f"One more thing: it is urgent.\n\n{producer.signature}"
            )
        )
        steps.check((code, incident_in(text)) == (250, number), f"follow-up: {code} {text}")
        copies = _desk_copies(desk, number, 2)
        if steps.check(len(copies) == 2, f"{len(copies)} desk copies of {number}, not 2"):
            second = copies[1]
            steps.check(
                str(second.message["In-Reply-To"]).strip() == first.message_id
                and first.message_id in str(second.message["References"]),
                "the second desk copy does not answer the first (References chain)",
            )
            steps.check(
                second.message["Thread-Topic"] == first.message["Thread-Topic"],
                "the desk copies' Thread-Topic differ",
            )
            one, two = _thread_index(first), _thread_index(second)
            steps.check(
                (len(one), len(two), two[:22]) == (22, 27, one),
                "the second desk copy's Thread-Index is not a child of the first's",
            )

        # Casey answers by hitting Reply on the desk copy
        code, text = desk.send_mail(
            outlook_reply(
                CASEY,
                first,
                "Hi Sam,\n\nWe restored the coverage; the consumer will get a new notice.\n\n"
                "Casey\nEscalated Cases",
            ),
            rcpts=[reply_address],
        )
        steps.check((code, incident_in(text)) == (250, number), f"Casey's reply: {code} {text}")
        mails = desk.mail_for(producer.email, 3, incident=number, what="Casey's reply")
        answer = mails[-1]
        steps.check(
            "We restored the coverage" in answer.text,
            f"Sam did not get Casey's words: {answer.text!r}",
        )
        steps.check(answer.token == ack.token, "Casey's reply to Sam lacks the ref token")
        steps.check(answer.from_address == ESCALATIONS, f"From: {answer.message['From']}")
        steps.check(
            answer.message["Auto-Submitted"] is None,
            "a caseworker's reply is marked as automatic mail",
        )
        steps.check(
            "Removed by the PII guard" not in answer.text and reply_address not in answer.text,
            "Sam got the desk copy's head block",
        )
        shown = desk.show(number)
        steps.check(
            shown["status"] == "awaiting_producer", f"{number} is {shown['status']} after Casey"
        )

        # ... and Sam's answer to it threads back
        code, text = desk.send_mail(
            gmail_reply(producer.sender, answer, f"Thank you!\n\n{producer.signature}")
        )
        steps.check((code, incident_in(text)) == (250, number), f"Sam's answer: {code} {text}")

        # Casey's reply with an SSN goes nowhere but back to her
        before = len(desk.mails_to(producer.email))
        code, text = desk.send_mail(
            outlook_reply(CASEY, first, f"Hi Sam,\n\nIs the SSN {SSN}?\n\nCasey"),
            rcpts=[reply_address],
        )
        steps.check(code == 250, f"Casey's reply with an SSN: {code} {text}")
        (refused,) = _mails_about(desk, CASEY, f"Your reply on incident {number}")
        steps.check(
            "NOT sent" in refused.text and "Social Security" in refused.text,
            f"Casey is not told what was found: {refused.text!r}",
        )
        steps.check(SSN not in refused.text, "the refusal repeats the SSN")
        steps.check(refused.reply_to == [reply_address], "the refusal cannot be answered to resend")

        # a note stays inside
        found = NOTE_ADDRESS.search(first.text)
        if steps.check(found is not None, "the desk copy names no note address"):
            assert found is not None
            note = compose(CASEY, found.group(1), f"Note {number}", "Called the carrier; waiting.")
            code, text = desk.send_mail(note, rcpts=[found.group(1)])
            steps.check((code, incident_in(text)) == (250, number), f"note: {code} {text}")
            texts = [m.get("text", "") for m in desk.show(number)["messages"]]
            steps.check(
                any("Called the carrier" in t for t in texts), "the note is not on the incident"
            )
        time.sleep(2)  # two dispatcher rounds: anything wrongly ordered would be out
        kinds = [r["kind"] for r in desk.outbox_to(producer.email)]
        steps.check(kinds.count("desk_reply") == 1, f"Sam is sent {kinds}: one desk reply only")
        after = [m.text for m in desk.mails_to(producer.email)[before:]]
        steps.check(
            not any(SSN in t or "Called the carrier" in t for t in after),
            "Sam got the withheld reply or the note",
        )


def test_a_forger_and_a_producer_at_the_desk_reply_address_reach_nobody(desk: Desk) -> None:
    producer = SAM_DESK_FORGED
    desk.import_producers(producer)
    with Steps() as steps:
        body = f"Hello,\n\nThe enrollment is stuck.\n\n{producer.signature}"
        number, _ = _escalate(desk, producer, "Escalated Case: Enrollment.PID #:175401", body)
        (copy,) = _desk_copies(desk, number, 1)
        (reply_address,) = copy.reply_to

        forged = outlook_reply(CASEY, copy, "Hi Sam, please send us the SSN of your client.")
        code, text = desk.send_mail(forged, rcpts=[reply_address], signed=False)
        steps.check((code, incident_in(text)) == (250, None), f"forged reply: {code} {text}")

        by_producer = outlook_reply(producer.sender, copy, "I am not staff but try anyway.")
        code, text = desk.send_mail(by_producer, rcpts=[reply_address])
        steps.check(code == 250 and incident_in(text) is None, f"producer at desk: {code} {text}")

        # Casey herself, to a reply address whose tag was altered: plain mail to the
        # mailbox, about no incident (nothing else in it names one)
        forged_tag = reply_address.replace("+r-", "+r-a", 1)
        code, text = desk.send_mail(
            compose(CASEY, forged_tag, "Quick question", "Which incident was this?"),
            rcpts=[forged_tag],
        )
        steps.check((code, incident_in(text)) == (250, None), f"forged tag: {code} {text}")

        time.sleep(2)  # two dispatcher rounds: anything wrongly ordered would be out
        mails = desk.mails_to(producer.email)
        steps.check(
            len(mails) == 1,
            f"the producer got {len(mails)} mails, not just the acknowledgement: "
            f"{[m.subject for m in mails]}",
        )
        shown = desk.show(number)
        steps.check(shown["status"] == "new", f"{number} moved to {shown['status']}")


# --- a redact mailbox read over IMAP: the original is replaced by its desk copy -----------------

SAM_DESK_IMAP = sam("7100013", "sam.desk.imap")
DESK_FOLDER = "Desk"


@contextmanager
def _imap(dovecot: DovecotServer, user: str) -> Iterator[IMAPClient]:
    client = IMAPClient("127.0.0.1", dovecot.port, ssl=False)
    client.login(user, PASSWORD)
    try:
        yield client
    finally:
        client.logout()


def _every_folder(client: IMAPClient) -> dict[str, list[bytes]]:
    """Every message of every folder, raw, as a mail client could read them."""
    found: dict[str, list[bytes]] = {}
    for _, _, name in client.list_folders():
        client.select_folder(name, readonly=True)
        uids = client.search(["ALL"])
        fetched = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        found[str(name)] = [bytes(data[b"BODY[]"]) for data in fetched.values()]
    return found


def _until(condition: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
    return condition()


def test_in_an_imap_shared_mailbox_only_desk_copies_remain(
    backend: str,
    commands: CommandLine,
    db_url: str,
    dovecot: DovecotServer,
    imap_user: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    auth_dns: AuthDns,
) -> None:
    """Sam's mail with consumer data, once over IMAP and once over SMTP: afterwards no
    folder of the shared mailbox holds the data, and the Desk folder holds one redacted
    copy of each."""
    producer = SAM_DESK_IMAP
    monkeypatch.setenv("TICKETD_TEST_IMAP_PASSWORD", PASSWORD)
    imap = f"""[mailboxes.imap]
host = "127.0.0.1"
port = {dovecot.port}
tls = "none"
username = "{imap_user}"
password_env = "TICKETD_TEST_IMAP_PASSWORD"
poll_interval = 1
reconnect_max_seconds = 2
"""
    env = {"TICKETD_TEST_IMAP_PASSWORD": PASSWORD}
    with (
        running_desk(commands, backend, db_url, tmp_path, [producer], auth_dns, imap, env) as desk,
        Steps() as steps,
    ):
        by_imap = compose(
            producer.sender,
            ESCALATIONS,
            "Escalated Case: Termination.PID #:175501",
            ESCALATION + producer.signature,
        )
        with _imap(dovecot, imap_user) as client:
            client.append("INBOX", desk.signed(by_imap))
        (ack,) = desk.mail_for(producer.email, 1, 20, what="the acknowledgement", queued=False)
        number = incident_in(ack.text)
        assert number, f"the ack gives no incident number: {ack.text!r}"
        code, text = desk.send_mail(
            compose(
                producer.sender,
                ESCALATIONS,
                "Escalated Case: Enrollment.PID #:175502",
                ESCALATION + producer.signature,
            )
        )
        second = incident_in(text)
        steps.check(code == 250 and second, f"the SMTP escalation: {code} {text}")

        with _imap(dovecot, imap_user) as client:

            def settled() -> bool:
                folders = _every_folder(client)
                return len(folders.get(DESK_FOLDER, [])) == 2 and not folders.get("INBOX")

            steps.check(
                _until(settled), f"the shared mailbox never settled: {_every_folder(client)}"
            )
            folders = _every_folder(client)
        for folder, raws in folders.items():
            for raw in raws:
                leaked = [v for v in (SSN, DOB, MEDICAID) if v.encode() in raw]
                steps.check(not leaked, f"folder {folder!r} holds consumer data: {leaked}")
        subjects = sorted(
            str(Mail.parse(raw).subject).split("]")[0] for raw in folders.get(DESK_FOLDER, [])
        )
        steps.check(
            subjects == sorted([f"[#{number}", f"[#{second}"]),
            f"the Desk folder holds {subjects}, not one copy of each incident",
        )


SAM_DESK_ASSIGNED = sam("7100014", "sam.desk.assigned")


def test_an_assignment_reaches_the_assignee(desk: Desk) -> None:
    producer = SAM_DESK_ASSIGNED
    desk.import_producers(producer)
    with Steps() as steps:
        body = f"Hello,\n\nMy client's 1095-A is wrong.\n\n{producer.signature}"
        number, _ = _escalate(desk, producer, "Escalated Case: 1095A.PID #:175601", body)
        said = desk.cli(
            "incidents", "assign", number, address_of(CASEY), "--why", "You know this carrier."
        ).stdout
        steps.check("is mailed" in said, f"assign says {said!r}")
        notices = _mails_about(desk, CASEY, f"Incident {number}")
        if steps.check(len(notices) == 1, f"Casey got {len(notices)} notices about {number}"):
            notice = notices[0]
            for part in (number, "You know this carrier.", "Due: ", "175601"):
                steps.check(part in notice.text, f"the notice lacks {part!r}: {notice.text!r}")
        refused = desk.cli("incidents", "assign", number, producer.email, check=False)
        steps.check(
            refused.returncode == 1 and "is not staff" in refused.stderr,
            f"assigning to a producer: {refused.returncode} {refused.stderr!r}",
        )
