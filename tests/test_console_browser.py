"""The console in a real browser: headless Chromium against a real ``ticketd serve``.

One desk serves the module (SQLite; the in-process console tests cover PostgreSQL): Sam,
a producer of the roster, has opened an incident by mail (SMTP from 127.0.0.2, DKIM-signed
as his mail system does), and Casey, the desk's admin, has a console account made with
``ticketd users add``.  Casey signs in, finds the incident by its Person ID, adds a note,
edits a template and watches its preview change, opens a hotline incident whose
acknowledgement reaches the producer's maildir, and looks at the queue, the unverified
mail and the reports.  Then the conversation from the console, read back from the
outbound maildir as the producer reads it: a reply with an SSN is refused with its kind
and nothing goes, a clean one reaches the producer with the token; resolving mails him;
a template saved in the editor words the next acknowledgement the daemon sends.

Every page is checked with axe-core (no serious or critical violation) and for
JavaScript errors; under ``TICKETD_SCREENSHOTS=1`` each page is kept as
``docs/console/NAME.png`` for docs/console.md.

Each test signs in itself if it must (``signed_in``), so they pass in any order.
"""

from __future__ import annotations

import itertools
import re
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser import (
    WebDriver,
    axe_violations,
    browser_fixture,
    console_errors,
    screenshot,
    shown,
)
from tests.conftest import migrated_database
from tests.daemon import free_port, run_ticketd, serving_process, wait_for_port, wait_until
from tests.dns_server import AuthDns
from tests.journeys.conftest import (
    CASEY,
    ESCALATIONS,
    INCIDENT_NUMBER,
    CommandLine,
    Desk,
    Producer,
    address_of,
    compose,
    desk_config,
    incident_in,
    sam,
)

SAM = sam("7190001", "sam.console")
SAM_HOTLINE = sam("7190002", "sam.hotline")
SAM_ANSWERED = sam("7190003", "sam.answered")
SAM_TEMPLATED = sam("7190004", "sam.templated")
PERSON_ID = "175501"
HOTLINE_PERSON_ID = "175601"
CASEY_ADDRESS = address_of(CASEY)
PASSWORD = "correct horse battery staple 25"

browser = browser_fixture()


@dataclass(frozen=True)
class Console:
    """The running desk, its console's address, and the incident Sam opened by mail."""

    desk: Desk
    url: str
    incident: str

    def at(self, path: str) -> str:
        return self.url + path


# --- the desk ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, auth_dns: AuthDns
) -> Iterator[Console]:
    """``ticketd serve`` with its console on a free port, Sam's incident, Casey's account."""
    folder = tmp_path_factory.mktemp("console-desk")
    commands = CommandLine(tmp_path_factory.mktemp("console-cli"))
    try:
        with (
            contextmanager(migrated_database)("sqlite", folder, request) as url,
            _serving(commands, url, folder, auth_dns) as (desk, web_port),
        ):
            yield Console(desk, f"http://127.0.0.1:{web_port}", _sams_incident(desk))
    finally:
        commands.close()


@contextmanager
def _serving(
    commands: CommandLine, db_url: str, folder: Path, dns: AuthDns
) -> Iterator[tuple[Desk, int]]:
    port, web_port = free_port(), free_port()
    config = _with_console(desk_config(folder, db_url, port, dns.nameserver), web_port)
    desk = Desk("sqlite", db_url, config, port, folder / "sent", folder, commands, dns)
    desk.import_producers(SAM, SAM_HOTLINE, SAM_ANSWERED, SAM_TEMPLATED)
    _add_account(config, CASEY, "admin")
    with serving_process(config, port, folder / "serve.log") as proc:
        desk.process = proc
        wait_for_port(web_port, proc)
        yield desk, web_port


def _with_console(config: Path, web_port: int) -> Path:
    """The journeys' config with the console on ``web_port`` and no worker processes
    (the daemon records mail itself: one process to start, not one a core)."""
    settings = tomllib.loads(config.read_text(encoding="utf-8"))
    settings["web"] = {"host": "127.0.0.1", "port": web_port}
    settings["smtp"]["workers"] = 0
    config.write_text(tomli_w.dumps(settings), encoding="utf-8")
    return config


