"""Canned replies: the texts a caseworker may start a reply to the producer from.

A canned reply is a template like any mail's (``templates/canned_<name>/``, kinds with
``fragment=True`` in ``ticketing.templating.kinds``), so admins word it per team and
language through the usual layers (an override folder's ``<team>/canned_<name>/``) and
the template editor.  Its subject is the label the reply form's picker shows; its body
is the text the reply box starts with.  It is a fragment, not a mail: what the
caseworker sends (edited or not) becomes the ``reply_text`` of a ``desk_reply``, which
adds the team's name and the ref token, and it is checked for consumer data like every
reply (``notes.reply_to_producer``).

Both are rendered for the incident at hand with the context the template editor's
preview uses (``template_editor.incident_input``): the incident, its producer, the
team, in the producer's language.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from jinja2 import Template
from sqlalchemy.engine import Engine

from ticketing.desk.template_editor import incident_input
from ticketing.errors import NotFoundError, ReplyError, TemplateError
from ticketing.templating.context import ContextInput, build_context
from ticketing.templating.kinds import CANNED_NAMES, CANNED_PREFIX, KINDS, ReplyKind
from ticketing.templating.sandbox import render
from ticketing.templating.template_store import TemplateSet, TemplateStore

__all__ = ["CannedReply", "CannedText", "canned_kind", "canned_replies", "render_canned"]


@dataclass(frozen=True)
class CannedReply:
    """A canned reply as the picker offers it: ``name`` (``documents_received``, the
    ``?canned=`` value) and ``label`` (its subject, rendered for the incident)."""

    name: str
    label: str


@dataclass(frozen=True)
class CannedText:
    """A canned reply rendered for an incident: the ``text`` to start the reply from, in
    ``language``, and the template ``files`` it came from (subject, body)."""

    name: str
    label: str
    text: str
    language: str
    files: tuple[str, ...]


def canned_kind(name: str) -> ReplyKind:
    """The kind of the canned reply ``name``; ``NotFoundError`` for any other name."""
    if name not in CANNED_NAMES:
        known = ", ".join(CANNED_NAMES)
        raise NotFoundError(f"no canned reply '{name}' (known: {known})")
    return KINDS[CANNED_PREFIX + name]


def canned_replies(store: TemplateStore, engine: Engine, number: str) -> list[CannedReply]:
    """The canned replies for incident ``number`` (``NotFoundError`` if there is none), as
    its team words them in its producer's language.  One that cannot be rendered for it
    (no template for its team, a label that fails) is left out, not offered broken; an
    incident of a team no longer configured gets none."""
    try:
        base = incident_input(store.config, engine, canned_kind(CANNED_NAMES[0]), number)
    except ReplyError:
        return []
    replies = []
    for name in CANNED_NAMES:
        try:
            chosen, context = _chosen(store, base, name)
            replies.append(CannedReply(name, _label(chosen.subject.template, context)))
        except ReplyError:  # TemplateError among them
            continue
    return replies


def render_canned(store: TemplateStore, engine: Engine, number: str, name: str) -> CannedText:
    """The canned reply ``name`` rendered for incident ``number``.  ``NotFoundError`` for
    an unknown name or incident; ``ReplyError`` when not even the shipped version renders.
    An admin's version that fails on this incident gives way to the shipped one, as a
    mail's template does in the composer."""
    base = incident_input(store.config, engine, canned_kind(name), number)
    chosen, context = _chosen(store, base, name)
    try:
        return _rendered(name, base.language, chosen, context)
    except TemplateError:
        shipped = store.select(
            CANNED_PREFIX + name, base.team_key, base.language, shipped_only=True
        )
        if shipped == chosen:
            raise
        return _rendered(name, base.language, shipped, context)


def _chosen(
    store: TemplateStore, base: ContextInput, name: str
) -> tuple[TemplateSet, dict[str, object]]:
    """The templates in use for ``name`` (team, language) and their context.  Every canned
    kind has the same variables, so one incident's input serves them all."""
    data = replace(base, kind=canned_kind(name))
    chosen = store.select(data.kind.name, data.team_key, data.language)
    return chosen, build_context(data)


def _rendered(
    name: str, language: str, chosen: TemplateSet, context: dict[str, object]
) -> CannedText:
    label = _label(chosen.subject.template, context)
    # no trailing blank lines: the desk reply puts its own blank line before the team name
    text = render(chosen.text.template, context).rstrip()
    return CannedText(name, label, text, language, tuple(chosen.files[:2]))


def _label(subject: Template, context: dict[str, object]) -> str:
    """A subject as a one-line label."""
    return " ".join(render(subject, context).split())
