"""The JSON API's description: ``/api/openapi.json`` and a page that lists it (``/api``).

Each API endpoint lives beside its page and documents itself: its docstring ends
with an OpenAPI operation in YAML after a ``---`` line, which Starlette's
``SchemaGenerator`` collects here.  The API takes the same session as the pages
(a POST sends the session's CSRF token as ``X-CSRF-Token``), so a script signs in
through ``POST /login`` or, in production, through the SSO proxy.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.schemas import SchemaGenerator

from ticketing.console.access import require_role, user_of
from ticketing.console.render import page

__all__ = ["routes"]

_INFO = {
    "openapi": "3.0.3",
    "info": {
        "title": "ticketd desk console API",
        "version": "1",
        "description": (
            "What the console's pages show and do, as JSON. Authentication: the console's "
            "session cookie (sign in at /login); POST, PUT and DELETE requests send the "
            "session's CSRF token (the csrf-token meta tag of any page) as X-CSRF-Token."
        ),
    },
    "components": {
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "ticketd_session"}
        }
    },
    "security": [{"session": []}],
}
_SCHEMAS = SchemaGenerator(_INFO)


def openapi_schema(request: Request) -> dict[str, Any]:
    """The OpenAPI document of the app's ``/api/`` endpoints."""
    # Only the API's routes: Starlette reads a whole docstring as YAML when it has no
    # "---", and the pages' docstrings are prose.
    api: list[BaseRoute] = [
        r for r in request.app.routes if isinstance(r, Route) and r.path.startswith("/api/")
    ]
    schema = _SCHEMAS.get_schema(routes=api)
    schema["paths"] = {
        path: {method: _operation(method, op) for method, op in methods.items()}
        for path, methods in sorted(schema.get("paths", {}).items())
    }
    return schema


def _operation(method: str, operation: dict[str, Any]) -> dict[str, Any]:
    """The operation of a docstring, written flat or under its method (``get:``)."""
    inner = operation.get(method)
    return inner if len(operation) == 1 and isinstance(inner, dict) else operation


def openapi(request: Request) -> Response:
    user_of(request)
    return JSONResponse(openapi_schema(request))


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (method.upper(), path, str(operation.get("summary", "")))
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]


def api_page(request: Request) -> Response:
    """The API's endpoints, for a person deciding whether to script against it."""
    require_role(request, "caseworker")
    operations = _operations(openapi_schema(request))
    return page(request, "api.html", title="JSON API", operations=operations)


def me(request: Request) -> Response:
    """Who the session belongs to.
    ---
    summary: The signed-in person
    responses:
      "200": {description: "address, name, role, team"}
      "401": {description: not signed in}
    """
    account = user_of(request)
    body = {"address": account.address, "name": account.name, "role": account.role}
    return JSONResponse({**body, "team": account.team})


routes = [
    Route("/api", api_page, methods=["GET"], name="api"),
    Route("/api/openapi.json", openapi, methods=["GET"], name="openapi"),
    Route("/api/me", me, methods=["GET"], name="api_me"),
]
