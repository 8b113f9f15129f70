"""SMTP limits and TLS on a real ``ticketd serve``."""

from __future__ import annotations

import smtplib

import pytest

from .builders import TlsFiles
from .daemon import Ticketd
from .mail import make_mail

pytestmark = pytest.mark.ticketd('[intake]\nunknown_senders = "accept"\n')


def test_header_count_and_line_length_are_limited(db_url: str, ticketd: Ticketd) -> None:
    daemon = ticketd("[smtp]\nmax_header_count = 50\n")
    many_headers = b"".join(b"X-Extra-%d: v\r\n" % i for i in range(60)) + make_mail()
    long_line = make_mail().replace(b"\r\n\r\n", b"\r\n\r\n" + b"x" * 2000 + b"\r\n", 1)
    with daemon.serve():
        code, text = daemon.send(many_headers)
        assert (code, text) == (552, "5.3.4 more than 50 header fields")
        assert daemon.send(long_line)[0] == 500
        assert daemon.send(make_mail())[0] == 250


def test_starttls_when_a_certificate_is_configured(
    db_url: str, ticketd: Ticketd, tls_files: TlsFiles
) -> None:
    daemon = ticketd(f'[smtp]\ntls_cert = "{tls_files.cert}"\ntls_key = "{tls_files.key}"\n')
    context = tls_files.client_context()
    context.check_hostname = False
    with (
        daemon.serve(),
        smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as client,
    ):
        client.ehlo("producer.example")
        assert client.has_extn("starttls")
        client.starttls(context=context)
        client.ehlo("producer.example")
        client.sendmail("sam@brokers.example", ["escalations@exchange.example"], make_mail())
