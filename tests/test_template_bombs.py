"""A template can never freeze the daemon: bombs are refused before they run, wherever they are.

Before, ``{% if (9**20000000) > 1 %}`` held the GIL for 58 s while jinja compiled it
(constant folding), and passed ``templates check`` in a branch the samples never reach.
Each refusal here is timed: well under a second proves the bomb never ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ticketing.config import Config
from ticketing.config.templates_schema import TemplatesConfig
from ticketing.errors import TemplateError, TemplateSecurityError
from ticketing.outbound.request import ReplyRequest
from ticketing.store.models import AuditEvent
from ticketing.templating.context import build_context
from ticketing.templating.files import Layer, TemplateName, scan, shipped_dir
from ticketing.templating.kinds import KINDS
from ticketing.templating.limits import MAX_OUTPUT
from ticketing.templating.reload import reload_templates
from ticketing.templating.samples import sample_inputs
from ticketing.templating.sandbox import compile_template, render
from ticketing.templating.template_store import TemplateStore
from ticketing.templating.validate import TemplateProblem, validate_source

from .builders import NOW, add_case, make_composer, queue_mail
from .conftest import RunCli

# No sample speaks this language: a bomb under it is never reached by rendering samples.
UNREACHED = '{% if language == "xx" %}'

BOMBS = {  # name: (a line of template, what the refusal says after "forbidden by the sandbox: ")
    "power": (
        "{% if (9**20000000) > 1 %}x{% endif %}",
        "'**' would make a number of 19,084,850 digits; the limit is 1,000",
    ),
    "repeat": (
        '{{ "x" * 10 ** 9 }}',
        "'*' would make 1,000,000,000 characters; the limit is 100,000",
    ),
    "format filter": (
        '{{ "%999999999d" | format(1) }}',
        "% formatting would make 1,000,000,011 characters; the limit is 100,000",
    ),
    "percent": (
        '{{ "%999999999d" % 1 }}',
        "% formatting would make 1,000,000,010 characters; the limit is 100,000",
    ),
    "center": (
        '{{ "x" | center(10 ** 9) }}',
        "center would make 1,000,000,000 characters; the limit is 100,000",
    ),
    "str.format": (
        '{{ "{:>999999999}".format(1) }}',
        "str.format would make 1,000,000,013 characters; the limit is 100,000",
    ),
    "ljust": (
        '{{ "x".ljust(10 ** 9) }}',
        "ljust would make 1,000,000,000 characters; the limit is 100,000",
    ),
    "range": (
        "{{ range(10 ** 9) | list }}",
        "range() of 1,000,000,000 numbers; the limit is 100,000",
    ),
    "lipsum": (
        "{{ lipsum(10 ** 6) }}",
        "lipsum would make 800,000,000 characters; the limit is 100,000",
    ),
    "nested loops": (
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
        "loops nested to 9,999,800,001 steps; the limit is 1,000,000",
    ),
}


def hidden(bomb: str) -> str:
    """A resolved body with ``bomb`` on line 3, in a branch no sample reaches."""
    return f"Resolved.\n{UNREACHED}\n{bomb}\n{{% endif %}}\n{{{{ ref_token }}}}\n"


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def override_name(folder: Path, rel: str) -> TemplateName:
    [(_, name)] = [(p, n) for p, n in scan(Layer("override", folder)) if p == folder / rel]
    assert name is not None
    return name


def write(folder: Path, rel: str, text: str) -> Path:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- compiling: no folding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{% if (9**20000000) > 1 %}x{% endif %}",
        '{{ "x" | center(10 ** 9) }}',
        '{{ "%999999999d" | format(1) }}',
        '{{ "x" * 999999999 }}',
    ],
)
def test_compiling_computes_nothing(source: str) -> None:
    """Jinja folds constant expressions while compiling: not the growing operators, not
    filters. The value would only be made when rendered, where it is refused."""
    template, elapsed = timed(lambda: compile_template(source, "x/body.txt"))
    assert elapsed < 1
    with pytest.raises(TemplateSecurityError):
        render(template, {})


def test_a_number_too_long_to_read_is_a_syntax_problem() -> None:
    with pytest.raises(TemplateError) as info:
        compile_template("Hi\n{{ 1" + "0" * 5000 + " }}\n", "x/body.txt")
    assert (info.value.line, info.value.message) == (2, "number too long")


# --- templates check and reload refuse a bomb wherever it is ----------------------------------


@pytest.mark.parametrize("bomb", BOMBS)
def test_validation_refuses_a_bomb_in_a_branch_no_sample_reaches(bomb: str, tmp_path: Path) -> None:
    source, why = BOMBS[bomb]
    path = write(tmp_path, "resolved/body.txt", hidden(source))
    name = override_name(tmp_path, "resolved/body.txt")
    problems, elapsed = timed(lambda: validate_source(name, hidden(source), Config()))
    assert problems == [TemplateProblem(str(path), 3, f"forbidden by the sandbox: {why}", True)]
    assert elapsed < 1


def test_templates_check_names_every_bomb_with_file_and_line(
    run_cli: RunCli, tmp_path: Path
) -> None:
    folder = tmp_path / "admin"
    kinds = ("ack_new", "ack_reply", "resolved", "pii_redacted", "not_authorized")
    slots = [f"{kind}/{part}" for kind in kinds for part in ("subject.txt", "body.txt")]
    files = {
        write(folder, rel, hidden(source)): why
        for rel, (source, why) in zip(slots, BOMBS.values(), strict=True)
    }
    config = write(tmp_path, "config.toml", f'[templates]\noverride_dir = "{folder}"\n')
    result, elapsed = timed(lambda: run_cli("--config", str(config), "templates", "check"))
    assert result.code == 1
    for path, why in files.items():
        assert f"{path}:3: forbidden by the sandbox: {why}" in result.out.splitlines()
    # the whole check (every shipped file, sample mails through the PII guard) takes 2-4 s
    # here, more on a loaded machine; the first bomb alone took 58 s, and most take longer
    assert elapsed < 30


def test_reload_refuses_each_bomb_and_keeps_the_last_good_version(
    tmp_path: Path, engine: Engine
) -> None:
    body = write(tmp_path, "resolved/body.txt", "Resolved, first version.\n{{ ref_token }}\n")
    store = TemplateStore.from_config(Config(templates=TemplatesConfig(override_dir=str(tmp_path))))
    for source, why in BOMBS.values():
        body.write_text(hidden(source), encoding="utf-8")
        result, elapsed = timed(lambda: reload_templates(store, engine, NOW))
        assert elapsed < 1
        assert [p.render() for p in result.refused] == [
            f"{body}:3: forbidden by the sandbox: {why}"
        ]
        chosen = store.select("resolved", "escalated_cases", "en")
        assert chosen.text.name.path == body
        assert render(chosen.text.template, {"ref_token": "T"}) == "Resolved, first version.\nT\n"
    with Session(engine) as session:
        violations = AuditEvent.kind == "template_security_violation"
        events = session.exec(
            select(AuditEvent).where(violations).order_by(col(AuditEvent.id))
        ).all()
    assert [(e.detail["file"], e.detail["line"]) for e in events] == [(str(body), 3)] * len(BOMBS)


# --- at render time: values the check cannot see ---------------------------------------------


def rendered(source: str, context: dict[str, Any] | None = None, seconds: float = 1.0) -> str:
    return render(compile_template(source, "x/body.txt", seconds), context or {})


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("{{ name * n }}", "'*' would make 10,000,000,000 characters"),
        ("{{ 9 ** n }}", "'**' would make a number of 954,242,509 digits"),
        (
            "{% set ns = namespace(v=n) %}{% for i in range(40) %}"
            "{% set ns.v = ns.v * ns.v %}{% endfor %}",
            "'*' would make a number of 1,152 digits",
        ),
        ("{{ (name ~ ',') * 99999 }}", "'*' would make 1,099,989 characters"),
        ("{{ [name] * n }}", "'*' would make"),
        ("{{ name | center(n) }}", "center would make"),
        ("{{ name | indent(n) }}", "indent would make"),
        ("{{ name | replace('', name * 9000) }}", "replace would make 990,010 characters"),
        ("{{ range(99999) | join(name) }}", "join would make"),
        ("{{ name.rjust(n) }}", "rjust would make"),
        ("{{ '%*d' % (n, 1) }}", "a '*' width or precision in % formatting is not allowed"),
        ("{{ '{:{}}'.format(1, n) }}", "a format width taken from a value is not allowed"),
        ("{{ lipsum(n) }}", "lipsum would make"),
        ("{{ n.to_bytes(n, 'big') }}", "to_bytes would make"),
        (
            "{% set ns = namespace(s=name) %}{% for i in range(60) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "'~' would make",
        ),
        ("{% for i in range(99999) %}{{ name | center(99999) }}{% endfor %}", "the output would"),
        (
            "{% set x %}{% for i in range(99999) %}{{ name | center(99999) }}{% endfor %}"
            "{% endset %}",
            "the output would",
        ),
        ("{{ ''.__class__ }}", "access to attribute '__class__' of 'str' object is unsafe"),
    ],
)
def test_render_refuses_a_bomb_made_of_data(source: str, why: str) -> None:
    context = {"name": "sam amsung", "n": 10**9}
    start = time.perf_counter()
    with pytest.raises(TemplateSecurityError) as info:
        rendered(f"Hi\n{source}\n", context)
    assert time.perf_counter() - start < 1
    assert (info.value.file, info.value.line) == ("x/body.txt", 2)
    assert why in info.value.message
    assert info.value.message.startswith("forbidden by the sandbox: ")


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(99999) %}{% for j in range(n) %}{% endfor %}{% endfor %}",
        "{% for a in name | center(90000) %}{% for b in name | center(90000) %}"
        "{% endfor %}{% endfor %}",
        "{% macro f(k) %}{% if k %}{{ f(k - 1) }}{{ f(k - 1) }}{% endif %}{% endmacro %}"
        "{{ f(60) }}",
    ],
)
def test_the_render_stops_at_its_deadline(source: str) -> None:
    template = compile_template(f"Hi\n{source}\n", "x/body.txt", render_seconds=0.1)
    start = time.perf_counter()
    with pytest.raises(TemplateError) as info:
        render(template, {"name": "sam amsung", "n": 99999})
    assert time.perf_counter() - start < 1
    assert info.value.message == "took longer than 0.1 s to render (the limit)"
    assert (info.value.file, info.value.line) == ("x/body.txt", 2)
    assert not isinstance(info.value, TemplateSecurityError)  # slow, not forbidden


@pytest.mark.parametrize(
    "call_itself",
    [
        "{% macro f(k) %}{{ f(k) }}{% endmacro %}{{ f(1) }}",
        "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}",
    ],
)
def test_calling_itself_stops_at_the_recursion_limit(call_itself: str) -> None:
    source = f"Hi\n{call_itself}\n"
    start = time.perf_counter()
    with pytest.raises(TemplateError) as info:
        rendered(source)
    assert time.perf_counter() - start < 1
    assert info.value.message == "calls nested too deep (a macro or loop calling itself?)"
    assert info.value.line == 2


def test_range_is_capped_by_the_sandbox() -> None:
    assert rendered("{{ range(n) | length }}", {"n": MAX_RANGE}) == str(MAX_RANGE)
    with pytest.raises(TemplateError, match="OverflowError while rendering"):
        rendered("{{ range(n) | length }}", {"n": MAX_RANGE + 1})


def test_an_output_just_under_the_limit_is_fine() -> None:
    text = rendered("{% for i in range(10) %}{{ 'x' | center(n) }}{% endfor %}", {"n": 99999})
    assert len(text) == 999_990 < MAX_OUTPUT


# --- a bomb on real data: the mail goes out from the shipped template --------------------------


def ack_new_request(engine: Engine, number: str) -> ReplyRequest:
    incident, producer = add_case(engine, number=number)
    return ReplyRequest(
        kind="ack_new",
        to=producer.email,
        incident=incident,
        producer=producer,
        in_reply_to="<CAF1@mail.brokers.example>",
        references=(),
    )


def audit_details(engine: Engine, kind: str) -> list[dict[str, Any]]:
    with Session(engine) as session:
        return [e.detail for e in session.exec(select(AuditEvent).where(AuditEvent.kind == kind))]


@pytest.mark.parametrize(
    ("bomb", "audited"),
    [
        ("{{ incident.number * 10 ** 8 }}", "template_security_violation"),
        (
            "{% for i in range(99999) %}{% for j in range(incident.number | length * 9999) %}"
            "{% endfor %}{% endfor %}",
            "template_failed",
        ),
    ],
)
def test_a_bomb_real_data_sets_off_falls_back_to_the_shipped_template(
    bomb: str, audited: str, tmp_path: Path, engine: Engine
) -> None:
    """Samples never carry this incident number: check passes the template, the mail sets
    the bomb off, and the shipped body is sent instead (audited), within the budget."""
    body = "Hi\n{% if incident.number == '261126-0000001' %}" + bomb + "{% endif %}\n"
    write(tmp_path, "ack_new/body.txt", body + "{{ ref_token }}\n")
    templates = TemplatesConfig(override_dir=str(tmp_path), render_timeout_seconds=0.2)
    config = Config(templates=templates)
    request, composer = ack_new_request(engine, "261126-0000001"), make_composer(config)
    row, elapsed = timed(lambda: queue_mail(engine, composer, request, now=NOW))
    assert elapsed < 1
    assert row is not None and row.status == "pending"
    [detail] = audit_details(engine, audited)
    assert (detail["file"], detail["line"]) == (str(tmp_path / "ack_new" / "body.txt"), 2)
    assert detail["used_instead"][1] == str(shipped_dir() / "ack_new" / "body.txt")


# --- what is not a bomb renders as before -----------------------------------------------------


def plain_jinja(autoescape: bool) -> ImmutableSandboxedEnvironment:
    """Jinja's own sandbox with ticketd's options, and none of its limits."""
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=autoescape, keep_trailing_newline=True
    )


ORDINARY = [
    "{% for x in xs %}{{ loop.index }}/{{ loop.length }}{{ ',' if not loop.last }}{% endfor %}",
    "{% for x in xs if x > 1 %}{{ x }}{% else %}none{% endfor %}",
    "{% for x in [[1, [2]], [3]] recursive %}[{{ x if x is number else loop(x) }}]{% endfor %}",
    "{% for k, v in {'a': 1, 'b': 2} | dictsort %}{{ k }}={{ v }};{% endfor %}{% for c in 'ab' %}"
    "{{ c }}{% endfor %}",
    "{{ 2 ** 10 }} {{ 'ab' * 3 }} {{ [1] * 3 }} {{ '%05d|%-4s|%.2f' % (42, 'x', 3.14159) }} "
    "{{ '{:>6}|{:^7}'.format('a', 'b') }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 1 + 2 }} {{ 'a' + 'b' }}",
    "{{ 'a' ~ xs ~ 1 }} {{ name | center(12) }}| {{ name | indent(2, true) }} "
    "{{ xs | join(', ') }} {{ name | replace('a', 'A') }} {{ '%s-%s' | format('a', 'b') }}",
    "{% macro card(t) %}<{{ t }}|{{ caller() }}>{% endmacro %}{% call card(name) %}"
    "<b>{{ name }}</b>{% endcall %}",
    "{% set block %}<i>{{ name }}</i>{% endset %}{{ block }}{% filter upper %}{{ name }}"
    "{% endfilter %}",
    "{{ xs | tojson }} {{ xs | batch(2) | list }} {{ xs | slice(2) | list }} {{ xs | sum }}"
    " {{ name.upper().split() }} {{ lipsum(1, false, 3, 4) | wordcount }}",
]


@pytest.mark.parametrize("source", ORDINARY)
@pytest.mark.parametrize("filename", ["x/body.txt", "x/body.html"])
def test_ordinary_templates_render_as_jinja_renders_them(source: str, filename: str) -> None:
    context = {"xs": [1, 2, 3], "name": "<sam> & amsung"}
    plain = plain_jinja(filename.endswith(".html")).from_string(source)
    assert render(compile_template(source, filename), context) == plain.render(context)


def shipped_renders() -> Iterator[tuple[str, dict[str, Any]]]:
    org = Config().security.token_org
    for path, name in scan(Layer("shipped", shipped_dir())):
        if name is None:
            continue
        for data in sample_inputs(KINDS[name.kind], "escalated_cases", "T", name.language, org):
            yield str(path), build_context(data)


def test_every_shipped_template_renders_as_jinja_renders_it() -> None:
    compiled: dict[str, tuple[Any, Any]] = {}
    for path, context in shipped_renders():
        if path not in compiled:
            source = Path(path).read_text(encoding="utf-8")
            plain = plain_jinja(path.endswith(".html")).from_string(source)
            compiled[path] = (compile_template(source, path), plain)
        ours, plain = compiled[path]
        assert render(ours, context) == plain.render(context), path
    assert len(compiled) == len(list(Path(shipped_dir()).rglob("*.txt"))) + 2  # and 2 HTML
