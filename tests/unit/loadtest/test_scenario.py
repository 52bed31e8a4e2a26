"""Scenario files: the shipped ones parse; bad ones fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.loadtest.scenario import ScenarioError, load_scenario, parse_scenario
from orchestrator.loadtest.schedule import ClosedLoop, OpenLoop
from orchestrator.loadtest.threshold import check_applicable

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
LOAD = {"rate": 10, "duration_s": 5}


def _parse(data):
    return parse_scenario(data, name="t", source="t.toml")


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_parses(path):
    """Each file in scenarios/ is valid and its faults fall inside the run."""
    scenario = load_scenario(path)
    assert scenario.duration_s > 0
    assert all(event.at_s <= scenario.end_s for event in scenario.faults)


def test_the_required_scenarios_are_shipped():
    """baseline, licensing-hang, ratings-errors, overload and slow-catalog exist."""
    names = {path.stem for path in SCENARIOS.glob("*.toml")}
    assert {"baseline", "licensing-hang", "ratings-errors", "overload", "slow-catalog"} <= names


def test_a_full_scenario_parses_into_values():
    """Load, mix and timeline come out typed and sorted."""
    scenario = _parse(
        {
            "load": {"steps": [{"at_s": 0, "rate": 5}, {"at_s": 2, "rate": 9}], "duration_s": 4},
            "mix": {"home": 3, "play": 1},
            "faults": [
                {"at_s": 3, "service": "licensing", "heal": True},
                {"at_s": 1, "service": "licensing", "hang": True},
            ],
        }
    )
    assert isinstance(scenario.load, OpenLoop)
    assert [s.rate for s in scenario.load.steps] == [5, 9]
    assert scenario.mix == {"home": 3, "play": 1}
    assert [(e.at_s, e.heals) for e in scenario.faults] == [(1, False), (3, True)]
    assert scenario.faults[0].fault["hang"] is True


def test_concurrency_makes_a_closed_loop():
    """load.concurrency selects the closed loop."""
    scenario = _parse({"load": {"concurrency": 4, "duration_s": 2}})
    assert scenario.load == ClosedLoop(4)


def _fault(**fields):
    return {"load": LOAD, "faults": [fields]}


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"load": LOAD, "extra": 1}, "extra"),
        ({}, "load"),
        ({"load": {"rate": 10}}, "load.duration_s"),
        ({"load": {"rate": 10, "concurrency": 2, "duration_s": 1}}, "load"),
        ({"load": {"rate": True, "duration_s": 1}}, "load.rate"),
        ({"load": {"rate": 10, "duration_s": 99999}}, "load.duration_s"),
        ({"load": {"steps": [{"at_s": 1, "rate": 2}], "duration_s": 1}}, "load.steps[0].at_s"),
        ({"load": {"steps": [{"at_s": 0}], "duration_s": 1}}, "load.steps[0].rate"),
        ({"load": LOAD, "mix": {"homepage": 1}}, "mix.homepage"),
        ({"load": LOAD, "mix": {"home": 0}}, "mix"),
        (_fault(service="ratings", hang=True), "faults[0].at_s"),
        (_fault(at_s=1, service="nope", hang=True), "faults[0].service"),
        (_fault(at_s=1, service="ratings", error_rate=2), "faults[0].error_rate"),
        (_fault(at_s=1, service="ratings", slow=1), "faults[0].slow"),
        (_fault(at_s=99, service="ratings", hang=True), "faults[0].at_s"),
        (_fault(at_s=1, service="ratings"), "faults[0]"),
        (_fault(at_s=1, hang=True), "faults[0].service"),
        (_fault(at_s=1, heal=True, hang=True), "faults[0]"),
    ],
)  # fmt: skip
def test_bad_scenarios_name_the_offending_key(data, key):
    """Each mistake raises ScenarioError whose key and message name the culprit."""
    with pytest.raises(ScenarioError) as caught:
        _parse(data)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"t.toml: {key}: ")


def test_invalid_toml_names_the_file(tmp_path):
    """A syntax error says which file and that it is not TOML."""
    path = tmp_path / "broken.toml"
    path.write_text("[load\nrate = 1\n")
    with pytest.raises(ScenarioError, match=r"broken\.toml: not valid TOML"):
        load_scenario(path)


def test_a_missing_file_is_a_scenario_error(tmp_path):
    """An unreadable path is reported, not a traceback."""
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nope.toml")


def test_a_thresholds_table_parses_with_the_file_as_source():
    """[thresholds] keys are selectors (with @phase), values METRIC OP VALUE strings."""
    scenario = _parse({"load": LOAD, "thresholds": {"all": "errors<1%", "play@fault": ["p99<2s"]}})
    assert [(t.expression, t.bound, t.source) for t in scenario.thresholds] == [
        ("all.errors<1%", 0.01, "t.toml"),
        ("play@fault.p99<2s", 2000.0, "t.toml"),
    ]


def test_a_bad_threshold_names_the_file_and_key():
    """The error reads like every other scenario error."""
    with pytest.raises(ScenarioError, match=r"^t\.toml: thresholds\.home\[0\]: 'home\.p95<1s'"):
        _parse({"load": LOAD, "thresholds": {"home": ["p95<1s"]}})


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_states_thresholds_its_run_can_judge(path):
    """Each scenario says what it proves as thresholds, on endpoints and phases it has."""
    scenario = load_scenario(path)
    assert scenario.thresholds
    phases = [{"name": p.name, "faults": p.faults} for p in scenario.phase_map()]
    check_applicable(scenario.thresholds, scenario.endpoints(), phases)
