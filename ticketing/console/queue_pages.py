"""The queue and the search: pages (``/queue``, ``/search``) and their JSON (``/api/...``).

Both read only; what they show comes from ``ticketing.desk.queue`` and ``search``.
A filter that is not one of the known values is refused with 400 and said next to its
field (the API answers ``{"error", "fields"}``).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import asdict
from datetime import datetime
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ticketing.config import Config
from ticketing.config.case_types import CASE_TYPES
from ticketing.console.access import desk_of, require_role
from ticketing.console.render import page
from ticketing.desk.accounts import Account
from ticketing.desk.queue import (
    ACTIVE,
    PRIORITIES,
    STATUSES,
    UNASSIGNED,
    QueueFilter,
    QueuePage,
    queue_page,
)
from ticketing.desk.search import MAX_QUERY, SearchPage, search
from ticketing.store.db import transaction
from ticketing.store.models import utcnow

__all__ = ["routes"]

RISK_LABELS = {"breached": "Breached", "at_risk": "At risk", "ok": "On time", "paused": "Paused"}
MATCH_LABELS = {
    "number": "incident number",
    "person_id": "Person ID",
    "npn": "NPN",
    "producer": "producer",
    "text": "message text",
}
Errors = dict[str, str]


def teams_for(config: Config, user: Account) -> list[tuple[str, str]]:
    """The teams (key, name) a queue can show, the person's own team first."""
    teams = [(key, team.name) for key, team in config.teams.items()]
    return sorted(teams, key=lambda team: team[0] != user.team)


def _choice(params: QueryParams, name: str, allowed: Container[str], errors: Errors) -> str | None:
    """The parameter ``name`` if empty (``None``) or one of ``allowed``; else an error."""
    value = params.get(name, "").strip()
    if not value:
        return None
    if value not in allowed:
        errors[name] = f"not a known {name}: choose one from the list"
    return value


def _page_number(params: QueryParams, errors: Errors) -> int:
    value = params.get("page", "1").strip() or "1"
    if not value.isdigit() or not 1 <= int(value) <= 100_000:
        errors["page"] = "a page is a whole number from 1"
        return 1
    return int(value)


def _queue_filter(request: Request, user: Account) -> tuple[QueueFilter, Errors]:
    """The queue the request asks for, and what is wrong with its parameters."""
    params, errors = request.query_params, Errors()
    teams = dict(teams_for(desk_of(request).config, user))
    team = _choice(params, "team", teams, errors) or next(iter(teams), "")
    status = _choice(params, "status", STATUSES, errors)
    assignee = params.get("assignee", "").strip() or None
    if assignee is not None and len(assignee) > 254:
        errors["assignee"] = "an assignee is an email address (254 characters at most)"
    wanted = QueueFilter(
        team=team,
        statuses=(status,) if status else ACTIVE,
        type=_choice(params, "type", CASE_TYPES, errors),
        priority=_choice(params, "priority", PRIORITIES, errors),
        assignee=assignee,
        page=_page_number(params, errors),
    )
    return wanted, errors


def _load_queue(request: Request, wanted: QueueFilter) -> QueuePage:
    with transaction(desk_of(request).engine, readonly=True) as session:
        return queue_page(session, wanted, utcnow())


def _page_link(request: Request, number: int, last: int) -> str | None:
    """The URL of page ``number`` with the same filters; ``None`` past either end."""
    if not 1 <= number <= last:
        return None
    return f"{request.url.path}?{request.url.include_query_params(page=number).query}"


def _assignees(config: Config, team: str) -> list[tuple[str, str]]:
    """The staff directory's people of ``team`` (address, name), for the assignee filter."""
    return [(p.address, p.name) for p in config.staff.people if p.team == team]


def queue(request: Request) -> Response:
    """A team's incidents, what is at risk first, with the filters as a GET form."""
    user = require_role(request, "caseworker")
    wanted, errors = _queue_filter(request, user)
    found = QueuePage((), wanted.page, 0) if errors else _load_queue(request, wanted)
    config = desk_of(request).config
    return page(
        request,
        "queue.html",
        400 if errors else 200,
        title="Queue",
        errors=errors,
        wanted=wanted,
        chosen=request.query_params,
        found=found,
        teams=teams_for(config, user),
        statuses=STATUSES,
        types=CASE_TYPES,
        priorities=PRIORITIES,
        assignees=_assignees(config, wanted.team),
        unassigned=UNASSIGNED,
        risk_labels=RISK_LABELS,
        previous=_page_link(request, found.page - 1, found.pages),
        next=_page_link(request, found.page + 1, found.pages),
    )


