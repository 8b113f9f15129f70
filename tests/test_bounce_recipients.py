"""Failed recipients of real bounces: the corpus sets that publish what their own tests
expect (sisimai, Mail-DeliveryStatus-BounceParser, flufl.bounce), each vendor's prose read
alone, and the status and the delay of each failure.  ``bench/bounce_eval.py`` prints the
rates these tests hold."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mailer.bounce_notices import notice_of, recipients_in
from mailer.bounces import Failure, failures
from mailer.parsing import ParsedMessage, parse_message

from .corpus import CorpusFile, corpus_files
from .mail import make_mail

# sisimai bounces whose recipient count failures() does not match, and why
SISIMAI_KNOWN = {
    # a list manager's "you are not a member" notice: screened "list"; no recipient of ours
    "maildir/bsd/lhost-fml-02.eml",
    # sendmail's DSN names the alias (Final-Recipient), which is the bounce's own To
    "maildir/bsd/lhost-sendmail-39.eml",
}
_NOT_FAILURES = {"feedback", "vacation", "delivered"}


def _parsed(shared_dir: Path, rel: str) -> ParsedMessage:
    return parse_message((shared_dir / "corpus" / rel).read_bytes())


def _found(shared_dir: Path, rel: str) -> tuple[Failure, ...]:
    return failures(_parsed(shared_dir, rel))


@pytest.fixture(scope="module")
def corpus(shared_dir: Path) -> list[CorpusFile]:
    return corpus_files(shared_dir)


def test_sisimai_bounces_give_as_many_recipients_as_sisimai_finds(shared_dir: Path) -> None:
    """go-sisimai's tables give one row per failed recipient (not the address): the count
    must match, and no recipient may be the bounce's own From or To."""
    table = json.loads(
        (shared_dir / "corpus/sisimai/expected/go-sisimai-expected.json").read_text()
    )
    missed = set()
    checked = 0
    for rel, case in table["expected"].items():
        wanted = [r for r in case["results"] if r["reason"] not in _NOT_FAILURES]
        if not wanted:
            continue
        checked += 1
        parsed = _parsed(shared_dir, f"sisimai/{rel}")
        found = failures(parsed)
        own = {parsed.from_address, *parsed.to}
        if len({f.recipient for f in found}) != len(wanted) or own & {f.recipient for f in found}:
            missed.add(rel)
    assert checked == 54
    assert missed <= SISIMAI_KNOWN, missed - SISIMAI_KNOWN


def test_bounceparser_bounces_name_their_recipients(corpus: list[CorpusFile]) -> None:
    """Every file BounceParser's tests call a bounce gives a recipient, the one named where
    the test names it (``bounced1..4@example.net``: four)."""
    cases = [f for f in corpus if f.source == "bounceparser" and "is_bounce=1" in f.expected]
    assert len(cases) == 26
    for item in cases:
        found = {a for f in failures(parse_message(item.path.read_bytes())) for a in f.addresses}
        assert found, item.rel
        assert item.expected_addresses() <= found, item.rel
        ranged = re.search(r"addresses=(\w+?)1\.\.(\d)(@\S+)", item.expected)
        if ranged:
            stem, last, domain = ranged.groups()
            assert found == {f"{stem}{n}{domain}" for n in range(1, int(last) + 1)}


