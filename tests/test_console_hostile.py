"""Mallory at the console: what a stranger writes is shown as text, never run as a page's.

Producer mail, subjects, sender names and search terms come from outside; each
reaches a page escaped.  A script the page did not ship never runs anyway (the
content security policy allows only the console's own files), but escaping is
the first wall, and these tests hold it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import NOW, add_case
from tests.console_client import Console, console_app, signed_in
from ticketing.store.db import transaction
from ticketing.store.models import Incident, Message, Producer

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
NUMBER = "200528-2866868"


@pytest.fixture
def backend() -> str:
    return "sqlite"  # escaping is the pages' business, whatever the database


@pytest.fixture
def console(tmp_path: Path, db_url: str) -> Iterator[Console]:
    made = console_app(tmp_path, db_url)
    incident, producer = add_case(made.engine, number=NUMBER)
    with transaction(made.engine) as session:
        row = session.get(Incident, incident.id)
        assert row is not None
        row.subject = f"Escalated Case: {HOSTILE}"
        who = session.get(Producer, producer.id)
        assert who is not None
        who.name = HOSTILE
        session.add(
            Message(
                incident_id=incident.id,
                direction="in",
                mailbox="escalations",
                dedup_key="hostile-1",
                raw_sha256="0" * 64,
                sender=producer.email,
                subject=HOSTILE,
                text=f"Hello {HOSTILE} </pre></textarea>",
                received_at=NOW,
            )
        )
    yield made
    made.engine.dispose()


def _no_markup_of_theirs(html: str) -> None:
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;" in html  # shown, as text


@pytest.mark.parametrize(
    "path",
    [f"/incidents/{NUMBER}", "/queue", "/search?q=Hello", f"/search?q={HOSTILE}"],
)
def test_what_strangers_wrote_is_shown_escaped(console: Console, path: str) -> None:
    page = signed_in(console, "lead").get(path)
    assert page.status_code == 200, page.text[:500]
    _no_markup_of_theirs(page.text)


def test_the_pages_allow_no_script_but_their_own(console: Console) -> None:
    page = signed_in(console, "lead").get(f"/incidents/{NUMBER}")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
