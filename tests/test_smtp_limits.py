"""SMTP limits and TLS on a real ``ticketd serve``."""

from __future__ import annotations

import smtplib
from pathlib import Path

from .conftest import write_config
from .daemon import free_port, send, serving
from .mail import make_mail
from .test_replies_helpers import TlsFiles, tls_files_fixture  # noqa: F401  (fixture)


def _serve_config(tmp_path: Path, db_url: str, port: int, extra: str = "") -> Path:
    return write_config(
        tmp_path, db_url, f'[intake]\nunknown_senders = "accept"\n[smtp]\nport = {port}\n{extra}'
    )


def test_header_count_and_line_length_are_limited(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    config = _serve_config(tmp_path, db_url, port, "max_header_count = 50\n")
    many_headers = b"".join(b"X-Extra-%d: v\r\n" % i for i in range(60)) + make_mail()
    long_line = make_mail().replace(b"\r\n\r\n", b"\r\n\r\n" + b"x" * 2000 + b"\r\n", 1)
    with serving(config, port, tmp_path / "serve.log"):
        code, text = send(port, many_headers)
        assert (code, text) == (552, "5.3.4 more than 50 header fields")
        assert send(port, long_line)[0] == 500
        assert send(port, make_mail())[0] == 250


def test_starttls_when_a_certificate_is_configured(
    db_url: str, tmp_path: Path, tls_files: TlsFiles
) -> None:
    port = free_port()
    config = _serve_config(
        tmp_path, db_url, port, f'tls_cert = "{tls_files.cert}"\ntls_key = "{tls_files.key}"\n'
    )
    context = tls_files.client_context()
    context.check_hostname = False
    with (
        serving(config, port, tmp_path / "serve.log"),
        smtplib.SMTP("127.0.0.1", port, timeout=30) as client,
    ):
        client.ehlo("producer.example")
        assert client.has_extn("starttls")
        client.starttls(context=context)
        client.ehlo("producer.example")
        client.sendmail("sam@brokers.example", ["escalations@exchange.example"], make_mail())
