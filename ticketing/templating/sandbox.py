"""Compiling and rendering admin templates inside jinja2's immutable sandbox.

Templates are data written by admins, so they run with no access to Python
internals (``__class__``, ``__mro__``, ``__globals__``), cannot mutate what
they are given, and fail loudly on any name they are not given
(``StrictUndefined``) instead of printing an empty string into a producer's
mail.  HTML bodies are autoescaped; text parts are not.  Every jinja error is
translated here into ``TemplateError(file, line, message)``.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ticketing.errors import TemplateError, TemplateSecurityError

__all__ = ["compile_template", "environment", "render"]


def _make_env(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        auto_reload=False,
    )


_TEXT_ENV = _make_env(autoescape=False)
_HTML_ENV = _make_env(autoescape=True)


def environment(filename: str) -> ImmutableSandboxedEnvironment:
    """The environment for a file: autoescaping for ``.html``, plain for text."""
    return _HTML_ENV if filename.endswith(".html") else _TEXT_ENV


def compile_template(source: str, filename: str) -> Template:
    """Compile ``source``; ``TemplateError`` with the line of a syntax error."""
    env = environment(filename)
    try:
        code = env.compile(source, name=filename, filename=filename)
    except TemplateSyntaxError as exc:
        raise TemplateError(filename, exc.lineno or 1, f"syntax error: {exc.message}") from None
    return env.template_class.from_code(env, code, env.make_globals(None))


def render(template: Template, context: Mapping[str, Any]) -> str:
    """Render with a plain-dict context; any failure becomes a ``TemplateError``."""
    filename = template.filename or "<template>"
    try:
        return template.render(dict(context))
    except SecurityError as exc:
        line = _template_line(exc, filename)
        raise TemplateSecurityError(filename, line, f"forbidden by the sandbox: {exc}") from None
    except JinjaError as exc:
        line = _template_line(exc, filename)
        raise TemplateError(filename, line, _describe(exc)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        line = _template_line(exc, filename)
        # the message of these may quote data (a producer's name): name the type only
        raise TemplateError(filename, line, f"{type(exc).__name__} while rendering") from None


def _describe(exc: JinjaError) -> str:
    text = str(exc.message or type(exc).__name__)
    if type(exc).__name__ == "UndefinedError":
        return f"unknown variable: {text}"
    return text


def _template_line(exc: BaseException, filename: str) -> int:
    """The template line of the innermost frame jinja attributed to ``filename``."""
    line = 1
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == filename:
            line = lineno
    return line
