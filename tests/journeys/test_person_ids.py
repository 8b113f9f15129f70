"""Journey 6: commission escalations list several Person IDs the ways producers write them;
every one of them is found."""

from __future__ import annotations

from .conftest import PRODUCER_OPERATIONS, SAM_COMMISSION, Desk, compose, incident_in

LISTS = [
    (
        "Escalated Case: Commission",
        "The November commission was not paid for Person IDs 174201, 174202 and 174203.",
        ["174201", "174202", "174203"],
    ),
    (
        "Commission Issue - two clients",
        "No commission since October for PIDs 174301/174302, both renewed with me.",
        ["174301", "174302"],
    ),
    (
        "Escalated Case: Commission.PID #: 174401, 174402 & 174403",
        "These three renewals are missing from my commission statement.",
        ["174401", "174402", "174403"],
    ),
]


def test_every_person_id_of_a_commission_escalation_is_found(desk: Desk) -> None:
    numbers = []
    for subject, line, _ in LISTS:
        # signed without the phone: nothing in these is personal data even today
        body = f"Hello,\n\n{line}\n\nThanks,\n{SAM_COMMISSION.name}\n{SAM_COMMISSION.agency}"
        code, text = desk.send_mail(
            compose(SAM_COMMISSION.sender, PRODUCER_OPERATIONS, subject, body)
        )
        number = incident_in(text)
        assert code == 250 and number, f"{subject!r}: the 250 names no incident: {code} {text}"
        numbers.append(number)
    found = {n: desk.show(n)["person_ids"] for n in numbers}
    missing = {
        line: sorted(set(expected) - set(found[n]))
        for (_, line, expected), n in zip(LISTS, numbers, strict=True)
        if not set(expected) <= set(found[n])
    }
    assert not missing, f"Person IDs not found: {missing}"
