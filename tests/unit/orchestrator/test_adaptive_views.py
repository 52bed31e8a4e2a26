"""Hedged reads and request collapsing as operators see them: counted by a live actor
system, shown in /_admin/backends and the dashboard, added up over workers, drawn by the
page."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import pytest

from actors.plan import Plan, RunStatus, Step, StepContext
from actors.stats import WindowStats
from actors.system import ActorSystem, AdaptiveTotals
from actors.testing import run
from backends.specs import BackendSpec, CollapseSettings, HedgeSettings
from backends.testing import FakeBackend
from backends.transport import BackendRequest, get
from orchestrator.ops.admin import AdminHandler, AdminRequest
from orchestrator.ops.dashboard import DashboardSnapshot
from orchestrator.ops.instance import (
    BackendPart,
    BreakerPart,
    FrontendGauges,
    Instance,
    InstanceReport,
    LocalWorker,
    WorkerReport,
)
from orchestrator.ops.views import EndpointWindows

ADMIN_TOKEN = "admin-token-for-adaptive-tests-0123"  # noqa: S105 - a test value
DASHBOARD_JS = (
    Path(__file__).resolve().parents[3] / "orchestrator" / "ops" / "dashboard" / "dashboard.js"
)
#: A fixed 20 ms hedge delay: below min_samples the delay is max_ms.
HEDGED = HedgeSettings(enabled=True, min_ms=20, max_ms=20)
COLLAPSED = CollapseSettings(window_ms=200.0)
CLOSED = BreakerPart("closed", None, None)


class FirstHangs:
    """The first call waits on ``gate``; later ones answer at once."""

    def __init__(self) -> None:
        self.gate = gevent.event.Event()
        self.count = 0

    def __call__(self, _request: BackendRequest) -> object:
        self.count += 1
        if self.count == 1:
            self.gate.wait()
        return {"answer": self.count}


def _titles(request: BackendRequest) -> object:
    ids = dict(request.query)["ids"].split(",")
    return {"titles": [{"id": item} for item in ids]}


def _plan(backend: str, request: BackendRequest) -> Plan:
    def compose(ctx: StepContext) -> object:
        return dict(ctx.results)

    return Plan((Step("s", backend, lambda _c: request),), compose)


@pytest.fixture
def slow() -> Iterator[FirstHangs]:
    """The hedged backend's handler; its first call is released at teardown."""
    handler = FirstHangs()
    yield handler
    handler.gate.set()


@pytest.fixture
def system(slow: FirstHangs) -> Iterator[ActorSystem]:
    """A started system: ``slow`` hedges, ``catalog`` collapses, ``plain`` does neither."""
    fakes = {
        "slow": FakeBackend("slow", slow),
        "catalog": FakeBackend("catalog", _titles),
        "plain": FakeBackend("plain"),
    }
    specs = [
        BackendSpec("slow", "http://127.0.0.1:1/slow", hedge=HEDGED),
        BackendSpec("catalog", "http://127.0.0.1:1/catalog", collapse=COLLAPSED),
        BackendSpec("plain", "http://127.0.0.1:1/plain"),
    ]
    started = ActorSystem(specs, lambda spec: fakes[spec.name])
    started.start()
    yield started
    started.stop()


def _instance(system: ActorSystem) -> Instance:
    local = LocalWorker(system, EndpointWindows(()), wall_clock=lambda: 1e9, pid=lambda: 42)
    return Instance(local)


def _get_backends(handler: AdminHandler) -> dict[str, Any]:
    request = AdminRequest(
        "GET", "/_admin/backends", f"Bearer {ADMIN_TOKEN}", "req-1", "127.0.0.1", dict
    )
    return {b["name"]: b for b in handler.handle(request).body["backends"]}


