"""The incident page, its actions, and the incident in JSON.

``GET /incidents/{number}`` shows the incident, its SLA clocks, the conversation in
order (producer mail, our mail and why any was not sent, desk copies, caseworkers'
replies, notes), what the guard removed, and the audit history, with the forms
below.  Each action is a POST to ``/incidents/{number}/<action>`` and calls the
desk's one way of doing it (``ticketing.desk.actions``, ``ticketing.desk.notes``),
audited with the person's name.

Who may do what:

- a **caseworker** may add a note, reply to the producer, resolve, reopen and close
  an incident, and assign one to themselves;
- a **lead** (or admin) also assigns to anyone of the staff directory and merges
  incidents (a merge closes an incident for good, and handing out work is the
  lead's);
- anyone else gets 403; an unknown incident is 404.

The reply form offers the canned replies of the incident's team in its producer's
language (``ticketing.desk.canned``); ``GET /incidents/{number}?canned=NAME`` shows the
page with the reply box holding that text, to edit and send like any reply.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pii_guard.labels import finding_labels
from ticketing.config.case_types import CASE_TYPES
from ticketing.console.access import actor_of, desk_of, form_of, require_role
from ticketing.console.context import ConsoleDesk
from ticketing.console.render import page
from ticketing.desk import actions
from ticketing.desk.actions import Desk
from ticketing.desk.canned import CannedReply, canned_kind, canned_replies, render_canned
from ticketing.desk.notes import add_note, reply_to_producer, text_problem
from ticketing.errors import InvalidTransitionError, NotFoundError, ReplyError
from ticketing.incidents.records import IncidentDetail, get_incident, incident_detail
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, Message, OutboxMessage

__all__ = ["routes"]

# What a stored message is, by direction and disposition, in the words of the page.
_MESSAGE_LABELS = {
    "internal_note": "Note",
    "desk_reply": "Caseworker's reply",
    "staff_reply": "Caseworker's reply (by mail)",
    "desk_reply_withheld": "Caseworker's reply, NOT sent: it held personal data",
    "desk_reply_empty": "Caseworker's reply with no text of its own (not sent)",
    "attached_by_staff": "Mail attached by staff",
}
_MAIL_LABELS = {"desk_copy": "Desk copy", "desk_reply": "Our reply (a caseworker's words)"}
_NOT_SENT = ("auto_reply_suppressed", "outbound_blocked_pii")
_STATE_ACTIONS = {"resolve": "resolved", **actions.MOVES}


@dataclass(frozen=True)
class Entry:
    """One item of the conversation as the page shows it."""

    when: datetime
    label: str
    who: str
    text: str = ""
    note: str = ""
    css: str = ""


# --- the page -------------------------------------------------------------------------------


def incident(request: Request) -> Response:
    """The incident page; ``?canned=NAME`` pre-fills the reply box with that canned reply
    (an unknown name: the page with the error beside the picker, 400)."""
    require_role(request, "caseworker")
    number, name = request.path_params["number"], request.query_params.get("canned", "")
    if not name:
        return _show(request, number)
    try:
        canned_kind(name)
    except NotFoundError as exc:
        return _show(request, number, 400, {"canned": str(exc)})
    desk = desk_of(request)
    try:  # an unknown incident: NotFoundError, the 404 page
        text = render_canned(desk.templates, desk.engine, number, name).text
    except ReplyError as exc:  # no template answers for this team, or none renders
        return _show(request, number, 400, {"canned": f"cannot use it here: {exc}"})
    return _show(request, number, form={"reply": text, "canned": name})


def _show(
    request: Request,
    number: str,
    status: int = 200,
    errors: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
) -> Response:
    desk = desk_of(request)
    with transaction(desk.engine, readonly=True) as session:
        detail = incident_detail(session, number)  # NotFoundError: the app's 404 page
    return page(
        request,
        "incident.html",
        status,
        title=f"Incident {detail.incident.number}",
        detail=detail,
        incident=detail.incident,
        conversation=conversation(detail),
        removed=removed(detail.messages),
        people=_assignable(request, desk),
        may_lead=_is_lead(request),
        types=CASE_TYPES,
        canned=_canned(desk, detail.incident.number),
        errors=dict(errors or {}),
        form=dict(form or {}),
    )


def _canned(desk: ConsoleDesk, number: str) -> list[CannedReply]:
    """The canned replies the picker offers for this incident (its team, its producer's
    language), from the templates the daemon uses now."""
    return canned_replies(desk.templates, desk.engine, number)


def _is_lead(request: Request) -> bool:
    """Whether the person may do what needs a lead (the page shows those forms only then)."""
    try:
        require_role(request, "lead")
    except HTTPException:
        return False
    return True


def _assignable(request: Request, desk: ConsoleDesk) -> list[tuple[str, str]]:
    """(address, name) of whom the person may assign to: anyone of the directory for a
    lead, themselves for a caseworker."""
    me = require_role(request, "caseworker")
    people = [(p.address, p.name) for p in desk.config.staff.people]
    if _is_lead(request):
        return people
    return [(address, name) for address, name in people if address == me.address] or [
        (me.address, me.name)
    ]


def conversation(detail: IncidentDetail) -> list[Entry]:
    """Messages, our mail and what was not sent, in the order they happened."""
    entries = [_message_entry(m) for m in detail.messages]
    entries += [_mail_entry(r) for r in detail.replies]
    entries += [_not_sent_entry(e) for e in detail.events if e.kind in _NOT_SENT]
    return sorted(entries, key=lambda e: e.when)


def _message_entry(m: Message) -> Entry:
    if m.direction == "in":
        label = "Producer's mail" if m.kind == "normal" else f"Mail ({m.kind})"
        label = _MESSAGE_LABELS.get(m.disposition, label)
    else:
        label = _MESSAGE_LABELS.get(m.disposition, f"Sent by staff ({m.disposition})")
    note = f"personal data removed: {_counts(m.pii_findings)}" if m.pii_findings else ""
    css = "note" if m.disposition == "internal_note" else m.direction
    return Entry(m.received_at, label, m.sender, m.text, note, css)


def _mail_entry(r: OutboxMessage) -> Entry:
    label = _MAIL_LABELS.get(r.kind, f"Our mail: {r.kind}")
    note = r.status if r.status != "sent" else "sent"
    if r.status == "withheld":
        note = f"withheld: personal data found ({_counts(r.pii_findings or {})})"
    elif r.reason:
        note = f"{r.status} ({r.reason})"
    return Entry(r.created_at, label, f"to {r.to_address}", note=note, css="mail")


def _not_sent_entry(e: AuditEvent) -> Entry:
    if e.kind == "outbound_blocked_pii":
        found = _counts(e.detail.get("finding_counts") or {})
        why = f"{e.detail.get('kind')} withheld: the composed mail held personal data ({found})"
    else:
        why = f"{e.detail.get('reply_kind')} not sent: rule {e.detail.get('rule')}"
    return Entry(e.created_at, "Not sent", "ticketd", note=why, css="withheld")


def removed(messages: list[Message]) -> list[tuple[str, str, int]]:
    """What the guard removed from this incident's stored text: (kind, words, count)."""
    total: Counter[str] = Counter()
    for m in messages:
        total.update(m.pii_findings)
    return [(kind, finding_labels([kind], "en")[0], n) for kind, n in sorted(total.items())]


