"""The templates in use, reloaded when an admin edits them.

``reload()`` rereads every layer; a file whose content changed is validated
(the same checks as ``ticketd templates check``) and only then replaces its
previous version.  A broken edit is refused, logged with ``file:line: why``,
and the last good version stays in use; a broken *new* file is simply not
used, so the next folder's version of that part (in the end the shipped one)
answers while the good files beside it stay in use.  The set in use is
swapped in one assignment, so renders in other threads see either the old or
the new set, never half of each.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Template

from ticketing.config import Config
from ticketing.errors import ReplyError
from ticketing.templating.files import Layer, TemplateName, scan, shipped_dir
from ticketing.templating.sandbox import compile_template
from ticketing.templating.validate import TemplateProblem, validate_source

__all__ = ["LoadedTemplate", "ReloadResult", "TemplateSet", "TemplateStore", "layers_for"]

log = logging.getLogger(__name__)
_Key = tuple[str, str | None, str, str, str]  # layer, team, kind, part, language
_Folder = tuple[str, str | None, str]  # layer, team (None: the kind folder), language


@dataclass(frozen=True)
class LoadedTemplate:
    name: TemplateName
    template: Template
    digest: str


@dataclass(frozen=True)
class TemplateSet:
    """The subject, text body and optional HTML body one mail is rendered from."""

    subject: LoadedTemplate
    text: LoadedTemplate
    html: LoadedTemplate | None

    @property
    def files(self) -> list[str]:
        parts = (self.subject, self.text, self.html)
        return [str(p.name.path) for p in parts if p is not None]


@dataclass
class ReloadResult:
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: list[TemplateProblem] = field(default_factory=list)


def layers_for(config: Config) -> list[Layer]:
    """The admin's ``[templates] override_dir`` (if set) first, then the shipped folder."""
    layers = [Layer("shipped", shipped_dir())]
    if config.templates.override_dir:
        layers.insert(0, Layer("override", Path(config.templates.override_dir)))
    return layers


def _key(name: TemplateName) -> _Key:
    return (name.layer, name.team, name.kind, name.part, name.language)


def read_source(name: TemplateName) -> tuple[str, str, list[TemplateProblem]]:
    """Source, content digest, and a problem when the file cannot be read as UTF-8."""
    try:
        raw = name.path.read_bytes()
    except OSError as exc:
        problem = TemplateProblem(str(name.path), 1, f"cannot read: {exc.strerror}")
        return "", "", [problem]
    digest = hashlib.sha256(raw).hexdigest()
    try:
        return raw.decode("utf-8"), digest, []
    except UnicodeDecodeError:
        return "", digest, [TemplateProblem(str(name.path), 1, "not UTF-8 text")]


class TemplateStore:
    """The active version of every template file, by layer, team, kind, part and language."""

    def __init__(self, config: Config, layers: Sequence[Layer], *, quiet: bool = False) -> None:
        self._config = config
        self._layers = tuple(layers)
        self._active: dict[_Key, LoadedTemplate] = {}
        self._refused: dict[Path, str] = {}
        self._lock = threading.Lock()
        # ``templates check`` and ``preview`` print the refusals themselves as
        # ``file:line: message``; a warning beside each would say it twice.
        self._quiet = quiet
        self.initial_result = self.reload()
        """What the first load refused (the daemon audits it with ``audit_refused``)."""

    @classmethod
    def from_config(cls, config: Config, *, quiet: bool = False) -> TemplateStore:
        """The admin's ``[templates] override_dir`` (if any) over the shipped templates."""
        return cls(config, layers_for(config), quiet=quiet)

    @property
    def layers(self) -> tuple[Layer, ...]:
        return self._layers

    @property
    def config(self) -> Config:
        return self._config

    def active(self) -> list[LoadedTemplate]:
        """Every file in use, in layer order."""
        return list(self._active.values())

    def reload(self) -> ReloadResult:
        """Pick up edits: validate changed files, keep the last good version of broken ones."""
        with self._lock:
            result = ReloadResult()
            old = {t.name.path: t for t in self._active.values()}
            new: dict[_Key, LoadedTemplate] = {}
            for layer in self._layers:
                for path, name in scan(layer):
                    if name is not None:
                        self._load_one(name, old.get(path), new, result)
            seen = {t.name.path for t in new.values()}
            result.removed = sorted(str(p) for p in old if p not in seen)
            self._active = new
        return result

    def _load_one(
        self,
        name: TemplateName,
        previous: LoadedTemplate | None,
        into: dict[_Key, LoadedTemplate],
        result: ReloadResult,
    ) -> None:
        source, digest, problems = read_source(name)
        if previous is not None and previous.digest == digest:
            self._refused.pop(name.path, None)  # reverted to the good version
            into[_key(name)] = previous
            return
        if self._refused.get(name.path) == digest:  # known broken, already reported
            if previous is not None:
                into[_key(name)] = previous
            return
        problems = problems or validate_source(name, source, self._config)
        if problems:
            self._refuse(name, digest, previous, problems, into, result)
            return
        self._refused.pop(name.path, None)
        seconds = self._config.templates.render_timeout_seconds
        template = compile_template(source, str(name.path), seconds)
        into[_key(name)] = LoadedTemplate(name, template, digest)
        result.changed.append(str(name.path))

    def _refuse(
        self,
        name: TemplateName,
        digest: str,
        previous: LoadedTemplate | None,
        problems: list[TemplateProblem],
        into: dict[_Key, LoadedTemplate],
        result: ReloadResult,
    ) -> None:
        if previous is not None:
            into[_key(name)] = previous
        self._refused[name.path] = digest
        result.refused.extend(problems)
        if self._quiet:
            return
        keeping = "keeping the last good version" if previous else "not using it"
        for problem in problems:
            log.warning("template refused, %s: %s", keeping, problem.render())

    def select(
        self, kind: str, team: str, language: str, *, shipped_only: bool = False
    ) -> TemplateSet:
        """Each part of ``kind`` from the first folder that has a good version of it.

        Folders in order: language (then ``en``), then layer, then the team folder
        before the kind folder.  The subject and the text body are chosen apart, so a
        refused override body does not discard the admin's good override subject.
        """
        active = self._active  # one read: a reload swaps the whole dict, never half of it
        folders = self._folders(team, language, shipped_only)
        subject = _first(active, folders, kind, "subject")
        text = _first(active, folders, kind, "text")
        if subject is None or text is None:
            raise ReplyError(f"no template for kind '{kind}' (team {team}, language {language})")
        # The HTML body only from the folder that gave the text body: the two are the
        # alternatives of one mail and must say the same thing, which an HTML body from
        # another layer or language (written for another text) would not.
        name = text.name
        html = active.get((name.layer, name.team, kind, "html", name.language))
        return TemplateSet(subject, text, html)

    def _folders(self, team: str, language: str, shipped_only: bool) -> list[_Folder]:
        layers = [lay.name for lay in self._layers if not shipped_only or lay.name == "shipped"]
        return [
            (layer, folder_team, lang)
            for lang in dict.fromkeys((language, "en"))
            for layer in layers
            for folder_team in (team, None)
        ]


def _first(
    active: dict[_Key, LoadedTemplate], folders: list[_Folder], kind: str, part: str
) -> LoadedTemplate | None:
    """``part`` of ``kind`` from the first of ``folders`` that holds a good one."""
    for layer, team, lang in folders:
        found = active.get((layer, team, kind, part, lang))
        if found is not None:
            return found
    return None
