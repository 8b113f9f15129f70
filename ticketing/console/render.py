"""Pages: jinja2 templates from ``ticketing/console/pages``, autoescaped, in one layout.

Every page gets ``request``, ``user``, ``csrf``, ``desk``, ``nav`` (the links the
person's role may follow) and the ``desk_time`` filter (the desk's timezone, as
the CLI prints times).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ticketing.console.access import csrf_of, desk_of, signed_in

__all__ = ["NavLink", "environment", "not_found", "page"]

NavLink = tuple[str, str, str]  # path, label, the role it needs

_NAV: tuple[NavLink, ...] = (
    ("/queue", "Queue", "caseworker"),
    ("/unverified", "Unverified mail", "caseworker"),
    ("/hotline/new", "Hotline incident", "caseworker"),
    ("/reports", "Reports", "lead"),
    ("/templates", "Templates", "admin"),
    ("/users", "People", "admin"),
    ("/api", "API", "caseworker"),
)


@pass_context
def _desk_time(context: Context, value: datetime | None) -> str:
    """``{{ incident.sla_due_at | desk_time }}``: ``2026-12-07 14:05 EST``, ``-`` for none."""
    if value is None:
        return "-"
    return value.astimezone(context["desk"].zone).strftime("%Y-%m-%d %H:%M %Z")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("ticketing.console", "pages"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["desk_time"] = _desk_time
    return env


environment = _environment()


def _nav(request: Request) -> list[tuple[str, str]]:
    found = signed_in(request)
    if found is None:
        return []
    return [(path, label) for path, label, role in _NAV if found.account.may(role)]  # type: ignore[arg-type]


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered in the layout for whoever asks."""
    desk = desk_of(request)
    found = signed_in(request)
    values = {
        "request": request,
        "user": found.account if found else None,
        "csrf": csrf_of(request),
        "desk": desk,
        "nav": _nav(request),
        "errors": {},
        **context,
    }
    html = environment.get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code)


def not_found(request: Request, what: str) -> HTMLResponse:
    """The 404 page, saying what was not found."""
    return page(request, "error.html", 404, title="Not found", message=what)