def _counts(counts: Mapping[str, Any]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items())) or "none"


# --- the actions ----------------------------------------------------------------------------


def _desk(request: Request) -> Desk:
    return desk_of(request).actions


def _field(request: Request, name: str) -> str:
    value = form_of(request).get(name, "")
    return value if isinstance(value, str) else ""


def _done(request: Request, number: str, *, mailed: bool = False) -> Response:
    if mailed:
        desk_of(request).mail_ordered()  # wake the dispatcher: the mail is committed
    return RedirectResponse(f"/incidents/{number}", status_code=303)


def assign(request: Request) -> Response:
    """Assign to a person of the directory: a caseworker themselves, a lead anyone."""
    number, who = request.path_params["number"], _field(request, "assignee")
    me = require_role(request, "caseworker")
    if who.strip().lower() != me.address:
        require_role(request, "lead")
    desk = _desk(request)
    _exists(desk, number)
    try:
        actions.assign(desk, number, who, actor_of(request), _field(request, "why"))
    except NotFoundError as exc:  # not staff: the incident was there a moment ago
        return _show(request, number, 400, {"assignee": str(exc)})
    return _done(request, number, mailed=True)


def change_state(request: Request) -> Response:
    """Resolve (the producer is mailed), reopen or close, with the reason given."""
    require_role(request, "caseworker")
    number, verb = request.path_params["number"], request.path_params["action"]
    if verb not in _STATE_ACTIONS:
        raise HTTPException(404, f"no action {verb!r} on an incident")
    reason = _field(request, "reason").strip() or f"{verb} in the console"
    desk = _desk(request)
    try:
        if verb == "resolve":
            actions.resolve(desk, number, actor_of(request), reason)
        else:
            actions.move(desk, number, _STATE_ACTIONS[verb], actor_of(request), reason)
    except InvalidTransitionError as exc:
        return _show(request, number, 400, {"status": str(exc)})
    return _done(request, number, mailed=verb == "resolve")


