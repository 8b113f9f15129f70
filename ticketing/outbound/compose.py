"""From a reply request to a finished MIME message: resolve, render, add what code owns.

A typo in an admin's template must never stop the mail: when the selected
variant fails to render (data the samples did not foresee, or a sandbox
violation), the shipped variant of the same kind and language is used and
the failure is returned to the caller, who records it as an audit event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ticketing.config import Config
from ticketing.errors import ReplyError, TemplateError
from ticketing.outbound.mime import MailParts, build_mime, ensure_token, visible_text
from ticketing.outbound.request import ReplyRequest
from ticketing.signing.message_ids import make_message_id
from ticketing.signing.tokens import RefTokens
from ticketing.store.models import Incident
from ticketing.templating.context import ContextInput, build_context
from ticketing.templating.kinds import LANGUAGES, ReplyKind, reply_kind
from ticketing.templating.sandbox import render
from ticketing.templating.template_store import TemplateSet, TemplateStore

__all__ = ["ComposedMail", "Rendered", "ReplyComposer"]


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None
    files: tuple[str, ...]


@dataclass(frozen=True)
class ComposedMail:
    """A mail ready for the outbox, and the template failures that were worked around.

    ``visible_text`` is what the recipient will read (subject, text, HTML as
    text), kept so the outbound PII scan need not parse ``mime`` again.
    """

    kind: str
    to: str
    mail_from: str
    message_id: str
    mime: bytes
    visible_text: str
    files: tuple[str, ...]
    failures: tuple[TemplateError, ...]


class ReplyComposer:
    """Renders reply requests with the store's templates and signs their Message-IDs."""

    def __init__(
        self, config: Config, store: TemplateStore, tokens: RefTokens, secret: bytes
    ) -> None:
        self._config = config
        self._store = store
        self._tokens = tokens
        self._secret = secret

    @property
    def config(self) -> Config:
        return self._config

    @property
    def tokens(self) -> RefTokens:
        return self._tokens

    @property
    def secret(self) -> bytes:
        return self._secret

    def message_id_for(self, request: ReplyRequest) -> str:
        """A new signed Message-ID for the mail ``request`` asks for (it names the incident
        when the kind carries a ref token)."""
        kind = reply_kind(request.kind)
        number = request.incident.number if request.incident and kind.carries_token else None
        return make_message_id(number, self._secret, self._config.outbound.id_domain)

    def compose(
        self,
        request: ReplyRequest,
        *,
        person_ids: Sequence[str],
        now: datetime,
        message_id: str | None = None,
    ) -> ComposedMail:
        """The mail for ``request``; ``ReplyError`` if even the shipped template fails.

        ``message_id`` is the one chosen when the reply was ordered (a new one if none).
        """
        kind = reply_kind(request.kind)
        data = self._context_input(kind, request, person_ids)
        rendered, failures = self._render(kind, data)
        message_id = message_id or self.message_id_for(request)
        outbound = self._config.outbound
        speaker = self._speaker(data.team_key)
        parts = MailParts(
            from_name=data.team_name,
            from_address=speaker,
            reply_to=request.reply_to or speaker,
            to=data.address,
            subject=rendered.subject,
            text=ensure_token(rendered.text, data.ref_token, "text"),
            html=ensure_token(rendered.html, data.ref_token, "html") if rendered.html else None,
            message_id=message_id,
            in_reply_to=request.in_reply_to,
            references=request.references,
            date=now,
            auto_submitted=_auto_submitted(kind),
        )
        return ComposedMail(
            kind=kind.name,
            to=data.address,
            mail_from=outbound.from_address,
            message_id=message_id,
            mime=build_mime(parts),
            visible_text=visible_text(parts),
            files=rendered.files,
            failures=tuple(failures),
        )

    def _speaker(self, team: str) -> str:
        """The address mail about ``team``'s incidents comes from and is answered to: the
        mailbox that speaks for the team, so a producer's reply reaches that mailbox and
        its PII policy; ``[outbound] from_address`` for a team without a mailbox."""
        mailbox = self._config.team_mailbox(team)
        return mailbox.address if mailbox else self._config.outbound.from_address

    def _context_input(
        self, kind: ReplyKind, request: ReplyRequest, person_ids: Sequence[str]
    ) -> ContextInput:
        incident = request.incident if kind.incident != "none" else None
        team = request.team or (request.incident.team if request.incident else None)
        if team is None or team not in self._config.teams:
            raise ReplyError(f"a {kind.name} reply needs a configured team")
        language = request.language or (request.producer.language if request.producer else "en")
        token = self._tokens.make(incident.number) if incident and kind.carries_token else None
        return ContextInput(
            kind=kind,
            address=request.to.strip().lower(),
            team_key=team,
            team_name=self._config.teams[team].name,
            language=language if language in LANGUAGES else "en",
            incident=incident,
            producer=request.producer if kind.producer != "none" else None,
            person_ids=tuple(person_ids),
            ref_token=token,
            extra=request.extra,
            promise_days=self._promise_days(incident),
        )

    def _promise_days(self, incident: Incident | None) -> float:
        """The first-response promise of the incident's SLA policy (the default policy's
        when there is no incident)."""
        sla = self._config.sla
        if incident is None:
            return sla.policy.first_response_days
        return sla.policy_of(incident.team, incident.type, incident.sla_policy).first_response_days

    def _render(self, kind: ReplyKind, data: ContextInput) -> tuple[Rendered, list[TemplateError]]:
        context = build_context(data)
        chosen = self._store.select(kind.name, data.team_key, data.language)
        try:
            return _render_set(chosen, context), []
        except TemplateError as exc:
            failure = exc
        shipped = self._store.select(kind.name, data.team_key, data.language, shipped_only=True)
        if shipped == chosen:
            raise failure
        return _render_set(shipped, context), [failure]


def _auto_submitted(kind: ReplyKind) -> str:
    """RFC 3834: what marks the mail as automatic ("" for a person's words: none)."""
    if kind.personal:
        return ""
    return "auto-generated" if kind.internal else "auto-replied"


def _render_set(chosen: TemplateSet, context: dict[str, object]) -> Rendered:
    html = render(chosen.html.template, context) if chosen.html else None
    return Rendered(
        subject=render(chosen.subject.template, context),
        text=render(chosen.text.template, context),
        html=html,
        files=tuple(chosen.files),
    )
