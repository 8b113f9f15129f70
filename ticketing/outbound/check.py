"""``ticketd templates check``: every template, every team, type and language.

Renders every file of every layer (not only the ones in use: a shadowed
template becomes active when the one above it is removed) and reports each
problem as ``file:line: message``.  With the PII guard, it also composes
every mail in use for producers of many names and languages and scans it as
the daemon's outbound scan does: a template the guard would withhold would
never reach a producer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from email import message_from_bytes, policy

from mailer.bodies import html_to_text
from pii_guard import AllowList, PiiGuard
from ticketing.config import Config
from ticketing.config.case_types import CASE_TYPES
from ticketing.errors import ReplyError
from ticketing.outbound.compose import ComposedMail, ReplyComposer
from ticketing.outbound.preview import sample_composer, sample_mail
from ticketing.outbound.scan import personal_data_in, recipient_allow
from ticketing.store.models import Incident, Producer
from ticketing.templating.files import Layer, TemplateName, scan
from ticketing.templating.kinds import KINDS, LANGUAGES, ReplyKind, reply_kind
from ticketing.templating.samples import sample_extras, sample_incident, sample_producers
from ticketing.templating.template_store import TemplateStore
from ticketing.templating.validate import TemplateProblem

__all__ = ["check_templates", "sample_mails", "withheld_problems"]

_NAMING = "not a template name (expected <kind>/ or <team>/<kind>/ with subject[.es].txt, "
_NAMING += "body[.es].txt or body[.es].html)"


def check_templates(
    config: Config, layers: Sequence[Layer], guard: PiiGuard | None = None
) -> list[TemplateProblem]:
    """Every problem in every layer, plus kinds that have no English template at all;
    with ``guard``, also every mail in use that the outbound scan would withhold."""
    problems: list[TemplateProblem] = []
    names: list[TemplateName] = []
    for layer in layers:
        for path, name in scan(layer):
            if name is None:
                problems.append(TemplateProblem(str(path), 1, _NAMING))
            else:
                names.append(name)
    # The store validates every file of every layer, shadowed ones too, with the same
    # checks a reload runs: what it refuses is what check reports.
    store = TemplateStore(config, layers, quiet=True)
    problems += store.initial_result.refused
    problems += _unused_html(names)
    problems += _missing_kinds(names, layers)
    if guard is not None:
        problems += withheld_problems(store, guard)
    return problems


def _unused_html(names: list[TemplateName]) -> list[TemplateProblem]:
    """An HTML body is used only with the text body of its own folder and language."""
    texts = {(n.layer, n.folder, n.language) for n in names if n.part == "text"}
    problems = []
    for n in names:
        if n.part == "html" and (n.layer, n.folder, n.language) not in texts:
            suffix = "" if n.language == "en" else f".{n.language}"
            message = f"never used: no body{suffix}.txt next to this file"
            problems.append(TemplateProblem(str(n.path), 1, message))
    return problems


def _missing_kinds(names: list[TemplateName], layers: Sequence[Layer]) -> list[TemplateProblem]:
    where = str(layers[-1].root) if layers else "templates"
    problems = []
    for part, file in (("text", "body.txt"), ("subject", "subject.txt")):
        english = {
            n.kind for n in names if n.team is None and n.language == "en" and n.part == part
        }
        problems += [
            TemplateProblem(f"{where}/{kind}/{file}", 1, f"no English {file} for kind '{kind}'")
            for kind in KINDS
            if kind not in english
        ]
    return problems


def withheld_problems(store: TemplateStore, guard: PiiGuard) -> list[TemplateProblem]:
    """Every mail in use to a producer (each kind, team, language and sample producer)
    that the outbound PII guard would withhold, blamed on the template it came from."""
    composer = sample_composer(store)
    problems: list[TemplateProblem] = []
    for kind, incident, producer in sample_mails(store):
        problems += _withheld(composer, guard, kind, incident, producer)
    return list(dict.fromkeys(problems))


def sample_mails(store: TemplateStore) -> Iterator[tuple[str, Incident, Producer]]:
    """Kind, incident and producer of each sample mail; the case types a team owns take
    turns across the producers, so each label is greeted without one mail per type."""
    config = store.config
    producers = {language: list(sample_producers(language)) for language in LANGUAGES}
    incidents = {team: _team_incidents(config, team) for team in config.teams}
    greeted: set[tuple[str, ...]] = set()
    for kind in (k for k in KINDS.values() if not k.internal):
        for team, owned in incidents.items():
            for language in LANGUAGES:
                count = _how_many(store, kind, team, language, greeted)
                for index, producer in enumerate(producers[language][:count]):
                    yield kind.name, owned[index % len(owned)], producer


def _how_many(
    store: TemplateStore, kind: ReplyKind, team: str, language: str, greeted: set[tuple[str, ...]]
) -> int | None:
    """Every sample producer (``None``) for templates not greeted yet; one where another
    team's mail used the same files (only the team's name differs) and for a kind that
    names no producer (the same mail whoever reads it)."""
    try:
        files = (kind.name, language, *store.select(kind.name, team, language).files)
    except ReplyError:
        return 0  # no template at all: reported as a missing kind
    new = files not in greeted
    greeted.add(files)
    return None if new and kind.producer != "none" else 1


def _team_incidents(config: Config, team: str) -> list[Incident]:
    """A sample incident of each case type routed to ``team`` (of every type if none is)."""
    owned = [t for t, owner in config.routing.teams.items() if owner == team]
    return [sample_incident(case_type, team) for case_type in owned or CASE_TYPES]


def _withheld(
    composer: ReplyComposer, guard: PiiGuard, kind: str, incident: Incident, producer: Producer
) -> list[TemplateProblem]:
    problems: list[TemplateProblem] = []
    for extra in sample_extras(reply_kind(kind)):
        try:
            mail = sample_mail(composer, kind, incident, producer, extra)
        except ReplyError:
            continue  # a template that does not render is reported by the file checks
        problems += _withheld_mail(mail, guard, producer, composer.config)
    return problems


def _withheld_mail(
    mail: ComposedMail, guard: PiiGuard, producer: Producer, config: Config
) -> list[TemplateProblem]:
    allow = recipient_allow(config, producer, mail.to)
    counts = personal_data_in(guard, allow, mail.visible_text)
    if not counts:
        return []
    message = f"the outbound PII guard would withhold this mail for producer '{producer.name}'"
    message += f" ({', '.join(sorted(counts))})"
    return [TemplateProblem(file, 1, message) for file in _blamed(mail, guard, allow)]


def _blamed(mail: ComposedMail, guard: PiiGuard, allow: AllowList) -> list[str]:
    """The template files whose part of ``mail`` holds the findings (the text body's when
    only the parts together do)."""
    message = message_from_bytes(mail.mime, policy=policy.default)
    parts = {"text/plain": "", "text/html": ""}
    for part in message.walk():
        if part.get_content_type() in parts:
            content = part.get_content()
            html = part.get_content_subtype() == "html"
            parts[part.get_content_type()] = html_to_text(content) if html else content
    texts = (str(message.get("Subject", "")), parts["text/plain"], parts["text/html"])
    blamed = [
        file
        for file, text in zip(mail.files, texts, strict=False)
        if personal_data_in(guard, allow, text)
    ]
    return blamed or [mail.files[1]]
