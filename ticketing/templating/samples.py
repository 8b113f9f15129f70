"""Sample data for ``templates check`` and ``templates preview``.

Check renders each template against every variation a real request can
produce (each case type, with and without the optional producer or incident,
with no Person ID), so a template that passes check does not fail on the
first real mail with an unusual shape.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

from ticketing.config.case_types import CASE_TYPES
from ticketing.signing.tokens import RefTokens
from ticketing.store.models import Incident, Producer
from ticketing.templating.context import ContextInput
from ticketing.templating.kinds import ReplyKind

__all__ = [
    "SAMPLE_PRODUCER_NAMES",
    "SAMPLE_SECRET",
    "sample_extra",
    "sample_incident",
    "sample_inputs",
    "sample_producer",
    "sample_producers",
    "sample_tokens",
]

SAMPLE_SECRET = b"ticketd-sample-secret-not-for-production-use"
SAMPLE_NUMBER = "200528-2866868"
SAMPLE_OPENED = datetime(2020, 5, 28, 14, 30, tzinfo=UTC)
SAMPLE_PERSON_IDS = {"commission": ("174097", "174098")}


def sample_tokens(org: str) -> RefTokens:
    return RefTokens(SAMPLE_SECRET, org)


def sample_incident(case_type: str, team: str) -> Incident:
    return Incident(
        id=1,
        number=SAMPLE_NUMBER,
        type=case_type,
        team=team,
        mailbox="escalations",
        opened_at=SAMPLE_OPENED,
        updated_at=SAMPLE_OPENED,
    )


# Producers' names as the roster holds them, from the shapes that trip a name finder:
# Hispanic with accents and two given names, West African, South Asian, East Asian (family
# name first), Irish (apostrophe, fada), names that are everyday words, and lower case
# as the sample producer is.  ``templates check`` greets each one in every template.
SAMPLE_PRODUCER_NAMES = (
    "sam amsung",
    "Rosa Martínez",
    "José Luis Hernández",
    "Ngozi Adeyemi",
    "Kwame Mensah",
    "Priya Venkataraman",
    "Mohammed Rahman",
    "Wei Zhang",
    "Nguyen Thi Lan",
    "Siobhan O'Connor",
    "Padraig Ó Súilleabháin",
    "Grace Hope",
    "Will Bishop",
    "Joy Sterling",
    "maria de la cruz",
)


def sample_producer(
    language: str, name: str = "sam amsung", email: str = "sam@brokers.example"
) -> Producer:
    return Producer(id=1, npn="19283746", name=name, email=email, language=language)


def sample_producers(language: str) -> Iterator[Producer]:
    """A producer of each name in ``SAMPLE_PRODUCER_NAMES``, with an address made of the
    name the way agencies make them (``rosa.martinez@brokers.example``)."""
    for name in SAMPLE_PRODUCER_NAMES:
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        local = ".".join(re.sub(r"[^a-z]", "", part) for part in ascii_name.lower().split())
        yield sample_producer(language, name, f"{local}@brokers.example")


def sample_person_ids(case_type: str) -> tuple[str, ...]:
    return SAMPLE_PERSON_IDS.get(case_type, ("174097",))


def sample_extra(kind: ReplyKind) -> dict[str, object]:
    values: dict[str, object] = {
        "finding_types": ["US_SSN", "DATE_OF_BIRTH"],
        "due_at": datetime(2020, 6, 1, 21, 0, tzinfo=UTC),
        "level": "team_lead",
        # a caseworker's desk reply, and the producer's message it answers
        "reply_text": "Hello,\n\nThe enrollment is fixed; the consumer will get a new notice.",
        "subject": "Re: Escalated Case: Enrollment.PID #:174097",
        "quoted_text": "> Please look at this enrollment.\n> Thanks",
        "quoted_on": "2020-06-01 17:00 EDT",
        "assignee_name": "Casey Caseworker",
        "caseworker": "casey@exchange.example",
        "why": "Casey knows this carrier.",
    }
    return {key: values[key] for key in kind.extra}


def sample_extras(kind: ReplyKind) -> list[dict[str, object]]:
    """The extras a request of ``kind`` may carry: all of them, and (for a kind with
    optional ones) none of those: an acknowledgement with and without a redaction."""
    full = sample_extra(kind)
    if not kind.optional:
        return [full]
    return [full, {key: value for key, value in full.items() if key not in kind.optional}]


def sample_inputs(
    kind: ReplyKind, team_key: str, team_name: str, language: str, org: str
) -> Iterator[ContextInput]:
    """Every shape of context ``kind`` can be rendered with, for every case type."""
    tokens = sample_tokens(org)
    for case_type in CASE_TYPES:
        full = ContextInput(
            kind=kind,
            address="sam@brokers.example",
            team_key=team_key,
            team_name=team_name,
            language=language,
            incident=sample_incident(case_type, team_key) if kind.incident != "none" else None,
            producer=sample_producer(language) if kind.producer != "none" else None,
            person_ids=sample_person_ids(case_type),
            ref_token=tokens.make(SAMPLE_NUMBER) if kind.carries_token else None,
            extra=sample_extra(kind),
        )
        yield full
        yield replace(full, person_ids=())
        for extra in sample_extras(kind)[1:]:
            yield replace(full, extra=extra)
        if kind.producer == "optional":
            yield replace(full, producer=None)
        if kind.incident == "optional":
            yield replace(full, incident=None, ref_token=None)
