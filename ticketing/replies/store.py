"""The templates in use, reloaded when an admin edits them.

``reload()`` rereads every layer; a file whose content changed is validated
(the same checks as ``ticketd templates check``) and only then replaces its
previous version.  A broken edit is refused, logged with ``file:line: why``,
and the last good version stays in use; a broken *new* file is simply not
used, so the next layer's version (in the end the shipped one) answers.  The
set in use is swapped in one assignment, so renders in other threads see
either the old or the new set, never half of each.
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
from ticketing.replies.errors import ReplyError
from ticketing.replies.files import Layer, TemplateName, scan, shipped_dir
from ticketing.replies.sandbox import compile_template
from ticketing.replies.validate import TemplateProblem, validate_source

__all__ = ["LoadedTemplate", "ReloadResult", "TemplateSet", "TemplateStore", "layers_for"]

log = logging.getLogger(__name__)
_Key = tuple[str, str | None, str, str, str]  # layer, team, kind, part, language


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

    def __init__(self, config: Config, layers: Sequence[Layer]) -> None:
        self._config = config
        self._layers = tuple(layers)
        self._active: dict[_Key, LoadedTemplate] = {}
        self._refused: dict[Path, str] = {}
        self._lock = threading.Lock()
        self.initial_result = self.reload()
        """What the first load refused (the daemon audits it with ``audit_refused``)."""

    @classmethod
    def from_config(cls, config: Config) -> TemplateStore:
        """The admin's ``[templates] override_dir`` (if any) over the shipped templates."""
        return cls(config, layers_for(config))

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
        into[_key(name)] = LoadedTemplate(name, compile_template(source, str(name.path)), digest)
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
        keeping = "keeping the last good version" if previous else "not using it"
        for problem in problems:
            log.warning("template refused, %s: %s", keeping, problem.render())

    def select(
        self, kind: str, team: str, language: str, *, shipped_only: bool = False
    ) -> TemplateSet:
        """The variant for ``kind``: language, then layer, then team folder before kind folder."""
        active = self._active
        layers = [lay.name for lay in self._layers if not shipped_only or lay.name == "shipped"]
        for lang in dict.fromkeys((language, "en")):
            for layer in layers:
                for folder_team in (team, None):
                    found = self._set_in(active, layer, folder_team, kind, lang)
                    if found is not None:
                        return found
        raise ReplyError(f"no template for kind '{kind}' (team {team}, language {language})")

    @staticmethod
    def _set_in(
        active: dict[_Key, LoadedTemplate], layer: str, team: str | None, kind: str, lang: str
    ) -> TemplateSet | None:
        text = active.get((layer, team, kind, "text", lang))
        subject = active.get((layer, team, kind, "subject", lang))
        if text is None or subject is None:
            return None
        return TemplateSet(subject, text, active.get((layer, team, kind, "html", lang)))
