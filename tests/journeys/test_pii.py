"""Journey 3: a client's personal data in Sam's mail — stored redacted and Sam told which
kinds were removed (redact mailbox), refused with nothing stored and Sam told (reject
mailbox), and the stricter policy when the mail went to both mailboxes."""

from __future__ import annotations

from .conftest import (
    ESCALATIONS,
    PRODUCER_OPERATIONS,
    SAM_BOTH,
    SAM_PII,
    SAM_REJECT,
    Desk,
    Mail,
    Steps,
    compose,
    edited_subject_reply,
    incident_in,
    outlook_reply,
)

# Made-up values of each kind a producer puts in an escalation.
CONSUMER_DATA = {
    "SSN": "123-45-6789",
    "DOB": "03/14/1962",
    "first name": "Maria",
    "last name": "Gonzalez",
    "Medicaid ID": "12345678901",
    "street": "1200 N Charles St",
    "ZIP": "21201",
}
ESCALATION_BODY = (
    "Hello,\n\n"
    "My client Maria Gonzalez (DOB 03/14/1962, SSN 123-45-6789, Medicaid ID 12345678901) "
    "lives at 1200 N Charles St, Baltimore, MD 21201. Her enrollment was terminated "
    "although she paid the binder payment.\n\nThanks,\n"
)


def _leaks(text: str) -> list[str]:
    return [kind for kind, value in CONSUMER_DATA.items() if value in text]


def _notice(steps: Steps, mail: Mail, what: str) -> None:
    """The redaction notice: the kinds removed in words, Person ID only, the Portal."""
    steps.check("Social Security" in mail.text, f"{what} does not say an SSN was removed")
    steps.check("Person ID" in mail.text, f"{what} does not ask for Person IDs only")
    steps.check("Producer Portal" in mail.text, f"{what} does not point to the Producer Portal")


def test_personal_data_to_the_redact_mailbox_is_stored_redacted_and_sam_is_told(
    desk: Desk,
) -> None:
    with Steps() as steps:
        code, text = desk.send_mail(
            compose(
                SAM_PII.sender,
                ESCALATIONS,
                "Escalated Case: Termination.PID #:174501",
                ESCALATION_BODY + SAM_PII.signature,
            )
        )
        number = incident_in(text)
        assert code == 250 and number, f"the escalation's 250 names no incident: {code} {text}"
        rows = desk.outbox_to(SAM_PII.email)
        steps.check(
            [r["kind"] for r in rows] == ["ack_new"],
            f"the escalation is answered with {[r['kind'] for r in rows]}, not one ack_new",
        )
        (ack,) = desk.mail_for(SAM_PII.email, 1, incident=number, what="the acknowledgement")
        steps.check(ack.names(number), f"the ack does not give {number}: {ack.text!r}")
        _notice(steps, ack, "the ack")

        first = outlook_reply(
            SAM_PII.sender,
            ack,
            f"Sorry, her SSN is 123-45-6780, the one above was wrong.\n\n{SAM_PII.signature}",
        )
        code, text = desk.send_mail(first)
        steps.check(
            (code, incident_in(text)) == (250, number),
            f"the first reply was not recorded on {number}: {code} {text}",
        )
        mails = desk.mail_for(SAM_PII.email, 2, incident=number, what="the ack of the reply")
        steps.check(mails[1].names(number), f"the ack_reply does not give {number}")
        _notice(steps, mails[1], "the ack_reply")

        second = edited_subject_reply(
            SAM_PII.sender,
            ack,
            "Her husband is on the application too",
            f"His SSN is 123-45-6781 if you need it.\n\n{SAM_PII.signature}",
        )
        code, text = desk.send_mail(second)
        steps.check(
            (code, incident_in(text)) == (250, number),
            f"the reply with an edited subject was not recorded on {number}: {code} {text}",
        )
        mails = desk.mail_for(
            SAM_PII.email, 3, incident=number, what="the notice beside the held-back ack_reply"
        )
        steps.check("Social Security" in mails[2].text, "the third mail does not name the SSN")

        kinds = [r["kind"] for r in desk.outbox_to(SAM_PII.email)]
        steps.check(
            kinds == ["ack_new", "ack_reply", "pii_redacted"],
            f"Sam is sent {kinds}, not ack_new, ack_reply, pii_redacted",
        )
        messages = desk.show(number)["messages"]
        steps.check(len(messages) == 3, f"{number} lists {len(messages)} messages, not 3")
        for index, message in enumerate(messages):
            stored = message.get("text")
            assert stored is not None, f"incidents show --json gives no text of message {index}"
            steps.check(not _leaks(stored), f"message {index} keeps {_leaks(stored)}: {stored!r}")
            steps.check("[REDACTED:" in stored, f"message {index} shows no redaction: {stored!r}")


def test_personal_data_to_the_reject_mailbox_is_refused_and_sam_is_told(desk: Desk) -> None:
    with Steps() as steps:
        code, text = desk.send_mail(
            compose(
                SAM_REJECT.sender,
                PRODUCER_OPERATIONS,
                "Commission Issue",
                ESCALATION_BODY + SAM_REJECT.signature,
            )
        )
        steps.check(code == 250, f"the mail was not taken: {code} {text}")
        steps.check(not incident_in(text), f"an incident was opened: {text}")
        rows = desk.outbox_to(SAM_REJECT.email)
        steps.check(
            [r["kind"] for r in rows] == ["pii_rejected"],
            f"the refused mail is answered with {[r['kind'] for r in rows]}, not pii_rejected",
        )
        (notice,) = desk.mail_for(SAM_REJECT.email, 1, what="the refusal")
        steps.check("not accepted" in notice.text, f"the notice does not say so: {notice.text!r}")
        steps.check("Social Security" in notice.text, "the notice does not name the SSN")
        steps.check(not _leaks(notice.text), f"the notice repeats {_leaks(notice.text)}")


def test_personal_data_to_both_mailboxes_takes_the_stricter_policy(desk: Desk) -> None:
    with Steps() as steps:
        code, text = desk.send_mail(
            compose(
                SAM_BOTH.sender,
                ESCALATIONS,
                "Escalated Case: Enrollment.PID #:174502",
                f"My client's SSN is 123-45-6789.\n\nThanks,\n{SAM_BOTH.signature}",
                cc=PRODUCER_OPERATIONS,
            ),
            rcpts=[ESCALATIONS, PRODUCER_OPERATIONS],
        )
        steps.check(code == 250, f"the mail was not taken: {code} {text}")
        steps.check(
            not incident_in(text), f"the redact mailbox's policy applied (incident): {text}"
        )
        kinds = [r["kind"] for r in desk.outbox_to(SAM_BOTH.email)]
        steps.check(kinds == ["pii_rejected"], f"Sam is sent {kinds}, not one pii_rejected")
        mails = desk.mail_for(SAM_BOTH.email, 1, what="the refusal")
        steps.check("not accepted" in mails[0].text, f"Sam is not told: {mails[0].text!r}")