def _search_request(request: Request) -> tuple[str, int, Errors]:
    errors = Errors()
    query = request.query_params.get("q", "").strip()
    if len(query) > MAX_QUERY:
        errors["q"] = f"a search is {MAX_QUERY} characters at most"
    return query, _page_number(request.query_params, errors), errors


def _run_search(request: Request, query: str, number: int) -> SearchPage:
    with transaction(desk_of(request).engine, readonly=True) as session:
        return search(session, query, number)


def search_page(request: Request) -> Response:
    """Incidents by number, Person ID, NPN, producer or the words of their mail."""
    require_role(request, "caseworker")
    query, number, errors = _search_request(request)
    empty = SearchPage(query, (), number, 0, False)
    found = empty if errors or not query else _run_search(request, query, number)
    return page(
        request,
        "search.html",
        400 if errors else 200,
        title="Search",
        errors=errors,
        query=query,
        found=found,
        match_labels=MATCH_LABELS,
        previous=_page_link(request, found.page - 1, found.pages),
        next=_page_link(request, found.page + 1, found.pages) if found.hits else None,
    )


def _plain(value: Any) -> Any:
    """A dataclass's values as JSON takes them (datetimes as ISO 8601, UTC)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _refused(errors: Errors) -> JSONResponse:
    return JSONResponse({"error": "invalid parameters", "fields": errors}, status_code=400)


def api_queue(request: Request) -> Response:
    """One page of a team's queue, what is at risk first.
    ---
    summary: A team's queue
    parameters:
      - {name: team, in: query, schema: {type: string}, description: "a key of [teams]; default: your team"}
      - {name: status, in: query, schema: {type: string, enum: [new, open, awaiting_producer, resolved, closed]}, description: "default: new, open and awaiting_producer"}
      - {name: type, in: query, schema: {type: string}, description: "an escalation type key"}
      - {name: priority, in: query, schema: {type: string, enum: [high, normal]}}
      - {name: assignee, in: query, schema: {type: string}, description: "an address, or 'none' for unassigned"}
      - {name: page, in: query, schema: {type: integer, minimum: 1}}
    responses:
      200:
        description: "{team, page, pages, total, rows: [{number, subject, type, status, priority, team, assignee, producer, opened_at, sla_due_at, risk}]}; risk is breached, at_risk, ok or paused"
      400: {description: "{error, fields}: a parameter that is not valid"}
    """  # noqa: E501
    user = require_role(request, "caseworker")
    wanted, errors = _queue_filter(request, user)
    if errors:
        return _refused(errors)
    found = _load_queue(request, wanted)
    rows = [_plain(asdict(row)) for row in found.rows]
    return JSONResponse(
        {"team": wanted.team, "page": found.page, "pages": found.pages, "total": found.total}
        | {"rows": rows}
    )


def api_search(request: Request) -> Response:
    """Incidents by number (or its beginning), Person ID, NPN, producer name or address,
    or the words of their stored (redacted) mail; newest first, fifty a page.
    ---
    summary: Search incidents
    parameters:
      - {name: q, in: query, required: true, schema: {type: string, maxLength: 200}}
      - {name: page, in: query, schema: {type: integer, minimum: 1}}
    responses:
      200:
        description: "{query, page, pages, total, more, hits: [{number, subject, type, status, priority, team, assignee, producer, opened_at, matched}]}; total is counted up to 500 (more: there are more; refine the search)"
      400: {description: "{error, fields}: a parameter that is not valid"}
    """  # noqa: E501
    require_role(request, "caseworker")
    query, number, errors = _search_request(request)
    if errors:
        return _refused(errors)
    found = _run_search(request, query, number)
    hits = [_plain(asdict(hit)) for hit in found.hits]
    return JSONResponse(
        {"query": found.query, "page": found.page, "pages": found.pages, "total": found.total}
        | {"more": found.more, "hits": hits}
    )


routes: list[BaseRoute] = [
    Route("/queue", queue, methods=["GET"], name="queue"),
    Route("/search", search_page, methods=["GET"], name="search"),
    Route("/api/queue", api_queue, methods=["GET"], name="api_queue"),
    Route("/api/search", api_search, methods=["GET"], name="api_search"),
]
