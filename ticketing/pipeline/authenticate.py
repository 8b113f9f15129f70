"""Stage *authenticate*: may this ``From:`` act as who it says it is?

Only an authenticated sender acts as a producer or staff (``pipeline/record.py``).
The first rule that applies decides:

  1. ``mode = "off"``: every ``From:`` is believed (a lab);
  2. mail from a shared mailbox's sent folder: vouched for by access to the mailbox;
  3. a client among ``trusted_hosts`` (the host itself, by default);
  4. ``Authentication-Results`` stamped by one of ``authserv_ids`` (RFC 8601 §5);
  5. for mail fetched from an IMAP mailbox configured so: its server's own topmost
     results (Exchange Online writes no authserv-id), or Exchange's marks of mail
     sent inside the tenant;
  6. ``mode = "verify"``: SPF, DKIM, ARC and DMARC checked here.

Everything else is not authenticated.  Authenticated means the ``From:`` domain
passed DMARC: SPF or DKIM passed for a domain aligned with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailer.headers import raw_header_values
from mailer.parsing import ParsedMessage
from mailer.sender_auth import (
    DnsSettings,
    SenderAuth,
    exchange_internal,
    topmost_results,
    trusted_results,
    verify_sender,
)
from ticketing.config import Config, ImapConfig
from ticketing.pipeline.types import RawMessage

__all__ = ["Authenticator"]

_RESULTS = "authentication-results"


@dataclass(frozen=True)
class Authenticator:
    """The authentication rules of one configuration (built once per pipeline)."""

    config: Config

    @property
    def authserv_id(self) -> str:
        return self.config.authentication.authserv_id or self.config.outbound.id_domain

    def check(self, raw: RawMessage, parsed: ParsedMessage) -> SenderAuth:
        settings = self.config.authentication
        domain = _domain(parsed.from_address)
        vouched = self._vouched(raw, domain)
        if vouched is not None:
            return vouched
        results = _results_as_written(parsed)
        trusted = trusted_results(results, settings.authserv_ids, domain, self.authserv_id)
        if trusted is None:
            trusted = self._mailbox_results(raw, parsed, domain)
        if trusted is not None:
            return trusted
        if settings.mode == "verify":
            return self._verify(raw, domain)
        return SenderAuth(False, "none", domain, self._stamp("none"), _NO_TRUSTED_RESULTS)

    def _vouched(self, raw: RawMessage, domain: str | None) -> SenderAuth | None:
        """Rules 1 to 3: a ``From:`` believed without looking at the message."""
        settings = self.config.authentication
        if settings.mode == "off":
            return self._believed("off", domain, "authentication is off")
        if raw.origin == "sent":
            return self._believed("mailbox", domain, "the shared mailbox's sent mail")
        if raw.peer is not None and raw.peer in settings.trusted_hosts:
            return self._believed("trusted_host", domain, f"trusted host {raw.peer}")
        return None

    def _mailbox_results(
        self, raw: RawMessage, parsed: ParsedMessage, domain: str | None
    ) -> SenderAuth | None:
        """Rule 5, only on mail fetched from the mailbox whose server stamped it."""
        imap = self._imap(raw)
        if imap is None:
            return None
        if imap.trust_internal and exchange_internal(parsed.headers):
            return self._believed("exchange_internal", domain, "mail inside the tenant")
        if imap.trust_results == "topmost":
            return topmost_results(_results_as_written(parsed), domain, self.authserv_id)
        return None

    def _imap(self, raw: RawMessage) -> ImapConfig | None:
        if raw.source != "imap" or not raw.mailboxes:
            return None
        try:
            return self.config.mailbox(raw.mailboxes[0]).imap
        except KeyError:
            return None

    def _verify(self, raw: RawMessage, domain: str | None) -> SenderAuth:
        settings = self.config.authentication
        dns = DnsSettings(settings.nameservers, float(settings.dns_timeout_seconds))
        return verify_sender(
            raw.raw,
            from_domain=domain,
            ip=raw.peer,
            helo=raw.helo,
            mail_from=raw.envelope_from,
            authserv_id=self.authserv_id,
            dns=dns,
        )

    def _believed(self, method: str, domain: str | None, reason: str) -> SenderAuth:
        """Believed without a check of ours: RFC 8601's "none", the reason as a comment."""
        return SenderAuth(True, method, domain, self._stamp(f"none ({reason})"), reason)

    def _stamp(self, results: str) -> str:
        return f"{self.authserv_id}; {results}"


_NO_TRUSTED_RESULTS = "no Authentication-Results from a trusted authserv-id"


def _results_as_written(parsed: ParsedMessage) -> list[str]:
    """The Authentication-Results values, topmost first, with RFC 2047 words left encoded:
    an MTA strips headers that claim its authserv-id as written, so a decoded
    ``=?us-ascii?q?mx.example?=`` must not become that id here."""
    return raw_header_values(parsed.message, _RESULTS)


def _domain(address: str | None) -> str | None:
    return address.rpartition("@")[2].lower() if address and "@" in address else None
