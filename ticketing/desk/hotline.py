"""Hotline incidents: staff open an incident for a producer who called.

The seed's Producer Support Hotline escalates cases too.  A caseworker who took
the call gives the producer's NPN, the case type, the Person IDs and a summary;
the incident opens exactly as a mailed-in escalation opens one
(``pipeline/record.py``): its number, the team and mailbox the type routes to,
the SLA clock started, the summary as its first message (direction ``in``,
source ``hotline``: it is the producer's request, so the first-response clock
and the desk's view of "what the producer asked" treat it as a producer's
mail), a desk copy for the team, and the producer's ``ack_new`` with the number
and the ref token, in their language, from the team's mailbox.

Steps, in the pipeline's order: check the form (a read-only transaction: the
roster), apply the mailbox's PII policy to the summary (outside any
transaction: a caseworker may have typed an SSN), then record it all in ONE
transaction and compose the mail after the commit (``compose_committed``).
Bad input comes back as ``FormErrors`` (a message per field), nothing written.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from pii_guard import PiiGuard, evaluate
from pii_guard.labels import finding_labels
from ticketing.config import Config, MailboxConfig
from ticketing.config.case_types import CASE_TYPES, CaseType
from ticketing.desk.actions import Desk
from ticketing.errors import NotFoundError
from ticketing.incidents.classify import person_ids, priority_of
from ticketing.incidents.parties import Identity
from ticketing.incidents.records import open_incident
from ticketing.outbound.desk_copies import DESK_COPY
from ticketing.outbound.sinks import ReplyOrder, ReplySink, compose_committed
from ticketing.privacy.allow import desk_allow, party_allow
from ticketing.store.audit import audit
from ticketing.store.db import insert_row, transaction
from ticketing.store.models import Incident, Message, Producer, table_of, utcnow
from ticketing.store.storable import fit_row, fit_text

__all__ = [
    "HOTLINE",
    "MAX_SUMMARY",
    "FormErrors",
    "HotlineForm",
    "HotlineOpened",
    "open_hotline",
    "parse_person_ids",
]

HOTLINE = "hotline"  # the stored message's source and authentication: a caseworker took the call
MAX_SUMMARY = 10_000  # characters: a call's summary, not a document
_SUBJECT_CHARS = 120
_NPN = re.compile(r"[0-9]{1,10}")
_DIGITS = re.compile(r"\d+")
# What may stand in a Person ID entry besides the IDs: the labels and separators
# producers use ("PID #: 174401, 174402 & 174403").
_ID_WORDS = re.compile(
    r"\b(?:PIDs?|Person\s*IDs?|Person\s*ID['\u2019]s|Nos?|numbers?|and|or|y)\b|[#:,;/&.\s]",
    re.IGNORECASE,
)
_MESSAGES = table_of(Message)


@dataclass(frozen=True)
class HotlineForm:
    """What the caseworker typed: ``person_ids`` are entries as producers write them
    (``174097``, ``PIDs 174201, 174202``), each entry one or several IDs."""

    npn: str
    type: str
    person_ids: Sequence[str]
    summary: str


@dataclass(frozen=True)
class FormErrors:
    """The form cannot be used: field name (``npn``, ``type``, ``person_ids``,
    ``summary``) -> what is wrong with it.  Nothing was written."""

    errors: Mapping[str, str]


@dataclass(frozen=True)
class HotlineOpened:
    """The incident opened; ``acknowledged``: the producer's ``ack_new`` was ordered
    (``False``: a rate rule held it back, audited); ``removed``: the kinds of personal
    data the guard took out of the summary, with counts (never values)."""

    number: str
    acknowledged: bool
    removed: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Checked:
    """A form that passed its checks: the producer, the route, the consumers."""

    producer: Producer  # as the roster had it (detached): its id, and what the guard allows
    case: CaseType
    team: str
    mailbox: MailboxConfig
    person_ids: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class _Guarded:
    """A checked form with its summary as it may be stored."""

    checked: _Checked
    summary: str
    counts: dict[str, int]


def open_hotline(
    desk: Desk,
    guard: PiiGuard,
    form: HotlineForm,
    actor: str,
    *,
    now: datetime | None = None,
) -> HotlineOpened | FormErrors:
    """Open an incident for the producer who called (``form``), audited with ``actor``;
    ``FormErrors`` when a field is wrong (nothing written)."""
    with transaction(desk.engine, readonly=True) as session:
        checked = _check(session, desk.config, form)
    if isinstance(checked, FormErrors):
        return checked
    guarded = _guard_summary(guard, desk.config, checked)
    if isinstance(guarded, FormErrors):
        return guarded
    replies = desk.replies().batch()
    with transaction(desk.engine) as session:
        opened = _record(session, desk, guarded, replies, actor, now or utcnow())
    compose_committed(replies.compose)
    return opened


# --- checking the form -------------------------------------------------------------------------


def _check(session: Session, config: Config, form: HotlineForm) -> _Checked | FormErrors:
    """Every field checked, every problem reported at once."""
    errors: dict[str, str] = {}
    producer = _producer(session, form.npn, errors)
    case = _case_type(form.type, errors)
    ids = _person_ids(form.person_ids, case, errors)
    summary = _summary(form.summary, errors)
    route = _route(config, case, errors) if case else None
    if errors or producer is None or case is None or route is None:
        return FormErrors(errors)
    team, mailbox = route
    return _Checked(producer, case, team, mailbox, ids, summary)


def _producer(session: Session, npn: str, errors: dict[str, str]) -> Producer | None:
    npn = npn.strip()
    if not npn:
        errors["npn"] = "the producer's NPN is required"
    elif not _NPN.fullmatch(npn):
        errors["npn"] = "an NPN is 1 to 10 digits"
    else:
        found = session.exec(select(Producer).where(Producer.npn == npn)).first()
        if found is None:
            errors["npn"] = f"no producer with NPN {npn} in the roster"
        return found
    return None


def _case_type(value: str, errors: dict[str, str]) -> CaseType | None:
    """The case type named by its key or its label (``form_1095a``, ``1095 A``)."""
    wanted = value.strip().lower()
    for case in CASE_TYPES.values():
        if wanted in (case.key, case.label.lower()):
            return case
    known = ", ".join(CASE_TYPES)
    errors["type"] = f"choose a case type ({known})" if not wanted else f"no case type {value!r}"
    return None


def _person_ids(
    entries: Sequence[str], case: CaseType | None, errors: dict[str, str]
) -> tuple[str, ...]:
    try:
        ids = parse_person_ids(entries)
    except ValueError as exc:
        errors["person_ids"] = str(exc)
        return ()
    if case is not None and len(ids) > 1 and not case.several_consumers:
        errors["person_ids"] = f"{case.label} cases are about one consumer: give one Person ID"
    return ids


def parse_person_ids(entries: Sequence[str]) -> tuple[str, ...]:
    """The Person IDs of ``entries`` as producers write them, each once, read by the
    pipeline's own extraction (``incidents/classify.person_ids``); ``ValueError``
    naming what is not a Person ID (a name typed there is never kept silently)."""
    found: list[str] = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        ids = person_ids("", f"PIDs {entry}")
        stray = _stray(entry, ids)
        if not ids or stray:
            raise ValueError(f"{stray or entry!r} is not a Person ID (4 to 12 digits)")
        found.extend(ids)
    return tuple(dict.fromkeys(found))


def _stray(entry: str, ids: Sequence[str]) -> str:
    """What ``entry`` holds besides the IDs read from it and the labels and separators
    around them (a short number, a name): empty when nothing."""
    rest = _DIGITS.sub(lambda m: " " if m.group() in ids else f" {m.group()} ", entry)
    return " ".join(_ID_WORDS.sub(" ", rest).split())


def _summary(text: str, errors: dict[str, str]) -> str:
    text = text.strip()
    if not text:
        errors["summary"] = "a summary of the call is required"
    elif len(text) > MAX_SUMMARY:
        errors["summary"] = f"at most {MAX_SUMMARY:,} characters (this one has {len(text):,})"
    return text


def _route(
    config: Config, case: CaseType, errors: dict[str, str]
) -> tuple[str, MailboxConfig] | None:
    """The team the type routes to (``[routing] teams``) and the mailbox speaking for it."""
    team = config.routing.teams.get(case.key, case.default_team)
    mailbox = config.team_mailbox(team)
    if mailbox is None:
        errors["type"] = f"no mailbox speaks for team {team} (see [teams] and [[mailboxes]])"
        return None
    return team, mailbox


# --- the summary under the mailbox's PII policy -------------------------------------------------


def _guard_summary(guard: PiiGuard, config: Config, checked: _Checked) -> _Guarded | FormErrors:
    """The summary as the mailbox's policy lets it be stored: redacted (``redact``), refused
    with the kinds found (``reject``: that team's mailbox keeps no consumer data, and a
    caseworker can simply leave it out), or as typed (``off``)."""
    producer = checked.producer
    # the producer's own name, address, phones and agency, and the desk's, are no consumer's
    allow = party_allow(
        desk_allow(config), producer=producer, address=producer.email, names=(producer.name,)
    )
    policy, fields = checked.mailbox.pii_policy, {"summary": checked.summary}
    outcome = evaluate(guard, policy, fields, allow, guard.budget())
    if outcome.action == "reject":
        kinds = ", ".join(finding_labels(sorted(outcome.counts), "en"))
        why = f"it holds consumers' personal data ({kinds}), which the {checked.mailbox.name}"
        return FormErrors({"summary": f"{why} mailbox may not keep: leave it out"})
    return _Guarded(checked, outcome.fields["summary"], dict(outcome.counts))


# --- recording: one transaction ----------------------------------------------------------------


def _record(
    session: Session,
    desk: Desk,
    guarded: _Guarded,
    replies: ReplySink,
    actor: str,
    when: datetime,
) -> HotlineOpened:
    """The incident, its first message, the audit, the ack and the desk copy, together."""
    producer = session.get(Producer, guarded.checked.producer.id)
    if producer is None:  # removed from the roster since the form was checked
        raise NotFoundError("that producer is no longer in the roster")
    incident = _open(session, desk, guarded, actor, when)
    row_id = _store(session, guarded, incident, producer, when)
    _audit_opened(session, guarded, incident, row_id, actor, when)
    identity = Identity.of_producer(producer.email, producer)
    # ``finding_types`` stays empty: what the guard removed, the caseworker typed, and the
    # ack's "your message contained personal information" would blame the producer for it
    ack = ReplyOrder("ack_new", identity, incident.team, incident, {"finding_types": []})
    acknowledged = replies.queue(session, ack, when)
    copy = ReplyOrder(DESK_COPY, identity, incident.team, incident, {"message_row_id": row_id})
    replies.queue(session, copy, when)
    return HotlineOpened(incident.number, acknowledged, guarded.counts)


def _open(session: Session, desk: Desk, guarded: _Guarded, actor: str, when: datetime) -> Incident:
    """The incident as ``pipeline/record.py`` opens one, its SLA clock started; opened by
    the caseworker (``opened_by`` counts a sender's new incidents: never the producer's)."""
    checked, subject = guarded.checked, _subject(guarded.summary)
    keywords = desk.config.routing.high_priority_keywords
    incident = open_incident(
        session,
        type=checked.case.key,
        team=checked.team,
        mailbox=checked.mailbox.name,
        subject=subject,
        producer_id=checked.producer.id,
        person_ids=checked.person_ids,
        when=when,
        priority=priority_of(subject, guarded.summary, keywords),
        opened_by=fit_text(actor, table_of(Incident).c.opened_by.type.length),
    )
    desk.clocks.start(session, incident, when)
    return incident


def _subject(summary: str) -> str:
    """``Hotline call: `` and the summary's first line (redacted), shortened."""
    first = next((" ".join(line.split()) for line in summary.splitlines() if line.strip()), "")
    if len(first) > _SUBJECT_CHARS:
        first = first[: _SUBJECT_CHARS - 1].rstrip() + "\u2026"
    return f"Hotline call: {first}"


