"""Journeys 1 and 2: Sam escalates, then replies from Outlook, Gmail and Apple Mail."""

from __future__ import annotations

from .conftest import (
    ESCALATIONS,
    SAM,
    Desk,
    Steps,
    apple_reply,
    compose,
    gmail_reply,
    incident_in,
    outlook_reply,
)


def test_sam_escalates_and_replies_from_three_clients_onto_one_incident(desk: Desk) -> None:
    with Steps() as steps:
        escalation = compose(
            SAM.sender,
            ESCALATIONS,
            "Escalated Case: Enrollment.PID #:174097",
            "Hello,\n\nMy client cannot finish enrollment: the application stops at the "
            f"household page.\n\nThanks,\n{SAM.signature}",
        )
        code, text = desk.send_mail(escalation)
        number = incident_in(text)
        assert code == 250 and number, f"the escalation's 250 names no incident: {code} {text}"

        (ack,) = desk.mail_for(SAM.email, 1, incident=number, what="the acknowledgement")
        steps.check(ack.names(number), f"the ack does not give the number {number}: {ack.text!r}")
        steps.check("2 business days" in ack.text, f"the ack makes no promise: {ack.text!r}")
        steps.check(ack.token, f"the ack carries no ref token: {ack.text!r}")
        steps.check(
            ack.from_address == ESCALATIONS,
            f"the ack comes from {ack.from_address}, not the mailbox Sam wrote to",
        )
        steps.check(
            ack.reply_to == [ESCALATIONS],
            f"the ack's Reply-To is {ack.reply_to}, not the mailbox Sam wrote to",
        )

        replies = {
            "Outlook": outlook_reply(
                SAM.sender, ack, f"The client's notice arrived today.\n\n{SAM.signature}"
            ),
            "Gmail": gmail_reply(
                SAM.sender, ack, f"She tried again this morning, same error.\n\n{SAM.signature}"
            ),
            "Apple Mail": apple_reply(
                SAM.sender, ack, f"Any news on this one?\n\n{SAM.signature}\nSent from my iPhone"
            ),
        }
        for client, reply in replies.items():
            code, text = desk.send_mail(reply)
            steps.check(
                (code, incident_in(text)) == (250, number),
                f"the {client} reply was not recorded on {number}: {code} {text}",
            )

        rows = desk.outbox_to(SAM.email)
        kinds = [r["kind"] for r in rows]
        steps.check(
            kinds == ["ack_new", "ack_reply"],
            f"Sam is sent {kinds}, not one ack_new and one ack_reply an hour",
        )
        mails = desk.mail_for(SAM.email, len(rows), incident=number)
        steps.check(len(mails) == 2, f"{len(mails)} mails reached Sam, not 2")
        for mail in mails[1:]:
            steps.check(
                mail.names(number) and mail.from_address == ESCALATIONS,
                f"the ack_reply names {number}? {mail.names(number)}; from {mail.from_address}",
            )

        shown = desk.show(number)
        messages = shown["messages"]
        steps.check(len(messages) == 4, f"{number} lists {len(messages)} messages, not 4")
        for index, message in enumerate(messages):
            steps.check(
                not message.get("pii_findings"),
                f"message {index} ({message['subject']!r}) was found to hold personal data: "
                f"{message.get('pii_findings')}",
            )
            stored = message.get("text")
            steps.check(
                stored is not None, f"incidents show --json gives no text of message {index}"
            )
            steps.check(
                "[REDACTED" not in (stored or ""),
                f"message {index} ({message['subject']!r}) was stored redacted: {stored!r}",
            )