def test_flufl_bounce_samples_give_their_failure_sets(corpus: list[CorpusFile]) -> None:
    cases = [f for f in corpus if f.source == "flufl_bounce"]
    assert len(cases) == 21
    for item in cases:
        found = {a for f in failures(parse_message(item.path.read_bytes())) for a in f.addresses}
        expected = item.expected_addresses()
        assert expected <= found if expected else not found, item.rel


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        # Postfix: "<addr>: host ... said:"
        ("bounceparser/t/corpus/postfix.msg", ["bounce@dest.example.com"]),
        # Exchange 2003: "did not reach the following recipient(s):" (upper-case address)
        ("bounceparser/t/corpus/exchange.unknown.msg", ["recipient@example.net"]),
        # Exchange Online: "Delivery has failed to these recipients or groups:"
        ("sisimai/maildir/bsd/lhost-office365-01.eml", ["kijitora@example.com"]),
        # Gmail: "Delivery to the following recipient failed permanently:"
        ("sisimai/maildir/bsd/lhost-gmail-01.eml", ["userunknown@example.jp"]),
        # qmail: "<addr>:" blocks
        ("bounceparser/t/corpus/qmail.unknown.msg", ["recipient@example.net"]),
        # Lotus Domino and Notes: "was not delivered to:", "Failure Reasons"
        ("bounceparser/t/corpus/domino.unknown.msg", ["recipient@example.net"]),
        ("sisimai/maildir/bsd/lhost-notes-01.eml", ["kijitora@u1.example.co.jp"]),
        # Sendmail-style: "The following addresses had permanent fatal errors", transcripts
        ("sisimai/maildir/bsd/lhost-activehunter-02.eml", ["kijitora@example.ed.jp"]),
        ("sisimai/maildir/bsd/lhost-v5sendmail-06.eml", ["kijitora@example.edu"]),
        # Exim: "The following address(es) failed:"
        ("sisimai/maildir/bsd/lhost-exim-02.eml", ["kijitora@example.jp", "sabatora@example.jp"]),
        # Yahoo, DragonFly, Zoho, MessageLabs, Amazon WorkMail (DSN fields in the text)
        ("sisimai/maildir/bsd/lhost-yahoo-14.eml", ["kijitora@example.org"]),
        ("sisimai/maildir/bsd/lhost-dragonfly-07.eml", ["contenterror@libsisimai.net"]),
        (
            "sisimai/maildir/bsd/lhost-zoho-02.eml",
            ["mikeneko@example.co.jp", "sabineko@example.co.jp"],
        ),
        ("sisimai/maildir/bsd/rhost-messagelabs-01.eml", ["kijitora@example.messagelabs.com"]),
        ("sisimai/maildir/bsd/lhost-amazonworkmail-03.eml", ["kuroneko@example.org"]),
        # IIS: four recipients
        (
            "bounceparser/t/corpus/iis-multiple-bounce.msg",
            [f"bounced{n}@example.net" for n in range(1, 5)],
        ),
    ],
)
def test_each_vendors_prose_is_read_alone(shared_dir: Path, rel: str, expected: list[str]) -> None:
    """The notice's words alone (no DSN fields, no flufl.bounce) name the recipients."""
    parsed = _parsed(shared_dir, rel)
    own = frozenset({parsed.from_address or "", *parsed.to})
    assert recipients_in(notice_of(parsed.text), own) == expected


@pytest.mark.parametrize(
    ("rel", "statuses"),
    [
        ("sisimai/maildir/bsd/lhost-qmail-07.eml", {"kijitora@example.jp": "4.4.1"}),  # (#4.4.1)
        ("sisimai/maildir/bsd/lhost-gmail-01.eml", {"userunknown@example.jp": "5.1.1"}),
        (
            "sisimai/maildir/bsd/lhost-exim-02.eml",  # X-Failed-Recipients, codes in the text
            {"kijitora@example.jp": "5.1.1", "sabatora@example.jp": "5.2.1"},
        ),
        ("sisimai/maildir/bsd/lhost-amazonworkmail-03.eml", {"kuroneko@example.org": "5.3.5"}),
        # the DSN's Status lost in a folded Diagnostic-Code line without indentation
        (
            "sisimai/maildir/bsd/rhost-messagelabs-01.eml",
            {"kijitora@example.messagelabs.com": "5.0.0"},
        ),
        # the DSN says 4.0.0, its notice 421 4.7.0: the specific code of the same class
        (
            "sisimai/maildir/bsd/lhost-opensmtpd-13.eml",
            {"pseudo-local-part-of-yahoo-inc@yahoo.com": "4.7.0"},
        ),
    ],
)
def test_each_failure_has_the_status_its_bounce_gives(
    shared_dir: Path, rel: str, statuses: dict[str, str]
) -> None:
    assert {f.recipient: f.status for f in _found(shared_dir, rel)} == statuses