def merge(request: Request) -> Response:
    """Merge this incident into another (leads): it closes, and its mail follows."""
    require_role(request, "lead")
    number, into = request.path_params["number"], _field(request, "into").strip()
    desk = _desk(request)
    _exists(desk, number)
    try:
        target = actions.merge(desk, number, into, actor_of(request))
    except (NotFoundError, InvalidTransitionError) as exc:
        return _show(request, number, 400, {"into": str(exc)}, {"into": into})
    return _done(request, target)


def note(request: Request) -> Response:
    """Add a note: stored with consumer data redacted, mailed to no one."""
    require_role(request, "caseworker")
    number, text = request.path_params["number"], _field(request, "text")
    problem = text_problem(text)
    if problem is not None:
        _exists(_desk(request), number)
        return _show(request, number, 400, {"note": problem}, {"note": text})
    add_note(_desk(request), desk_of(request).guard, number, text, actor_of(request))
    return _done(request, number)


def reply(request: Request) -> Response:
    """Reply to the producer; refused with the kinds found when it holds consumer data."""
    require_role(request, "caseworker")
    number, text = request.path_params["number"], _field(request, "text")
    desk = _desk(request)
    problem = text_problem(text)
    if problem is None:
        try:
            done = reply_to_producer(desk, desk_of(request).guard, number, text, actor_of(request))
        except InvalidTransitionError as exc:
            problem = str(exc)
        else:
            problem = _refusal(done.finding_counts) if done.refused else None
    if problem is not None:
        return _show(request, number, 400, {"reply": problem}, {"reply": text})
    return _done(request, number, mailed=True)


def _refusal(counts: Mapping[str, int]) -> str:
    kinds = ", ".join(f"{label} ({kind})" for kind, label, _ in _labelled(counts))
    return f"Not sent: the text holds consumer data: {kinds}. Take it out and send again."


def _labelled(counts: Mapping[str, int]) -> list[tuple[str, str, int]]:
    return [(k, finding_labels([k], "en")[0], n) for k, n in sorted(counts.items())]


def _exists(desk: Desk, number: str) -> None:
    """``NotFoundError`` (the 404 page) when there is no incident ``number``."""
    with transaction(desk.engine, readonly=True) as session:
        get_incident(session, number)


# --- JSON -----------------------------------------------------------------------------------


def api_incident(request: Request) -> Response:
    """The incident, its conversation and history, as the page shows them.
    ---
    get:
      summary: One incident
      parameters:
        - {name: number, in: path, required: true, schema: {type: string}}
      responses:
        "200": {description: "the incident: fields, sla, person_ids, conversation, removed, events"}
        "404": {description: no such incident}
    """
    require_role(request, "caseworker")
    desk = desk_of(request)
    with transaction(desk.engine, readonly=True) as session:
        detail = incident_detail(session, request.path_params["number"])
    return JSONResponse(incident_dict(detail, desk))


