"""The template editor: every template file, where it comes from, and safe edits of it.

Admins edit the mail templates (``docs/templates.md``) from the console: this module
lists every part of every kind, language and team with the layer it is taken from,
checks an edited source exactly as the daemon's reload does (``validate_source``, the
sandbox's security checks included), renders it for a real incident or the sample data
with the outbound guard's verdict on the result, and saves it as an override file.

Overrides are files in ``[templates] override_dir``, written atomically (a temp file
named with a leading dot, which the reload ignores, then a rename), so a reload never
reads half a file.  Every instance of the daemon must read the same folder (a shared
folder): each one's timed "template reload" job, and each intake worker, rereads it every
``[templates] reload_interval_seconds`` (5 s by default; SIGHUP at once).
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailer.bodies import html_to_text
from pii_guard import PiiGuard
from ticketing.config import Config
from ticketing.errors import ConfigError, ConfigProblem, NotFoundError, ReplyError, TemplateError
from ticketing.outbound.scan import personal_data_in, recipient_allow
from ticketing.store.audit import audit
from ticketing.store.db import transaction
from ticketing.store.models import Incident, IncidentConsumer, Producer
from ticketing.templating.context import ContextInput, build_context
from ticketing.templating.files import TemplateName, shipped_dir
from ticketing.templating.kinds import KINDS, LANGUAGES, ReplyKind
from ticketing.templating.samples import sample_extra, sample_inputs, sample_tokens
from ticketing.templating.sandbox import compile_template, render
from ticketing.templating.template_store import TemplateStore
from ticketing.templating.validate import TemplateProblem, validate_source

__all__ = [
    "MAX_SOURCE",
    "PART_NAMES",
    "EditorSource",
    "Preview",
    "SaveResult",
    "TemplateEditor",
    "TemplateKey",
    "TemplateRow",
    "incident_input",
    "normal_source",
    "template_key",
]

PART_NAMES = ("subject", "text", "html")
_FILES = {"subject": ("subject", "txt"), "text": ("body", "txt"), "html": ("body", "html")}
MAX_SOURCE = 64 * 1024  # characters: the shipped templates are under 2,000
_OVERRIDE_KEY = "templates.override_dir"
_ActiveKey = tuple[str, str | None, str, str, str]  # layer, team, kind, part, language


@dataclass(frozen=True)
class TemplateKey:
    """One template file by what it is for: kind, part, language and team (None: all)."""

    kind: str
    part: str  # subject | text | html
    language: str
    team: str | None

    @property
    def rel(self) -> str:
        """Its path inside a layer: ``[team/]kind/subject[.es].txt``."""
        stem, ext = _FILES[self.part]
        suffix = "" if self.language == "en" else f".{self.language}"
        folder = f"{self.team}/{self.kind}" if self.team else self.kind
        return f"{folder}/{stem}{suffix}.{ext}"


@dataclass(frozen=True)
class TemplateRow:
    """A row of the editor's list: which file answers for ``key`` today.

    ``layer``/``file``: the layer and path (inside it) of the file in use, after the
    store's fallbacks (team folder to kind folder, language to English); ``None`` when
    no file answers.  ``own``: that file is this key's own (not inherited).
    ``override``: an override file exists for this key; ``broken``: it fails the check
    (the reload refuses it and keeps the last good version or the next folder's).
    """

    key: TemplateKey
    layer: str | None
    file: str | None
    own: bool
    override: bool
    broken: bool


@dataclass(frozen=True)
class EditorSource:
    """The source to edit for ``key``, and where it was read from (``layer``/``file``;
    ``None``: nothing yet, an empty new file)."""

    key: TemplateKey
    source: str
    layer: str | None
    file: str | None


@dataclass(frozen=True)
class Preview:
    """An edited source rendered for an incident (``about``) or the sample data.

    ``text`` is the rendered part (``None`` when it does not render); ``findings`` the
    kinds of consumer data the outbound guard finds in it, with counts (never values).
    """

    about: str
    text: str | None
    problems: tuple[TemplateProblem, ...]
    findings: dict[str, int]

    @property
    def verdict(self) -> str:
        """What the outbound guard would say, in words."""
        if self.text is None:
            return "not checked: the template does not render"
        if not self.findings:
            return "no consumer personal data found"
        kinds = ", ".join(sorted(self.findings))
        return f"the outbound guard would withhold this mail: {kinds}"


@dataclass(frozen=True)
class SaveResult:
    """What a save did: written to ``path``, or refused for ``problems``."""

    path: str
    problems: tuple[TemplateProblem, ...]

    @property
    def saved(self) -> bool:
        return not self.problems


def template_key(
    config: Config, kind: str, part: str, language: str, team: str | None
) -> TemplateKey:
    """The key named by a request; ``NotFoundError`` when any of it is unknown."""
    team = team or None
    if kind not in KINDS:
        raise NotFoundError(f"no template kind '{kind}'")
    if part not in PART_NAMES:
        raise NotFoundError(f"no template part '{part}' (known: {', '.join(PART_NAMES)})")
    if language not in LANGUAGES:
        raise NotFoundError(f"no template language '{language}'")
    if team is not None and team not in config.teams:
        raise NotFoundError(f"no team '{team}'")
    return TemplateKey(kind, part, language, team)


def normal_source(source: str) -> str:
    """A source as a file holds it: browsers send a textarea's lines ending in CRLF."""
    return source.replace("\r\n", "\n").replace("\r", "\n")


class TemplateEditor:
    """The editor's actions over one configuration's layers (override, then shipped)."""

    def __init__(self, config: Config, engine: Engine, guard: PiiGuard) -> None:
        self._config = config
        self._engine = engine
        self._guard = guard
        # quiet: the editor shows problems itself; the daemon's own store logs and audits
        self._store = TemplateStore.from_config(config, quiet=True)

    @property
    def override_dir(self) -> Path | None:
        folder = self._config.templates.override_dir
        return Path(folder) if folder else None

    def keys(self) -> Iterator[TemplateKey]:
        """Every editable file: each kind, team (and all teams), language and part."""
        for kind in KINDS:
            for team in (None, *self._config.teams):
                for language in LANGUAGES:
                    for part in PART_NAMES:
                        yield TemplateKey(kind, part, language, team)

    def rows(self) -> list[TemplateRow]:
        """Every key with the file in use for it."""
        active = self._active()
        return [self._row(key, active) for key in self.keys()]

    def _active(self) -> dict[_ActiveKey, TemplateName]:
        """The files in use now (the folders reread: cheap when nothing changed), by layer,
        team, kind, part and language."""
        self._store.reload()
        return {_active_key(t.name): t.name for t in self._store.active()}

    def has_override(self, key: TemplateKey) -> bool:
        """Whether ``key`` has an override file (in use, or refused as broken)."""
        path = self._override_path(key)
        return path is not None and path.is_file()

    def _row(self, key: TemplateKey, active: dict[_ActiveKey, TemplateName]) -> TemplateRow:
        in_use = self._in_use(key, active)
        override = self._override_path(key)
        exists = self.has_override(key)
        broken = override is not None and exists and bool(self.check(_read(override), key))
        own = in_use is not None and (in_use.team, in_use.language) == (key.team, key.language)
        layer = in_use.layer if in_use else None
        return TemplateRow(key, layer, in_use.rel if in_use else None, own, exists, broken)

    def _in_use(
        self, key: TemplateKey, active: dict[_ActiveKey, TemplateName]
    ) -> TemplateName | None:
        """The file the store takes ``key``'s part from (the HTML body only from the
        folder of the text body: ``TemplateStore.select``)."""
        part = "text" if key.part == "html" else key.part
        found = _first(active, self._folders(key), key.kind, part)
        if key.part != "html" or found is None:
            return found
        return active.get((found.layer, found.team, key.kind, "html", found.language))

    def _folders(self, key: TemplateKey) -> list[tuple[str, str | None, str]]:
        """The store's search order: language then English, layer, team then kind folder."""
        teams = (key.team, None) if key.team else (None,)
        return [
            (layer.name, team, language)
            for language in dict.fromkeys((key.language, "en"))
            for layer in self._store.layers
            for team in teams
        ]

    def load(self, key: TemplateKey) -> EditorSource:
        """The source to start editing from: the override, else the shipped file, else the
        file the store inherits for ``key``, else nothing."""
        override = self._override_path(key)
        if override is not None and override.is_file():
            return EditorSource(key, _read(override), "override", key.rel)
        shipped = shipped_dir() / key.rel
        if shipped.is_file():
            return EditorSource(key, _read(shipped), "shipped", key.rel)
        inherited = self._in_use(key, self._active())
        if inherited is not None:
            return EditorSource(key, _read(inherited.path), inherited.layer, inherited.rel)
        return EditorSource(key, "", None, None)

    def check(self, source: str, key: TemplateKey) -> list[TemplateProblem]:
        """The problems of ``source`` as ``key``'s file, each with its line: the checks the
        daemon's reload applies (``validate_source``), the sandbox's among them."""
        source = normal_source(source)
        if len(source) > MAX_SOURCE:
            file = str(self._name(key).path)
            return [TemplateProblem(file, 1, f"longer than {MAX_SOURCE} characters")]
        return validate_source(self._name(key), source, self._config)

    def preview(self, source: str, key: TemplateKey, incident_number: str | None) -> Preview:
        """``source`` rendered for the incident ``incident_number`` (``NotFoundError`` if
        there is none) or, without one, the sample data; with the guard's verdict."""
        source = normal_source(source)
        problems = self.check(source, key)
        data = self._incident_input(key, incident_number) if incident_number else None
        data = data or self._sample_input(key)
        about = f"incident {incident_number}" if incident_number else "the sample data"
        file = str(self._name(key).path)
        try:
            text = self._render(source, key, data)
        except TemplateError as exc:
            problem = TemplateProblem(file, exc.line, exc.message)
            return Preview(about, None, _merged(problems, problem), {})
        except ReplyError as exc:
            return Preview(about, None, _merged(problems, TemplateProblem(file, 1, str(exc))), {})
        return Preview(about, text, tuple(problems), self._findings(key, data, text))

    def save(self, source: str, key: TemplateKey, actor: str) -> SaveResult:
        """Write ``source`` as ``key``'s override file (atomically), unless it fails the
        check; audited either way (the file and the actor, never the content)."""
        folder = self._require_override_dir()
        source = normal_source(source)
        path = folder / key.rel
        problems = self.check(source, key)
        if problems:
            self._audit_refused(path, problems, actor)
            return SaveResult(str(path), tuple(problems))
        _write_atomically(path, source)
        self._audit("template_saved", {"file": str(path)}, actor)
        return SaveResult(str(path), ())

    def diff(self, key: TemplateKey, source: str | None = None) -> str:
        """A unified diff from the shipped file to ``source`` (default: the saved
        override); empty when they are the same."""
        shipped_path = shipped_dir() / key.rel
        shipped = _read(shipped_path) if shipped_path.is_file() else ""
        if source is None:
            override = self._override_path(key)
            source = _read(override) if override is not None and override.is_file() else shipped
        lines = difflib.unified_diff(
            shipped.splitlines(keepends=True),
            normal_source(source).splitlines(keepends=True),
            fromfile=f"shipped/{key.rel}" if shipped_path.is_file() else "/dev/null",
            tofile=f"override/{key.rel}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def revert(self, key: TemplateKey, actor: str) -> str:
        """Remove ``key``'s override file (the next folder's version answers again);
        ``NotFoundError`` when there is none.  Audited; returns the path removed."""
        path = self._require_override_dir() / key.rel
        try:
            path.unlink()
        except FileNotFoundError:
            raise NotFoundError(f"no override {key.rel} to revert") from None
        self._audit("template_reverted", {"file": str(path)}, actor)
        return str(path)

    # --- the pieces -----------------------------------------------------------------------

    def _override_path(self, key: TemplateKey) -> Path | None:
        return self.override_dir / key.rel if self.override_dir else None

    def _require_override_dir(self) -> Path:
        folder = self.override_dir
        if folder is None:
            why = (
                "not set: saving templates needs a folder for overrides (one every instance reads)"
            )
            raise ConfigError("config", [ConfigProblem(_OVERRIDE_KEY, why)])
        return folder

    def _name(self, key: TemplateKey) -> TemplateName:
        """``key`` as the override file the reload would read (problems name that path)."""
        path = (self.override_dir or shipped_dir()) / key.rel
        return TemplateName("override", path, key.rel, key.team, key.kind, key.part, key.language)

    def _sample_input(self, key: TemplateKey) -> ContextInput:
        team = key.team or next(iter(self._config.teams))
        org = self._config.security.token_org
        name = self._config.teams[team].name
        return next(sample_inputs(KINDS[key.kind], team, name, key.language, org))

    def _incident_input(self, key: TemplateKey, number: str) -> ContextInput:
        return incident_input(
            self._config, self._engine, KINDS[key.kind], number, key.language, key.team
        )

    def _render(self, source: str, key: TemplateKey, data: ContextInput) -> str:
        seconds = self._config.templates.render_timeout_seconds
        template = compile_template(source, str(self._name(key).path), seconds)
        return render(template, build_context(data))

    def _findings(self, key: TemplateKey, data: ContextInput, text: str) -> dict[str, int]:
        """The outbound scan (``personal_data_in``) of what the recipient reads of ``text``,
        with what the outbox allows for that recipient."""
        visible = html_to_text(text) if key.part == "html" else text
        allow = recipient_allow(self._config, data.producer, data.address)
        return personal_data_in(self._guard, allow, visible)

    def _audit_refused(self, path: Path, problems: list[TemplateProblem], actor: str) -> None:
        """A refused save, like a refused reload: an admin who reaches for ``__class__``
        leaves a ``template_security_violation``."""
        for problem in problems:
            kind = "template_security_violation" if problem.security else "template_save_refused"
            detail = {"file": str(path), "line": problem.line, "error": problem.message}
            self._audit(kind, detail, actor)

    def _audit(self, kind: str, detail: dict[str, object], actor: str) -> None:
        with transaction(self._engine) as session:
            audit(session, kind, actor=actor, detail=detail)


def incident_input(
    config: Config,
    engine: Engine,
    kind: ReplyKind,
    number: str,
    language: str | None = None,
    team: str | None = None,
) -> ContextInput:
    """The context the outbound composer builds for a mail of ``kind`` about the incident
    ``number`` to its producer (``NotFoundError`` if there is none), in ``language`` (by
    default the producer's, as the composer chooses it) for ``team`` (by default the
    incident's).  The kind's extras come from the sample data, and the ref token is signed
    with the sample secret: a preview never holds a real one.  Also what a canned reply
    (``canned.py``) is rendered with."""
    incident, producer, person_ids = _incident_facts(engine, number)
    language = language or (producer.language if producer else "en")
    team = team or incident.team
    if team not in config.teams:
        raise ReplyError(f"incident {incident.number} belongs to no configured team")
    tokens = sample_tokens(config.security.token_org)
    policy = config.sla.policy_of(incident.team, incident.type, incident.sla_policy)
    address = producer.email if producer else incident.opened_by or "producer@example.invalid"
    return ContextInput(
        kind=kind,
        address=address,
        team_key=team,
        team_name=config.teams[team].name,
        language=language if language in LANGUAGES else "en",
        incident=incident if kind.incident != "none" else None,
        producer=producer if kind.producer != "none" else None,
        person_ids=person_ids,
        ref_token=tokens.make(incident.number) if kind.carries_token else None,
        extra=sample_extra(kind),
        promise_days=policy.first_response_days,
    )


def _incident_facts(
    engine: Engine, number: str
) -> tuple[Incident, Producer | None, tuple[str, ...]]:
    """Incident ``number``, its producer and its Person IDs, detached from the session."""
    with transaction(engine, readonly=True) as session:
        incident = session.exec(select(Incident).where(Incident.number == number)).first()
        if incident is None:
            raise NotFoundError(f"no incident {number}")
        producer = session.get(Producer, incident.producer_id) if incident.producer_id else None
        person_ids = _person_ids(session, incident)
        session.expunge_all()
    return incident, producer, person_ids


def _active_key(name: TemplateName) -> _ActiveKey:
    return (name.layer, name.team, name.kind, name.part, name.language)


def _first(
    active: dict[_ActiveKey, TemplateName],
    folders: list[tuple[str, str | None, str]],
    kind: str,
    part: str,
) -> TemplateName | None:
    for layer, team, language in folders:
        found = active.get((layer, team, kind, part, language))
        if found is not None:
            return found
    return None


def _person_ids(session: Session, incident: Incident) -> tuple[str, ...]:
    """The incident's Person IDs in the order they were recorded (as the composer gets them)."""
    query = (
        select(IncidentConsumer.person_id)
        .where(IncidentConsumer.incident_id == incident.id)
        .order_by(col(IncidentConsumer.id))
    )
    return tuple(session.exec(query))


def _merged(problems: list[TemplateProblem], extra: TemplateProblem) -> tuple[TemplateProblem, ...]:
    """The check's problems and a render's, each (line, message) once."""
    seen = {(p.line, p.message) for p in problems}
    return (*problems, *([extra] if (extra.line, extra.message) not in seen else []))


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def _write_atomically(path: Path, source: str) -> None:
    """Write ``path`` so a reader sees the old file or the new one, never half of one: a
    temp file beside it (a dot name, which the reload skips), fsynced, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(source.encode("utf-8"))
            # mkstemp makes it 0600: every instance (perhaps another user) reads the folder
            os.fchmod(handle.fileno(), 0o644)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
