"""The template editor (admins): the list, the editor with its live preview, save, revert, diff.

The work is ``ticketing.desk.template_editor``'s; these pages only read the request and
show the answer.  ``POST /templates/preview`` answers ``static/editor.js`` (header
``X-Fragment: preview``) with the ``results`` block of the edit page alone, which the
script swaps in; a browser without JavaScript submits the form and gets the whole page.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ticketing.console.access import actor_of, desk_of, form_of, require_role
from ticketing.console.render import environment, page
from ticketing.desk.template_editor import (
    Preview,
    TemplateEditor,
    TemplateKey,
    normal_source,
    template_key,
)
from ticketing.errors import ConfigError, NotFoundError
from ticketing.templating.validate import TemplateProblem

__all__ = ["routes"]

_KEY_FIELDS = ("kind", "part", "language", "team")
_INCIDENT = re.compile(r"^\d{6}-\d{7}$")
_EDITOR_LOCK = threading.Lock()


def _editor(request: Request) -> TemplateEditor:
    """The app's one editor (its template store takes a second to build: built once)."""
    state = request.app.state
    with _EDITOR_LOCK:
        editor: TemplateEditor | None = getattr(state, "template_editor", None)
        if editor is None:
            desk = desk_of(request)
            editor = TemplateEditor(desk.config, desk.engine, desk.guard)
            state.template_editor = editor
    return editor


def _key(request: Request, values: Mapping[str, Any]) -> TemplateKey:
    """The key ``values`` name (``NotFoundError``, a 404, for an unknown one)."""
    kind, part, language, team = (str(values.get(name, "")).strip() for name in _KEY_FIELDS)
    return template_key(desk_of(request).config, kind, part, language or "en", team or None)


def _query(key: TemplateKey) -> str:
    """``kind=…&part=…&language=…&team=…`` of ``key``, for links."""
    return urlencode(
        {"kind": key.kind, "part": key.part, "language": key.language, "team": key.team or ""}
    )


def list_templates(request: Request) -> Response:
    """Every template part, with the layer it is taken from today."""
    require_role(request, "admin")
    editor = _editor(request)
    rows = [(row, _query(row.key)) for row in editor.rows()]
    folder = editor.override_dir
    return page(request, "templates.html", title="Templates", rows=rows, override_dir=folder)


def edit_template(request: Request) -> Response:
    """The editor for one part, starting from its override (else the shipped file)."""
    require_role(request, "admin")
    editor = _editor(request)
    key = _key(request, request.query_params)
    loaded = editor.load(key)
    notice = {"saved": "Saved.", "reverted": "Override removed."}.get(
        request.query_params.get("done", ""), ""
    )
    preview = editor.preview(loaded.source, key, None)
    return _edit_page(
        request,
        editor,
        key,
        loaded.source,
        notice=notice,
        loaded=loaded,
        preview=preview,
        problems=preview.problems,
    )


def _edit_page(
    request: Request,
    editor: TemplateEditor,
    key: TemplateKey,
    source: str,
    status: int = 200,
    **values: Any,
) -> Response:
    """The edit page for ``source`` (problems, preview and verdict as ``values`` give)."""
    values.setdefault("problems", ())
    values.setdefault("loaded", None)
    values.setdefault("errors", {})
    return page(
        request,
        "template_edit.html",
        status,
        title=f"Template {key.rel}",
        key=key,
        query=_query(key),
        source=source,
        lines=_line_count(source),
        override_dir=editor.override_dir,
        has_override=editor.has_override(key),
        saved_diff=editor.diff(key),
        **values,
    )


def _line_count(source: str) -> int:
    return normal_source(source).count("\n") + 1


def _source(request: Request) -> str:
    return str(form_of(request).get("source", ""))


def preview_template(request: Request) -> Response:
    """The preview of the posted source: the fragment for the script, else the page."""
    require_role(request, "admin")
    editor = _editor(request)
    form = form_of(request)
    key, source = _key(request, form), _source(request)
    number = str(form.get("incident", "")).strip()
    preview, errors = _preview(editor, key, source, number)
    problems = preview.problems if preview else ()
    values: dict[str, Any] = {"preview": preview, "problems": problems, "errors": errors}
    if request.headers.get("x-fragment") == "preview":
        return _fragment(request, {**values, "key": key})
    status = 400 if errors else 200
    return _edit_page(request, editor, key, source, status, incident=number, **values)


def _preview(
    editor: TemplateEditor, key: TemplateKey, source: str, number: str
) -> tuple[Preview | None, dict[str, str]]:
    """The preview, or the incident field's error (a malformed or unknown number)."""
    if number and not _INCIDENT.match(number):
        return None, {"incident": "an incident number looks like 261207-0000001"}
    try:
        return editor.preview(source, key, number or None), {}
    except NotFoundError as exc:
        return None, {"incident": str(exc)}


