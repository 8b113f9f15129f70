"""Is one template file fit to send?  Static checks, then renders against samples.

Used both by ``ticketd templates check`` and by the store when ``serve``
reloads an edited file, so the daemon accepts exactly what check accepts.
Problems are ``file:line: message``; the file is the path an admin edits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from jinja2 import Template, nodes

from ticketing.config import Config
from ticketing.errors import ReplyError, TemplateError, TemplateSecurityError
from ticketing.templating.bombs import find_bombs
from ticketing.templating.context import build_context
from ticketing.templating.files import TemplateName
from ticketing.templating.kinds import DICT_KEYS, KINDS, LANGUAGES, ReplyKind
from ticketing.templating.samples import sample_inputs
from ticketing.templating.sandbox import compile_template, environment, render

__all__ = ["TemplateProblem", "has_token_line", "validate_source"]


@dataclass(frozen=True)
class TemplateProblem:
    file: str
    line: int
    message: str
    security: bool = False

    def render(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def _problem(name: TemplateName, line: int, message: str) -> TemplateProblem:
    return TemplateProblem(str(name.path), line, message)


def has_token_line(text: str, token: str, part: str) -> bool:
    """Whether ``token`` stands on a line of its own (text) or appears at all (HTML)."""
    if part == "html":
        return token in text
    return any(line.strip() == token for line in text.splitlines())


def validate_source(name: TemplateName, source: str, config: Config) -> list[TemplateProblem]:
    """Every problem of one file: naming, syntax, unknown variables, render, token line."""
    kind = KINDS.get(name.kind)
    if kind is None:
        return [_problem(name, 1, f"unknown kind '{name.kind}' (known: {', '.join(KINDS)})")]
    if name.team is not None and name.team not in config.teams:
        return [_problem(name, 1, f"unknown team '{name.team}'")]
    if name.language not in LANGUAGES:
        return [_problem(name, 1, f"unknown language '{name.language}'")]
    try:
        template = compile_template(source, str(name.path), config.templates.render_timeout_seconds)
    except TemplateError as exc:
        return [_problem(name, exc.line, exc.message)]
    problems = list(_static_problems(name, source, kind))
    if not problems:
        problems += _render_problems(name, source, template, kind, config)
    return problems


def _static_problems(name: TemplateName, source: str, kind: ReplyKind) -> Iterator[TemplateProblem]:
    """Names and keys outside the kind's contract, and bombs (``bombs.py``), even in
    branches samples do not reach."""
    env = environment(str(name.path))
    tree = env.parse(source)
    allowed = set(kind.variables) | set(env.globals)
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in allowed and node.name not in assigned:
            yield _problem(name, node.lineno, f"unknown variable '{node.name}'")
    for access in tree.find_all((nodes.Getattr, nodes.Getitem)):
        yield from _unknown_key(name, access, kind)
    for line, why in find_bombs(tree):
        yield TemplateProblem(str(name.path), line, f"forbidden by the sandbox: {why}", True)


def _unknown_key(
    name: TemplateName, node: nodes.Node, kind: ReplyKind
) -> Iterator[TemplateProblem]:
    if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
        message = f"forbidden by the sandbox: attribute '{node.attr}'"
        yield TemplateProblem(str(name.path), node.lineno, message, security=True)
        return
    target = getattr(node, "node", None)
    if not isinstance(target, nodes.Name) or target.name not in kind.variables:
        return
    keys = DICT_KEYS.get(target.name)
    if isinstance(node, nodes.Getattr):
        key: object = node.attr
    else:
        arg = getattr(node, "arg", None)
        key = arg.value if isinstance(arg, nodes.Const) else None
    if keys is not None and isinstance(key, str) and key not in keys:
        yield _problem(name, node.lineno, f"unknown variable '{target.name}.{key}'")


def _render_problems(
    name: TemplateName, source: str, template: Template, kind: ReplyKind, config: Config
) -> list[TemplateProblem]:
    teams = [name.team] if name.team else list(config.teams)
    last_line = max(1, source.count("\n") + (0 if source.endswith("\n") else 1))
    for team in teams:
        for data in sample_inputs(
            kind, team, config.teams[team].name, name.language, config.security.token_org
        ):
            try:
                text = render(template, build_context(data))
            except TemplateError as exc:
                security = isinstance(exc, TemplateSecurityError)
                return [TemplateProblem(str(name.path), exc.line, exc.message, security)]
            except ReplyError as exc:
                return [_problem(name, 1, str(exc))]
            if name.part == "subject" and not text.strip():
                return [_problem(name, 1, "the subject renders empty")]
            if (
                name.part != "subject"
                and data.ref_token
                and not has_token_line(text, data.ref_token, name.part)
            ):
                return [_problem(name, last_line, "no line with {{ ref_token }} on its own")]
    return []
