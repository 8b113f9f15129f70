"""``ticketd templates check``: every template, every team, type and language.

Renders every file of every layer (not only the ones in use: a shadowed
template becomes active when the one above it is removed) and reports each
problem as ``file:line: message``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ticketing.config import Config
from ticketing.replies.files import Layer, TemplateName, scan
from ticketing.replies.kinds import KINDS
from ticketing.replies.store import read_source
from ticketing.replies.validate import TemplateProblem, validate_source

__all__ = ["check_templates"]

_NAMING = "not a template name (expected <kind>/ or <team>/<kind>/ with subject[.es].txt, "
_NAMING += "body[.es].txt or body[.es].html)"


def check_templates(config: Config, layers: Sequence[Layer]) -> list[TemplateProblem]:
    """Every problem in every layer, plus kinds that have no English template at all."""
    problems: list[TemplateProblem] = []
    names: list[TemplateName] = []
    for layer in layers:
        for path, name in scan(layer):
            if name is None:
                problems.append(TemplateProblem(str(path), 1, _NAMING))
                continue
            names.append(name)
            source, _digest, unreadable = read_source(name)
            problems += unreadable or validate_source(name, source, config)
    problems += _incomplete_folders(names)
    problems += _missing_kinds(names, layers)
    return problems


def _incomplete_folders(names: list[TemplateName]) -> list[TemplateProblem]:
    """A variant needs a subject and a text body in the same folder and language."""
    present = {(n.layer, n.folder, n.language, n.part) for n in names}
    problems = []
    for n in names:
        for part, file in (("subject", "subject"), ("text", "body")):
            if (n.layer, n.folder, n.language, part) not in present:
                suffix = "" if n.language == "en" else f".{n.language}"
                message = f"{file}{suffix}.txt is missing next to this file"
                problems.append(TemplateProblem(str(n.path), 1, message))
    return list(dict.fromkeys(problems))


def _missing_kinds(names: list[TemplateName], layers: Sequence[Layer]) -> list[TemplateProblem]:
    english = {n.kind for n in names if n.team is None and n.language == "en" and n.part == "text"}
    where = str(layers[-1].root) if layers else "templates"
    return [
        TemplateProblem(f"{where}/{kind}/body.txt", 1, f"no English template for kind '{kind}'")
        for kind in KINDS
        if kind not in english
    ]
