"""Fault timelines cut the measured window into named phases."""

from __future__ import annotations

from orchestrator.loadtest.phase import FaultEvent, PhaseMap, describe_fault

HANG = {"hang": True}


def test_no_faults_is_one_steady_phase():
    """Without a timeline the whole measured window is one phase."""
    phases = PhaseMap.from_timeline([], 5, 35)
    assert [(p.name, p.start_s, p.end_s) for p in phases] == [("steady", 5, 35)]


def test_a_fault_and_its_heal_give_before_during_after():
    """Hang at 15, heal at 30: three phases named for what was broken."""
    events = [FaultEvent(15, "licensing", HANG), FaultEvent(30, "licensing")]
    phases = PhaseMap.from_timeline(events, 5, 40)
    assert [(p.name, p.start_s, p.end_s) for p in phases] == [
        ("before", 5, 15),
        ("licensing hang", 15, 30),
        ("after licensing hang", 30, 40),
    ]


def test_a_fault_set_during_warmup_is_in_force_from_the_start():
    """Events before the measured window set the first phase's state."""
    phases = PhaseMap.from_timeline([FaultEvent(1, "ratings", {"error_rate": 0.5})], 5, 20)
    assert [p.name for p in phases] == ["ratings 50% errors"]


def test_overlapping_faults_are_named_together_and_heal_all_clears_them():
    """Two faults in force at once form one phase; a heal-all ends both."""
    events = [
        FaultEvent(10, "catalog", {"latency_ms": 150}),
        FaultEvent(20, "ratings", {"error_rate": 0.5}),
        FaultEvent(30, None),
    ]
    names = [p.name for p in PhaseMap.from_timeline(events, 0, 40)]
    assert names == [
        "before",
        "catalog +150 ms",
        "catalog +150 ms + ratings 50% errors",
        "after catalog +150 ms + ratings 50% errors",
    ]


def test_a_repeated_fault_gets_a_numbered_phase():
    """The same fault twice makes two distinct phase names."""
    events = [
        FaultEvent(10, "licensing", HANG),
        FaultEvent(15, "licensing"),
        FaultEvent(20, "licensing", HANG),
        FaultEvent(25, "licensing"),
    ]
    names = [p.name for p in PhaseMap.from_timeline(events, 0, 30)]
    assert len(set(names)) == len(names)
    assert names[3] == "licensing hang (2)"


def test_index_maps_offsets_to_phases():
    """Offsets fall into [start, end) windows; later offsets go to the last phase."""
    phases = PhaseMap.from_timeline([FaultEvent(15, "licensing", HANG)], 5, 30)
    assert [phases.index(t) for t in (5, 14.999, 15, 29.9, 31)] == [0, 0, 1, 1, 1]


def test_describe_fault_names_each_setting():
    """Every fault setting shows in the phase name."""
    fault = {"refuse": True, "malformed": True, "drip_ms": 50, "latency_ms": 0}
    assert describe_fault("plans", fault) == "plans refuse, malformed, drip 50 ms"
    assert describe_fault("catalog", {"capacity": 2, "queue_limit": 10}) == "catalog capacity 2"
    tail = {"tail_percent": 1, "tail_ms": 300}
    assert describe_fault("catalog", tail) == "catalog 1% tail of 300 ms"
    assert describe_fault("catalog", {}) == "catalog healthy"


def test_rate_steps_become_phases_inside_the_measured_window():
    """Steps at 0/10/20 with a 5 s warmup: phases start at 5, 10, 20 and are named by rate."""
    phases = PhaseMap.from_steps([(0, 75), (10, 150), (20, 300)], 5, 30)
    assert [(p.name, p.start_s, p.end_s) for p in phases] == [
        ("75 req/s", 5, 10),
        ("150 req/s", 10, 20),
        ("300 req/s", 20, 30),
    ]


def test_steps_wholly_inside_the_warmup_are_dropped():
    """A step that ends before the warmup does cannot be a phase."""
    phases = PhaseMap.from_steps([(0, 10), (2, 20), (8, 30)], 5, 12)
    assert [p.name for p in phases] == ["20 req/s", "30 req/s"]
