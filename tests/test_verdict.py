"""One verdict for every channel: what an outcome or an error means, and each adapter's words."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from mailer.errors import RelayUnavailableError
from ticketing.errors import (
    ConfigError,
    ConfigProblem,
    PermanentRejection,
    StorageError,
    StorageFullError,
)
from ticketing.intake.pipe import EX_DATAERR, EX_OK, EX_TEMPFAIL, exit_status
from ticketing.intake.smtp import smtp_answer
from ticketing.pipeline.types import Outcome
from ticketing.pipeline.verdict import verdict_of

RECORDED = Outcome("recorded", 7, incident_number="261207-0000001", new_incident=True)


@pytest.mark.parametrize(
    ("result", "kind", "smtp", "exit_code"),
    [
        (RECORDED, "accepted", "250 2.0.0 Ok: recorded on incident 261207-0000001", EX_OK),
        (Outcome("screened", 8, kind="bounce"), "accepted", "250 2.0.0 Ok: recorded", EX_OK),
        (
            PermanentRejection("message too large", "552 5.3.4"),
            "permanent",
            "552 5.3.4 message too large",
            EX_DATAERR,
        ),
        (
            StorageFullError("database disk is full"),
            "storage_full",
            "452 4.3.1 Insufficient system storage",
            EX_TEMPFAIL,
        ),
        (
            StorageError("database unavailable"),
            "temporary",
            "451 4.3.0 Temporary failure, please try again later",
            EX_TEMPFAIL,
        ),
        (
            RelayUnavailableError("no connection"),
            "temporary",
            "451 4.3.0 Temporary failure, please try again later",
            EX_TEMPFAIL,
        ),
        (  # SMTP retries a defect a few times (intake/smtp.py); the pipe cannot count
            KeyError("a bug"),
            "defect",
            "451 4.3.0 Temporary failure, please try again later",
            EX_DATAERR,
        ),
    ],
)
def test_each_result_gets_one_verdict_and_each_adapter_its_words(
    result: Outcome | Exception, kind: str, smtp: str, exit_code: int
) -> None:
    verdict = verdict_of(result)
    assert verdict.kind == kind
    assert smtp_answer(verdict).startswith(smtp)
    assert exit_status(verdict) == exit_code


def test_a_defect_is_named_by_its_type_never_by_its_text() -> None:
    """A library's exception text may quote the message: the verdict keeps only the type."""
    leaky = OperationalError("INSERT … 'SSN 219-09-9999'", {}, ValueError("x"))
    assert verdict_of(leaky).reason == "OperationalError"


def test_a_reason_is_one_line() -> None:
    error = ConfigError("config.toml", [ConfigProblem("smtp.port", "bad"), ConfigProblem("", "x")])
    assert verdict_of(error).reason == "config.toml: smtp.port: bad; config.toml: x"
