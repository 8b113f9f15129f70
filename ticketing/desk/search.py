"""One search box: an incident number (or its beginning), a Person ID, an NPN, a producer's
name or address, and the words of messages' stored (redacted) subject and text.

Each kind of match that applies to the query fetches the ids of its newest
``COUNT_LIMIT`` incidents (and one more, to know there are more); together they give
each incident once, with what found it, shown newest first, fifty a page.  A common
word is in most messages: taking only its newest matches keeps the search from
sorting them all.  Full text is SQLite FTS5 (``messages_fts``, an external-content
table kept by triggers) or PostgreSQL's ``messages.fts_vector`` (a stored
``to_tsvector('simple', ...)`` column) under a GIN index, both made by migration 0011.
Words are matched whole, every word of the query in the same message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import column, or_, select, text
from sqlalchemy.sql import Select
from sqlmodel import Session

from ticketing.store.models import Incident, IncidentConsumer, Message, Producer, table_of

__all__ = [
    "COUNT_LIMIT",
    "PAGE_SIZE",
    "Match",
    "SearchHit",
    "SearchPage",
    "fts5_query",
    "search",
]

PAGE_SIZE = 50
COUNT_LIMIT = 500  # incidents a search shows at most: past that, "refine the search"
MAX_QUERY = 200  # characters: a search box, not a document
_MAX_WORDS = 8
Match = Literal["number", "person_id", "npn", "producer", "text"]

_NUMBER_PREFIX = re.compile(r"\d{6}-\d{0,7}")  # at least the day: YYMMDD-
_PERSON_ID = re.compile(r"[A-Za-z0-9-]{1,32}")
_NPN = re.compile(r"\d{1,10}")
_FETCHED = COUNT_LIMIT + 1  # incidents a matcher gives at most (one more: "there are more")
_SQLITE_TEXT_MATCH = (
    "SELECT rowid FROM messages_fts WHERE messages_fts MATCH :words"
    " ORDER BY rowid DESC LIMIT :fetched"
)
# messages.fts_vector: migration 0011's stored column (not in the models: SQLite has none)
_PG_TEXT_MATCH = "messages.fts_vector @@ plainto_tsquery('simple', :words)"


@dataclass(frozen=True)
class SearchHit:
    number: str
    subject: str
    type: str
    status: str
    priority: str
    team: str
    assignee: str | None
    producer: str | None  # the producer's name
    opened_at: datetime
    matched: tuple[Match, ...]  # what found it, in the order of ``Match``


@dataclass(frozen=True)
class SearchPage:
    query: str
    hits: tuple[SearchHit, ...]
    page: int
    total: int  # at most COUNT_LIMIT
    more: bool  # there are more than ``total``
    page_size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def search(session: Session, query: str, page: int = 1) -> SearchPage:
    """The incidents ``query`` finds, newest first: page ``page`` of them."""
    query = " ".join(query.split())[:MAX_QUERY]
    page = max(1, page)
    found, cut = _candidates(session, query)
    if not found:
        return SearchPage(query, (), page, 0, False)
    rows = session.execute(_page_query(list(found), page)).all()
    hits = tuple(_hit(row, found[row.id]) for row in rows)
    more = cut or len(found) > COUNT_LIMIT
    return SearchPage(query, hits, page, min(len(found), COUNT_LIMIT), more)


def _candidates(session: Session, query: str) -> tuple[dict[int, tuple[Match, ...]], bool]:
    """The incidents each matcher finds (its newest ``COUNT_LIMIT``) with what found them,
    and whether a matcher had more: a common word must not sort every message it is in."""
    found: dict[int, tuple[Match, ...]] = {}
    cut = False
    for kind, matcher in _matchers(session, query).items():
        ids: list[int | None] = list(session.execute(matcher).scalars())
        cut = cut or len(ids) > COUNT_LIMIT
        for incident_id in dict.fromkeys(ids[:COUNT_LIMIT]):
            if incident_id is not None:
                found[incident_id] = (*found.get(incident_id, ()), kind)
    return found, cut


def fts5_query(query: str) -> str:
    """``query`` as an FTS5 expression that cannot be read as FTS5 syntax: each word a
    quoted string (quotes doubled), all of them required."""
    words = [word for word in query.split() if re.search(r"\w", word)][:_MAX_WORDS]
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def _matchers(session: Session, query: str) -> dict[Match, Select[Any]]:
    """The id queries that apply to ``query``, by what they match."""
    found: dict[Match, Select[Any] | None] = {
        "number": _by_number(query),
        "person_id": _by_person_id(query),
        "npn": _by_npn(query),
        "producer": _by_producer(query),
        "text": _by_text(query, session.get_bind().dialect.name),
    }
    return {kind: matcher for kind, matcher in found.items() if matcher is not None}


def _by_number(query: str) -> Select[Any] | None:
    if not _NUMBER_PREFIX.fullmatch(query):
        return None
    incidents = table_of(Incident)
    # a range over the unique index: LIKE would not use it on SQLite (case-insensitive)
    upper = query[:-1] + chr(ord(query[-1]) + 1)
    return (
        select(incidents.c.id)
        .where(incidents.c.number >= query, incidents.c.number < upper)
        .order_by(incidents.c.number.desc())
        .limit(_FETCHED)
    )


def _by_person_id(query: str) -> Select[Any] | None:
    if not _PERSON_ID.fullmatch(query):
        return None
    consumers = table_of(IncidentConsumer)
    return (
        select(consumers.c.incident_id)
        .where(consumers.c.person_id == query)
        .order_by(consumers.c.incident_id.desc())
        .limit(_FETCHED)
    )


def _by_npn(query: str) -> Select[Any] | None:
    if not _NPN.fullmatch(query):
        return None
    producers = table_of(Producer)
    return _of_producers(select(producers.c.id).where(producers.c.npn == query))


def _by_producer(query: str) -> Select[Any] | None:
    """Producers whose name or address holds ``query`` (any case)."""
    if len(query) < 2:
        return None
    producers = table_of(Producer)
    pattern = "%" + re.sub(r"([\\%_])", r"\\\1", query) + "%"
    named = select(producers.c.id).where(
        or_(
            producers.c.name.ilike(pattern, escape="\\"),
            producers.c.email.ilike(pattern, escape="\\"),
        )
    )
    return _of_producers(named)


def _of_producers(producer_ids: Select[Any]) -> Select[Any]:
    incidents = table_of(Incident)
    return (
        select(incidents.c.id)
        .where(incidents.c.producer_id.in_(producer_ids))
        .order_by(incidents.c.id.desc())
        .limit(_FETCHED)
    )


def _by_text(query: str, dialect: str) -> Select[Any] | None:
    words = fts5_query(query)
    if not words:
        return None
    messages = table_of(Message)
    if dialect == "sqlite":
        # FTS5 walks its matches newest (highest rowid) first and stops at the limit
        fts = text(_SQLITE_TEXT_MATCH).bindparams(words=words, fetched=_FETCHED)
        matching = messages.c.id.in_(fts.columns(column("rowid")))
    else:
        matching = text(_PG_TEXT_MATCH).bindparams(words=query)
    return (
        select(messages.c.incident_id)
        .where(matching)
        .order_by(messages.c.id.desc())
        .limit(_FETCHED)
    )


def _page_query(ids: list[int], page: int) -> Select[Any]:
    incidents, producers = table_of(Incident), table_of(Producer)
    c = incidents.c
    columns = (c.id, c.number, c.subject, c.type, c.status, c.priority, c.team, c.assignee)
    return (
        select(*columns, producers.c.name, c.opened_at)
        .select_from(incidents.outerjoin(producers, producers.c.id == c.producer_id))
        .where(c.id.in_(ids))
        .order_by(c.opened_at.desc(), c.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )


def _hit(row: Any, matched: tuple[Match, ...]) -> SearchHit:
    return SearchHit(
        number=row.number,
        subject=row.subject,
        type=row.type,
        status=row.status,
        priority=row.priority,
        team=row.team,
        assignee=row.assignee,
        producer=row.name,
        opened_at=row.opened_at,
        matched=matched,
    )
