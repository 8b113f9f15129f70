"""The kinds of mail ticketd writes, and what each one's templates may use.

The variable list of a kind is the contract with admins: a template may use
exactly these names (``ticketd templates check`` reports any other), and the
code fills them from plain data, never from live database objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ticketing.errors import ReplyError

__all__ = ["CANNED_NAMES", "CANNED_PREFIX", "KINDS", "LANGUAGES", "ReplyKind", "reply_kind"]

Presence = Literal["required", "optional", "none"]
LANGUAGES = ("en", "es")

INCIDENT_KEYS = (
    "number",
    "type",
    "type_label",
    "status",
    "priority",
    "opened_on",
    "person_ids",
    "promise_days",
)
PRODUCER_KEYS = ("name", "email", "npn", "language")
TEAM_KEYS = ("key", "name")
DICT_KEYS = {"incident": INCIDENT_KEYS, "producer": PRODUCER_KEYS, "team": TEAM_KEYS}
BASE_VARIABLES = ("address", "language", "team")
CANNED_PREFIX = "canned_"  # a canned reply's kind: canned_<name> (templates/canned_<name>/)
# The canned replies a caseworker may start a reply from (the console's reply form).
CANNED_NAMES = (
    "documents_received",
    "upload_in_portal",
    "need_more_information",
    "with_the_carrier",
)


@dataclass(frozen=True)
class ReplyKind:
    """One kind of mail: whether it is about an incident, to a producer, and its extras.

    ``internal`` mail (SLA notices to staff) is not a reply to anyone, so it is
    marked ``Auto-Submitted: auto-generated`` and the per-sender limits do not
    apply; every other kind answers a producer's message.
    """

    name: str
    incident: Presence
    producer: Presence
    extra: tuple[str, ...] = ()
    internal: bool = False
    # a person's words that ticketd sends on (a caseworker's desk reply): no Auto-Submitted,
    # and, like internal mail, only the undeliverable rule holds it back
    personal: bool = False
    optional: tuple[str, ...] = ()  # extras a request may leave out: an empty list then
    # A fragment is the start of a caseworker's words, not a mail of its own: a canned
    # reply, which becomes the ``reply_text`` of a ``desk_reply``, and that mail adds the
    # ref token.  So a fragment carries no token (the check asks for no token line) and
    # its templates may not use one.  ``templates check`` still composes it as a mail
    # for every sample producer and scans it as the outbound guard does: a canned text
    # with consumer data in it would be refused each time a caseworker sent it.
    fragment: bool = False

    @property
    def carries_token(self) -> bool:
        """Whether mail of this kind carries the incident's ref token (never to strangers)."""
        return self.incident != "none" and not self.fragment

    @property
    def variables(self) -> tuple[str, ...]:
        names = list(BASE_VARIABLES)
        if self.incident != "none":
            names.append("incident")
        if self.carries_token:
            names.append("ref_token")
        if self.producer != "none":
            names.append("producer")
        names += self.extra
        if "finding_types" in self.extra:
            names.append("finding_labels")  # the same kinds in words, in the mail's language
        return tuple(names)


KINDS: dict[str, ReplyKind] = {
    k.name: k
    for k in (
        # An acknowledgement also says what the guard removed (``finding_types`` empty when
        # nothing was): one mail, so a producer told of a redaction is never told twice.
        *(
            ReplyKind(
                name,
                incident="required",
                producer="optional",
                extra=("finding_types",),
                optional=("finding_types",),
            )
            for name in ("ack_new", "ack_reply")
        ),
        ReplyKind(
            "pii_rejected", incident="optional", producer="optional", extra=("finding_types",)
        ),
        ReplyKind(
            "pii_redacted", incident="required", producer="optional", extra=("finding_types",)
        ),
        ReplyKind("unknown_sender", incident="none", producer="none"),
        ReplyKind("not_authorized", incident="none", producer="optional"),
        ReplyKind(
            "sla_warning",
            incident="required",
            producer="optional",
            extra=("due_at", "level"),
            internal=True,
        ),
        ReplyKind(
            "sla_breach",
            incident="required",
            producer="optional",
            extra=("due_at", "level"),
            internal=True,
        ),
        ReplyKind("resolved", incident="required", producer="optional"),
        ReplyKind(
            "desk_reply",
            incident="required",
            producer="optional",
            extra=("reply_text", "subject", "quoted_text", "quoted_on"),
            personal=True,
        ),
        ReplyKind(
            "assigned",
            incident="required",
            producer="optional",
            extra=("assignee_name", "why", "due_at"),
            internal=True,
        ),
        ReplyKind(
            "staff_sent_pii",
            incident="required",
            producer="optional",
            extra=("finding_types", "caseworker"),
            internal=True,
        ),
        ReplyKind(
            "desk_reply_refused",
            incident="required",
            producer="optional",
            extra=("finding_types",),
            internal=True,
        ),
        # Canned replies: the incident's and the producer's facts, nothing else.
        *(
            ReplyKind(CANNED_PREFIX + name, incident="required", producer="optional", fragment=True)
            for name in CANNED_NAMES
        ),
    )
}


def reply_kind(name: str) -> ReplyKind:
    """The kind called ``name``; ``ReplyError`` for anything else."""
    try:
        return KINDS[name]
    except KeyError:
        raise ReplyError(f"unknown reply kind '{name}'") from None