def _add_account(config: Path, person: str, role: str) -> None:
    """``ticketd users add`` for ``person`` ("Name <address>"), the password on stdin, as
    an admin makes the first account."""
    name, address = person.split(" <")[0], address_of(person)
    run_ticketd(
        *("--config", str(config), "users", "add", address, "--name", name, "--role", role),
        "--password-stdin",
        stdin=PASSWORD.encode() + b"\n",
        check=True,
    )


def _sams_incident(desk: Desk) -> str:
    """Sam's escalation by mail, naming a Person ID; the number its 250 gives."""
    raw = compose(
        SAM.sender,
        ESCALATIONS,
        f"Escalated Case: Enrollment.PID #:{PERSON_ID}",
        f"My client's plan selection did not save after the SEP.\n\n{SAM.signature}",
    )
    code, text = desk.send_mail(raw)
    number = incident_in(text)
    assert code == 250 and number, f"Sam's escalation opened nothing: {code} {text}"
    return number


# --- the browser's side --------------------------------------------------------------------------


def sign_in(browser: WebDriver, console: Console) -> None:
    """The sign-in form, filled and sent; done once the browser has left ``/login``."""
    browser.get(console.at("/login"))
    shown(browser, "#address").send_keys(CASEY_ADDRESS)
    shown(browser, "#password").send_keys(PASSWORD, Keys.ENTER)
    left = wait_until(lambda: "/login" not in browser.current_url, timeout=10)
    assert left, f"Casey could not sign in: {_main_text(browser)[:300]!r}"


def _marker(length: int) -> str:
    """A word of random letters that tells this run's text from an earlier one's: hex
    digits alone ("48102279") read as a phone number to the guard now and then."""
    return uuid.uuid4().hex[:length].translate(_DIGITS_AS_LETTERS)


_DIGITS_AS_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def _main_text(browser: WebDriver) -> str:
    """What the page's ``main`` says (for a failure's message)."""
    found = browser.find_elements(By.TAG_NAME, "main")
    return str(found[0].text) if found else str(browser.page_source[:2000])


@pytest.fixture
def signed_in(browser: WebDriver, console: Console) -> WebDriver:
    """The module's browser with Casey signed in (signing in only when the session is gone)."""
    browser.get(console.at("/queue"))
    if "/login" in browser.current_url:
        sign_in(browser, console)
    return browser


def check_page(browser: WebDriver, name: str) -> None:
    """No serious or critical axe-core violation and no JavaScript error on the page; its
    screenshot ``docs/console/NAME.png`` when asked for."""
    screenshot(browser, name)
    violations = axe_violations(browser)
    assert not violations, f"{name} ({browser.current_url}): " + "; ".join(map(str, violations))
    # the browser asks for /favicon.ico on its own; the console need not have one
    errors = [e for e in console_errors(browser) if "favicon.ico" not in e]
    assert not errors, f"{name} ({browser.current_url}) logged errors: {errors}"


_NODE_GONE = "does not belong to the document"


def _button(browser: WebDriver, label: str) -> None:
    browser.find_element(By.XPATH, f"//button[normalize-space()='{label}']").click()


def _replaced(browser: WebDriver, element: WebElement) -> None:
    """Wait until the page ``element`` was on has gone (a form sent, its answer loaded)."""
    WebDriverWait(browser, 10).until(lambda _: _stale(element))


