"""What the render limits cost: the shipped templates rendered by ticketd's sandbox and by
jinja's own (the same options, none of the limits).

    .venv/bin/python bench/template_bench.py [--rounds 200]

Each shipped file is rendered against every sample context ``templates check`` gives its
kind (team escalated_cases), in both environments, round after round (alternating, so both
meet the same noise). Prints the median microseconds a render over the rounds for each, the
difference, and what it adds to one mail (three parts: subject, text, HTML). The outputs
must be identical; the script stops if one differs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path[:0] = [os.getcwd()]  # the tree in the current directory

from jinja2 import StrictUndefined  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

from ticketing.config import Config  # noqa: E402
from ticketing.templating.context import build_context  # noqa: E402
from ticketing.templating.files import Layer, scan, shipped_dir  # noqa: E402
from ticketing.templating.kinds import KINDS  # noqa: E402
from ticketing.templating.samples import sample_inputs  # noqa: E402
from ticketing.templating.sandbox import compile_template, render  # noqa: E402

_Case = tuple[Callable[[], str], Callable[[], str]]


def _cases() -> list[_Case]:
    """(ours, jinja's) render of every shipped file with every sample context."""
    org, cases = Config().security.token_org, []
    for path, name in scan(Layer("shipped", shipped_dir())):
        if name is None:
            continue
        source = path.read_text(encoding="utf-8")
        plain = ImmutableSandboxedEnvironment(
            undefined=StrictUndefined, autoescape=name.part == "html", keep_trailing_newline=True
        ).from_string(source)
        ours = compile_template(source, str(path))
        for data in sample_inputs(KINDS[name.kind], "escalated_cases", "T", name.language, org):
            context: dict[str, Any] = build_context(data)
            cases.append((_bind(render, ours, context), _bind(plain.render, context)))
    return cases


def _bind(function: Callable[..., str], *args: Any) -> Callable[[], str]:
    return lambda: function(*args)


def _round(renders: list[Callable[[], str]]) -> float:
    start = time.perf_counter()
    for one in renders:
        one()
    return (time.perf_counter() - start) / len(renders) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    cases = _cases()
    for ours, plain in cases:
        if ours() != plain():
            raise SystemExit("an output differs from jinja's: the limits changed a render")
    timings: dict[str, list[float]] = {"ticketd": [], "jinja": []}
    for _ in range(args.rounds):
        timings["jinja"].append(_round([plain for _, plain in cases]))
        timings["ticketd"].append(_round([ours for ours, _ in cases]))
    plain_us, ours_us = (statistics.median(timings[k]) for k in ("jinja", "ticketd"))
    print(f"{len(cases)} renders a round, {args.rounds} rounds; median microseconds a render:")
    print(f"  jinja's sandbox        {plain_us:8.1f}")
    print(f"  ticketd's (limited)    {ours_us:8.1f}")
    print(f"  difference             {ours_us - plain_us:+8.1f}  ({ours_us / plain_us - 1:+.0%})")
    print(f"  per mail (3 parts)     {3 * (ours_us - plain_us):+8.1f}")
    print(f"  files: {Path(shipped_dir())}")


if __name__ == "__main__":
    main()
