"""``[staff] file``: the staff directory kept as a CSV file, like the producers roster.

Columns ``name,address,team,role`` (``team`` and ``role`` may be empty: no team,
caseworker).  Its people join ``[staff] people`` when the configuration is
loaded, so every command and ``ticketd serve`` see one directory; a mistake
names the file, the row and the column, and nothing of the file is used.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ticketing.config.desk_schema import StaffPerson
from ticketing.errors import ConfigError, ConfigProblem

__all__ = ["read_staff_file"]

_COLUMNS = ("name", "address", "team", "role")


Describe = Callable[[ErrorDetails], ConfigProblem]  # a field error in the config's words


def read_staff_file(path: Path, teams: set[str], describe: Describe) -> tuple[StaffPerson, ...]:
    """The people of the staff file at ``path``; ``ConfigError`` naming every bad row."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise ConfigError(str(path), [ConfigProblem("", f"cannot read: {exc.strerror}")]) from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [ConfigProblem("", f"not a CSV file: {exc}")]) from None
    people: list[StaffPerson] = []
    problems: list[ConfigProblem] = []
    for number, row in enumerate(rows, start=2):  # the header is line 1
        person, problem = _person(row, number, teams, describe)
        if person is not None:
            people.append(person)
        problems += problem
    if problems:
        raise ConfigError(str(path), problems)
    return tuple(people)


def _person(
    row: dict[str, str | None], line: int, teams: set[str], describe: Describe
) -> tuple[StaffPerson | None, list[ConfigProblem]]:
    values = {key: (row.get(key) or "").strip() for key in _COLUMNS}
    fields = {key: value for key, value in values.items() if value}
    try:
        person = StaffPerson.model_validate(fields)
    except ValidationError as exc:
        described = (describe(error) for error in exc.errors())
        return None, [ConfigProblem(f"line {line}, {p.key}", p.message) for p in described]
    if person.team is not None and person.team not in teams:
        known = ", ".join(sorted(teams))
        return None, [
            ConfigProblem(f"line {line}, team", f"unknown team '{person.team}' (known: {known})")
        ]
    return person, []
