"""One admin view of a gunicorn instance with two workers (real gunicorn, real sockets).

Every admin answer covers both workers whichever one accepts the request; counts are the
instance's; a breaker force reaches both workers (and so every device request sees it); a
worker that gunicorn restarts after a crash joins the view with its new pid and comes up
with the force in effect; the live dashboard's stream shows both workers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from gunicorn_run import free_port, start_gunicorn, wait_listening

from backends.simulated import SimulatedBackends
from orchestrator.frontend.auth import TokenSigner

pytestmark = pytest.mark.integration

TIMEOUT_S = 10
#: How long a worker may take to boot (import, build, join) on a loaded 2-core machine.
BOOT_S = 60
SECRET = "gunicorn-instance-test-token-secret-0123456789"  # noqa: S105 - a test value
ADMIN = "gunicorn-instance-test-admin-0123"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


class Instance:
    """gunicorn with two FrontdoorWorkers on 127.0.0.1; each call on a new connection, so
    the workers' accept race decides which worker answers, as with many clients."""

    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log
        self.member = {"Authorization": f"Bearer {TokenSigner(SECRET.encode(), 3600).issue('m1')}"}

    def admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One admin call (POST when there is a body); its JSON, after checking 200."""
        method = requests.get if body is None else requests.post
        reply = method(f"{self.url}{path}", json=body, headers=ADMIN_HEADERS, timeout=TIMEOUT_S)
        assert reply.status_code == 200, reply.text
        data: dict[str, Any] = reply.json()
        return data

    def backend(self, name: str) -> dict[str, Any]:
        """``/_admin/backends``' entry for ``name``, with the answer's ``instance``."""
        body = self.admin("/_admin/backends")
        (entry,) = [b for b in body["backends"] if b["name"] == name]
        return {**entry, "instance": body["instance"]}

    def pids(self) -> list[int]:
        """The workers the admin view covers now."""
        return [w["pid"] for w in self.admin("/_admin/backends")["instance"]["workers"]]

    def wait_for_workers(self, count: int, *, without: int | None = None) -> list[int]:
        """Poll the admin view until it covers ``count`` workers (none of them ``without``)."""
        deadline = time.monotonic() + BOOT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited: {self.log.read_text()[-2000:]}")
            pids = self.pids()
            if len(pids) == count and without not in pids:
                return pids
            # Waiting for another process to boot: it offers no event to wait on.
            time.sleep(0.2)
        raise AssertionError(
            f"admin view did not reach {count} workers: {self.pids()}; "
            f"gunicorn's log ends: {self.log.read_text()[-3000:]}"
        )

    def play(self) -> int:
        """One play request's status."""
        body = {"title_id": "t7", "device_type": "ps5"}
        reply = requests.post(
            f"{self.url}/v1/playback/play", json=body, headers=self.member, timeout=TIMEOUT_S
        )
        return reply.status_code


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A private directory with a short path."""
    path = Path(tempfile.mkdtemp(prefix="fd-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def instance(tmp_path: Path, short_dir: Path) -> Iterator[Instance]:
    """Two workers calling simulated services in this process."""
    backends = SimulatedBackends(latency_profile="none").start(host="127.0.0.1", port=0)
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    log = log_path.open("wb")
    environ = {
        "FRONTDOOR_AUTH_TOKEN_SECRET": SECRET,
        "FRONTDOOR_AUTH_ADMIN_TOKEN": ADMIN,
        "FRONTDOOR_BACKENDS_BASE_URL": backends.url,
        "FRONTDOOR_STATSD_ENABLED": "false",
        "FRONTDOOR_SERVER_DRAIN_S": "1",
        # The instance's worker directory goes under it (short: a Unix socket's path is
        # at most 107 bytes, and pytest's tmp_path can be longer).
        "TMPDIR": str(short_dir),
    }
    process = start_gunicorn(port, log, environ, workers=2)
    try:
        wait_listening(port, process)
        served = Instance(f"http://127.0.0.1:{port}", process, log_path)
        served.wait_for_workers(2)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=TIMEOUT_S)
        log.close()
        backends.stop()


def test_every_admin_answer_covers_both_workers_and_adds_them_up(instance):
    pids = instance.pids()
    assert len(set(pids)) == 2
    served_by = set()
    for _ in range(8):
        for path in ("/_admin/backends", "/_admin/endpoints"):
            covered = instance.admin(path)["instance"]
            assert [w["pid"] for w in covered["workers"]] == pids
            assert covered["missing"] == []
            served_by.add(covered["served_by"])
    assert served_by <= set(pids)

    requests_sent = 24
    statuses = {instance.play() for _ in range(requests_sent)}
    assert statuses == {200}
    (play,) = [
        e for e in instance.admin("/_admin/endpoints")["endpoints"] if e["name"] == "playback.play"
    ]
    assert play["window"]["calls"] == requests_sent
    per_worker = {w["pid"]: w["window"]["calls"] for w in play["workers"]}
    assert set(per_worker) == set(pids)
    assert sum(per_worker.values()) == requests_sent

    licensing = instance.backend("licensing")
    assert licensing["window"]["calls"] == sum(w["window"]["calls"] for w in licensing["workers"])
    assert licensing["max_concurrent"] == sum(w["max_concurrent"] for w in licensing["workers"])


def test_a_force_reaches_both_workers_and_a_restarted_one(instance):
    pids = instance.pids()
    forced = instance.admin(
        "/_admin/backends/licensing/breaker", {"force": "open", "reason": "two-worker test"}
    )
    assert [(w["pid"], w["applied"]) for w in forced["applied_to"]] == [(p, True) for p in pids]
    assert forced["missing"] == []
    assert forced["breaker"]["state"] == "open"
    assert "every worker" in forced["scope"]

    for _ in range(6):
        licensing = instance.backend("licensing")
        assert licensing["breaker"]["workers"] == {"open": 2}
        assert {w["breaker"]["override"] for w in licensing["workers"]} == {"open"}
    # Every device request sees the same breaker, whichever worker serves it.
    statuses = [instance.play() for _ in range(8)]
    assert len(set(statuses)) == 1, statuses
    assert statuses[0] != 200

    # A worker dies; gunicorn starts another, which joins the view already forced.
    victim = pids[0]
    os.kill(victim, signal.SIGKILL)
    now = instance.wait_for_workers(2, without=victim)
    assert victim not in now
    licensing = instance.backend("licensing")
    assert licensing["breaker"]["workers"] == {"open": 2}
    assert [w["pid"] for w in licensing["workers"]] == now

    cleared = instance.admin("/_admin/backends/licensing/breaker", {"force": "clear"})
    assert [w["pid"] for w in cleared["applied_to"] if w["applied"]] == now
    assert instance.backend("licensing")["breaker"]["workers"] == {"closed": 2}
    assert {instance.play() for _ in range(6)} == {200}


def test_the_dashboard_stream_shows_both_workers(instance):
    pids = instance.pids()
    with requests.get(
        f"{instance.url}/_admin/stream", headers=ADMIN_HEADERS, stream=True, timeout=TIMEOUT_S
    ) as reply:
        assert reply.status_code == 200
        data = None
        for line in reply.iter_lines():
            if line.startswith(b"data: "):
                data = json.loads(line[len(b"data: ") :])
                break
    assert data is not None
    assert [w["pid"] for w in data["instance"]["workers"]] == pids
    for backend in data["backends"]:
        assert [w["pid"] for w in backend["workers"]] == pids


PAGE_S = 10
_PAGE_STATE = """
const header = document.getElementById("workers");
const card = document.querySelector('div.card[data-backend="licensing"]');
const rows = card ? card.querySelectorAll("table.workers tr[data-pid]") : [];
return {workers: header ? header.textContent : "",
        pids: Array.from(rows).map((row) => Number(row.dataset.pid)),
        states: Array.from(rows).map((row) => row.querySelector("td.breaker").textContent),
        breaker: card ? card.querySelector("span.breaker").textContent : "",
        status: document.getElementById("status").textContent};
