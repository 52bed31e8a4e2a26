"""The live dashboard in a real browser: headless Chromium (``tests/browser.py``) opens
``/_admin/dashboard`` of a running ``frontdoor serve``, is given the admin token through the
page's form, and shows a faulted backend's breaker open and its error % risen within a few
seconds while device traffic flows, then the breaker closed again after the fault heals,
with no script error on the page. The screenshot it takes while the breaker is open is
``docs/images/dashboard.png`` (made with ``FRONTDOOR_SCREENSHOT_DIR=docs/images``).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import gevent
import gevent.event
import pytest
import requests
from browser import headless_chromium, severe_console_messages

from orchestrator.frontend.auth import TokenSigner

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FRONTDOOR = str(Path(sys.executable).with_name("frontdoor"))
ADMIN_TOKEN = "dashboard-browser-test-admin-token"  # noqa: S105 - a test value
TOKEN_SECRET = "dashboard-browser-test-token-secret-0123456789"  # noqa: S105 - a test value
BACKEND = "ratings"
#: The faulted backend's breaker: stays open this long, then lets one trial call through.
OPEN_MS = 3000
#: Device traffic: a home page (which calls ratings) every 0.1 s, below the member's rate
#: limit (limits.member_rate, 20/s); at most MAX_REQUESTS, so at most a minute of it.
INTERVAL_S = 0.1
MAX_REQUESTS = 600
HOME = "/v1/discovery/home?rows=1&per_row=2"
#: The page draws the stream's first snapshot as soon as it connects.
CONNECT_S = 5
#: The stream sends a snapshot a second: the page shows a change within a second or two of
#: the server. The breaker may open after 20 calls in its window
#: (backends.ratings.breaker.request_volume): 2 s of this traffic at most.
FAULT_SEEN_S = 8
HEAL_SEEN_S = OPEN_MS / 1000 + 5
#: The error % the card must reach once every ratings call fails.
RISEN_PCT = 50.0
START_TIMEOUT_S = 30
STATES = ("open", "closed", "half_open")
ERR_TEXT = re.compile(r"(\d+(?:\.\d+)?)% errors")


@dataclass(frozen=True)
class Served:
    """A running ``frontdoor serve``: device URL, admin URL, simulated services' URL."""

    url: str
    admin_url: str
    backends_url: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _banner_value(stdout: IO[str], prefix: str) -> str:
    """Read the banner up to the line starting with ``prefix``; its first word after it."""
    with gevent.Timeout(START_TIMEOUT_S, AssertionError(f"no {prefix!r} line")):
        while True:
            line = stdout.readline()
            if not line:
                raise AssertionError(f"stdout ended before {prefix!r}")
            if line.startswith(prefix):
                return line.removeprefix(prefix).split()[0]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """``frontdoor serve`` with its embedded simulated services and an admin port, stopped
    with SIGTERM (killed if it has not exited 15 s later); its logs in ``frontdoor.log``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRONTDOOR_")}
    env.update(
        FRONTDOOR_AUTH_ADMIN_TOKEN=ADMIN_TOKEN,
        FRONTDOOR_AUTH_TOKEN_SECRET=TOKEN_SECRET,
        FRONTDOOR_STATSD_ENABLED="false",
        FRONTDOOR_SERVER_ADMIN_PORT=str(_free_port()),
        FRONTDOOR_BACKENDS_RATINGS_BREAKER_OPEN_MS=str(OPEN_MS),
    )
    argv = ["serve", "--port", "0", "--backends-port", "0", "--latency-profile", "none"]
    with (tmp_path / "frontdoor.log").open("w") as log:
        process = subprocess.Popen(  # noqa: S603 - our own entry point and fixed arguments
            [FRONTDOOR, *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
    assert process.stdout is not None
    try:
        yield Served(
            url=_banner_value(process.stdout, "Frontdoor is listening on "),
            admin_url=_banner_value(process.stdout, "Admin routes (/_admin/*) on "),
            backends_url=_banner_value(process.stdout, "Simulated microservices on "),
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        process.stdout.close()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A session that ignores proxy settings."""
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium (skips without it, fails in CI)."""
    with headless_chromium(tmp_path / "chromedriver.log") as chromium:
        yield chromium


class Traffic:
    """Device requests on a greenlet, one every ``INTERVAL_S``, until ``stop`` or
    ``MAX_REQUESTS``; ``outcomes`` counts their statuses (or exception names)."""

    def __init__(self, http: requests.Session, url: str, token: str) -> None:
        self.outcomes: Counter[int | str] = Counter()
        self._http = http
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._stopping = gevent.event.Event()
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        for _ in range(MAX_REQUESTS):
            try:
                reply = self._http.get(self._url, headers=self._headers, timeout=5)
                self.outcomes[reply.status_code] += 1
            except requests.RequestException as exc:
                self.outcomes[type(exc).__name__] += 1
            if self._stopping.wait(INTERVAL_S):
                return

    def stop(self) -> Counter[int | str]:
        """Stop and return the outcomes."""
        self._stopping.set()
        self._greenlet.join(timeout=10)
        assert self._greenlet.dead
        return self.outcomes


@dataclass(frozen=True)
class Card:
    """What a backend's card shows: its breaker state and its error %."""

    state: str
    breaker_text: str
    error_pct: float


