"""People (admins): the console accounts, adding one, disabling one, a new password.

The same functions as ``ticketd users``; the staff directory still decides who
may have an account and with which name, team and role.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ticketing.console.access import actor_of, desk_of, form_of, require_role
from ticketing.console.render import page
from ticketing.desk.accounts import (
    ROLES,
    Role,
    add_account,
    disable_account,
    list_accounts,
    set_password,
)
from ticketing.errors import AccountError, NotFoundError
from ticketing.store.db import transaction

__all__ = ["routes"]


def _listing(request: Request, status: int = 200, **values: object) -> Response:
    with transaction(desk_of(request).engine, readonly=True) as session:
        accounts = list_accounts(session)
    values.setdefault("form", {})
    return page(request, "users.html", status, accounts=accounts, roles=ROLES, **values)


def users(request: Request) -> Response:
    require_role(request, "admin")
    return _listing(request)


def _role(text: str) -> Role | None:
    for role in ROLES:
        if role == text:
            return role
    return None


def _text(request: Request, name: str) -> str:
    return str(form_of(request).get(name, "")).strip()


def add_user(request: Request) -> Response:
    require_role(request, "admin")
    desk, form = desk_of(request), form_of(request)
    role = _text(request, "role")
    try:
        with transaction(desk.engine) as session:
            add_account(
                session,
                desk.config.staff,
                _text(request, "address"),
                actor=actor_of(request),
                password=str(form.get("password", "")) or None,
                name=_text(request, "name") or None,
                role=_role(role),
                team=_text(request, "team") or None,
            )
    except AccountError as exc:
        fields = {k: str(form.get(k, "")) for k in ("address", "name", "role", "team")}
        return _listing(request, 400, errors={"address": str(exc)}, form=fields)
    return RedirectResponse("/users", status_code=303)


def change_user(request: Request) -> Response:
    """Disable, enable, or set a new password (``action``) for ``address``."""
    require_role(request, "admin")
    desk, address, action = desk_of(request), _text(request, "address"), _text(request, "action")
    try:
        with transaction(desk.engine) as session:
            if action == "password":
                password = str(form_of(request).get("password", ""))
                set_password(session, address, password, actor=actor_of(request))
            else:
                disabled = action != "enable"
                disable_account(session, address, actor=actor_of(request), disabled=disabled)
    except (AccountError, NotFoundError) as exc:
        return _listing(request, 400, errors={address: str(exc)})
    return RedirectResponse("/users", status_code=303)


routes = [
    Route("/users", users, methods=["GET"], name="users"),
    Route("/users", add_user, methods=["POST"], name="add_user"),
    Route("/users/change", change_user, methods=["POST"], name="change_user"),
]
