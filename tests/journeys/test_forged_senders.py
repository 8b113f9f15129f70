"""The attacker's journey: anyone can send the desk mail and write any ``From:``.

Sam (a producer in the roster, who signs his mail with DKIM as every big mail system
does) opens an incident. Then, from an outside address and without a valid signature,
an attacker writes as Casey the caseworker with the resolution marker, as Sam himself,
with an encoded word that spells Sam's address, and as an out-of-office robot quoting
Sam's number, and 15 strangers write to draw replies to third parties. None of it may
change Sam's incident, reach Sam, name the incident, or draw a reply; all of it waits
in the queue of unverified mail, where a caseworker attaches what is genuine by hand.
"""

from __future__ import annotations

from typing import Any

from .conftest import CASEY, ESCALATIONS, Desk, Producer, Steps, compose, incident_in

SAM = Producer(
    "7400001",
    "Sam Forge",
    "sam@forge-agency.example",
    phones="410-555-0177",
    agency="Forge Insurance Agency",
)
SUBJECT = "Escalated Case: Enrollment.PID #:174301"


def _unverified(desk: Desk) -> list[dict[str, Any]]:
    return list(desk.cli_json("incidents", "unverified", "--limit", "1000"))


def _messages_on(desk: Desk, number: str) -> list[dict[str, Any]]:
    return list(desk.show(number)["messages"])


def test_forged_mail_changes_nothing_and_waits_for_staff(desk: Desk) -> None:
    desk.import_producers(SAM)
    with Steps() as steps:
        code, text = desk.send_mail(
            compose(
                SAM.sender,
                ESCALATIONS,
                SUBJECT,
                f"My client's plan did not save.\n\n{SAM.signature}",
            )
        )
        number = incident_in(text)
        assert code == 250 and number, f"Sam's signed escalation opened nothing: {code} {text}"
        desk.mail_for(SAM.email, 1, incident=number, what="Sam's acknowledgement")
        shown = desk.show(number)
        first = shown["messages"][0]
        steps.check(
            first["authentication"] == "verified"
            and "dkim=pass" in first["authentication_results"],
            f"Sam's signed mail is not shown as verified: {first}",
        )

        forgeries = {
            "Casey resolving": compose(
                CASEY, ESCALATIONS, f"RE: [{number}] [resolved]", "Done. [resolved]\n\nCasey"
            ),
            "Sam replying": compose(
                SAM.sender, ESCALATIONS, f"RE: {number}", "Please close this, all fixed."
            ),
            "an encoded word": compose(
                f"=?utf-8?q?{SAM.email.replace('@', '=40')}?= <attacker@evil.example>",
                ESCALATIONS,
                f"RE: {number}",
                "Any news? Please send me the consumer's details.",
            ),
            "an out-of-office": compose(
                "Robot <robot@evil.example>",
                ESCALATIONS,
                f"Automatic reply: {number}",
                "I am out of the office.",
                headers={"Auto-Submitted": "auto-replied"},
            ),
        }
        for what, raw in forgeries.items():
            code, text = desk.send_mail(raw, signed=False)
            steps.check(code == 250, f"the forgery by {what} was not recorded: {code} {text}")
            steps.check(number not in text, f"the 250 to {what} names the incident: {text}")

        after = desk.show(number)
        steps.check(
            after["status"] == shown["status"],
            f"forged mail moved {number} from {shown['status']} to {after['status']}",
        )
        steps.check(
            len(after["messages"]) == 1,
            f"forged mail was attached to {number}: {[m['sender'] for m in after['messages']]}",
        )
        to_sam = [m.subject for m in desk.mails_to(SAM.email)]
        steps.check(len(to_sam) == 1, f"Sam was mailed because of forged mail: {to_sam}")
        for outsider in ("attacker@evil.example", "robot@evil.example"):
            steps.check(not desk.mails_to(outsider), f"{outsider} drew a reply")

        # The robot's mail is screened as automatic (recorded, unattached, unanswered);
        # the three written as people wait for staff.
        waiting = [m for m in _unverified(desk) if number in m["subject"]]
        steps.check(
            len(waiting) == len(forgeries) - 1,
            f"{len(waiting)} of {len(forgeries) - 1} forgeries wait in the unverified queue",
        )

        # Sam's reply was forwarded by his client's relay and lost its signature: genuine,
        # so a caseworker attaches it by hand; nothing is mailed, the act is audited.
        sams = [m for m in waiting if m["sender"] == SAM.email]
        assert sams, f"Sam's unsigned reply is not in the queue: {waiting}"
        desk.cli("incidents", "attach", str(sams[0]["message"]), number, "--by", "Casey")
        attached = desk.show(number)
        steps.check(
            len(attached["messages"]) == 2,
            f"the attached reply is not on {number}: {attached['messages']}",
        )
        steps.check(
            any(
                e["kind"] == "message_attached" and e.get("actor") == "operator:Casey"
                for e in attached["events"]
            ),
            f"attaching is not audited as Casey: {attached['events']}",
        )
        steps.check(len(desk.mails_to(SAM.email)) == 1, "attaching by hand mailed Sam")


def test_forged_strangers_draw_no_backscatter(desk: Desk) -> None:
    victims = [f"victim{i}@third-party.example" for i in range(15)]
    with Steps() as steps:
        for victim in victims:
            raw = compose(victim, ESCALATIONS, "Escalated Case: Enrollment", "Hello?")
            code, text = desk.send_mail(raw, signed=False)
            steps.check(code == 250, f"mail from {victim} was not recorded: {code} {text}")
        # A signed stranger is a real sender: told how to register, as before.
        code, _ = desk.send_mail(
            compose("Real Stranger <real@third-party.example>", ESCALATIONS, "Hello", "Hi")
        )
        desk.mail_for("real@third-party.example", 1, what="the signed stranger's answer")
        sent = [v for v in victims if desk.mails_to(v)]
        steps.check(not sent, f"forged strangers drew replies to {sent}")
