"""Compiling and rendering admin templates inside jinja2's immutable sandbox.

Templates are data written by admins, so they run with no access to Python
internals (``__class__``, ``__mro__``, ``__globals__``), cannot mutate what
they are given, and fail loudly on any name they are not given
(``StrictUndefined``) instead of printing an empty string into a producer's
mail.  HTML bodies are autoescaped; text parts are not.

Nor may a template freeze the daemon.  Jinja folds constant expressions while
it compiles (``{% if 9 ** 20000000 %}`` held the GIL for a minute before a
single render): the operators that can grow a value (``**``, ``*``, ``+``,
``%``) are intercepted, which also stops their folding, and every filter is
wrapped so none is folded either.  At render time those operators, the
filters, calls and ``~`` are measured first (``limits.py``), and calls and
loop steps check the render's deadline (``budget.py``).  Every jinja error
is translated here into ``TemplateError(file, line, message)``.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, cast

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ticketing.errors import TemplateError, TemplateSecurityError
from ticketing.templating import limits
from ticketing.templating.budget import RENDER_SECONDS, TimeLimit, checkpoint, loop_over

__all__ = ["BudgetedTemplate", "compile_template", "environment", "render"]


class BudgetedTemplate(Template):
    """A compiled template, and how long one render of it may take."""

    render_seconds: float = RENDER_SECONDS


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, with a deadline check in every loop and ``~`` measured."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):  # iterate environment.loop_over(iterable)
            hook = nodes.EnvironmentAttribute("loop_over", lineno=loop.iter.lineno)
            loop.iter = nodes.Call(hook, [loop.iter], [], None, None, lineno=loop.iter.lineno)
        super().visit_Template(node, frame)

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.new_buffer()")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:  # the same choice of join as jinja's own
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        else:
            join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"environment.join_checked({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Buffer(list[str]):
    """The body of a macro, call, filter block or ``{% set %}`` block as it is written:
    refused as soon as it passes ``MAX_OUTPUT``."""

    __slots__ = ("_size",)

    def __init__(self) -> None:
        super().__init__()
        self._size = 0

    def append(self, part: str) -> None:
        self._size += len(part)
        limits.check_output(self._size)
        super().append(part)

    def extend(self, parts: Iterable[str]) -> None:
        for part in parts:
            self.append(part)


def _checked_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` measured before and after; ``pass_context`` also keeps jinja from folding it."""

    @pass_context
    def checked(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        checkpoint()
        limits.check_filter(name, value, args, kwargs)
        result = context.call(func, value, *args, **kwargs)
        limits.check_value(result, f"'{name}'")
        return result

    return checked


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(("**", "*", "+", "%"))
    code_generator_class = _CodeGenerator
    template_class = BudgetedTemplate
    loop_over = staticmethod(loop_over)
    new_buffer = _Buffer

    def __init__(self, autoescape: bool) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=autoescape,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self.filters = {name: _checked_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits.check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(
        __self,  # jinja's own names: a template may pass ``self=`` or ``context=``
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        checkpoint()
        limits.check_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def join_checked(self, join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ ...``: the operands measured before they are joined."""
        limits.check_concat(parts)
        result = join(parts)
        limits.check_value(result, "'~'")
        return result


_TEXT_ENV = _Sandbox(autoescape=False)
_HTML_ENV = _Sandbox(autoescape=True)


def environment(filename: str) -> ImmutableSandboxedEnvironment:
    """The environment for a file: autoescaping for ``.html``, plain for text."""
    return _HTML_ENV if filename.endswith(".html") else _TEXT_ENV


def compile_template(
    source: str, filename: str, render_seconds: float = RENDER_SECONDS
) -> BudgetedTemplate:
    """Compile ``source`` (computing none of it); ``TemplateError`` with the line of a
    syntax error.  Each render of the template may take ``render_seconds``."""
    env = environment(filename)
    try:
        code = env.compile(source, name=filename, filename=filename)
    except TemplateSyntaxError as exc:
        raise TemplateError(filename, exc.lineno or 1, f"syntax error: {exc.message}") from None
    except ValueError:  # Python refuses to read an integer of more than 4300 digits
        raise TemplateError(filename, _long_number_line(source), "number too long") from None
    globals_ = env.make_globals(None)
    template = cast(BudgetedTemplate, BudgetedTemplate.from_code(env, code, globals_))
    template.render_seconds = render_seconds
    return template


def _long_number_line(source: str) -> int:
    found = re.search(r"\d{1000,}", source)
    return source.count("\n", 0, found.start()) + 1 if found else 1


def render(template: Template, context: Mapping[str, Any]) -> str:
    """Render with a plain-dict context; any failure becomes a ``TemplateError``."""
    filename = template.filename or "<template>"
    seconds = getattr(template, "render_seconds", RENDER_SECONDS)
    try:
        with TimeLimit(seconds):
            return _output(template, dict(context))
    except SecurityError as exc:
        line = _template_line(exc, filename)
        raise TemplateSecurityError(filename, line, f"forbidden by the sandbox: {exc}") from None
    except JinjaError as exc:
        line = _template_line(exc, filename)
        raise TemplateError(filename, line, _describe(exc)) from None
    except RecursionError as exc:
        line = _template_line(exc, filename)
        message = "calls nested too deep (a macro or loop calling itself?)"
        raise TemplateError(filename, line, message) from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        line = _template_line(exc, filename)
        # the message of these may quote data (a producer's name): name the type only
        raise TemplateError(filename, line, f"{type(exc).__name__} while rendering") from None


def _output(template: Template, context: dict[str, Any]) -> str:
    """The rendered text; too long, it stops at the line writing it (thrown into the render)."""
    chunks = cast(Generator[str, None, None], template.generate(context))
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size > limits.MAX_OUTPUT:
            chunks.throw(limits.too_long("the output", size, limits.MAX_OUTPUT))
    return "".join(parts)


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
