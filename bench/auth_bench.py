"""What sender authentication costs a message: the authenticate stage alone, per rule.

    .venv/bin/python bench/auth_bench.py [--messages 500]

Runs the stage (``ticketing/pipeline/authenticate.py``) on producer messages as they
reach the SMTP front: from the trusted host (no check), DKIM-signed from outside
(SPF + DKIM + DMARC against the private DNS server of the tests, on loopback, so
DNS round trips are ~0.1 ms; a real resolver adds its latency, cached after the first
message of a domain), and unsigned from outside. Prints wall and CPU milliseconds a
message for each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path[:0] = [os.getcwd(), str(Path(__file__).parent)]  # the tree in the current directory

from mailer.parsing import parse_message  # noqa: E402
from tests.dns_server import PRODUCER_DOMAIN, PRODUCER_IP, AuthDns  # noqa: E402
from tests.mail import make_mail  # noqa: E402
from ticketing.config import AuthenticationConfig, Config  # noqa: E402
from ticketing.pipeline.authenticate import Authenticator  # noqa: E402
from ticketing.pipeline.types import RawMessage  # noqa: E402


def _timed(authenticator: Authenticator, raws: list[RawMessage]) -> tuple[float, float, int]:
    parsed = [parse_message(raw.raw) for raw in raws]
    wall, cpu = time.perf_counter(), time.process_time()
    passed = sum(authenticator.check(r, p).authenticated for r, p in zip(raws, parsed, strict=True))
    return time.perf_counter() - wall, time.process_time() - cpu, passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    dns = AuthDns.start()
    try:
        checks = AuthenticationConfig(nameservers=(dns.nameserver,))
        authenticator = Authenticator(Config(authentication=checks))
        sender = f"sam@{PRODUCER_DOMAIN}"
        mails = [
            make_mail(sender=sender, subject=f"Enrollment PID {n}") for n in range(args.messages)
        ]
        cases = {
            "trusted host": [
                RawMessage(m, "smtp", ("escalations",), sender, peer="127.0.0.1") for m in mails
            ],
            "signed, from outside": [
                RawMessage(
                    dns.sign(m, PRODUCER_DOMAIN),
                    "smtp",
                    ("escalations",),
                    sender,
                    peer=PRODUCER_IP,
                    helo=f"mail.{PRODUCER_DOMAIN}",
                )
                for m in mails
            ],
            "unsigned, from outside": [
                RawMessage(m, "smtp", ("escalations",), sender, peer="192.0.2.99") for m in mails
            ],
        }
        for name, raws in cases.items():
            wall, cpu, passed = _timed(authenticator, raws)
            print(
                f"{name:24} {1000 * wall / len(raws):7.2f} ms wall  "
                f"{1000 * cpu / len(raws):7.2f} ms CPU a message  "
                f"({passed}/{len(raws)} authenticated)"
            )
    finally:
        dns.stop()


if __name__ == "__main__":
    main()
