"""How long one render may take: a deadline the sandbox checks as the template runs.

No thread or signal can stop Python code from outside, so the template stops
itself: the sandbox calls ``checkpoint()`` on every call (filters, macros,
methods) and every loop iteration (``loop_over``), which is everything a
template can repeat.  Past the deadline, jinja's ``TemplateRuntimeError`` ends
the render, which fails like any broken template.  One operation between two
checkpoints is kept small by ``limits.py``, so the deadline is overrun by
little.

The deadline lives in a context variable: each thread (the SMTP handler's,
a worker's, the dispatcher's) renders under its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from jinja2.exceptions import TemplateRuntimeError

from ticketing.config.templates_schema import TemplatesConfig

__all__ = ["RENDER_SECONDS", "TimeLimit", "checkpoint", "loop_over"]

RENDER_SECONDS: float = TemplatesConfig().render_timeout_seconds
"""The budget of one render unless ``[templates] render_timeout_seconds`` says otherwise."""

# (deadline on the monotonic clock, the budget it was set from)
_limit: ContextVar[tuple[float, float] | None] = ContextVar("render_limit", default=None)


class TimeLimit:
    """Renders in this block must finish within ``seconds`` of its start.

    A class rather than ``@contextmanager``: it runs once a render, and costs a third."""

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def __enter__(self) -> None:
        self._token = _limit.set((time.monotonic() + self._seconds, self._seconds))

    def __exit__(self, *exc_info: object) -> None:
        _limit.reset(self._token)


def _overrun(seconds: float) -> TemplateRuntimeError:
    return TemplateRuntimeError(f"took longer than {seconds:g} s to render (the limit)")


def checkpoint() -> None:
    """Raise once the render's deadline has passed (outside a render: never)."""
    limit = _limit.get()
    if limit is not None and time.monotonic() > limit[0]:
        raise _overrun(limit[1])


class _Loop:
    """An iterable that checks the deadline on every step, and keeps the length
    (when it has one) for ``loop.length`` and ``loop.last``."""

    __slots__ = ("_iterable",)

    def __init__(self, iterable: Iterable[Any]) -> None:
        self._iterable = iterable

    def __len__(self) -> int:
        return len(self._iterable)  # type: ignore[arg-type]  # TypeError: jinja counts instead

    def __iter__(self) -> Iterator[Any]:
        limit = _limit.get()
        if limit is None:
            yield from self._iterable
            return
        deadline, seconds = limit
        clock = time.monotonic
        for item in self._iterable:
            if clock() > deadline:
                raise _overrun(seconds)
            yield item


def loop_over(iterable: Iterable[Any]) -> Iterable[Any]:
    """What a template's ``{% for %}`` iterates instead of ``iterable`` itself."""
    return _Loop(iterable)
