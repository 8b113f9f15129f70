"""Templated auto-replies and notices: render in a sandbox, apply the loop rules, queue.

The intake pipeline and the SLA sweeper call ``queue_reply`` inside the
transaction that records the event; ``ticketing.outbox`` delivers the rows.

    store = TemplateStore.from_config(config)
    composer = ReplyComposer(config, store, tokens, secret)
    row = queue_reply(session, composer, ReplyRequest(kind="ack_new", to=..., ...), now=now)
"""

from ticketing.replies.check import check_templates
from ticketing.replies.compose import ComposedMail, ReplyComposer
from ticketing.replies.enqueue import queue_reply
from ticketing.replies.errors import ReplyError, TemplateError, TemplateSecurityError
from ticketing.replies.kinds import KINDS, LANGUAGES, ReplyKind, reply_kind
from ticketing.replies.reload import audit_refused, reload_templates, watch_templates
from ticketing.replies.request import ReplyRequest
from ticketing.replies.store import ReloadResult, TemplateSet, TemplateStore
from ticketing.replies.validate import TemplateProblem

__all__ = [
    "KINDS",
    "LANGUAGES",
    "ComposedMail",
    "ReloadResult",
    "ReplyComposer",
    "ReplyError",
    "ReplyKind",
    "ReplyRequest",
    "TemplateError",
    "TemplateProblem",
    "TemplateSecurityError",
    "TemplateSet",
    "TemplateStore",
    "audit_refused",
    "check_templates",
    "queue_reply",
    "reload_templates",
    "reply_kind",
    "watch_templates",
]