async def api_note(request: Request) -> Response:
    """Add a note (consumer data redacted; mailed to no one).  Send the session's CSRF
    token as ``X-CSRF-Token``.
    ---
    post:
      summary: Add a note to an incident
      parameters:
        - {name: number, in: path, required: true, schema: {type: string}}
      requestBody:
        required: true
        content:
          application/json:
            schema: {type: object, required: [text], properties: {text: {type: string}}}
      responses:
        "201": {description: "the note: number, message_row_id, finding_counts"}
        "400": {description: "text missing, empty or too long (error)"}
        "404": {description: no such incident}
    """
    require_role(request, "caseworker")
    text = await _json_text(request)
    problem = text_problem(text)
    if problem is not None:
        return JSONResponse({"error": problem, "field": "text"}, status_code=400)
    args = (_desk(request), desk_of(request).guard, request.path_params["number"], text)
    noted = await run_in_threadpool(add_note, *args, actor_of(request))
    body = {
        "number": noted.number,
        "message_row_id": noted.message_row_id,
        "finding_counts": noted.finding_counts,
    }
    return JSONResponse(body, status_code=201)


async def _json_text(request: Request) -> str:
    """``text`` of a JSON body (or of a form); empty when there is none."""
    form = getattr(request.state, "form", None)
    if form is not None:
        value = form.get("text", "")
        return value if isinstance(value, str) else ""
    try:
        body = await request.json()
    except ValueError:
        return ""
    text = body.get("text") if isinstance(body, dict) else None
    return text if isinstance(text, str) else ""


def incident_dict(detail: IncidentDetail, desk: ConsoleDesk) -> dict[str, Any]:
    """The incident as JSON: times in the desk's zone, ISO 8601."""
    i, producer = detail.incident, detail.producer

    def at(value: datetime | None) -> str | None:
        return value.astimezone(desk.zone).isoformat() if value else None

    return {
        **{k: getattr(i, k) for k in ("number", "subject", "type", "status", "priority")},
        **{"team": i.team, "assignee": i.assignee, "mailbox": i.mailbox},
        "producer": {"npn": producer.npn, "name": producer.name, "email": producer.email}
        if producer
        else None,
        "person_ids": detail.person_ids,
        "opened_at": at(i.opened_at),
        "sla": {
            "policy": i.sla_policy,
            "clock": i.sla_clock,
            "due_at": at(i.sla_due_at),
            "warn_at": at(i.sla_warn_at),
            "paused_at": at(i.sla_paused_at),
            "first_response_at": at(i.first_response_at),
        },
        "conversation": [_entry_dict(e, at) for e in conversation(detail)],
        "removed": {kind: n for kind, _, n in removed(detail.messages)},
        "events": [
            {"kind": e.kind, "actor": e.actor, "at": at(e.created_at), "detail": e.detail}
            for e in detail.events
        ],
    }


def _entry_dict(e: Entry, at: Any) -> dict[str, Any]:
    return {"at": at(e.when), "what": e.label, "who": e.who, "text": e.text, "note": e.note}


_NUMBER = "/incidents/{number}"
routes = [
    Route(_NUMBER, incident, methods=["GET"], name="incident"),
    Route(f"{_NUMBER}/assign", assign, methods=["POST"], name="incident_assign"),
    Route(f"{_NUMBER}/merge", merge, methods=["POST"], name="incident_merge"),
    Route(f"{_NUMBER}/notes", note, methods=["POST"], name="incident_note"),
    Route(f"{_NUMBER}/reply", reply, methods=["POST"], name="incident_reply"),
    Route(_NUMBER + "/{action:str}", change_state, methods=["POST"], name="incident_state"),
    Route(f"/api{_NUMBER}", api_incident, methods=["GET"], name="api_incident"),
    Route(f"/api{_NUMBER}/notes", api_note, methods=["POST"], name="api_incident_note"),
]
