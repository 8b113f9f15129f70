"""Replies shaped like Outlook's, Gmail's and Apple Mail's, over real SMTP, thread onto
their incident (the token survives only inside the quoted HTML)."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

from ticketing.signing.tokens import RefTokens

from .conftest import write_config
from .daemon import SECRET_ENV, free_port, run_ticketd, send, serving
from .mail import make_mail

QUOTES = {
    "outlook": '<div id="divRplyFwdMsg"><hr><b>From:</b> MHBE<br><b>Subject:</b> {subject}</div>'
    "<div>We have received your inquiry. The assigned incident number is {number}."
    "<br>{token}</div>",
    "gmail": '<div class="gmail_quote"><div class="gmail_attr">On Tue, Nov 24, 2026 MHBE '
    'wrote:</div><blockquote class="gmail_quote">Incident {number}<br>{token}'
    "</blockquote></div>",
    "apple": '<blockquote type="cite"><div>Incident {number}</div><div>{token}</div></blockquote>',
}
PREFIX = {"outlook": "RE: ", "gmail": "Re: ", "apple": "AW: "}


def html_reply(client: str, subject: str, number: str, token: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Sam Amsung <sam@brokers.example>"
    message["To"] = "escalations@exchange.example"
    message["Subject"] = PREFIX[client] + "Escalated Case: Enrollment"  # number dropped
    message["Message-ID"] = f"<{client}-reply@brokers.example>"
    quote = QUOTES[client].format(subject=subject, number=number, token=token)
    message.set_content("The client's notice arrived today.")
    message.add_alternative(
        f"<html><body><p>The client's notice arrived today.</p>{quote}</body></html>",
        subtype="html",
    )
    return message.as_bytes()


def test_client_replies_over_smtp_thread_onto_the_incident(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, db_url, f"[smtp]\nport = {port}\n")
    roster = tmp_path / "roster.csv"
    roster.write_text("npn,name,email\n1234567,Sam Amsung,sam@brokers.example\n")
    run_ticketd("--config", str(config), "producers", "import", str(roster), check=True)
    subject = "Escalated Case: Enrollment.PID #:174097"
    with serving(config, port, tmp_path / "serve.log"):
        assert send(port, make_mail(subject=subject))[0] == 250
        listed = run_ticketd("--config", str(config), "incidents", "list", "--json", check=True)
        (number,) = [i["number"] for i in json.loads(listed.stdout)]
        token = RefTokens(SECRET_ENV["TICKETD_TOKEN_SECRET"].encode(), "00Dtkd01").make(number)
        for client in QUOTES:
            code, text = send(port, html_reply(client, subject, number, token))
            assert (code, text) == (250, f"2.0.0 Ok: recorded on incident {number}"), client
    shown = run_ticketd("--config", str(config), "incidents", "show", number, "--json", check=True)
    assert len(json.loads(shown.stdout)["messages"]) == 4
