"""Who is never a consumer in a conversation: the desk itself, and the producer in it.

The PII guard looks for consumers' data.  Mail between a producer and the
desk is full of the two parties' own identities: every quoted reply carries
our mailbox address in its attribution line and our team's name in the quoted
signature; a producer signs with their name, phone numbers and agency; our
acknowledgement greets the producer by name.  None of that is a consumer's
data, and flagging it would redact what caseworkers need, tell producers
they sent data they did not send, and withhold our own replies.

``pii_guard`` knows nothing of mailboxes or rosters; this module turns the
configuration and the roster into its ``AllowList``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from pii_guard import AllowList
from pii_guard.labels import all_labels
from ticketing.config import Config
from ticketing.store.models import Producer

__all__ = ["EXCHANGE_NAMES", "desk_allow", "party_allow"]

# How the exchange signs its mail, whatever the teams are called in the configuration.
EXCHANGE_NAMES = ("MHBE", "Maryland Health Benefit Exchange", "Maryland Health Connection")


def desk_allow(config: Config) -> AllowList:
    """The desk's own addresses (mailboxes, the outbound sender, staff, team leads and
    supervisors), its mail domains, its team names (the signature of its mail) and the
    words its mail names kinds of personal data with."""
    teams = config.teams.values()
    mailboxes = [box.address for box in config.mailboxes]
    own = (*mailboxes, config.outbound.from_address)
    people = config.staff.people
    emails = (
        *own,
        *config.staff.addresses,
        *(person.address for person in people),
        *(team.lead for team in teams if team.lead),
        *(team.supervisor for team in teams if team.supervisor),
    )
    domains = (*(address.rpartition("@")[2] for address in own), *config.staff.domains)
    return AllowList(
        # the desk's own signature blocks (quoted in replies) are marked by these
        organisations=_unique((*(team.name for team in teams), *EXCHANGE_NAMES)),
        greeting_names_the_desk=True,  # mail to the desk; outbound.scan turns it off
        emails=_unique(e.lower() for e in emails),
        email_domains=_unique(d.lower().lstrip("@") for d in domains),
        # the staff directory's names sign the desk's mail and its caseworkers' replies
        terms=_unique((*(team.name for team in teams), *(p.name for p in people), *all_labels())),
    )


def party_allow(
    desk: AllowList,
    *,
    producer: Producer | None,
    address: str | None,
    names: Iterable[str | None] = (),
) -> AllowList:
    """``desk`` plus the producer on the other side: the roster's name, address, phones
    and agency, the ``address`` written from or to, and the display ``names`` they use."""
    roster = (producer.name, producer.email) if producer else (None, None)
    return replace(
        desk,
        sender_name=roster[0],
        sender_email=address or roster[1],
        names=_unique(n for n in names if n),
        emails=_unique((*desk.emails, *(a.lower() for a in (roster[1], address) if a))),
        phones=tuple(producer.phones) if producer else (),
        terms=_unique((*desk.terms, *([producer.agency] if producer and producer.agency else []))),
        # the agency marks the producer's signature block (pii_guard.signature)
        organisations=_unique(
            (*desk.organisations, *([producer.agency] if producer and producer.agency else []))
        ),
    )


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
