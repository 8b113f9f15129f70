"""Screening of robots' mail, each class on real corpus mail where the corpus has one and on
mail shaped like the real thing where it has none; and people's mail that looks close."""

from __future__ import annotations

import base64
import gzip
import io
import struct
import zipfile
from pathlib import Path

import pytest

from mailer.parsing import parse_message
from mailer.screening import OwnIdentity, Screening, screen

from .mail import make_mail

OWN = OwnIdentity(
    frozenset({"escalations@exchange.example"}),
    "exchange.example",
    "escalations@exchange.example",
    "<tkd1.",
)
SAM = "Sam Amsung <sam@brokers.example>"


def _corpus(shared_dir: Path, rel: str, envelope: str | None = None) -> Screening:
    return screen(parse_message((shared_dir / "corpus" / rel).read_bytes()), envelope, OWN)


def _screen(raw: bytes, envelope: str | None = None) -> Screening:
    return screen(parse_message(raw), envelope, OWN)


# --- the null sender: the envelope's, else the Return-Path the delivering MTA wrote ----------


def test_a_return_path_header_stands_for_the_unknown_envelope() -> None:
    raw = b"Return-Path: <>\r\n" + make_mail(subject="Re: Escalated Case", body="Thanks.")
    verdict = _screen(raw, envelope=None)  # IMAP, the pipe without --sender
    assert (verdict.kind, verdict.reason) == ("auto_reply", "null return path")


def test_a_return_path_header_is_not_believed_over_a_known_envelope() -> None:
    raw = b"Return-Path: <>\r\n" + make_mail(subject="Re: Escalated Case", body="Thanks.")
    assert _screen(raw, envelope="sam@brokers.example").kind == "normal"
    assert _screen(make_mail(), envelope="").kind == "auto_reply"  # a null envelope is


def test_a_bounce_from_a_null_sender_without_subject_is_a_bounce(shared_dir: Path) -> None:
    """BounceParser's warning-5.msg: ``From: <>``, ``Return-Path: <>``, Auto-Submitted, no
    subject, one sentence naming the address."""
    verdict = _corpus(shared_dir, "bounceparser/t/corpus/warning-5.msg")
    assert (verdict.kind, verdict.failed_recipients) == ("bounce", ("a@b.c",))


# --- bounces are bounces, whatever else they declare ----------------------------------------


@pytest.mark.parametrize(
    "rel",
    [
        "sisimai/maildir/bsd/lhost-exim-52.eml",  # mailer-daemon, "Mail failure", auto-replied
        "zammad/test/fixtures/mail53.box",  # a Postfix DSN with Auto-Submitted: auto-replied
        "sisimai/maildir/not/rb-issue-368-bug.eml",  # postmaster, "email bounce notification"
    ],
)
def test_bounces_declaring_auto_submitted_are_bounces(shared_dir: Path, rel: str) -> None:
    verdict = _corpus(shared_dir, rel)
    assert verdict.kind == "bounce", verdict.reason
    assert verdict.failed_recipients


def test_the_rejected_mailbox_of_a_notice_is_its_failed_recipient(shared_dir: Path) -> None:
    verdict = _corpus(shared_dir, "sisimai/maildir/not/rb-issue-368-bug.eml")
    assert verdict.failed_recipients == ("xxxx@yyyyyy.net",)


@pytest.mark.parametrize(
    "local",
    ["post_master", "post.master", "Postmaster", "MAILER-DAEMON", "Mailer_Daemon", "mailerdaemon"],
)
def test_robot_local_parts_in_any_spelling_send_bounces(local: str) -> None:
    raw = make_mail(
        sender=f"Mail Delivery System <{local}@mx.brokers.example>",
        subject="Undeliverable: Escalated Case: Enrollment.PID #:174097",
        body=(
            "Delivery has failed to these recipients or groups:\n\n"
            "jane@agency.example\nThe email address you entered couldn't be found.\n\n"
            "Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipientNotFound'\n"
        ),
    )
    verdict = _screen(raw)
    assert (verdict.kind, verdict.failed_recipients) == ("bounce", ("jane@agency.example",))
    assert [f.status for f in verdict.failures] == ["5.1.1"]


def test_a_daemon_without_a_failure_subject_is_still_a_bounce() -> None:
    raw = make_mail(sender="post_master@mx.brokers.example", subject="Notice", body="Hello.")
    assert _screen(raw).kind == "bounce"


# --- reports: DMARC aggregate, TLS (RFC 8460), ARF complaint loops ----------------------------


def _zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