def test_a_live_systems_hedges_and_collapsed_calls_show_in_admin_and_dashboard(system, slow):
    """One hedged read (its twin wins) and three reads collapsed into one call: the counts
    in /_admin/backends, merged and per worker, and in the dashboard; null for ``plain``."""
    hedged = run(system, _plan("slow", get("x")))
    slow.gate.set()  # the original, answered late: a loser, not a second win
    assert hedged.status is RunStatus.OK
    assert hedged.records[0].hedged
    jobs = [
        gevent.spawn(run, system, _plan("catalog", get("titles", ids=ids)))
        for ids in ("t1,t2", "t2", "t3")
    ]
    assert [job.get(timeout=2.0).status for job in jobs] == [RunStatus.OK] * 3

    instance = _instance(system)
    backends = _get_backends(AdminHandler(instance, admin_token=ADMIN_TOKEN))

    slow, catalog, plain = backends["slow"], backends["catalog"], backends["plain"]
    assert slow["adaptive"] == {
        "hedges_sent_total": 1,
        "hedges_won_total": 1,
        "collapse_calls_in_total": None,
        "collapse_calls_out_total": None,
    }
    assert catalog["adaptive"] == {
        "hedges_sent_total": None,
        "hedges_won_total": None,
        "collapse_calls_in_total": 3,
        "collapse_calls_out_total": 1,
    }
    assert plain["adaptive"] is None
    for backend in (slow, catalog, plain):
        assert backend["workers"][0]["adaptive"] == backend["adaptive"]
    cards = {b["name"]: b for b in DashboardSnapshot(instance).snapshot()["backends"]}
    assert {name: card["adaptive"] for name, card in cards.items()} == {
        name: backend["adaptive"] for name, backend in backends.items()
    }


def _part(name: str, adaptive: AdaptiveTotals | None) -> BackendPart:
    totals = WindowStats(clock=lambda: 0.0).totals()
    return BackendPart(name, CLOSED, 0, 0, 10, 10, totals, adaptive=adaptive)


def _worker(pid: int, *parts: BackendPart) -> WorkerReport:
    report = WorkerReport(pid, 1.0, parts, (), FrontendGauges(0, 0))
    # As a peer sends it: through JSON text and back.
    return WorkerReport.from_json(json.loads(json.dumps(report.to_json())))


def test_two_workers_counts_add_up_and_survive_json():
    """Each worker's counts come back from its JSON unchanged; the instance's are their
    sums; a backend no worker adapts has none."""
    first = _worker(1, _part("catalog", AdaptiveTotals(4, 1, 300, 100)), _part("plain", None))
    second = _worker(2, _part("catalog", AdaptiveTotals(8, 8, 40, 20)), _part("plain", None))
    assert first.backends[0].adaptive == AdaptiveTotals(4, 1, 300, 100)

    catalog, plain = InstanceReport((first, second), (), 1).backends()

    assert catalog.adaptive == AdaptiveTotals(12, 9, 340, 120)
    assert plain.adaptive is None


def test_a_mechanism_off_stays_null_when_added_up():
    """Hedging only: the collapsing fields stay None in the sum, not 0."""
    first = _worker(1, _part("slow", AdaptiveTotals(hedges_sent_total=2, hedges_won_total=1)))
    second = _worker(2, _part("slow", AdaptiveTotals(hedges_sent_total=3, hedges_won_total=0)))
    (slow,) = InstanceReport((first, second), (), 1).backends()
    assert slow.adaptive == AdaptiveTotals(5, 1, None, None)


def test_a_report_without_the_block_reads_as_none():
    """A worker report that has no ``adaptive`` key (absent) reads as no counts; one whose
    block is not an object is not a report."""
    data = _worker(1, _part("plain", None)).to_json()
    del data["backends"][0]["adaptive"]
    assert WorkerReport.from_json(data).backends[0].adaptive is None
    data["backends"][0]["adaptive"] = [1, 2]
    with pytest.raises(ValueError, match="not a worker report"):
        WorkerReport.from_json(data)


def test_the_page_draws_every_field_and_still_parses():
    """dashboard.js reads each field of the block by name, and ``node --check`` accepts it."""
    source = DASHBOARD_JS.read_text(encoding="utf-8")
    for field in dataclasses.fields(AdaptiveTotals):
        assert f"a.{field.name}" in source, field.name
    assert "adaptiveLine(b.adaptive)" in source
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    checked = subprocess.run(  # noqa: S603 - a fixed command over our own file
        [node, "--check", str(DASHBOARD_JS)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
