"""Bombs written into a template's source, found before it ever runs.

``templates check`` and reload render each template with sample data, which
never reaches a branch like ``{% if producer.name == "x" %}``: a bomb there
would pass.  So the parsed template is also searched for operations whose
operands are written in it — ``9 ** 20000000``, ``"x" * 10 ** 9``,
``"%999999999d" | format(1)``, ``"x".ljust(10 ** 9)``, ``range(10 ** 9)``,
``lipsum(10 ** 6)``, loops over ``range`` nested past ``MAX_LOOP_STEPS`` — and
each is measured with the checks the sandbox applies at render time
(``limits.py``).  Constant operands are computed only once those checks
passed, so no huge value is ever built here either.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import MAX_RANGE
from jinja2.utils import generate_lorem_ipsum

from ticketing.templating.limits import MAX_LOOP_STEPS, check_binop, check_call, check_filter

__all__ = ["find_bombs"]

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}


def find_bombs(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    """``(line, why)`` of every operation on written values the sandbox would refuse."""
    found: set[tuple[int, str]] = set()
    for node in tree.find_all((nodes.BinExpr, nodes.Filter, nodes.Call)):
        try:
            _check(node)
        except nodes.Impossible:
            continue  # not made of written values: the sandbox measures it at render time
        except SecurityError as exc:
            found.add((node.lineno, str(exc)))
    found.update(_nested_loops(tree, 1))
    yield from sorted(found)


def _check(node: nodes.Node) -> None:
    if isinstance(node, nodes.BinExpr):
        _value(node)
    elif isinstance(node, nodes.Filter) and node.node is not None:
        args, kwargs = _arguments(node)
        check_filter(node.name, _value(node.node), args, kwargs)
    elif isinstance(node, nodes.Call):
        _check_call(node)


def _value(node: nodes.Node) -> Any:
    """The value of an expression of written values, each step measured before it is made;
    ``Impossible`` when it is not one."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [_value(item) for item in node.items]
        return items if isinstance(node, nodes.List) else tuple(items)
    if isinstance(node, nodes.Neg | nodes.Pos):
        sign = operator.neg if isinstance(node, nodes.Neg) else operator.pos
        return _computed(sign, _value(node.node))
    if isinstance(node, nodes.BinExpr) and node.operator in _OPERATORS:
        left, right = _value(node.left), _value(node.right)
        check_binop(node.operator, left, right)
        return _computed(_OPERATORS[node.operator], left, right)
    raise nodes.Impossible()


def _computed(function: Callable[..., Any], *values: Any) -> Any:
    try:
        return function(*values)
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise nodes.Impossible() from exc  # "a" - 1, 1 / 0: the render will report it


def _arguments(node: nodes.Filter | nodes.Call) -> tuple[list[Any], dict[str, Any]]:
    if node.dyn_args is not None or node.dyn_kwargs is not None:
        raise nodes.Impossible()
    return [_value(arg) for arg in node.args], {str(kw.key): _value(kw.value) for kw in node.kwargs}


def _check_call(node: nodes.Call) -> None:
    """``range(...)``, ``lipsum(...)`` and methods of written strings and numbers."""
    callee = node.node
    if isinstance(callee, nodes.Name) and callee.name == "range":
        _check_range(*_arguments(node))
    elif isinstance(callee, nodes.Name) and callee.name == "lipsum":
        check_call(generate_lorem_ipsum, *_arguments(node))
    elif isinstance(callee, nodes.Getattr) and not callee.attr.startswith("_"):
        method = getattr(_value(callee.node), callee.attr, None)
        if method is not None:
            check_call(method, *_arguments(node))


def _range_length(args: list[Any], kwargs: dict[str, Any]) -> int:
    try:
        return len(range(*args, **kwargs))
    except (TypeError, ValueError, OverflowError) as exc:
        raise nodes.Impossible() from exc


def _check_range(args: list[Any], kwargs: dict[str, Any]) -> None:
    length = _range_length(args, kwargs)
    if length > MAX_RANGE:
        raise SecurityError(f"range() of {length:,} numbers; the limit is {MAX_RANGE:,}")


def _steps(loop: nodes.For) -> int:
    """How many times ``loop`` runs, when it runs over ``range`` of written numbers (else 1)."""
    call = loop.iter
    if not (isinstance(call, nodes.Call) and isinstance(call.node, nodes.Name)):
        return 1
    if call.node.name != "range":
        return 1
    try:  # a longer range is refused on its own (_check_range)
        return min(max(_range_length(*_arguments(call)), 1), MAX_RANGE)
    except nodes.Impossible:
        return 1


def _nested_loops(node: nodes.Node, outer: int) -> Iterator[tuple[int, str]]:
    """Loops over ``range`` nested (``outer`` steps around ``node``) past ``MAX_LOOP_STEPS``."""
    for child in node.iter_child_nodes():
        steps = outer * _steps(child) if isinstance(child, nodes.For) else outer
        if steps > MAX_LOOP_STEPS:
            why = f"loops nested to {steps:,} steps; the limit is {MAX_LOOP_STEPS:,}"
            yield child.lineno, why
            continue
        yield from _nested_loops(child, steps)