_AGGREGATE = (
    b'<?xml version="1.0"?><feedback><report_metadata><org_name>google.com</org_name>'
    b"<report_id>949348866075514174</report_id></report_metadata><policy_published>"
    b"<domain>exchange.example</domain><p>reject</p></policy_published></feedback>"
)


def test_a_dmarc_aggregate_report_is_a_report() -> None:
    """Google's rua mail: the subject names domain and submitter, a zip of the XML."""
    name = "google.com!exchange.example!1549929600!1550015999"
    raw = make_mail(
        sender="noreply-dmarc-support@google.com",
        to="dmarc@exchange.example",
        subject="Report domain: exchange.example Submitter: google.com Report-ID: 94934886607",
        body="",
        attachments=[(f"{name}.zip", "application/zip", _zipped(f"{name}.xml", _AGGREGATE))],
    )
    assert _screen(raw).kind == "report"


def test_a_dmarc_report_is_known_by_its_attachment_alone() -> None:
    """Mimecast's shape: the whole message is one gzip part, the subject says little."""
    name = "mimecast.org!exchange.example!1693353600!1693439999!157a5fe30ec7.xml.gz"
    raw = (
        b"From: reports@au-1.mimecastreport.example\r\nTo: dmarc@exchange.example\r\n"
        b"Subject: DMARC\r\nMessage-Id: <4973f467@au-1.mimecastreport.example>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: application/gzip\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment;\r\n filename="' + name.encode() + b'"\r\n\r\n'
    )
    raw += base64.encodebytes(gzip.compress(_AGGREGATE)).replace(b"\n", b"\r\n")
    verdict = _screen(raw)
    assert (verdict.kind, verdict.reason) == ("report", "DMARC/TLS report (attachment)")


def _tls_report(sender: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: tls-reports@exchange.example\r\n"
        "Subject: Report Domain: exchange.example Submitter: google.com Report-ID: "
        "<2024.09.03T00.00.00Z+exchange.example@google.com>\r\n"
        "TLS-Report-Domain: exchange.example\r\nTLS-Report-Submitter: google.com\r\n"
        "Message-ID: <66d83c20.050a0220.a0566.1e8dtls@google.com>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; boundary="b1"; report-type=tlsrpt\r\n\r\n'
        '--b1\r\nContent-Type: text/plain; charset="UTF-8"\r\n\r\n'
        "This is an aggregate TLS report from google.com\r\n\r\n"
        "--b1\r\nContent-Type: application/tlsrpt+gzip;\r\n"
        ' name="google.com!exchange.example!1725321600!1725407999!001.json.gz"\r\n'
        "Content-Disposition: attachment;\r\n"
        ' filename="google.com!exchange.example!1725321600!1725407999!001.json.gz"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        "H4sIAAAAAAAAA6uuBQBDv6ajAgAAAA==\r\n\r\n--b1--\r\n"
    ).encode()


def test_a_tls_report_is_a_report() -> None:
    verdict = _screen(_tls_report("noreply-smtp-tls-reporting@google.com"))
    assert (verdict.kind, verdict.reason) == ("report", "TLS report (RFC 8460)")
    assert verdict.no_reply


@pytest.mark.parametrize(
    "rel",
    [
        "sisimai/maildir/bsd/arf-01.eml",  # abuse
        "sisimai/maildir/bsd/arf-12.eml",  # opt-out
        "sisimai/maildir/bsd/arf-18.eml",  # auth-failure (a DMARC failure report)
        "flanker/tests/fixtures/messages/complaints/aol.eml",  # AOL's complaint loop
    ],
)
def test_feedback_loop_reports_are_feedback(shared_dir: Path, rel: str) -> None:
    assert _corpus(shared_dir, rel).kind == "feedback"


# --- read receipts: MDN, Outlook's TNEF, "Read:" -------------------------------------------


def test_an_mdn_is_a_receipt(shared_dir: Path) -> None:
    verdict = _corpus(shared_dir, "flanker/tests/fixtures/messages/disposition-notification.eml")
    assert (verdict.kind, verdict.reason) == ("receipt", "read receipt (MDN)")


def _tnef_object(name: int, kind: int, data: bytes) -> bytes:
    """One message-level TNEF attribute (MS-OXTNEF 2.1.3.2): level, id, length, data, sum."""
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", 1, name, kind, len(data)) + data + struct.pack("<H", checksum)


def _winmail(message_class: str) -> bytes:
    return (
        struct.pack("<IH", 0x223E9F78, 0x0101)
        + _tnef_object(0x9006, 0x0008, struct.pack("<I", 0x00010000))  # attTnefVersion
        + _tnef_object(0x9007, 0x0006, struct.pack("<II", 1252, 0))  # attOemCodepage
        + _tnef_object(0x8008, 0x0007, message_class.encode() + b"\x00")  # attMessageClass
        + _tnef_object(0x8004, 0x0007, b"Read: Escalated Case\x00")  # attSubject
    )


