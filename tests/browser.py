"""A real browser for the console's tests: Debian's Chromium, headless, driven by Selenium
through Debian's chromedriver, and axe-core to check each page's accessibility.

``make test`` installs ``chromium`` and ``chromium-driver`` with apt-get where it can
(tests/services.sh); without them the browser tests skip, and fail under
``TICKETD_REQUIRE_SERVICES=1``.  Both programs are given to Selenium by path, so Selenium
Manager never runs (it would try to download a browser and a driver), and it is told to
stay offline should anything start it anyway.

``browser_fixture()`` makes the fixture a test module uses::

    browser = browser_fixture()

    def test_x(browser: WebDriver) -> None:
        browser.get(url)
        assert not axe_violations(browser), ...
        screenshot(browser, "login")   # docs/console/login.png under TICKETD_SCREENSHOTS=1
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.remote.command import Command
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import REPO, unavailable

__all__ = [
    "AxeViolation",
    "WebDriver",
    "axe_script",
    "axe_violations",
    "browser_fixture",
    "console_errors",
    "headless_chrome",
    "screenshot",
    "shown",
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = REPO / "docs" / "console"
WINDOW = (1280, 900)
# A screenshot is as tall as its page (docs show the whole of it), within reason.
SCREENSHOT_MAX_HEIGHT = 2400
WAIT_SECONDS = 10.0

Scope = Literal["session", "package", "module", "class", "function"]


def browser_fixture(scope: Scope = "module") -> Callable[[], Iterator[WebDriver]]:
    """A fixture giving a headless Chromium for the ``scope``: one browser for a
    module's tests by default (a start costs about a second)."""

    @pytest.fixture(scope=scope)
    def browser() -> Iterator[WebDriver]:
        with headless_chrome() as driver:
            yield driver

    return browser


@contextmanager
def headless_chrome() -> Iterator[WebDriver]:
    """Chromium for the block, headless, at a fixed window size; skipped (or failed under
    ``TICKETD_REQUIRE_SERVICES=1``) where Chromium or its driver is not installed."""
    for program, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(program, os.X_OK):
            unavailable(f"{program} is not installed (make test installs {package} as root)")
    # Selenium Manager runs only when no driver path is given; should it ever run, offline.
    os.environ.setdefault("SE_OFFLINE", "true")
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    try:
        driver = webdriver.Chrome(options=_options(), service=service)
    except WebDriverException as exc:
        unavailable(f"Chromium does not start: {exc.msg}")
    try:
        driver.set_window_size(*WINDOW)
        driver.set_script_timeout(30)
        yield driver
    finally:
        driver.quit()


def _options() -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB, too little for tabs
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--lang=en-US",
        "--disable-extensions",
        "--no-first-run",
        "--hide-scrollbars",  # screenshots without a scrollbar across them
    ):
        options.add_argument(argument)
    # the page's console messages, for console_errors
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


# --- what a test looks at ----------------------------------------------------------------------


def shown(driver: WebDriver, css: str, timeout: float = WAIT_SECONDS) -> WebElement:
    """The element ``css`` selects, once it is visible (a TimeoutException otherwise)."""
    wait = WebDriverWait(driver, timeout)
    element: WebElement = wait.until(
        expected_conditions.visibility_of_element_located(("css selector", css))
    )
    return element


def console_errors(driver: WebDriver) -> list[str]:
    """The errors the page's JavaScript console logged since the last call (scripts that
    failed, resources refused by the Content-Security-Policy, 4xx and 5xx fetches)."""
    # get_log("browser") is this command; selenium leaves get_log untyped
    entries: list[dict[str, Any]] = driver.execute(Command.GET_LOG, {"type": "browser"})["value"]
    return [str(e["message"]) for e in entries if e.get("level") == "SEVERE"]


def screenshot(driver: WebDriver, name: str) -> Path | None:
    """``docs/console/NAME.png``, the whole page, only under ``TICKETD_SCREENSHOTS=1``:
    the docs' pictures are taken on purpose, not rewritten by every run."""
    if os.environ.get("TICKETD_SCREENSHOTS") != "1":
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(WINDOW[0], max(WINDOW[1], min(height, SCREENSHOT_MAX_HEIGHT)))
    # from the top, with no field focused: a focused field scrolls it away and glows
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);")
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(*WINDOW)
    return path


# --- accessibility: axe-core -------------------------------------------------------------------


@dataclass(frozen=True)
class AxeViolation:
    """One axe-core rule a page breaks: its id, how bad, what it asks, where (CSS selectors)."""

    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.impact} {self.rule} ({self.help}) at {', '.join(self.targets)}"


# axe-core as Python packages bundle it, newest first: axe-core-python carries axe 4.4
# (2022); axe-selenium-python (2.x, the last for Python < 3.12) carries axe 3.1 (2018),
# whose rules predate fixes such as autocomplete="username" on an e-mail field.
_AXE_BUNDLES = (("axe_core_python", "axe.min.js"),)


def axe_script() -> Path:
    """The ``axe.min.js`` of the newest bundle installed (no network, no npm)."""
    for package, inside in _AXE_BUNDLES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin is not None:
            path = Path(spec.origin).parent / inside
            if path.is_file():
                return path
    unavailable("no axe-core bundle is installed (the dev extras bring one)")
    raise AssertionError("unreachable: unavailable() skips or fails")


# axe.run is asynchronous: the last argument of an async script is its callback.
_RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]})
  .then((results) => done(results.violations))
  .catch((error) => done({error: String(error)}));
"""


def axe_violations(
    driver: WebDriver, impacts: Sequence[str] = ("serious", "critical")
) -> list[AxeViolation]:
    """The axe-core violations of the page in ``driver`` at ``impacts``: the bundled
    ``axe.min.js`` (``axe_script``) is injected into the page and run on the whole document."""
    driver.execute_script(axe_script().read_text(encoding="utf-8"))
    found: Any = driver.execute_async_script(_RUN_AXE)
    if isinstance(found, dict):
        raise AssertionError(f"axe-core failed on {driver.current_url}: {found.get('error')}")
    return [_violation(v) for v in found if v.get("impact") in impacts]


def _violation(found: dict[str, Any]) -> AxeViolation:
    # a node's target is a list of selectors: more than one when it is inside a frame
    targets = tuple(" >>> ".join(map(str, n["target"])) for n in found.get("nodes", []))
    return AxeViolation(str(found["id"]), str(found["impact"]), str(found["help"]), targets)
