"""Journey 5: Nia writes before she is in the roster, is told how to register, is imported,
writes the same mail again and learns her incident number."""

from __future__ import annotations

from .conftest import ESCALATIONS, Desk, Producer, Steps, compose, incident_in

NIA = Producer(
    "7300001",
    "Nia Okafor",
    "nia.okafor@okafor-benefits.example",
    phones="240-555-0110",
    agency="Okafor Benefits Group",
)
SUBJECT = "Escalated Case: Determination.PID #:174701"
BODY = (
    "Hello,\n\nMy client's eligibility determination still shows the old income after "
    f"the change was reported.\n\nThanks,\n{NIA.signature}"
)


def test_nia_is_told_to_register_then_imported_then_gets_her_number(desk: Desk) -> None:
    with Steps() as steps:
        code, text = desk.send_mail(compose(NIA.sender, ESCALATIONS, SUBJECT, BODY))
        steps.check(code == 250, f"Nia's mail was not taken: {code} {text}")
        steps.check(not incident_in(text), f"a stranger's mail opened an incident: {text}")
        (told,) = desk.mail_for(NIA.email, 1, what="the unknown_sender answer")
        steps.check("1-844-224-6761" in told.text, f"Nia is not told how: {told.text!r}")
        steps.check(not told.token, "the stranger is sent a ref token")

        desk.import_producers(NIA)
        code, text = desk.send_mail(compose(NIA.sender, ESCALATIONS, SUBJECT, BODY))
        number = incident_in(text)
        assert code == 250 and number, f"the re-sent mail's 250 names no incident: {code} {text}"
        mails = desk.mail_for(NIA.email, 2, incident=number, what="the acknowledgement")
        steps.check(
            mails[1].names(number),
            f"Nia's second mail is not an ack with {number}: {mails[1].text!r}",
        )
        kinds = [r["kind"] for r in desk.outbox_to(NIA.email)]
        steps.check(
            kinds == ["unknown_sender", "ack_new"],
            f"Nia is sent {kinds}, not a registration answer then an acknowledgement",
        )