def _stale(element: WebElement) -> bool:
    """Whether ``element``'s page has gone. Chromedriver, asked while the new page
    replaces it, may answer "Node with given id does not belong to the document" as an
    unknown error instead of a stale reference: the same answer, told otherwise."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if _NODE_GONE in str(exc):
            return True
        raise
    return False


def _has_text(browser: WebDriver, css: str, text: str, timeout: float = 10) -> bool:
    """Whether the element ``css`` shows ``text`` within ``timeout`` seconds."""
    try:
        WebDriverWait(browser, timeout).until(
            lambda d: text in d.find_element(By.CSS_SELECTOR, css).text
        )
    except Exception:  # noqa: BLE001  a timeout or a page without it: the answer is no
        return False
    return True


# --- the journeys --------------------------------------------------------------------------------


def test_casey_signs_in_and_sees_the_queue(browser: WebDriver, console: Console) -> None:
    browser.delete_all_cookies()
    browser.get(console.at("/queue"))
    assert "/login" in browser.current_url, "the queue was shown to nobody signed in"
    shown(browser, "#address")
    check_page(browser, "login")

    shown(browser, "#address").send_keys(CASEY_ADDRESS)
    password = shown(browser, "#password")
    password.send_keys("not the password", Keys.ENTER)
    _replaced(browser, password)
    assert "/login" in browser.current_url, "a wrong password signed Casey in"
    assert "wrong" in _main_text(browser), f"no reason given: {_main_text(browser)!r}"
    console_errors(browser)  # the 400 of the refused sign-in: said, and expected

    sign_in(browser, console)
    browser.get(console.at("/queue"))
    assert _has_text(browser, "#queue", console.incident), (
        f"Sam's incident {console.incident} is not in the queue"
    )
    check_page(browser, "queue")


def test_an_incident_is_found_by_its_person_id(signed_in: WebDriver, console: Console) -> None:
    box = shown(signed_in, "#search-q")
    box.clear()
    box.send_keys(PERSON_ID, Keys.ENTER)
    WebDriverWait(signed_in, 10).until(lambda d: "/search" in d.current_url)
    assert _has_text(signed_in, "#results", console.incident), (
        f"searching {PERSON_ID} does not list {console.incident}"
    )
    check_page(signed_in, "search")

    signed_in.find_element(By.CSS_SELECTOR, f"#results a[href*='{console.incident}']").click()
    shown(signed_in, "#conversation")
    assert _has_text(signed_in, "#conversation", "plan selection did not save")
    check_page(signed_in, "incident")


def test_a_note_added_on_the_incident_page_joins_the_conversation(
    signed_in: WebDriver, console: Console
) -> None:
    signed_in.get(console.at(f"/incidents/{console.incident}"))
    note = f"Called Sam back about the SEP: {_marker(8)}"
    box = shown(signed_in, "#note-text")
    box.send_keys(note)
    _button(signed_in, "Add note")
    _replaced(signed_in, box)
    assert _has_text(signed_in, "#conversation", note), (
        f"the note is not in the conversation: {_main_text(signed_in)[:1500]}"
    )
    check_page(signed_in, "incident")
    events = console.desk.show(console.incident)["events"]
    assert any(
        "note" in e["kind"] and CASEY_ADDRESS in str(e.get("actor", "")).lower() for e in events
    ), f"the note is not audited as Casey: {events}"


def test_the_template_preview_follows_the_edit(signed_in: WebDriver, console: Console) -> None:
    signed_in.get(console.at("/templates"))
    check_page(signed_in, "templates")
    link = signed_in.find_element(
        By.CSS_SELECTOR,
        "a[href*='/templates/edit?kind=ack_new&part=text&language=en'][href$='team=']",
    )
    link.click()
    source = shown(signed_in, "#template-source")
    shown(signed_in, "#preview")
    marker = f"Our hotline is open until 8 pm ({_marker(6)})"
    assert marker not in _preview_text(signed_in)
    source.click()
    source.send_keys(Keys.CONTROL, Keys.END)
    source.send_keys(Keys.ENTER, marker)
    assert wait_until(lambda: marker in _preview_text(signed_in), timeout=10), (
        f"the preview did not show the edit: {_preview_text(signed_in)[:300]!r}"
    )
    check_page(signed_in, "template-editor")


def _preview_text(browser: WebDriver) -> str:
    """What ``#preview`` shows, inside its frame when it is one (an HTML body's preview)."""
    preview = browser.find_element(By.CSS_SELECTOR, "#preview")
    if preview.tag_name.lower() != "iframe":
        return str(preview.text)
    browser.switch_to.frame(preview)
    try:
        return str(browser.find_element(By.TAG_NAME, "body").text)
    finally:
        browser.switch_to.default_content()


