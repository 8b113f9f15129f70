"""Business-time arithmetic on the Maryland calendar: "due in 2 business days"."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from ticketing.sla.calendar import BusinessCalendar

from .conftest import RunCli

CAL = BusinessCalendar.standard()
TWO_DAYS = CAL.business_day * 2

# start -> due, each worked out by hand: 18 business hours, Mon-Fri 08:00-17:00 New York,
# weekends and Maryland holidays off; a start after hours counts from the next opening.
CASES = [
    ("2026-11-23T10:00:00-05:00", "2026-11-25T10:00:00-05:00", "plain weekdays"),
    ("2026-11-27T10:00:00-05:00", "2026-12-01T17:00:00-05:00", "Friday after Thanksgiving"),
    ("2026-11-25T16:00:00-05:00", "2026-12-01T16:00:00-05:00", "over Thanksgiving and Friday"),
    ("2026-11-28T12:00:00-05:00", "2026-12-01T17:00:00-05:00", "Saturday arrival"),
    ("2026-11-30T07:00:00-05:00", "2026-12-01T17:00:00-05:00", "before opening"),
    ("2026-11-30T17:00:00-05:00", "2026-12-02T17:00:00-05:00", "exactly at closing"),
    ("2026-11-30T20:00:00-05:00", "2026-12-02T17:00:00-05:00", "evening arrival"),
    ("2026-10-30T12:00:00-04:00", "2026-11-03T12:00:00-05:00", "over the fall DST change"),
    ("2026-03-06T15:00:00-05:00", "2026-03-10T15:00:00-04:00", "over the spring DST change"),
    ("2026-12-30T10:00:00-05:00", "2027-01-04T10:00:00-05:00", "over New Year"),
    ("2026-12-24T09:00:00-05:00", "2026-12-29T09:00:00-05:00", "over Christmas"),
    ("2027-12-30T12:00:00-05:00", "2028-01-04T12:00:00-05:00", "New Year observed on Dec 31"),
    ("2026-01-16T09:00:00-05:00", "2026-01-21T09:00:00-05:00", "over MLK Day"),
    ("2026-06-18T13:00:00-04:00", "2026-06-23T13:00:00-04:00", "over Juneteenth"),
    ("2026-07-02T17:30:00-04:00", "2026-07-07T17:00:00-04:00", "July 4th observed on Friday"),
    ("2026-12-01T08:00:00-05:00", "2026-12-02T17:00:00-05:00", "exactly at opening"),
    ("2026-12-01T16:59:00-05:00", "2026-12-03T16:59:00-05:00", "a minute before closing"),
    ("2026-11-23T15:00:00+00:00", "2026-11-25T10:00:00-05:00", "start given in UTC"),
    ("2026-11-29T00:00:00-05:00", "2026-12-01T17:00:00-05:00", "Sunday midnight"),
    ("2026-09-04T10:00:00-04:00", "2026-09-09T10:00:00-04:00", "over Labor Day"),
    ("2026-11-10T12:00:00-05:00", "2026-11-13T12:00:00-05:00", "over Veterans Day"),
    ("2026-10-09T16:00:00-04:00", "2026-10-14T16:00:00-04:00", "over Columbus Day"),
]


@pytest.mark.parametrize(("start", "due", "why"), CASES, ids=[c[2] for c in CASES])
def test_two_business_days(start: str, due: str, why: str) -> None:
    got = CAL.add(datetime.fromisoformat(start), TWO_DAYS)
    assert got == datetime.fromisoformat(due)
    assert got.utcoffset() == datetime.fromisoformat(due).utcoffset()  # in New York time


def test_extra_closures_from_config() -> None:
    closed = BusinessCalendar.standard(closures=[date(2026, 12, 23)])
    start = datetime.fromisoformat("2026-12-22T10:00:00-05:00")
    assert closed.add(start, TWO_DAYS) == datetime.fromisoformat("2026-12-28T10:00:00-05:00")


def test_between_counts_only_business_time() -> None:
    friday = datetime.fromisoformat("2026-11-20T16:00:00-05:00")
    monday = datetime.fromisoformat("2026-11-23T09:00:00-05:00")
    assert CAL.between(friday, monday) == CAL.business_day / 9 * 2
    assert CAL.next_open(friday.replace(hour=18)) == monday.replace(hour=8)
    assert CAL.is_open(monday) and not CAL.is_open(friday.replace(hour=17))


def test_cli_due_prints_the_acceptance_example(run_cli: RunCli) -> None:
    result = run_cli("sla", "due", "2026-11-27T10:00:00-05:00")
    assert (result.code, result.out) == (0, "2026-12-01T17:00:00-05:00\n")
    bad = run_cli("sla", "due", "next tuesday")
    assert (bad.code, bad.err) == (1, "ticketd: 'next tuesday' is not an ISO-8601 date and time\n")
    unknown = run_cli("sla", "due", "2026-11-27T10:00:00-05:00", "--policy", "gold")
    assert unknown.err == "ticketd: no SLA policy named 'gold'\n"
