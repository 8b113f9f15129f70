"""Reports (leads and admins): ``/reports`` (charts and their numbers), the CSV exports
(``/reports/{name}.csv``) and the same as JSON (``/api/reports/{name}``).

Everything is read through ``ticketing.desk.reports``; the charts come from
``ticketing.desk.charts``, whose ``Svg`` is the only markup a page inserts unescaped
(built there from escaped parts).  A CSV export is audited (the numbers leave the desk).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ticketing.config import Config
from ticketing.console.access import actor_of, desk_of, require_role
from ticketing.console.render import not_found, page
from ticketing.desk.charts import Svg, bar_chart, line_chart
from ticketing.desk.reports import (
    MAX_WEEKS,
    REPORT_NAMES,
    FirstResponseReport,
    Period,
    PiiReport,
    SlaReport,
    VolumeReport,
    build_report,
    first_response_report,
    last_weeks,
    pii_report,
    record_export,
    report_csv,
    report_json,
    report_rows,
    sla_report,
    volume_report,
)
from ticketing.sla.policy import calendar_from_config
from ticketing.store.db import transaction
from ticketing.store.models import utcnow

__all__ = ["routes"]

DEFAULT_WEEKS = 12
PRODUCERS_SHOWN = 25  # the page's producer table and chart; the CSV has every one
Errors = dict[str, str]


def _teams(config: Config) -> dict[str, str]:
    return {key: team.name for key, team in config.teams.items()}


def _weeks(value: str, errors: Errors) -> int:
    text = value.strip() or str(DEFAULT_WEEKS)
    if not text.isdigit() or not 1 <= int(text) <= MAX_WEEKS:
        errors["weeks"] = f"weeks is a whole number from 1 to {MAX_WEEKS}"
        return DEFAULT_WEEKS
    return int(text)


def _period(request: Request) -> tuple[Period, Errors]:
    """The weeks and team the request asks for, and what is wrong with them."""
    params, errors = request.query_params, Errors()
    weeks = _weeks(params.get("weeks", ""), errors)
    team = params.get("team", "").strip() or None
    if team is not None and team not in _teams(desk_of(request).config):
        errors["team"] = "not a known team: choose one from the list"
        team = None
    return last_weeks(utcnow(), weeks, desk_of(request).zone, team), errors


def _percent(ratio: float | None) -> float | None:
    return None if ratio is None else round(ratio * 100, 1)


def _sla_charts(report: SlaReport) -> dict[str, Svg]:
    weekly = [(c.key, _percent(c.ratio)) for c in report.by_week]
    breaches = [(c.key, float(c.breached)) for c in report.by_team]
    return {
        "sla_weeks": line_chart("SLA compliance by week (%)", weekly, "%", 100),
        "sla_teams": bar_chart("SLA breaches by team", breaches),
    }


def _volume_chart(report: VolumeReport) -> Svg:
    weekly = [(t.key, float(t.count)) for t in report.by_week]
    return line_chart("Incidents opened by week", weekly)


def _response_chart(report: FirstResponseReport) -> Svg:
    weekly = [(t.key, t.median_hours) for t in report.by_week]
    return line_chart(f"Median first response by week ({report.unit})", weekly, "h")


def _pii_charts(report: PiiReport) -> dict[str, Svg]:
    kinds = [(k.kind, float(k.findings)) for k in report.by_kind]
    top = report.by_producer[:PRODUCERS_SHOWN]
    producers = [(f"{p.name} ({p.npn or '-'})", float(p.findings)) for p in top]
    return {
        "pii_kinds": bar_chart("PII findings by kind", kinds),
        "pii_producers": bar_chart("PII findings by producer", producers),
    }


def _load(request: Request, period: Period) -> dict[str, Any]:
    """Every report of the period, read in one transaction, and their charts."""
    desk = desk_of(request)
    with transaction(desk.engine, readonly=True) as session:
        sla = sla_report(session, period, desk.config.sla)
        volume = volume_report(session, period)
        calendar = calendar_from_config(desk.config.sla)
        first = first_response_report(session, period, calendar)
        pii = pii_report(session, period)
    charts = _sla_charts(sla) | _pii_charts(pii)
    charts |= {"volume": _volume_chart(volume), "first_response": _response_chart(first)}
    return {"sla": sla, "volume": volume, "first": first, "pii": pii, "charts": charts}


def reports(request: Request) -> Response:
    """SLA compliance, volume, first-response times and PII findings, as charts with
    their numbers in tables, and links to the CSV exports."""
    require_role(request, "lead")
    period, errors = _period(request)
    found = {} if errors else _load(request, period)
    return page(
        request,
        "reports.html",
        400 if errors else 200,
        title="Reports",
        errors=errors,
        chosen=request.query_params,
        period=period,
        teams=_teams(desk_of(request).config),
        max_weeks=MAX_WEEKS,
        exports=REPORT_NAMES,
        producers_shown=PRODUCERS_SHOWN,
        **found,
    )


def _bad_parameters(request: Request, errors: Errors) -> Response:
    said = "; ".join(f"{field}: {why}" for field, why in errors.items())
    return page(request, "error.html", 400, title="Bad request", message=said)


def export_csv(request: Request) -> Response:
    """One report as CSV (an attachment), its header first."""
    require_role(request, "lead")
    name = request.path_params["name"]
    if name not in REPORT_NAMES:
        return not_found(request, f"no report named {name!r}")
    period, errors = _period(request)
    if errors:
        return _bad_parameters(request, errors)
    desk = desk_of(request)
    with transaction(desk.engine) as session:
        rows = report_rows(name, build_report(session, name, period, desk.config.sla))
        record_export(session, name, period, actor_of(request))
    filename = f"ticketd-{name}-{period.labels[0]}-{len(period.mondays)}w.csv"
    return Response(
        report_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


_PII_PARTS = {"pii_by_kind": "by_producer", "pii_by_producer": "by_kind"}  # what each leaves out


def api_report(request: Request) -> Response:
    """One report as JSON.
    ---
    summary: A report (leads and admins)
    parameters:
      - {name: name, in: path, required: true, schema: {type: string, enum: [sla, volume, first_response, pii_by_kind, pii_by_producer]}}
      - {name: weeks, in: query, schema: {type: integer, minimum: 1, maximum: 104, default: 12}, description: "the last N weeks (Monday to Sunday in [sla] timezone), this one included"}
      - {name: team, in: query, schema: {type: string}, description: "a key of [teams]; default: every team"}
    responses:
      200:
        description: "{period: {weeks, team, start, end, timezone}, ...}: sla has total, by_team, by_type, by_week of {key, due, met, breached, ratio}; volume has total, by_week, by_team, by_type of {key, count} and rows of {week, team, type, opened}; first_response has unit (business hours), total, by_team, by_week of {key, answered, waiting, median_hours, p90_hours}; pii_by_kind has messages, findings, by_kind of {kind, messages, findings}; pii_by_producer has messages, findings, by_producer of {npn, name, messages, findings, kinds}. Counts only, never a value found."
      400: {description: "{error, fields}: weeks or team is not valid"}
      403: {description: "{error}: the lead role is needed"}
      404: {description: "{error}: no report of that name"}
    """  # noqa: E501
    require_role(request, "lead")
    name = request.path_params["name"]
    if name not in REPORT_NAMES:
        return JSONResponse({"error": f"no report named {name!r}"}, status_code=404)
    period, errors = _period(request)
    if errors:
        return JSONResponse({"error": "invalid parameters", "fields": errors}, status_code=400)
    desk = desk_of(request)
    with transaction(desk.engine, readonly=True) as session:
        data = report_json(build_report(session, name, period, desk.config.sla))
    data.pop(_PII_PARTS.get(name, ""), None)
    return JSONResponse(data)


routes = [
    Route("/reports", reports, methods=["GET"], name="reports"),
    Route("/reports/{name}.csv", export_csv, methods=["GET"], name="report_csv"),
    Route("/api/reports/{name}", api_report, methods=["GET"], name="api_report"),
]
