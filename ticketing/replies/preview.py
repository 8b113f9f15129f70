"""``ticketd templates preview``: the whole mail a kind produces, from sample data."""

from __future__ import annotations

from datetime import UTC, datetime

from ticketing.case_types import CASE_TYPES
from ticketing.replies.compose import ReplyComposer
from ticketing.replies.errors import ReplyError
from ticketing.replies.kinds import reply_kind
from ticketing.replies.request import ReplyRequest
from ticketing.replies.samples import (
    SAMPLE_SECRET,
    sample_extra,
    sample_incident,
    sample_person_ids,
    sample_producer,
    sample_tokens,
)
from ticketing.replies.store import TemplateStore

__all__ = ["preview_mail"]

PREVIEW_TIME = datetime(2020, 5, 28, 14, 31, tzinfo=UTC)


def preview_mail(
    store: TemplateStore, kind_name: str, *, team: str | None, case_type: str, language: str
) -> bytes:
    """The MIME bytes ``kind_name`` would send for the sample producer and incident.

    Signed with a fixed sample secret, so a preview needs no production secret
    and its token and Message-ID never verify in production.
    """
    config = store.config
    kind = reply_kind(kind_name)
    if case_type not in CASE_TYPES:
        raise ReplyError(f"unknown case type '{case_type}' (known: {', '.join(CASE_TYPES)})")
    team = team or CASE_TYPES[case_type].default_team
    if team not in config.teams:
        raise ReplyError(f"unknown team '{team}' (known: {', '.join(config.teams)})")
    composer = ReplyComposer(config, store, sample_tokens(config.security.token_org), SAMPLE_SECRET)
    producer = sample_producer(language)
    request = ReplyRequest(
        kind=kind.name,
        to=producer.email,
        incident=sample_incident(case_type, team),
        producer=producer,
        team=team,
        language=language,
        in_reply_to="<CAF+sample.producer.message@mail.brokers.example>",
        extra=sample_extra(kind),
    )
    mail = composer.compose(request, person_ids=sample_person_ids(case_type), now=PREVIEW_TIME)
    return mail.mime
