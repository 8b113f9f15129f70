"""What a new escalation is about: the Person IDs it names, in the ways producers write them."""

from __future__ import annotations

import pytest

from ticketing.incidents.classify import person_ids


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Escalated Case: Enrollment.PID #:174097", ["174097"]),
        ("PID 174097 and PID#174098", ["174097", "174098"]),
        ("Person IDs 174201, 174202 and 174203 are missing", ["174201", "174202", "174203"]),
        ("PIDs 174301/174302 were terminated", ["174301", "174302"]),
        ("PID #: 174401, 174402 & 174403", ["174401", "174402", "174403"]),
        ("person ids: 174501; 174502, and 174503", ["174501", "174502", "174503"]),
        ("Person ID's 174601 y 174602", ["174601", "174602"]),
        ("PID numbers #174701, #174702", ["174701", "174702"]),
        ("Person ID 174801 and her son, age 12", ["174801"]),  # "12" is no Person ID
        ("PID 174901 and 2 other clients", ["174901"]),
        ("my client 174097 has no label", []),
    ],
)
def test_person_ids_in_the_forms_producers_write(text: str, expected: list[str]) -> None:
    assert person_ids("", text) == expected


def test_subject_first_each_once() -> None:
    assert person_ids("PID 2001", "Person IDs 2002, 2001") == ["2001", "2002"]
