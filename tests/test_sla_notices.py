"""SLA notices take the path every mail we write takes: ordered in the sweep's transaction,
composed and scanned after its commit, then pending (or withheld) in the outbox."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from ticketing.config import Config
from ticketing.config.pii_schema import PiiConfig
from ticketing.config.templates_schema import TemplatesConfig
from ticketing.outbound.notices import TemplatedNotices
from ticketing.privacy.settings import build_guard
from ticketing.sla.clocks import SlaClocks
from ticketing.sla.sweep import sweep
from ticketing.store.db import transaction
from ticketing.store.models import AuditEvent, OutboxMessage

from .builders import NOW, add_case, make_composer

LEAD = "escalations-lead@exchange.example"


def _config(override_dir: Path | None = None) -> Config:
    base = Config()
    team = base.teams["escalated_cases"].model_copy(update={"lead": LEAD})
    templates = TemplatesConfig(override_dir=str(override_dir)) if override_dir else base.templates
    return base.model_copy(
        update={"teams": {**base.teams, "escalated_cases": team}, "templates": templates}
    )


def _breach(engine: Engine, config: Config) -> str:
    """One incident whose deadline passed; the sweep's notice for it, as the lead gets it."""
    incident, _ = add_case(engine)
    clocks = SlaClocks.from_config(config.sla)
    with transaction(engine) as session:
        row = session.merge(incident)
        clocks.start(session, row, NOW)
        due = row.sla_due_at
    assert due is not None
    notices = TemplatedNotices(config, make_composer(config), engine, build_guard(PiiConfig()))
    assert sweep(engine, clocks, notices, due + timedelta(minutes=1)) == 1
    return incident.number


def _outbox(engine: Engine) -> list[OutboxMessage]:
    with transaction(engine, readonly=True) as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


def test_a_breach_notice_is_composed_after_the_sweep_commits(engine: Engine) -> None:
    config = _config()
    number = _breach(engine, config)
    [row] = _outbox(engine)
    assert (row.kind, row.to_address, row.status) == ("sla_breach", LEAD, "pending")
    assert row.reply_order is None  # composed: nothing left for the daemon
    mail = message_from_bytes(row.mime, policy=policy.default)
    assert mail["To"] == LEAD
    assert number in str(mail["Subject"])


def test_a_notice_carrying_personal_data_is_withheld_not_sent(
    engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "templates" / "sla_breach"
    folder.mkdir(parents=True)
    # an admin's edit that pastes a consumer's SSN into every breach notice
    (folder / "body.txt").write_text(
        "Incident {{ incident.number }} is past due.\nConsumer SSN: 219-09-9999\n{{ ref_token }}\n"
    )
    _breach(engine, _config(tmp_path / "templates"))
    [row] = _outbox(engine)
    assert (row.status, row.mime) == ("withheld", b"")
    assert row.pii_findings == {"US_SSN": 1}
    with transaction(engine, readonly=True) as session:
        kinds = set(session.exec(select(AuditEvent.kind)))
    assert "outbound_blocked_pii" in kinds
