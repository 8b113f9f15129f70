"""Where templates live: the layers of folders and the names of the files in them.

A layer is a folder laid out as::

    <kind>/subject.txt  body.txt  [body.html]           English
    <kind>/subject.es.txt  body.es.txt  [body.es.html]  Spanish
    <team>/<kind>/...                                   one team's own version

Layers are searched in order (the admin's ``[templates] override_dir`` first,
then the shipped folder), part by part: the subject comes from the first
folder holding a good one for the language, the text body likewise, and the
HTML body only from the folder of the text body.  An admin may override one
part alone (a new subject) and keep the shipped others.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ticketing

__all__ = ["PARTS", "Layer", "TemplateName", "parse_name", "scan", "shipped_dir"]

PARTS = {"subject.txt": "subject", "body.txt": "text", "body.html": "html"}
_FILE = re.compile(r"^(subject|body)(?:\.([a-z]{2}))?\.(txt|html)$")
_IGNORED = {"README.md"}


@dataclass(frozen=True)
class Layer:
    name: str  # "override" | "shipped"
    root: Path


@dataclass(frozen=True)
class TemplateName:
    """One template file, by what it is for: layer, team (or all teams), kind, part, language."""

    layer: str
    path: Path
    rel: str
    team: str | None
    kind: str
    part: str  # subject | text | html
    language: str

    @property
    def folder(self) -> str:
        return f"{self.team}/{self.kind}" if self.team else self.kind


def shipped_dir() -> Path:
    """The shipped templates: inside the wheel, else the source tree's ``templates/``."""
    package = Path(ticketing.__file__).resolve().parent
    installed = package / "_shipped_templates"
    return installed if installed.is_dir() else package.parent / "templates"


def parse_name(layer: Layer, path: Path) -> TemplateName | None:
    """What ``path`` is for, or ``None`` when it is not named like a template."""
    rel = path.relative_to(layer.root).as_posix()
    parts = rel.split("/")
    match = _FILE.match(parts[-1])
    if match is None or len(parts) not in (2, 3):
        return None
    stem, language, ext = match.groups()
    part = PARTS.get(f"{stem}.{ext}")
    if part is None:
        return None
    team = parts[0] if len(parts) == 3 else None
    return TemplateName(layer.name, path, rel, team, parts[-2], part, language or "en")


def scan(layer: Layer) -> Iterator[tuple[Path, TemplateName | None]]:
    """Every file in ``layer`` with what it is for (``None``: not a template name)."""
    if not layer.root.is_dir():
        return
    for path in sorted(layer.root.rglob("*")):
        if path.is_file() and not path.name.startswith(".") and path.name not in _IGNORED:
            yield path, parse_name(layer, path)