def _fragment(request: Request, values: Mapping[str, Any]) -> HTMLResponse:
    """The edit page's ``results`` block alone (problems, preview, verdict)."""
    template = environment.get_template("template_edit.html")
    context = template.new_context({"request": request, "errors": {}, **values})
    return HTMLResponse("".join(template.blocks["results"](context)))


def save_template(request: Request) -> Response:
    """Save the override; refused (400) with each problem at its line, the source kept."""
    require_role(request, "admin")
    editor = _editor(request)
    key, source = _key(request, form_of(request)), _source(request)
    try:
        result = editor.save(source, key, actor_of(request))
    except ConfigError as exc:
        return _edit_page(request, editor, key, source, 400, errors={"source": str(exc)})
    if not result.saved:
        why = "Not saved: the template has the problems listed beside it."
        errors = {"source": why}
        return _edit_page(
            request, editor, key, source, 400, problems=result.problems, errors=errors
        )
    return RedirectResponse(f"/templates/edit?{_query(key)}&done=saved", status_code=303)


def revert_template(request: Request) -> Response:
    """Remove the override: the shipped (or inherited) version answers again."""
    require_role(request, "admin")
    editor = _editor(request)
    key = _key(request, form_of(request))
    try:
        editor.revert(key, actor_of(request))
    except ConfigError as exc:
        source = editor.load(key).source
        return _edit_page(request, editor, key, source, 400, errors={"source": str(exc)})
    return RedirectResponse(f"/templates/edit?{_query(key)}&done=reverted", status_code=303)


def diff_template(request: Request) -> Response:
    """The saved override against the shipped version (a unified diff)."""
    require_role(request, "admin")
    editor = _editor(request)
    key = _key(request, request.query_params)
    diff = editor.diff(key)
    return page(
        request,
        "template_edit.html",
        title=f"Diff of {key.rel}",
        key=key,
        query=_query(key),
        diff_only=True,
        saved_diff=diff,
    )


async def api_preview(request: Request) -> Response:
    """Render an edited template for an incident or the sample data, with the guard's verdict.
    ---
    summary: Preview a template source (admins)
    tags: [templates]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [kind, part, source]
            properties:
              kind: {type: string, example: ack_new}
              part: {type: string, enum: [subject, text, html]}
              language: {type: string, enum: [en, es], default: en}
              team: {type: string, description: "a team key; empty or absent: every team"}
              source: {type: string, description: "the template source (jinja, sandboxed)"}
              incident: {type: string, description: "an incident number; absent: sample data"}
    responses:
      "200":
        description: The rendered text (null when it does not render) and the verdict
        content:
          application/json:
            schema:
              type: object
              properties:
                about: {type: string, example: the sample data}
                text: {type: string, nullable: true}
                problems:
                  type: array
                  items:
                    type: object
                    properties:
                      line: {type: integer}
                      message: {type: string}
                      security: {type: boolean}
                findings:
                  type: object
                  additionalProperties: {type: integer}
                  description: kinds of consumer data the outbound guard finds, with counts
                verdict: {type: string}
      "400": {description: "The body is not of this shape; errors by field"}
      "403": {description: Not an admin, or no CSRF token}
      "404": {description: Unknown kind, part, language, team or incident}
    """
    require_role(request, "admin")
    body = await _json(request)
    errors = _body_errors(body)
    if errors:
        return JSONResponse({"errors": errors}, status_code=400)
    key = _key(request, body)
    editor = _editor(request)
    number = str(body.get("incident") or "").strip() or None
    preview = await run_in_threadpool(editor.preview, body["source"], key, number)
    return JSONResponse(_preview_json(preview))


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def _body_errors(body: Any) -> dict[str, str]:
    if not isinstance(body, dict):
        return {"body": "send a JSON object: kind, part, language, team, source, incident"}
    fields = (*_KEY_FIELDS, "source", "incident")
    errors = {
        name: "must be a string"
        for name in fields
        if body.get(name) is not None and not isinstance(body[name], str)
    }
    if not isinstance(body.get("source"), str):
        errors["source"] = "must be a string"
    return errors


def _preview_json(preview: Preview) -> dict[str, object]:
    return {
        "about": preview.about,
        "text": preview.text,
        "problems": [_problem_json(p) for p in preview.problems],
        "findings": preview.findings,
        "verdict": preview.verdict,
    }


def _problem_json(problem: TemplateProblem) -> dict[str, object]:
    return {"line": problem.line, "message": problem.message, "security": problem.security}


routes = [
    Route("/templates", list_templates, methods=["GET"], name="templates"),
    Route("/templates/edit", edit_template, methods=["GET"], name="template_edit"),
    Route("/templates/preview", preview_template, methods=["POST"], name="template_preview"),
    Route("/templates/save", save_template, methods=["POST"], name="template_save"),
    Route("/templates/revert", revert_template, methods=["POST"], name="template_revert"),
    Route("/templates/diff", diff_template, methods=["GET"], name="template_diff"),
    Route("/api/templates/preview", api_preview, methods=["POST"], name="api_template_preview"),
]