def _store(
    session: Session, guarded: _Guarded, incident: Incident, producer: Producer, when: datetime
) -> int:
    """The summary's message row (a plain INSERT, as intake stores mail): the producer's
    request, received by the team's mailbox, vouched for by the caseworker (``hotline``)."""
    mailbox, summary = guarded.checked.mailbox, guarded.summary
    encoded = summary.encode("utf-8", "surrogateescape")
    values = {
        "incident_id": incident.id,
        "direction": "in",
        "mailbox": mailbox.name,
        "mailboxes": [mailbox.name],
        "dedup_key": f"{HOTLINE}:{uuid.uuid4().hex}",  # no mail to see twice: every call is new
        "kind": "normal",
        "disposition": "recorded",
        "source": HOTLINE,
        "sender": producer.email,
        "recipients": [mailbox.address],
        "subject": incident.subject,
        "text": summary,
        "new_text": summary,
        "size": len(encoded),
        "raw_sha256": hashlib.sha256(encoded).hexdigest(),
        "pii_findings": dict(guarded.counts),
        "received_at": when,
        "authentication": HOTLINE,
        "authentication_results": "",
    }
    return insert_row(session, _MESSAGES, fit_row(_MESSAGES, values))


def _audit_opened(
    session: Session,
    guarded: _Guarded,
    incident: Incident,
    row_id: int,
    actor: str,
    when: datetime,
) -> None:
    """``hotline_opened`` by the caseworker, beside ``open_incident``'s ``opened``: ids,
    the route and counts, never the summary or the Person IDs."""
    checked = guarded.checked
    detail = {
        "type": checked.case.key,
        "team": checked.team,
        "mailbox": checked.mailbox.name,
        "consumers": len(checked.person_ids),
        "finding_counts": dict(guarded.counts),
    }
    audit(
        session,
        "hotline_opened",
        incident_id=incident.id,
        message_row_id=row_id,
        actor=actor,
        detail=detail,
        created_at=when,
    )
