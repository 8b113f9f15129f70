"""``ticketd templates preview``: the whole mail a kind produces, from sample data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ticketing.config.case_types import CASE_TYPES
from ticketing.errors import ReplyError
from ticketing.outbound.compose import ComposedMail, ReplyComposer
from ticketing.outbound.request import ReplyRequest
from ticketing.store.models import Incident, Producer
from ticketing.templating.files import parse_name
from ticketing.templating.kinds import reply_kind
from ticketing.templating.samples import (
    SAMPLE_SECRET,
    sample_extra,
    sample_incident,
    sample_person_ids,
    sample_producer,
    sample_tokens,
)
from ticketing.templating.template_store import TemplateStore
from ticketing.templating.validate import TemplateProblem

__all__ = ["preview_mail", "refused_for", "sample_composer", "sample_mail"]

PREVIEW_TIME = datetime(2020, 5, 28, 14, 31, tzinfo=UTC)


def preview_mail(
    store: TemplateStore, kind_name: str, *, team: str | None, case_type: str, language: str
) -> bytes:
    """The MIME bytes ``kind_name`` would send for the sample producer and incident.

    Signed with a fixed sample secret, so a preview needs no production secret
    and its token and Message-ID never verify in production.
    """
    config = store.config
    if case_type not in CASE_TYPES:
        raise ReplyError(f"unknown case type '{case_type}' (known: {', '.join(CASE_TYPES)})")
    team = team or CASE_TYPES[case_type].default_team
    if team not in config.teams:
        raise ReplyError(f"unknown team '{team}' (known: {', '.join(config.teams)})")
    incident = sample_incident(case_type, team)
    return sample_mail(sample_composer(store), kind_name, incident, sample_producer(language)).mime


def sample_composer(store: TemplateStore) -> ReplyComposer:
    """A composer over ``store`` that signs with the sample secret, never the production one."""
    config = store.config
    return ReplyComposer(config, store, sample_tokens(config.security.token_org), SAMPLE_SECRET)


def sample_mail(
    composer: ReplyComposer,
    kind_name: str,
    incident: Incident,
    producer: Producer,
    extra: dict[str, object] | None = None,
) -> ComposedMail:
    """The whole mail of ``kind_name`` to ``producer`` about a sample ``incident``
    (with ``extra``, else every extra variable of the kind)."""
    kind = reply_kind(kind_name)
    request = ReplyRequest(
        kind=kind.name,
        to=producer.email,
        incident=incident,
        producer=producer,
        team=incident.team,
        language=producer.language,
        in_reply_to="<CAF+sample.producer.message@mail.brokers.example>",
        extra=sample_extra(kind) if extra is None else extra,
    )
    person_ids = sample_person_ids(incident.type)
    return composer.compose(request, person_ids=person_ids, now=PREVIEW_TIME)


def refused_for(store: TemplateStore, kind_name: str) -> list[TemplateProblem]:
    """The problems of ``kind_name``'s files that the store refused when it loaded: a
    preview would show another folder's version of those parts instead of the admin's."""
    return [p for p in store.initial_result.refused if _kind_of(store, Path(p.file)) == kind_name]


def _kind_of(store: TemplateStore, path: Path) -> str | None:
    for layer in store.layers:
        if path.is_relative_to(layer.root):
            name = parse_name(layer, path)
            return name.kind if name else None
    return None