def test_a_hotline_incident_is_acknowledged_to_the_producer(
    signed_in: WebDriver, console: Console
) -> None:
    signed_in.get(console.at("/hotline/new"))
    shown(signed_in, "#npn")
    check_page(signed_in, "hotline")
    summary = _fill_hotline(signed_in, SAM_HOTLINE)
    summary.submit()
    _replaced(signed_in, summary)
    number = _incident_number_on(signed_in)
    mails = console.desk.mail_for(SAM_HOTLINE.email, 1, incident=number, what="the hotline ack")
    assert mails[0].names(number), f"the acknowledgement does not name {number}"
    assert mails[0].token, "the acknowledgement carries no ref token to reply with"
    shown_ids = console.desk.show(number)["person_ids"]
    assert HOTLINE_PERSON_ID in shown_ids, f"{number} has Person IDs {shown_ids}"


def _fill_hotline(browser: WebDriver, producer: Producer) -> WebElement:
    """The hotline form filled in for ``producer``; its summary field, to send it by."""
    shown(browser, "#npn").send_keys(producer.npn)
    kind = Select(browser.find_element(By.CSS_SELECTOR, "#type"))
    kind.select_by_value("enrollment")
    browser.find_element(By.CSS_SELECTOR, "#person_ids").send_keys(HOTLINE_PERSON_ID)
    summary = browser.find_element(By.CSS_SELECTOR, "#summary")
    summary.send_keys("Called the hotline: the client's APTC was dropped at renewal.")
    return summary


def _incident_number_on(browser: WebDriver) -> str:
    """The incident number of the page the browser landed on (its URL, else its heading)."""
    found = INCIDENT_NUMBER.search(browser.current_url) or INCIDENT_NUMBER.search(
        browser.find_element(By.TAG_NAME, "h1").text
    )
    assert found, f"no incident number after opening a hotline incident: {browser.current_url}"
    return found.group(0)


def test_unverified_mail_waits_on_its_page(signed_in: WebDriver, console: Console) -> None:
    # Sam's reply relayed without its signature: not believed, it waits for staff
    subject = f"RE: {console.incident} forwarded by my relay"
    raw = compose(SAM.sender, ESCALATIONS, subject, "Any news on this one?")
    code, text = console.desk.send_mail(raw, signed=False)
    assert code == 250, f"the unsigned reply was not recorded: {code} {text}"
    signed_in.get(console.at("/unverified"))
    assert wait_until(lambda: _reloaded_shows(signed_in, subject), timeout=10), (
        "the unsigned reply is not on the unverified page"
    )
    check_page(signed_in, "unverified")


def _reloaded_shows(browser: WebDriver, text: str) -> bool:
    browser.refresh()
    return text in browser.find_element(By.TAG_NAME, "main").text


def test_the_reports_page_draws_its_charts(signed_in: WebDriver, console: Console) -> None:
    signed_in.get(console.at("/reports"))
    shown(signed_in, "main svg")
    assert re.search(r"\d", signed_in.find_element(By.TAG_NAME, "main").text)
    check_page(signed_in, "reports")


# --- the conversation from the console -------------------------------------------------------
#
# Producers of their own (SAM_ANSWERED, SAM_TEMPLATED), so each test counts only its mail.

_PERSON_IDS = itertools.count(175700)  # a new escalation each: never a duplicate of another


def _opened_by(console: Console, producer: Producer) -> str:
    """``producer``'s escalation by mail, about a client of its own; its number."""
    raw = compose(
        producer.sender,
        ESCALATIONS,
        f"Escalated Case: Enrollment.PID #:{next(_PERSON_IDS)}",
        f"The client's 1095-A shows the wrong months.\n\n{producer.signature}",
    )
    code, text = console.desk.send_mail(raw)
    number = incident_in(text)
    assert code == 250 and number, f"{producer.email}'s escalation opened nothing: {text}"
    return number


