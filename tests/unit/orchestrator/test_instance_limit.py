"""The adaptive concurrency limit across an instance's workers: carried in each worker's
report, added up like bulkhead sizes, and absent (None) where no worker has one."""

from __future__ import annotations

from actors.stats import WindowStats
from orchestrator.ops.instance import (
    BackendPart,
    BreakerPart,
    FrontendGauges,
    InstanceReport,
    WorkerReport,
)

CLOSED = BreakerPart("closed", None, None)


def _part(name: str, limit: int | None) -> BackendPart:
    totals = WindowStats(clock=lambda: 0.0).totals()
    return BackendPart(name, CLOSED, 1, 0, 10, 10, totals, limit=limit)


def _worker(pid: int, *parts: BackendPart) -> WorkerReport:
    return WorkerReport(pid, 1.0, parts, (), FrontendGauges(0, 0))


def test_a_report_carries_each_backends_limit_through_json():
    """A worker's report read back from its JSON keeps the limit, and the null of none."""
    report = _worker(7, _part("licensing", 4), _part("catalog", None))
    again = WorkerReport.from_json(report.to_json())
    assert again == report
    assert [b.limit for b in again.backends] == [4, None]


def test_limits_add_up_over_workers_and_none_stays_none():
    """Two workers' limits of 4 and 6 are the instance's 10, as their bulkheads add up;
    a backend no worker limits has none."""
    instance = InstanceReport(
        (
            _worker(1, _part("catalog", None), _part("licensing", 4)),
            _worker(2, _part("catalog", None), _part("licensing", 6)),
        ),
        (),
        1,
    )
    catalog, licensing = instance.backends()
    assert (licensing.limit, licensing.max_concurrent) == (10, 20)
    assert catalog.limit is None
