"""Headless Chromium for end-to-end tests that look at a page: Debian's ``chromium`` and
``chromium-driver`` (``.ci/run`` installs them where it may) driven by selenium.

Nothing is downloaded: the browser and the driver are found on this machine and passed to
selenium explicitly, which skips Selenium Manager altogether
(``selenium/webdriver/common/driver_finder.py``). Where either, or selenium, is missing a
test skips saying why, except in CI (``CI=true``), where it fails: a browser test that
silently skipped would prove nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

#: Where Debian and other distributions put the browser and its driver.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)
DRIVER_PATHS = ("/usr/lib/chromium/chromedriver", "/usr/lib/chromium-browser/chromedriver")
WINDOW = (1280, 900)
#: Bounds every page load and script run, so a hung page fails the test instead.
PAGE_TIMEOUT_S = 20
INSTALL_HINT = "apt-get install chromium chromium-driver; pip install -e '.[test]'"


@dataclass(frozen=True)
class Chromium:
    """Where the browser and its driver are on this machine."""

    binary: str
    driver: str


def unavailable(reason: str) -> NoReturn:
    """Skip the test, saying why; in CI fail it instead."""
    if os.environ.get("CI", "").lower() in {"true", "1"}:
        pytest.fail(
            f"{reason}: CI must run the browser tests (.ci/run installs them)", pytrace=False
        )
    pytest.skip(f"{reason} ({INSTALL_HINT})")


def _which(names: tuple[str, ...], paths: tuple[str, ...] = ()) -> str | None:
    found = (shutil.which(name) for name in names)
    return next((path for path in found if path), None) or next(
        (path for path in paths if Path(path).is_file() and os.access(path, os.X_OK)), None
    )


def find_chromium() -> Chromium:
    """The browser and driver on this machine; skips (fails in CI) without them."""
    binary = _which(BROWSER_NAMES)
    driver = _which(DRIVER_NAMES, DRIVER_PATHS)
    if binary is None or driver is None:
        missing = [
            name for name, path in (("chromium", binary), ("chromedriver", driver)) if not path
        ]
        unavailable(f"{' and '.join(missing)} not installed")
    return Chromium(binary, driver)


@contextmanager
def headless_chromium(log_path: Path) -> Iterator[Any]:
    """A headless Chromium WebDriver, 1280x900, that keeps the page's console messages
    (``driver.get_log("browser")``); the driver's own log goes to ``log_path``. Quit on exit."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed")
    chromium = find_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium.binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",  # containers' /dev/shm is often too small
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--no-proxy-server",  # every test page is on 127.0.0.1
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Selenium Manager never runs with a driver path given; offline, should a version do so.
    service = Service(
        executable_path=chromium.driver,
        log_output=str(log_path),
        env={**os.environ, "SE_OFFLINE": "true"},
    )
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(PAGE_TIMEOUT_S)
        driver.set_script_timeout(PAGE_TIMEOUT_S)
        yield driver
    finally:
        driver.quit()


def severe_console_messages(driver: Any) -> list[str]:
    """The page's console messages at SEVERE level (script errors, failed loads) since the
    last call. (A page must name its icon, as the dashboard does with an empty ``data:``
    one: otherwise Chromium asks for ``/favicon.ico`` and logs its 404.)"""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