"""


def test_the_page_shows_both_workers_and_forces_both_from_a_real_browser(instance, tmp_path):
    """The dashboard under gunicorn in headless Chromium: the header names both workers,
    each card has a row per worker, and "force open" from the page (its prompt answered)
    opens licensing in both, which the page reports; no script error."""
    from browser import headless_chromium, severe_console_messages
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    pids = instance.pids()
    with headless_chromium(tmp_path / "chromedriver.log") as driver:
        driver.get(f"{instance.url}/_admin/dashboard")
        driver.find_element(By.ID, "token").send_keys(ADMIN)
        driver.find_element(By.CSS_SELECTOR, "form#login button[type=submit]").click()
        wait = WebDriverWait(driver, PAGE_S, poll_frequency=0.1)
        seen = wait.until(lambda d: (s := d.execute_script(_PAGE_STATE))["pids"] and s)
        assert seen["workers"] == f"2 workers (pids {pids[0]}, {pids[1]})"
        assert seen["pids"] == pids
        assert seen["states"] == ["closed", "closed"]

        card = driver.find_element(By.CSS_SELECTOR, 'div.card[data-backend="licensing"]')
        card.find_element(By.XPATH, ".//button[text()='force open']").click()
        prompt = wait.until(lambda d: d.switch_to.alert)
        prompt.send_keys("browser test")
        prompt.accept()
        seen = wait.until(
            lambda d: (s := d.execute_script(_PAGE_STATE))["states"] == ["open", "open"] and s
        )
        assert seen["status"] == "licensing: open on 2/2 workers"
        assert seen["breaker"].startswith("open (forced)")
        assert severe_console_messages(driver) == []
    licensing = instance.backend("licensing")
    assert licensing["breaker"]["workers"] == {"open": 2}
