"""How big a value a template may make, checked *before* Python makes it.

The sandbox keeps templates away from Python's internals, not from its
arithmetic: ``9 ** 20000000`` or ``"x" * 10 ** 9`` is one C call that holds the
GIL until it is done.  So every operation that can grow a value far beyond its
operands (``**``, ``*``, ``+``, ``%`` formatting, the filters and string
methods that take a width or a count, ``lipsum``) is measured here first, and
refused with jinja's ``SecurityError`` when its result would pass a bound:

- ``MAX_DIGITS``: digits of a number a template computes;
- ``MAX_VALUE``: characters (or items) of a string or list it computes;
- ``MAX_OUTPUT``: characters of a whole rendered part, or of a block or macro
  body joined on the way.

The sandbox (``sandbox.py``) runs these checks at render time; the static
check (``bombs.py``) runs the same ones on constant operands, so ``templates
check`` refuses a bomb in a branch no sample reaches.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeGuard

from jinja2.exceptions import SecurityError
from jinja2.utils import generate_lorem_ipsum

__all__ = [
    "MAX_DIGITS",
    "MAX_LOOP_STEPS",
    "MAX_OUTPUT",
    "MAX_VALUE",
    "check_binop",
    "check_call",
    "check_concat",
    "check_filter",
    "check_output",
    "check_value",
    "size_of",
    "too_long",
]

MAX_DIGITS = 1_000
MAX_VALUE = 100_000
MAX_OUTPUT = 1_000_000
MAX_LOOP_STEPS = 1_000_000
"""Steps of loops over ``range`` nested in each other (static check only: at render time
the deadline stops any loop)."""

_Args = Sequence[Any]
_Kwargs = Mapping[str, Any]
_LOG10_2 = math.log10(2)
# a %-conversion: mapping key, flags, width, precision, length modifier, type
_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?[a-zA-Z%]")
# a format spec: fill and align, sign, z, #, 0, width, grouping, precision, type
_SPEC = re.compile(r"(?:.?[<>=^])?[+\- ]?z?#?0?(\d*)[,_]?(?:\.(\d*))?[a-zA-Z%]?")
_FIELDS = re.compile(r"\{[^{}]*\}")


def size_of(value: object, depth: int = 2) -> int:
    """About how many characters ``value`` holds: its length and its items' (two levels)."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, list | tuple | dict) and depth > 0:
        items = value.values() if isinstance(value, dict) else value
        return len(value) + sum(size_of(item, depth - 1) for item in items)
    if isinstance(value, list | tuple | dict | set | frozenset):
        return len(value)
    return 0


def too_long(what: str, size: int, limit: int) -> SecurityError:
    return SecurityError(f"{what} would make {size:,} characters; the limit is {limit:,}")


def _refuse_size(what: str, size: int, limit: int = MAX_VALUE) -> None:
    if size > limit:
        raise too_long(what, size, limit)


def check_value(value: object, what: str) -> None:
    """A string or list a template made (``what``) must stay under ``MAX_VALUE``."""
    if isinstance(value, str | list | tuple):
        _refuse_size(what, len(value))


def check_output(size: int) -> None:
    """A rendered part, or a macro's or block's body, must stay under ``MAX_OUTPUT``."""
    _refuse_size("the output", size, MAX_OUTPUT)


def check_concat(parts: tuple[Any, ...]) -> None:
    """``a ~ b ~ ...``: the strings joined must stay under ``MAX_VALUE``."""
    _refuse_size("'~'", sum(len(part) for part in parts if isinstance(part, str)))


# --- operators ----------------------------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _refuse_digits(operator: str, digits: float) -> None:
    if digits > MAX_DIGITS:
        raise SecurityError(
            f"'{operator}' would make a number of {int(digits):,} digits;"
            f" the limit is {MAX_DIGITS:,}"
        )


def _digits(number: int) -> float:
    return abs(number).bit_length() * _LOG10_2


def _check_power(base: object, exponent: object) -> None:
    if _is_int(base) and _is_int(exponent) and abs(base) > 1 and exponent > 0:
        _refuse_digits("**", exponent * math.log10(abs(base)))