def test_an_outlook_read_receipt_inside_tnef_is_a_receipt() -> None:
    """Exchange sends Outlook's receipt as winmail.dat; it comes From the producer."""
    raw = make_mail(
        sender=SAM,
        subject="Read: Escalated Case: Enrollment.PID #:174097",
        body="",
        attachments=[("winmail.dat", "application/ms-tnef", _winmail("REPORT.IPM.Note.IPNRN"))],
    )
    verdict = _screen(raw)
    assert (verdict.kind, verdict.reason) == ("receipt", "Outlook receipt (REPORT.IPM.Note.IPNRN)")


def test_an_outlook_non_delivery_report_inside_tnef_is_a_bounce() -> None:
    raw = make_mail(
        sender="exchange@brokers.example",
        subject="Escalated Case: Enrollment.PID #:174097",
        body="",
        attachments=[("winmail.dat", "application/ms-tnef", _winmail("REPORT.IPM.Note.NDR"))],
    )
    assert _screen(raw).kind == "bounce"


def test_an_outlook_read_receipt_in_plain_text_is_a_receipt() -> None:
    body = (
        "Your message\n\n  To: escalations@exchange.example\n"
        "  Subject: Escalated Case: Enrollment.PID #:174097\n"
        "  Sent: Tuesday, November 24, 2026 10:02:11 AM (UTC-05:00)\n\n"
        "was read on Tuesday, November 24, 2026 10:15:40 AM (UTC-05:00).\n"
    )
    raw = make_mail(sender=SAM, subject="Read: Escalated Case: Enrollment.PID #:174097", body=body)
    assert _screen(raw).kind == "receipt"


# --- mailing lists' own notices --------------------------------------------------------------


def test_a_list_managers_refusal_is_a_list_notice(shared_dir: Path) -> None:
    """fml's "you are not a member" (sisimai's lhost-fml-02.eml), formerly read as a person."""
    verdict = _corpus(shared_dir, "sisimai/maildir/bsd/lhost-fml-02.eml")
    assert verdict.kind == "list"


def test_a_list_digest_from_the_request_address_is_list_mail(shared_dir: Path) -> None:
    assert _corpus(shared_dir, "cpython/msg_02.txt").kind == "list"


def test_mailman_administrivia_is_a_list_notice() -> None:
    raw = make_mail(
        sender="producers-owner@lists.brokers.example",
        subject="Your message to Producers awaits moderator approval",
        body="Your mail to 'Producers' with the subject\n\n    Escalated Case\n\n"
        "Is being held until the list moderator can review it for approval.\n",
        headers={
            "X-List-Administrivia": "yes",
            "Precedence": "bulk",
            "List-Id": "Producers <producers.lists.brokers.example>",
            "X-Mailman-Version": "2.1.39",
        },
    )
    verdict = _screen(raw)
    assert (verdict.kind, verdict.reason) == ("list", "list administrivia (X-List-Administrivia)")


@pytest.mark.parametrize(
    ("sender", "subject"),
    [
        ("sympa@lists.brokers.example", "Message distribution: Authorization denied"),
        ("producers-request@lists.brokers.example", "confirm 4f3a9c2e0b1d"),
        ("listmaster@lists.brokers.example", "Mail loop detected"),
        ("Producers <producers@lists.brokers.example>", "Warning: mail loop detected"),
    ],
)
def test_list_servers_notices_are_list_notices(sender: str, subject: str) -> None:
    raw = make_mail(
        sender=sender,
        subject=subject,
        body="Your message was not distributed to the list.",
        headers={"List-Id": "<producers.lists.brokers.example>"},
    )
    assert _screen(raw).kind == "list"


# --- challenge-response -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "rel",
    [
        "bounceparser/t/corpus/bluebottle.msg",
        "bounceparser/t/corpus/boxbe-cr.msg",  # wrapped in a DSN, still a challenge
        "bounceparser/t/corpus/boxbe-cr2.msg",
    ],
)
def test_challenge_response_is_a_challenge(shared_dir: Path, rel: str) -> None:
    verdict = _corpus(shared_dir, rel)
    assert (verdict.kind, verdict.no_reply) == ("challenge", True)