def _send_reply(browser: WebDriver, text: str) -> None:
    box = shown(browser, "#reply-text")
    box.clear()
    box.send_keys(text)
    _button(browser, "Send reply")
    _replaced(browser, box)


def test_casey_answers_from_the_console_and_sam_reads_it_but_never_an_ssn(
    signed_in: WebDriver, console: Console
) -> None:
    number = _opened_by(console, SAM_ANSWERED)
    console.desk.mail_for(SAM_ANSWERED.email, 1, incident=number, what="the acknowledgement")
    signed_in.get(console.at(f"/incidents/{number}"))

    _send_reply(signed_in, "Sam, the client's SSN 219-09-9999 is on file; we are on it.")
    refused = _main_text(signed_in)
    assert "Social Security" in refused or "US_SSN" in refused, f"no kind named: {refused[:400]}"
    assert shown(signed_in, "#reply-text").get_attribute("value"), "the refused text was lost"

    answer = f"Sam, the carrier corrected the months ({_marker(6)})."
    _send_reply(signed_in, answer)
    mails = console.desk.mail_for(SAM_ANSWERED.email, 2, incident=number, what="Casey's reply")
    reply = mails[-1]
    assert answer in reply.text, f"Sam did not get Casey's words: {reply.text[:300]!r}"
    assert reply.token, "the reply carries no ref token to be answered onto the incident"
    assert reply.from_address == ESCALATIONS, f"the reply came from {reply.from_address}"
    assert all("219-09-9999" not in m.text for m in console.desk.mails_to(SAM_ANSWERED.email))


def test_resolved_in_the_console_sam_is_told(signed_in: WebDriver, console: Console) -> None:
    number = _opened_by(console, SAM_ANSWERED)
    # Count the outbox, not the maildir: the acknowledgement is queued by the 250 but
    # may still be on its way, and must not be taken for the resolved mail.
    before = len(console.desk.outbox_to(SAM_ANSWERED.email))
    signed_in.get(console.at(f"/incidents/{number}"))
    reason = shown(signed_in, "input[name='reason']")
    reason.send_keys("carrier fixed the 1095-A")
    _button(signed_in, "Resolve (mails the producer)")
    _replaced(signed_in, reason)
    assert console.desk.show(number)["status"] == "resolved"
    mails = console.desk.mail_for(
        SAM_ANSWERED.email, before + 1, incident=number, what="the resolved mail"
    )
    assert mails[-1].subject.startswith("Resolved"), [m.subject for m in mails]
    assert mails[-1].names(number) and mails[-1].token


def test_a_template_saved_in_the_console_words_the_next_acknowledgement(
    signed_in: WebDriver, console: Console
) -> None:
    path = "/templates/edit?kind=ack_new&part=text&language=en&team="
    log = console.desk.folder / "serve.log"
    reloads = log.read_text(encoding="utf-8").count("templates reloaded")
    signed_in.get(console.at(path))
    source = shown(signed_in, "#template-source")
    marker = f"Our hotline is open until 8 pm ({_marker(6)})"
    source.click()
    source.send_keys(Keys.CONTROL, Keys.END)
    source.send_keys(Keys.ENTER, marker)
    _button(signed_in, "Save")
    _replaced(signed_in, source)
    try:
        # the daemon rereads the templates every 5 s and says so when one changed
        taken = wait_until(
            lambda: log.read_text(encoding="utf-8").count("templates reloaded") > reloads, 20
        )
        assert taken, "the daemon did not take the saved template"
        number = _opened_by(console, SAM_TEMPLATED)
        [ack] = console.desk.mail_for(SAM_TEMPLATED.email, 1, incident=number, what="the ack")
        assert marker in ack.text, f"the acknowledgement lacks the edit: {ack.text[:400]!r}"
    finally:
        signed_in.get(console.at(path))
        _button(signed_in, "Revert: remove the override")