def _check_times(left: object, right: object) -> None:
    if _is_int(left) and _is_int(right):
        _refuse_digits("*", _digits(left) + _digits(right))
    elif _is_int(right):
        _refuse_size("'*'", size_of(left) * right)
    elif _is_int(left):
        _refuse_size("'*'", size_of(right) * left)


def _check_plus(left: object, right: object) -> None:
    if not (_is_int(left) or _is_int(right)):
        _refuse_size("'+'", size_of(left) + size_of(right))


def _check_modulo(left: object, right: object) -> None:
    if isinstance(left, str | bytes):
        _check_percent(left if isinstance(left, str) else left.decode("latin-1"), right)


_BINOPS: dict[str, Callable[[object, object], None]] = {
    "**": _check_power,
    "*": _check_times,
    "+": _check_plus,
    "%": _check_modulo,
}


def check_binop(operator: str, left: object, right: object) -> None:
    """Refuse ``left <operator> right`` when its result would pass a bound."""
    check = _BINOPS.get(operator)
    if check is not None:
        check(left, right)


# --- formatting ---------------------------------------------------------------------------------


def _width(digits: str) -> int:
    return int(digits[:18] or 0)  # 18 digits: already far over any limit


def _check_percent(template: str, values: object) -> None:
    """``template % values``: its widths and precisions, and the values it may copy."""
    size = len(template) + size_of(values)
    for match in _PERCENT.finditer(template):
        if "*" in match.groups():
            raise SecurityError("a '*' width or precision in % formatting is not allowed")
        size += _width(match.group(1)) + _width(match.group(2) or "")
    _refuse_size("% formatting", size)


def _check_format(template: str, args: _Args, kwargs: _Kwargs) -> None:
    """``template.format(...)``: widths must be written in the template, not taken from values."""
    size = len(template) + size_of(args) + size_of(list(kwargs.values()))
    for field in _FIELDS.finditer(template):
        spec = field.group(0)[1:-1].partition(":")[2]
        match = _SPEC.fullmatch(spec)
        if match is not None:
            size += _width(match.group(1)) + _width(match.group(2) or "")
    if "{" in _FIELDS.sub("", template.replace("{{", "").replace("}}", "")):
        raise SecurityError("a format width taken from a value is not allowed")
    _refuse_size("str.format", size)


# --- calls: string methods, filters, globals ----------------------------------------------------


def _arg(args: _Args, kwargs: _Kwargs, index: int, name: str, default: Any = None) -> Any:
    """An argument given by position (after the value) or by name."""
    return args[index] if len(args) > index else kwargs.get(name, default)


def _check_replace(text: object, old: object, new: object) -> None:
    if isinstance(text, bytes) and isinstance(old, bytes) and isinstance(new, bytes):
        text, old, new = text.decode("latin-1"), old.decode("latin-1"), new.decode("latin-1")
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        found = text.count(old) if old else len(text) + 1
        _refuse_size("replace", len(text) + found * len(new))


def _check_join(separator: object, items: object) -> None:
    if isinstance(separator, str | bytes) and isinstance(items, list | tuple | dict | str | range):
        _refuse_size("join", max(len(items) - 1, 0) * len(separator) + size_of(items))


def _check_width(owner: object, width: object, what: str) -> None:
    if _is_int(width):
        _refuse_size(what, max(size_of(owner), width))


def _check_tabs(owner: str | bytes, tabsize: object) -> None:
    if _is_int(tabsize):
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        _refuse_size("expandtabs", len(owner) + tabs * tabsize)


def _check_translate(owner: str | bytes, table: object) -> None:
    if isinstance(table, dict):
        longest = max((size_of(value) for value in table.values()), default=1)
        _refuse_size("translate", len(owner) * max(longest, 1))


def _str_method(owner: str | bytes, name: str, args: _Args, kwargs: _Kwargs) -> None:
    first = args[0] if args else None  # their first arguments are positional only
    if name in ("center", "ljust", "rjust", "zfill"):
        _check_width(owner, first, name)
    elif name == "expandtabs":
        _check_tabs(owner, _arg(args, kwargs, 0, "tabsize", 8))
    elif name == "join":
        _check_join(owner, first)
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1])
    elif name == "translate":
        _check_translate(owner, first)
    elif name == "format" and isinstance(owner, str):
        _check_format(owner, args, kwargs)
    elif name == "format_map" and isinstance(owner, str) and isinstance(first, Mapping):
        _check_format(owner, (), first)


