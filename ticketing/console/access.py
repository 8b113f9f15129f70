"""Who is asking, what they may do, and the form they sent.

The middleware (``ticketing.console.app``) has signed the request in and, for a
POST, parsed its form and checked its CSRF token before any endpoint runs; these
read what it left on ``request.state``.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from ticketing.console.context import ConsoleDesk
from ticketing.desk.accounts import Account, Role
from ticketing.desk.sign_in import SignedIn

__all__ = ["actor_of", "csrf_of", "desk_of", "form_of", "require_role", "signed_in", "user_of"]


def desk_of(request: Request) -> ConsoleDesk:
    desk: ConsoleDesk = request.app.state.desk
    return desk


def signed_in(request: Request) -> SignedIn | None:
    """The request's session, if it has one (the sign-in page is open to everyone)."""
    found: SignedIn | None = getattr(request.state, "signed_in", None)
    return found


def user_of(request: Request) -> Account:
    """The signed-in person (every page but the sign-in page has one)."""
    found = signed_in(request)
    if found is None:
        raise HTTPException(401, "sign in first")
    return found.account


def require_role(request: Request, role: Role) -> Account:
    """The signed-in person, if their role is ``role`` or above; else 403."""
    account = user_of(request)
    if not account.may(role):
        raise HTTPException(403, f"this needs the {role} role; you are a {account.role}")
    return account


def actor_of(request: Request) -> str:
    """The audit trail's name for whoever acts: ``Casey Caseworker <casey@...>``."""
    return f"console:{user_of(request).actor}"


def csrf_of(request: Request) -> str:
    found = signed_in(request)
    return found.csrf if found is not None else ""


def form_of(request: Request) -> FormData:
    """The POSTed form, parsed (and its CSRF token checked) by the middleware."""
    form: FormData = getattr(request.state, "form", None) or FormData()
    return form