def test_a_delay_warning_is_not_a_mail_given_up(shared_dir: Path) -> None:
    (delayed,) = _found(shared_dir, "sisimai/maildir/bsd/lhost-opensmtpd-13.eml")
    assert (delayed.given_up, delayed.permanent) == (False, False)
    (warned,) = _found(shared_dir, "bounceparser/t/corpus/warning-8.msg")
    assert (warned.given_up, warned.status[0]) == (False, "4")


def test_a_dsn_original_recipient_is_kept(shared_dir: Path) -> None:
    (failure,) = _found(shared_dir, "flufl_bounce/flufl/bounce/tests/data/dsn_01.txt")
    assert failure.addresses == {"jimmymcegypt@sims-ms-daemon", "jimmymcegypt@go.com"}


def test_a_source_routed_dsn_recipient_is_an_address(shared_dir: Path) -> None:
    (failure,) = _found(shared_dir, "sisimai/maildir/bsd/lhost-messagingserver-02.eml")
    assert (failure.recipient, failure.original) == ("kijitora@server", "kijitora@example.net")


def _robot_notice(body: str, **headers: str) -> ParsedMessage:
    raw = make_mail(
        sender="Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        to="escalations+b.1234.ab12cd@exchange.example",
        subject="Delivery Status Notification (Failure)",
        body=body,
        headers=headers,
    )
    return parse_message(raw)


def test_gmail_address_not_found_is_read() -> None:
    notice = _robot_notice(
        "** Address not found **\n\n"
        "Your message wasn't delivered to jane@agency.example because the address couldn't "
        "be found, or is unable to receive mail.\n\n"
        "The response from the remote server was:\n"
        "550 5.1.1 The email account that you tried to reach does not exist.\n"
    )
    assert failures(notice) == (Failure("jane@agency.example", None, "5.1.1", True),)


def test_a_postfix_notice_without_its_dsn_part_is_read() -> None:
    notice = _robot_notice(
        "This is the mail system at host mx.brokers.example.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n\n"
        "For further assistance, please send mail to postmaster@brokers.example.\n\n"
        "                   The mail system\n\n"
        "<jane@agency.example>: host mx.agency.example[192.0.2.7] said: 550 5.1.1\n"
        "    <jane@agency.example>: Recipient address rejected: User unknown (in reply\n"
        "    to RCPT TO command)\n"
    )
    assert failures(notice) == (Failure("jane@agency.example", None, "5.1.1", True),)


def test_the_bounces_own_addresses_and_ids_are_never_failed_recipients() -> None:
    """The notice names the sender (our VERP return path), the daemon, a Message-ID."""
    notice = _robot_notice(
        "Your message sent by escalations+b.1234.ab12cd@exchange.example could not be "
        "delivered to the following recipients:\n\n"
        "  jane@agency.example\n"
        "  mailer-daemon@googlemail.com\n\n"
        "Message-ID: <tkd1.0.abc@exchange.example>\n"
    )
    assert [f.recipient for f in failures(notice)] == ["jane@agency.example"]


def test_an_ip_address_is_not_taken_for_a_status() -> None:
    notice = _robot_notice(
        "Delivery to the following recipient failed permanently:\n\n"
        "     jane@agency.example\n\n"
        "Google tried to deliver your message, but the server [192.0.2.153] refused it.\n"
    )
    assert [f.status for f in failures(notice)] == ["5.0.0"]


def test_x_failed_recipients_names_them() -> None:
    notice = _robot_notice(
        "Mail delivery failed.", **{"X-Failed-Recipients": "jane@agency.example"}
    )
    assert [f.recipient for f in failures(notice)] == ["jane@agency.example"]


def test_the_prose_is_not_read_when_asked_not_to() -> None:
    """Screening reads a notice's words only when a robot wrote it."""
    notice = _robot_notice("Your message wasn't delivered to jane@agency.example because.")
    assert failures(notice, prose=False) == ()
