"""SMTP limits and TLS on a real ``ticketd serve``."""

from __future__ import annotations

import shutil
import smtplib
import ssl
import subprocess
from pathlib import Path

from .conftest import unavailable, write_config
from .daemon import free_port, send, serving
from .mail import make_mail


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


def test_starttls_when_a_certificate_is_configured(db_url: str, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        unavailable("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    config = _serve_config(tmp_path, db_url, port, f'tls_cert = "{cert}"\ntls_key = "{key}"\n')
    context = ssl.create_default_context(cafile=str(cert))
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
