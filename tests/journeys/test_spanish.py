"""Journey 4: Rosa reads and writes Spanish — every reply she gets is in Spanish, and none
is withheld by the outbound guard."""

from __future__ import annotations

import re

from .conftest import (
    ESCALATIONS,
    ROSA,
    Desk,
    Mail,
    Steps,
    apple_reply,
    compose,
    gmail_reply,
    incident_in,
)

# Words of the English templates that no Spanish mail of ours has.
ENGLISH = re.compile(r"\b(?:Hi|Hello|We|Your|Please|Thanks|has been|the|and)\b")


def _in_spanish(steps: Steps, mail: Mail, what: str) -> None:
    steps.check(
        mail.text.startswith(f"Hola {ROSA.name}"),
        f"{what} does not greet Rosa in Spanish: {mail.text[:60]!r}",
    )
    english = sorted(set(ENGLISH.findall(mail.subject + "\n" + mail.text)))
    steps.check(not english, f"{what} has English words {english}: {mail.subject!r}")


def test_rosa_gets_every_reply_in_spanish_and_none_is_withheld(desk: Desk) -> None:
    with Steps() as steps:
        code, text = desk.send_mail(
            compose(
                ROSA.sender,
                ESCALATIONS,
                "Escalated Case: Enrollment.PID #:174601",
                "Hola:\n\nMi cliente no puede terminar la inscripción; la solicitud se detiene "
                f"en la página del hogar.\n\nGracias,\n{ROSA.signature}",
            )
        )
        number = incident_in(text)
        assert code == 250 and number, f"the escalation's 250 names no incident: {code} {text}"
        (ack,) = desk.mail_for(ROSA.email, 1, incident=number, what="the acknowledgement")
        _in_spanish(steps, ack, "the ack")
        steps.check(
            "número de incidente" in ack.text and ack.names(number),
            f"the ack does not give the número de incidente {number}: {ack.text!r}",
        )
        steps.check(
            "eliminamos" not in ack.text,
            f"the ack says data was removed from a mail that held none: {ack.text!r}",
        )

        code, text = desk.send_mail(
            gmail_reply(
                ROSA.sender, ack, f"Ya tiene el aviso de la agencia.\n\n{ROSA.signature}", lang="es"
            )
        )
        steps.check(incident_in(text) == number, f"the reply was not recorded on {number}: {text}")
        mails = desk.mail_for(ROSA.email, 2, incident=number, what="the ack of the reply")
        _in_spanish(steps, mails[1], "the ack_reply")

        code, text = desk.send_mail(
            apple_reply(
                ROSA.sender,
                ack,
                f"Su número de Seguro Social es 123-45-6789.\n\n{ROSA.signature}",
                lang="es",
            )
        )
        steps.check(incident_in(text) == number, f"the SSN reply not recorded on {number}: {text}")
        mails = desk.mail_for(ROSA.email, 3, incident=number, what="the redaction notice")
        _in_spanish(steps, mails[2], "the redaction notice")
        steps.check(
            "información personal" in mails[2].text,
            f"the notice does not say personal data was removed: {mails[2].text!r}",
        )

        resolved = desk.cli("incidents", "resolve", number, "--by", "casey")
        steps.check(f"{number}: resolved" in resolved.stdout, f"resolve: {resolved.stdout}")
        mails = desk.mail_for(ROSA.email, 4, incident=number, what="the resolved mail")
        _in_spanish(steps, mails[3], "the resolved mail")
        steps.check(mails[3].names(number), f"the resolved mail does not give {number}")

        rows = desk.outbox_to(ROSA.email)
        withheld = [r for r in rows if r["status"] == "withheld"]
        steps.check(not withheld, f"mail to Rosa withheld: {withheld}")
        kinds = [r["kind"] for r in rows]
        steps.check(
            kinds == ["ack_new", "ack_reply", "pii_redacted", "resolved"],
            f"Rosa is sent {kinds}, not ack_new, ack_reply, pii_redacted, resolved",
        )
        steps.check(len(desk.mails_to(ROSA.email)) == 4, "more than 4 mails reached Rosa")

        # Rosa's own name, agency, phone and our address are hers and ours, not a consumer's
        messages = desk.show(number)["messages"]
        steps.check(len(messages) == 3, f"{number} lists {len(messages)} messages, not 3")
        for index, message in enumerate(messages):
            stored = message.get("text")
            assert stored is not None, f"incidents show --json gives no text of message {index}"
            steps.check("123-45-6789" not in stored, f"message {index} keeps the SSN: {stored!r}")
            steps.check(
                ("[REDACTED:" in stored) == (index == 2),
                f"message {index} ({message['subject']!r}) is stored "
                + ("without the SSN redacted" if index == 2 else "redacted")
                + f": {stored!r}",
            )