def _check_lipsum(args: _Args, kwargs: _Kwargs) -> None:
    paragraphs, longest = _arg(args, kwargs, 0, "n", 5), _arg(args, kwargs, 3, "max", 100)
    if _is_int(paragraphs) and _is_int(longest):
        _refuse_size("lipsum", paragraphs * longest * 8)  # about 8 characters a word


def check_call(func: Any, args: _Args, kwargs: _Kwargs) -> None:
    """Refuse a call of a string method, ``int.to_bytes`` or ``lipsum`` whose result would
    pass a bound."""
    wrapped = getattr(func, "__wrapped__", None)  # the sandbox's own wrapper of str.format
    if getattr(wrapped, "__name__", "") in ("format", "format_map"):
        func = wrapped
    owner, name = getattr(func, "__self__", None), getattr(func, "__name__", "")
    if isinstance(owner, str | bytes):
        _str_method(owner, name, args, kwargs)
    elif _is_int(owner) and name == "to_bytes":
        _check_width(b"", _arg(args, kwargs, 0, "length"), name)
    elif func is generate_lorem_ipsum:
        _check_lipsum(args, kwargs)


def _filter_indent(value: Any, args: _Args, kwargs: _Kwargs) -> None:
    width = _arg(args, kwargs, 0, "width", 4)
    lines = str(value).count("\n") + 1 if isinstance(value, str) else 1
    _refuse_size("indent", size_of(value) + lines * (width if _is_int(width) else size_of(width)))


def _filter_wordwrap(value: Any, args: _Args, kwargs: _Kwargs) -> None:
    width, wrap = _arg(args, kwargs, 0, "width", 79), _arg(args, kwargs, 2, "wrapstring")
    if _is_int(width) and isinstance(wrap, str):
        breaks = size_of(value) // max(width, 1) + 1
        _refuse_size("wordwrap", size_of(value) + breaks * len(wrap))


def _filter_sum(value: Any, args: _Args, kwargs: _Kwargs) -> None:
    if not isinstance(_arg(args, kwargs, 1, "start", 0), int | float):  # adding lists: quadratic
        _refuse_size("sum", size_of(value) * size_of(value, depth=0))


def _filter_tojson(value: Any, args: _Args, kwargs: _Kwargs) -> None:
    indent = _arg(args, kwargs, 0, "indent")
    if _is_int(indent):
        _refuse_size("tojson", (size_of(value) + 1) * (indent + 1))


def _filter_format(value: Any, args: _Args, kwargs: _Kwargs) -> None:
    if isinstance(value, str):
        _check_percent(value, kwargs or tuple(args))


_FILTERS: dict[str, Callable[[Any, _Args, _Kwargs], None]] = {
    "center": lambda v, a, k: _check_width(v, _arg(a, k, 0, "width", 80), "center"),
    "indent": _filter_indent,
    "wordwrap": _filter_wordwrap,
    "replace": lambda v, a, k: _check_replace(v, _arg(a, k, 0, "old"), _arg(a, k, 1, "new")),
    "join": lambda v, a, k: _check_join(_arg(a, k, 0, "d", ""), v),
    "format": _filter_format,
    "batch": lambda v, a, k: _check_width((), _arg(a, k, 0, "linecount"), "batch"),
    "slice": lambda v, a, k: _check_width((), _arg(a, k, 0, "slices"), "slice"),
    "sum": _filter_sum,
    "tojson": _filter_tojson,
}


def check_filter(name: str, value: Any, args: _Args, kwargs: _Kwargs) -> None:
    """Refuse ``value | name(*args, **kwargs)`` on too big a value, or whose result would be."""
    if isinstance(value, str | list | tuple) and len(value) > MAX_VALUE:
        given = f"{len(value):,} characters"
        raise SecurityError(f"'{name}' was given {given}; the limit is {MAX_VALUE:,}")
    check = _FILTERS.get(name)
    if check is not None:
        check(value, args, kwargs)