#: One backend card read in a single script run (the page redraws every card each second,
#: so elements found one call earlier may already be gone).
_READ_CARD = """
const card = document.querySelector(`div.card[data-backend="${arguments[0]}"]`);
if (!card) return null;
const breaker = card.querySelector("span.breaker");
const err = card.querySelector("div.err");
return {classes: breaker ? Array.from(breaker.classList) : [],
        breaker: breaker ? breaker.textContent : "", err: err ? err.textContent : ""};
"""


def read_card(driver: Any, backend: str) -> Card | None:
    """The card of ``backend`` as the page shows it now; None while it has none."""
    seen = driver.execute_script(_READ_CARD, backend)
    if seen is None:
        return None
    states = [state for state in STATES if state in seen["classes"]]
    assert len(states) == 1, f"breaker classes {seen['classes']}"
    assert seen["breaker"].startswith(states[0]), f"breaker text {seen['breaker']!r}"
    err = ERR_TEXT.fullmatch(seen["err"])
    assert err is not None, f"error text {seen['err']!r}"
    return Card(states[0], seen["breaker"], float(err.group(1)))


def wait_for_card(driver: Any, within_s: float, what: str, holds: Any) -> Card:
    """The first reading of the ratings card for which ``holds`` is true, within ``within_s``."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def matching(_driver: Any) -> Card | bool:
        card = read_card(driver, BACKEND)
        return card if card is not None and holds(card) else False

    try:
        card: Card = WebDriverWait(driver, within_s, poll_frequency=0.1).until(matching)
    except TimeoutException:
        shown = read_card(driver, BACKEND)
        pytest.fail(f"the {BACKEND} card did not show {what} within {within_s} s: {shown}")
    return card


def _screenshot_dir(tmp_path: Path) -> Path:
    named = os.environ.get("FRONTDOOR_SCREENSHOT_DIR")
    return Path(named) if named else tmp_path


def test_the_page_shows_a_faulted_backend_open_and_failing_then_closed_after_the_heal(
    served, http, driver, tmp_path
):
    """Given the token in its form, the page shows ratings closed; with every ratings call
    failing its breaker shows open and its error % risen within seconds; after the heal,
    closed again once the breaker's open time has passed. No script error on the page."""
    from selenium.webdriver.common.by import By

    driver.get(served.admin_url + "/_admin/dashboard")
    token = driver.find_element(By.CSS_SELECTOR, "form#login input#token")
    token.send_keys(ADMIN_TOKEN)
    driver.find_element(By.CSS_SELECTOR, "form#login button[type=submit]").click()
    before = wait_for_card(driver, CONNECT_S, "its card", lambda card: card.state == "closed")

    member = TokenSigner(TOKEN_SECRET.encode(), 3600).issue("m1")
    traffic = Traffic(http, served.url + HOME, member)
    try:
        fault = http.put(
            f"{served.backends_url}/_faults/{BACKEND}", json={"error_rate": 1.0}, timeout=5
        )
        assert fault.status_code == 200
        opened = wait_for_card(
            driver,
            FAULT_SEEN_S,
            f"open with errors >= {RISEN_PCT}%",
            lambda card: card.state == "open" and card.error_pct >= RISEN_PCT,
        )
        directory = _screenshot_dir(tmp_path)
        directory.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(directory / "dashboard.png"))

        assert http.delete(f"{served.backends_url}/_faults", timeout=5).status_code == 200
        wait_for_card(driver, HEAL_SEEN_S, "closed", lambda card: card.state == "closed")
    finally:
        outcomes = traffic.stop()

    assert before.error_pct < RISEN_PCT
    assert opened.error_pct > before.error_pct
    # A failing optional backend degrades the home page; it never fails a device request.
    assert sum(outcomes.values()) >= 20, outcomes
    assert set(outcomes) == {200}, outcomes
    assert severe_console_messages(driver) == []
