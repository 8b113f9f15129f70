"""The console's Starlette app: its routes, and the one gate every request passes.

``ConsoleGate`` (a middleware) runs before any endpoint:

1. a body larger than ``_MAX_BODY`` is refused (413) as soon as it is past it
   (``body_limit.BodyLimit``, before the gate: a chunked body declares no length);
2. outside ``/login`` and ``/static``, the request must belong to a live session
   (``ticketing.desk.sign_in``) — or, in proxy mode, carry the SSO proxy's header
   from one of ``[web] trusted_proxies`` — else it is sent to sign in (an API
   call gets 401);
3. a POST's form is parsed here and its CSRF token (the ``csrf`` field or the
   ``X-CSRF-Token`` header) must be the session's, else 403: endpoints are plain
   functions that read the parsed form (``access.form_of``);
4. every answer gets the security headers (a CSP without inline scripts, no
   framing, no sniffing) and is never cached.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from ticketing.console import (
    api,
    hotline_pages,
    incident_pages,
    login_pages,
    queue_pages,
    report_pages,
    template_pages,
    unverified_pages,
    users_pages,
)
from ticketing.console.body_limit import BodyLimit
from ticketing.console.context import ConsoleDesk
from ticketing.console.render import page
from ticketing.console.session_cookie import open_session, set_session_cookie
from ticketing.errors import NotFoundError, StorageError

__all__ = ["build_console"]

_MAX_BODY = 2 * 1024 * 1024  # a template or a reply is kilobytes; nothing here uploads files
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# The page modules, each with its ``routes``; a new area of the console is one line here.
_PAGES = (
    login_pages,
    users_pages,
    queue_pages,
    hotline_pages,
    unverified_pages,
    incident_pages,
    report_pages,
    template_pages,
    api,
)

Next = Callable[[Request], Awaitable[Response]]


def _is_public(path: str) -> bool:
    return path == "/login" or path.startswith("/static/")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _unauthenticated(request: Request) -> Response:
    if _is_api(request):
        return JSONResponse({"error": "sign in first"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={_quoted(target)}", status_code=303)


def _quoted(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="")


class ConsoleGate(BaseHTTPMiddleware):
    """Sign-in, CSRF and the security headers, for every request (see the module)."""

    async def dispatch(self, request: Request, call_next: Next) -> Response:
        refused = await self._refusal(request)
        response = refused or await call_next(request)
        token = getattr(request.state, "new_session", None)
        if token:
            set_session_cookie(response, request, token)
        response.headers.update(_HEADERS)
        return response

    async def _refusal(self, request: Request) -> Response | None:
        if _is_public(request.url.path):
            return await self._parse_form(request)
        desk: ConsoleDesk = request.app.state.desk
        opened = await run_in_threadpool(open_session, desk, request)
        if opened is None:
            return _unauthenticated(request)
        request.state.signed_in = opened.signed_in
        request.state.new_session = opened.new_token
        refused = await self._parse_form(request)
        if refused is None and request.method in _UNSAFE and not self._csrf_ok(request):
            return _forbidden(request, "the form's CSRF token is missing or stale: reload the page")
        return refused

    async def _parse_form(self, request: Request) -> Response | None:
        if request.method not in _UNSAFE:
            return None
        if "form" not in request.headers.get("content-type", ""):
            return None
        try:
            request.state.form = await request.form(max_files=0, max_fields=200)
        except Exception:  # noqa: BLE001  python-multipart's errors: the form is unreadable
            return Response("the form cannot be read", status_code=400)
        return None

    def _csrf_ok(self, request: Request) -> bool:
        expected = request.state.signed_in.csrf
        form = getattr(request.state, "form", None)
        given = request.headers.get("x-csrf-token") or (form.get("csrf") if form else None)
        return isinstance(given, str) and secrets.compare_digest(given, expected)


def _forbidden(request: Request, why: str) -> Response:
    if _is_api(request):
        return JSONResponse({"error": why}, status_code=403)
    return Response(why, status_code=403, media_type="text/plain")


def _error_page(request: Request, status: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"error": message}, status_code=status)
    titles = {400: "Bad request", 401: "Sign in", 403: "Not allowed", 404: "Not found"}
    title = titles.get(status, "Something went wrong")
    return page(request, "error.html", status, title=title, message=message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 401:
        return _unauthenticated(request)
    return _error_page(request, exc.status_code, str(exc.detail))


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error_page(request, 404, str(exc))


async def _storage(request: Request, exc: Exception) -> Response:
    return _error_page(request, 503, "the database is not answering; try again in a moment")


def _routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Mount("/static", StaticFiles(packages=[("ticketing.console", "static")]), name="static")
    ]
    for module in _PAGES:
        routes.extend(module.routes)
    return routes


def build_console(desk: ConsoleDesk) -> Starlette:
    """The console's app on ``desk``'s services."""
    app = Starlette(
        routes=_routes(),
        middleware=[Middleware(BodyLimit, limit=_MAX_BODY), Middleware(ConsoleGate)],
        exception_handlers={
            HTTPException: _http_error,
            NotFoundError: _not_found,
            StorageError: _storage,
        },
    )
    app.state.desk = desk
    return app
