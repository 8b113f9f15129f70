"""The reports pages in-process: who may see them, the charts and tables, CSV and JSON."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from tests.conftest import migrated_database
from tests.console_client import Console, console_app, signed_in
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, Incident, Message, Producer, utcnow

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def console(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Console]:
    for url in migrated_database("sqlite", tmp_path / "db", request):
        found = console_app(tmp_path, url)
        yield found
        found.engine.dispose()


def seed(console: Console) -> None:
    """Two incidents of a producer with a hostile name, due two days ago (one answered in
    time, one not), and a message of theirs with personal data in it."""
    due = utcnow() - timedelta(days=2)
    with transaction(console.engine) as session:
        producer = Producer(npn="7654321", name=HOSTILE, email="odd@brokers.example")
        session.add(producer)
        session.flush()
        for number, first in (("1", due - timedelta(hours=1)), ("2", None)):
            incident = Incident(
                number=number,
                type="enrollment",
                team="escalated_cases",
                mailbox="escalations",
                producer_id=producer.id,
                opened_at=due - timedelta(hours=20),
                sla_policy="default",
                sla_due_at=due,
                first_response_at=first,
            )
            session.add(incident)
            session.flush()
        session.add(
            Message(
                incident_id=incident.id,
                direction="in",
                mailbox="escalations",
                dedup_key="m1",
                raw_sha256="m1",
                pii_findings={"US_SSN": 2},
                received_at=due,
            )
        )


def test_only_leads_and_admins_see_reports(console: Console) -> None:
    casey = signed_in(console, "caseworker")
    for path in ("/reports", "/reports/sla.csv", "/api/reports/sla"):
        assert casey.get(path).status_code == 403, path
    for role in ("lead", "admin"):
        client = signed_in(console, role)
        assert client.get("/reports").status_code == 200
        assert client.get("/api/reports/volume").status_code == 200


def test_the_page_has_accessible_charts_with_escaped_names_and_tables(console: Console) -> None:
    seed(console)
    answer = signed_in(console, "lead").get("/reports?weeks=3")
    assert answer.status_code == 200
    html = answer.text
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    charts = re.findall(r"<svg .*?</svg>", html, flags=re.DOTALL)
    assert len(charts) == 6
    for chart in charts:
        root = ET.fromstring(chart)
        assert root.get("role") == "img" and root.get("aria-label")
        assert root.findtext("{http://www.w3.org/2000/svg}title") == root.get("aria-label")
    # the numbers are in tables too: came due, met, breached, compliance
    row = '<th scope="row">escalated_cases</th><td class="num">2</td><td class="num">1</td>'
    assert row in html
    assert "50.0 %" in html
    assert '<th scope="row">US_SSN</th><td class="num">1</td><td class="num">2</td>' in html


def test_bad_weeks_and_team_are_said_next_to_the_field(console: Console) -> None:
    lead = signed_in(console, "lead")
    for weeks in ("0", "105", "twelve"):
        answer = lead.get(f"/reports?weeks={weeks}")
        assert answer.status_code == 400
        assert 'id="weeks-error"' in answer.text and 'aria-invalid="true"' in answer.text
    answer = lead.get("/reports?team=nobody")
    assert answer.status_code == 400 and 'id="team-error"' in answer.text
    refused = lead.get("/api/reports/sla?weeks=0")
    assert refused.status_code == 400
    assert set(refused.json()["fields"]) == {"weeks"}
    bad_csv = lead.get("/reports/sla.csv?weeks=200")
    assert bad_csv.status_code == 400 and "weeks" in bad_csv.text


def test_csv_export_is_an_audited_attachment(console: Console) -> None:
    seed(console)
    answer = signed_in(console, "lead").get("/reports/pii_by_producer.csv?weeks=3")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="ticketd-pii_by_producer-')
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows == [
        ["npn", "producer", "kind", "messages", "findings"],
        ["7654321", HOSTILE, "US_SSN", "1", "2"],
    ]
    with transaction(console.engine, readonly=True) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.kind == "report_exported")).one()
    assert event.actor.startswith("console:Lee Lead")
    assert event.detail["report"] == "pii_by_producer" and event.detail["weeks"] == 3
    lead = signed_in(console, "lead")
    assert lead.get("/reports/nothing.csv").status_code == 404


def test_json_reports(console: Console) -> None:
    seed(console)
    lead = signed_in(console, "lead")
    sla = lead.get("/api/reports/sla?weeks=3&team=escalated_cases").json()
    assert sla["total"] == {"key": "all", "due": 2, "met": 1, "breached": 1, "ratio": 0.5}
    assert sla["period"]["team"] == "escalated_cases" and len(sla["period"]["weeks"]) == 3
    kinds = lead.get("/api/reports/pii_by_kind?weeks=3").json()
    assert kinds["by_kind"] == [{"kind": "US_SSN", "messages": 1, "findings": 2}]
    assert "by_producer" not in kinds
    producers = lead.get("/api/reports/pii_by_producer?weeks=3").json()
    assert producers["by_producer"][0]["name"] == HOSTILE and "by_kind" not in producers
    assert lead.get("/api/reports/nothing").status_code == 404
