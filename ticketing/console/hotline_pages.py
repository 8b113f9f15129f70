"""Hotline incidents: ``GET /hotline/new`` (the form), ``POST /hotline``, ``POST /api/hotline``.

The same function as ``ticketd incidents open`` (``ticketing/desk/hotline.py``): the
incident opens as a mailed-in one, and the producer is mailed the acknowledgement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ticketing.config.case_types import CASE_TYPES
from ticketing.console.access import actor_of, desk_of, form_of, require_role
from ticketing.console.context import ConsoleDesk
from ticketing.console.render import page
from ticketing.desk.hotline import MAX_SUMMARY, FormErrors, HotlineForm, HotlineOpened, open_hotline

__all__ = ["routes"]

_FIELDS = ("npn", "type", "person_ids", "summary")


def new_hotline(request: Request) -> Response:
    require_role(request, "caseworker")
    return _form_page(request, {}, {})


def _form_page(
    request: Request, form: Mapping[str, str], errors: Mapping[str, str], status: int = 200
) -> Response:
    """The form, with what was typed and each field's error beside it."""
    return page(
        request,
        "hotline.html",
        status,
        title="Hotline incident",
        case_types=list(CASE_TYPES.values()),
        form=form,
        errors=errors,
        max_summary=MAX_SUMMARY,
    )


def create_hotline(request: Request) -> Response:
    """Open the incident; 303 to its page, or the form again (400) with every error."""
    require_role(request, "caseworker")
    typed = {name: str(form_of(request).get(name, "")) for name in _FIELDS}
    # the field holds IDs as producers write them, one or several a line
    entries = tuple(typed["person_ids"].splitlines())
    form = HotlineForm(typed["npn"], typed["type"], entries, typed["summary"])
    result = _open(desk_of(request), form, actor_of(request))
    if isinstance(result, FormErrors):
        return _form_page(request, typed, result.errors, 400)
    return RedirectResponse(f"/incidents/{result.number}", status_code=303)


def _open(desk: ConsoleDesk, form: HotlineForm, actor: str) -> HotlineOpened | FormErrors:
    """``open_hotline`` on the console's services; the dispatcher woken for the ack."""
    actions = desk.actions
    result = open_hotline(actions, desk.guard, form, actor)
    if isinstance(result, HotlineOpened):
        desk.mail_ordered()
    return result


async def api_hotline(request: Request) -> Response:
    """Open a hotline incident; its producer is mailed the acknowledgement.
    ---
    summary: Open an incident for a producer who called the hotline
    tags: [hotline]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [npn, type, summary]
            properties:
              npn: {type: string, description: "the producer's NPN (in the roster)"}
              type: {type: string, description: "a case type key, e.g. enrollment"}
              person_ids:
                type: array
                items: {type: string}
                description: "Person IDs as producers write them ('174201, 174202' too)"
              summary: {type: string, maxLength: 10000}
    responses:
      "201":
        description: Opened
        content:
          application/json:
            schema:
              type: object
              properties:
                number: {type: string, example: 261207-0000001}
                url: {type: string, example: /incidents/261207-0000001}
                acknowledged: {type: boolean}
                removed:
                  type: object
                  additionalProperties: {type: integer}
                  description: kinds of personal data removed from the summary, with counts
      "400":
        description: A field is wrong; errors by field name
        content:
          application/json:
            schema:
              type: object
              properties:
                errors: {type: object, additionalProperties: {type: string}}
      "401": {description: Not signed in}
      "403": {description: "No CSRF token, or not staff"}
    """
    require_role(request, "caseworker")
    form = _json_form(await _json(request))
    if isinstance(form, FormErrors):
        return JSONResponse({"errors": dict(form.errors)}, status_code=400)
    desk, actor = desk_of(request), actor_of(request)
    result = await run_in_threadpool(_open, desk, form, actor)
    if isinstance(result, FormErrors):
        return JSONResponse({"errors": dict(result.errors)}, status_code=400)
    return JSONResponse(_opened(result), status_code=201)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def _json_form(body: Any) -> HotlineForm | FormErrors:
    """The JSON body as a form; ``FormErrors`` for a body of the wrong shape."""
    if not isinstance(body, dict):
        return FormErrors({"body": "send a JSON object: npn, type, person_ids, summary"})
    ids = body.get("person_ids", [])
    if isinstance(ids, str):
        ids = [ids]
    texts = {name: body.get(name, "") for name in ("npn", "type", "summary")}
    errors = {
        name: "must be a string" for name, value in texts.items() if not isinstance(value, str)
    }
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        errors["person_ids"] = "must be a list of strings"
    if errors:
        return FormErrors(errors)
    return HotlineForm(texts["npn"], texts["type"], tuple(ids), texts["summary"])


def _opened(result: HotlineOpened) -> dict[str, object]:
    return {
        "number": result.number,
        "url": f"/incidents/{result.number}",
        "acknowledged": result.acknowledged,
        "removed": dict(result.removed),
    }


routes = [
    Route("/hotline/new", new_hotline, methods=["GET"], name="hotline_form"),
    Route("/hotline", create_hotline, methods=["POST"], name="hotline_open"),
    Route("/api/hotline", api_hotline, methods=["POST"], name="api_hotline"),
]
