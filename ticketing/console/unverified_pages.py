"""The queue of unverified mail: ``GET /unverified``, ``POST /unverified/{id}/attach``,
``GET /api/unverified``.

Mail whose sender could not be authenticated, and new incidents held back by a
sender's hourly limit, wait here attached to nothing (``incidents/unverified.py``).
A caseworker who knows a message is genuine attaches it to an incident: the same
action as ``ticketd incidents attach`` (``desk/actions.attach``), audited with
their name; nothing is mailed.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ticketing.console.access import actor_of, desk_of, form_of, require_role
from ticketing.console.render import page
from ticketing.desk import actions
from ticketing.errors import InvalidTransitionError, NotFoundError
from ticketing.incidents.numbering import INCIDENT_NUMBER
from ticketing.incidents.unverified import unverified_messages
from ticketing.store.db import transaction
from ticketing.store.models import Message

__all__ = ["routes"]

_LIMIT = 200  # the queue is worked down, not browsed: the newest this many
# Why a message waits (its disposition), in words.
WHY = {
    "unverified": "the sender could not be authenticated",
    "rate_limited": "the sender opened more incidents this hour than allowed",
}


def _waiting(request: Request) -> list[Message]:
    with transaction(desk_of(request).engine, readonly=True) as session:
        return unverified_messages(session, _LIMIT)


def _queue_page(
    request: Request, errors: Mapping[str, str] | None = None, status: int = 200, **values: object
) -> Response:
    """The queue; ``errors`` by message id (as text), shown beside that message's form."""
    return page(
        request,
        "unverified.html",
        status,
        title="Unverified mail",
        messages=_waiting(request),
        why=WHY,
        errors=errors or {},
        limit=_LIMIT,
        **values,
    )


def unverified(request: Request) -> Response:
    require_role(request, "caseworker")
    attached, number = request.query_params.get("attached", ""), request.query_params.get("to", "")
    done = attached.isdigit() and INCIDENT_NUMBER.fullmatch(number) is not None
    return _queue_page(request, done=(attached, number) if done else None, typed={})


def attach(request: Request) -> Response:
    """Attach the message to the incident numbered in the form; back to the queue (303)
    saying so, or the queue again (400) with the error beside the message."""
    require_role(request, "caseworker")
    message_id: int = request.path_params["message_id"]
    number = str(form_of(request).get("number", "")).strip()
    if not number:
        return _refused(request, message_id, number, "give the number of an incident")
    desk = desk_of(request)
    try:
        desk_actions = desk.actions
        attached_to = actions.attach(desk_actions, message_id, number, actor_of(request))
    except (NotFoundError, InvalidTransitionError) as exc:
        return _refused(request, message_id, number, str(exc))
    return RedirectResponse(f"/unverified?attached={message_id}&to={attached_to}", status_code=303)


def _refused(request: Request, message_id: int, number: str, why: str) -> Response:
    """The queue again (400), ``why`` beside the message's form with what was typed."""
    key = str(message_id)
    return _queue_page(request, {key: why}, 400, done=None, typed={key: number})


def api_unverified(request: Request) -> Response:
    """The mail waiting for staff, newest first (no text: open it on its page).
    ---
    summary: The queue of unverified mail
    tags: [unverified]
    responses:
      "200":
        description: The waiting messages, newest first
        content:
          application/json:
            schema:
              type: array
              items:
                type: object
                properties:
                  id: {type: integer}
                  received_at: {type: string, format: date-time}
                  sender: {type: string}
                  why: {type: string, enum: [unverified, rate_limited]}
                  subject: {type: string}
    """
    require_role(request, "caseworker")
    return JSONResponse([_message_dict(m) for m in _waiting(request)])


def _message_dict(message: Message) -> dict[str, object]:
    return {
        "id": message.id,
        "received_at": message.received_at.isoformat(),
        "sender": message.sender,
        "why": message.disposition,
        "subject": message.subject,
    }


routes = [
    Route("/unverified", unverified, methods=["GET"], name="unverified"),
    Route(
        "/unverified/{message_id:int}/attach", attach, methods=["POST"], name="unverified_attach"
    ),
    Route("/api/unverified", api_unverified, methods=["GET"], name="api_unverified"),
]