def test_a_tmda_confirmation_request_is_a_challenge() -> None:
    raw = make_mail(
        sender="sam-confirm-1732460000.4711.a1b2c3@brokers.example",
        subject="Re: Escalated Case: Enrollment.PID #:174097 (Please confirm your message)",
        body="I'm sorry, but I must verify that you are a real person before I can deliver "
        "your message.\nSimply reply to this message to confirm.",
        headers={"X-Delivery-Agent": "TMDA/1.1.12 (Macallan)"},
    )
    assert _screen(raw).kind == "challenge"


def test_a_spamarrest_verification_is_a_challenge() -> None:
    raw = make_mail(
        sender="Sam Amsung <sam@brokers.example>",
        subject="Re: Escalated Case: Enrollment.PID #:174097 [Verification]",
        body="I apologize for this automatic reply to your email.\n\nTo control spam, I now "
        "allow incoming messages only from senders I have approved beforehand. If you would "
        "like to be added to my list of approved senders, please complete the verification "
        "process: https://www.spamarrest.example/a/1234\n",
    )
    assert _screen(raw).kind == "challenge"


# --- people, even when their mail looks like a robot's --------------------------------------


def test_asking_for_a_read_receipt_is_not_a_receipt() -> None:
    raw = make_mail(headers={"Disposition-Notification-To": SAM, "Return-Receipt-To": SAM})
    assert _screen(raw, envelope="sam@brokers.example") == Screening("normal", "")


def test_a_subject_starting_with_read_is_not_a_receipt() -> None:
    raw = make_mail(
        subject="Read: the termination notice for PID 174097",
        body="I read the notice you sent; my client never asked to terminate. Please check.",
    )
    assert _screen(raw).kind == "normal"


def test_auto_submitted_no_declares_a_person() -> None:
    """Precedence: bulk (a producer's CRM), a no-reply-like address: with ``Auto-Submitted:
    no`` the mail is handled, but never auto-answered; an out-of-office subject is answered."""
    for raw in (
        make_mail(headers={"Auto-Submitted": "no", "Precedence": "bulk"}),
        make_mail(sender="no-reply@brokers.example", headers={"Auto-Submitted": "no"}),
    ):
        verdict = _screen(raw)
        assert (verdict.kind, verdict.no_reply) == ("normal", True)
    coverage = make_mail(
        subject="Out of office coverage: PID 174097", headers={"Auto-Submitted": "no"}
    )
    assert _screen(coverage) == Screening("normal", "")


def test_precedence_bulk_without_a_declared_person_is_bulk() -> None:
    assert _screen(make_mail(headers={"Precedence": "bulk"})).kind == "bulk"


@pytest.mark.parametrize(
    "local",
    ["noreply", "no-reply", "no_reply", "do-not-reply", "DoNotReply", "noreply+case", "bounces"],
)
def test_a_no_reply_address_is_not_a_producer_writing(local: str) -> None:
    """Our answer could not reach it: recorded for staff, unanswered, no incident."""
    verdict = _screen(make_mail(sender=f"{local}@brokers.example"))
    assert verdict.kind == "auto_reply"


def test_a_person_forwarding_a_bounce_is_a_person() -> None:
    body = (
        "Can you check this? My mail to you came back.\n\n"
        "---------- Forwarded message ---------\nFrom: Mail Delivery System "
        "<MAILER-DAEMON@mx.brokers.example>\nSubject: Undelivered Mail Returned to Sender\n\n"
        "<escalations@exchange.example>: host mx.exchange.example said: 550 5.1.1 "
        "User unknown\n"
    )
    raw = make_mail(subject="Fwd: Undelivered Mail Returned to Sender", body=body)
    assert _screen(raw).kind == "normal"


def test_a_person_naming_an_address_under_a_failure_subject_is_not_read_for_one() -> None:
    """The words of a notice are read only when a robot wrote it."""
    raw = make_mail(
        subject="Enrollment rejected for PID 174097",
        body="Please deliver the determination to jane@agency.example instead of me.",
    )
    assert _screen(raw).kind == "normal"


@pytest.mark.parametrize(
    "raw",
    [
        make_mail(sender="Agency Owner <owner@agency.example>"),
        make_mail(sender="Dana Postman <dana.postman@brokers.example>"),
        make_mail(sender="Jo Mailer <jo.mailer@brokers.example>", body="Please deliver to x@y.z"),
        make_mail(attachments=[("documents.zip", "application/zip", _zipped("a.txt", b"x"))]),
        make_mail(subject="Escalated Case: Enrollment.PID #:174097 - report domain change"),
    ],
)
def test_people_with_robot_like_details_are_people(raw: bytes) -> None:
    assert _screen(raw, envelope="sam@brokers.example").kind == "normal"
