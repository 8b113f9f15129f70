"""/metrics, /healthz and /readyz of a real ``ticketd serve``, and its JSON logs."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from ticketing.config import DatabaseConfig, load_config, validate_config
from ticketing.errors import ConfigError
from ticketing.store.db import create_db_engine
from ticketing.store.models import utcnow

from .conftest import REPO, write_config
from .daemon import TcpProxy, Ticketd, free_port, run_ticketd, serve_refused
from .mail import make_mail

SSN = "123-45-6789"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
T = TypeVar("T")


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(port: int) -> Samples:
    status, body = get(port, "/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape_until(port: int, ready: Callable[[Samples], bool], timeout: float = 20) -> Samples:
    deadline = time.monotonic() + timeout
    samples = scrape(port)
    while not ready(samples) and time.monotonic() < deadline:
        time.sleep(0.1)
        samples = scrape(port)
    return samples


def _observed(http: int) -> str:
    """/metrics on ``http``, JSON logs, and outbound to a relay port where nothing listens:
    replies stay pending (a backlog)."""
    return (
        "[smtp]\nmax_message_size = 200000\nmax_header_count = 20\n"
        f'[outbound]\ntransport = "smtp"\nport = {free_port()}\nstarttls = false\n'
        "poll_interval_seconds = 1\nretry_initial_seconds = 3600\n"
        f'[observability]\nhttp_port = {http}\n[logging]\nformat = "json"\n'
    )


def _wait_for(check: Callable[[], T], timeout: float = 20) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    return check()


def test_endpoints_count_intake_and_read_the_backlog(
    db_url: str, tmp_path: Path, ticketd: Ticketd
) -> None:
    http = free_port()
    (tmp_path / "var").mkdir()
    daemon = ticketd(_observed(http))
    log = daemon.log
    with daemon.serve_process():
        assert get(http, "/healthz") == (200, '{"status": "alive"}\n')
        status, body = get(http, "/readyz")
        assert status == 200
        assert json.loads(body) == {
            "ready": True,
            "database": "ok",
            "smtp": "listening",
            "storage": "ok",
        }
        # an unknown sender with an SSN: recorded, answered (pending: no relay), counted
        mail = make_mail(body=f"Client SSN {SSN}, please help.")
        assert daemon.send(mail)[0] == 250
        assert daemon.send(mail)[0] == 250  # the same message again: a duplicate
        assert daemon.send(b"Subject: x\r\n\r\n" + (b"y" * 70 + b"\r\n") * 5000)[0] == 552  # SIZE
        assert daemon.send(b"X-A: 1\r\n" * 30 + b"\r\nbody\r\n")[0] == 552  # headers
        assert daemon.send(b"\r\nno header at all\r\n")[0] == 554
        assert get(http, "/nowhere")[0] == 404
        samples = scrape_until(
            http, lambda s: value(s, "ticketd_outbox_deliveries_total", result="deferred") > 0
        )
    assert value(samples, "ticketd_messages_outcome_total", source="smtp", action="duplicate") == 1
    assert (
        value(samples, "ticketd_messages_rejected_total", source="smtp", reason="unknown_sender")
        == 1
    )
    assert value(samples, "ticketd_pii_findings_total", entity="US_SSN") == 1  # not twice
    assert value(samples, "ticketd_intake_duration_seconds_count", source="smtp") == 4
    assert value(samples, "ticketd_backlog_up") == 1
    assert value(samples, "ticketd_outbox_pending") == 1
    assert value(samples, "ticketd_outbox_oldest_pending_age_seconds") > 0
    assert value(samples, "ticketd_outbox_deliveries_total", result="deferred") >= 1
    # the oversized one was refused by the SMTP server before intake; these two by intake
    assert (
        value(samples, "ticketd_messages_rejected_total", source="smtp", reason="over_limit") == 1
    )
    assert (
        value(samples, "ticketd_messages_rejected_total", source="smtp", reason="not_acceptable")
        == 1
    )
    assert value(samples, "ticketd_messages_received_total", source="smtp") == 4
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any("from smtp: unknown_sender" in r["message"] for r in records)
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert SSN not in log.read_text()
    assert "sam@brokers.example" not in log.read_text()


@pytest.mark.postgres
def test_every_instance_reports_the_shared_backlog(
    pg_db_url: str, tmp_path: Path, ticketd: Ticketd
) -> None:
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    (a_dir / "var").mkdir(parents=True)
    (b_dir / "var").mkdir(parents=True)
    a_http, b_http = free_port(), free_port()
    daemon_a = ticketd(_observed(a_http), db_url=pg_db_url, folder=a_dir)
    daemon_b = ticketd(_observed(b_http), db_url=pg_db_url, folder=b_dir)
    with daemon_a.serve_process(), daemon_b.serve_process():
        for n in range(3):
            sender = f"p{n}@brokers.example"
            assert daemon_a.send(make_mail(sender=sender), sender=sender)[0] == 250
        a = scrape_until(a_http, lambda s: value(s, "ticketd_outbox_pending") == 3)
        b = scrape(b_http)
    assert value(a, "ticketd_outbox_pending") == value(b, "ticketd_outbox_pending") == 3
    assert value(b, "ticketd_messages_received_total", source="smtp") == 0  # A's counter only
    assert value(a, "ticketd_messages_received_total", source="smtp") == 3


@pytest.mark.postgres
def test_readiness_follows_the_database(pg_db_url: str, tmp_path: Path, ticketd: Ticketd) -> None:
    from sqlalchemy.engine import make_url

    real_port = make_url(pg_db_url).port or 5432
    proxy = TcpProxy(real_port)
    proxy.start()
    proxied = make_url(pg_db_url).set(host="127.0.0.1", port=proxy.port)
    http = free_port()
    (tmp_path / "var").mkdir()
    daemon = ticketd(
        _observed(http),
        "[database]\nbusy_timeout_ms = 2000\n",
        db_url=proxied.render_as_string(hide_password=False),
    )
    with daemon.serve_process():
        assert get(http, "/readyz")[0] == 200
        proxy.stop()
        status, body = get(http, "/readyz")
        assert status == 503
        assert json.loads(body) == {
            "ready": False,
            "database": "unreachable",
            "smtp": "listening",
            "storage": "ok",
        }
        assert get(http, "/healthz")[0] == 200  # alive: no restart for a database outage
        samples = scrape(http)
        assert value(samples, "ticketd_backlog_up") == 0
        proxy.start()
        assert _wait_for(lambda: get(http, "/readyz")[0] == 200)


def test_a_taken_http_port_stops_the_start(tmp_path: Path, ticketd: Ticketd) -> None:
    db_url = f"sqlite:///{tmp_path / 'ticketd.db'}"
    run_ticketd("--config", str(write_config(tmp_path, db_url)), "init", check=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        http = taken.getsockname()[1]
        (tmp_path / "var").mkdir(exist_ok=True)
        daemon = ticketd(_observed(http), db_url=db_url)
        code, last = serve_refused(daemon.config)
    assert code == 1
    assert last == f"ticketd: cannot serve /metrics on 127.0.0.1:{http}: Address already in use"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"observability": {"http_port": 70000}}, "observability.http_port: must be less than"),
        ({"observability": {"http_port": "9464"}}, "observability.http_port: must be an integer"),
        ({"observability": {"port": 9464}}, "observability.port: unknown key (did you mean"),
        ({"logging": {"format": "xml"}}, "logging.format: must be one of text, json"),
        ({"smtp": {"shutdown_grace_seconds": 0}}, "smtp.shutdown_grace_seconds: must be greater"),
        ({"roster": {"path": "r.csv"}}, "roster.path: unknown key"),
    ],
)
def test_operations_keys_are_strict(raw: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(raw, "c.toml")
    assert any(line.startswith(f"c.toml: {expected}") for line in str(info.value).splitlines())


def test_the_container_config_is_valid_and_serves_health() -> None:
    loaded = load_config(REPO / "deploy" / "config.toml")
    assert loaded.config.observability.http_port > 0
    assert loaded.config.observability.http_host == "0.0.0.0"  # in a container
    containerfile = (REPO / "deploy" / "Containerfile").read_text()
    assert f":{loaded.config.observability.http_port}/healthz" in containerfile


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = tmp_path / "ticketd.service"
    text_ = (REPO / "deploy" / "ticketd.service").read_text()
    unit.write_text(text_.replace("/opt/ticketd/.venv/bin/ticketd", shutil.which("true") or ""))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    problems = [
        line
        for line in result.stderr.splitlines()
        if str(unit) in line or "ticketd.service" in line
    ]
    assert problems == [], result.stderr


def test_sla_notices_are_counted_when_the_sweep_fires(tmp_path: Path, ticketd: Ticketd) -> None:
    db_url = f"sqlite:///{tmp_path / 'ticketd.db'}"
    run_ticketd("--config", str(write_config(tmp_path, db_url)), "init", check=True)
    (tmp_path / "roster.csv").write_text("npn,name,email\n1234567,Sam Amsung,sam@brokers.example\n")
    http = free_port()
    (tmp_path / "var").mkdir(exist_ok=True)
    daemon = ticketd(
        _observed(http),
        '[roster]\nfile = "roster.csv"\n',
        "[sla]\nnotices_in_business_hours_only = false\nsweep_interval_seconds = 1\n",
        db_url=db_url,
    )
    engine = create_db_engine(DatabaseConfig(url=db_url))
    try:
        with daemon.serve_process():
            assert daemon.send(make_mail())[0] == 250
            past = utcnow() - timedelta(hours=1)
            with engine.begin() as conn:
                changed = conn.execute(
                    text(
                        "UPDATE incidents SET sla_warn_at = :p, sla_due_at = :p, sla_next_at = :p"
                    ),
                    {"p": past.replace(tzinfo=None)},
                ).rowcount
            assert changed == 1
            samples = scrape_until(
                http, lambda s: value(s, "ticketd_sla_notices_total", stage="breach") > 0
            )
    finally:
        engine.dispose()
    assert value(samples, "ticketd_sla_notices_total", stage="breach") == 1
    assert value(samples, "ticketd_sla_notices_total", stage="warning") == 0  # overtaken
    assert value(samples, "ticketd_incidents", status="new") == 1
