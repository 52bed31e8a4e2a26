"""orchestrator.loadtest.journey: trips that carry what they learn, scenarios that declare
them, and the runner driving them open loop on a fake clock."""

from __future__ import annotations

import json
import random
from collections import Counter

import gevent
import pytest

from orchestrator.loadtest.client import Response
from orchestrator.loadtest.journey import Journeys, JourneySpec, Step, Trip
from orchestrator.loadtest.mix import Mix
from orchestrator.loadtest.phase import PhaseMap
from orchestrator.loadtest.runner import Runner, RunPlan
from orchestrator.loadtest.scenario import ScenarioError, parse_scenario
from orchestrator.loadtest.schedule import OpenLoop
from orchestrator.loadtest.stats import Recorder


def tokens(member: str) -> str:
    """A stand-in token naming its member."""
    return f"token-of-{member}"


def reply(status: int = 200, **body: object) -> Response:
    """A JSON response."""
    return Response(status, "application/json", json.dumps(body).encode())


def trip(spec: JourneySpec, seed: int = 3) -> Trip:
    rng = random.Random(seed)
    return Trip(spec, Mix({"home": 1}, tokens, rng, "run1"), rng, tokens)


def auth(request) -> str | None:
    return dict(request.headers).get("Authorization")


WATCH = JourneySpec(
    "watch",
    1.0,
    (
        Step("home", 4.0),
        Step("title", 6.0),
        Step("play", 10.0),
        Step("heartbeat", 10.0, repeat=2),
    ),
)
JOIN = JourneySpec(
    "join",
    1.0,
    (Step("plans", 5.0), Step("signup", 3.0), Step("home", 4.0)),
    member=False,
)
HOME = reply(rows=[{"videos": [{"id": "t29"}, {"id": "t31"}]}, {"videos": [{"id": "t40"}]}])


def test_a_watch_trip_plays_a_title_from_its_home_page_and_bookmarks_it():
    watching = trip(WATCH)
    steps = list(watching.steps())
    assert [s.endpoint for s in steps] == ["home", "title", "play", "heartbeat", "heartbeat"]
    home = watching.request(steps[0])
    assert home.endpoint == "watch:home"
    member = auth(home)
    assert member is not None
    assert member.startswith("Bearer token-of-m")
    assert watching.learn(steps[0], HOME)
    assert watching.title_id in {"t29", "t31", "t40"}

    title = watching.request(steps[1])
    assert title.path == f"/v1/discovery/titles/{watching.title_id}"
    assert auth(title) == member  # one member for the whole trip
    assert watching.learn(steps[1], reply(id=watching.title_id, duration_s=1200))

    play = watching.request(steps[2])
    assert json.loads(play.body)["title_id"] == watching.title_id
    assert watching.learn(steps[2], reply(allowed=True, resume_position_s=300))

    first = json.loads(watching.request(steps[3]).body)
    assert first == {"title_id": watching.title_id, "position_s": 300}
    assert watching.learn(steps[3], reply(saved=True))
    second = json.loads(watching.request(steps[4]).body)
    assert second["position_s"] == 310  # one think time later


def test_a_heartbeat_never_passes_the_titles_end():
    watching = trip(WATCH)
    steps = list(watching.steps())
    watching.learn(steps[0], HOME)
    watching.learn(steps[1], reply(duration_s=305))
    watching.learn(steps[2], reply(allowed=True, resume_position_s=300))
    watching.learn(steps[3], reply(saved=True))
    assert json.loads(watching.request(steps[4]).body)["position_s"] == 304


def test_a_join_trip_signs_up_for_a_plan_it_saw_and_uses_the_token_it_got():
    joining = trip(JOIN)
    plans, signup, home = list(joining.steps())
    first = joining.request(plans)
    assert auth(first) is None
    assert joining.learn(plans, reply(plans=[{"id": "premium"}]))
    request = joining.request(signup)
    assert json.loads(request.body)["plan_id"] == "premium"
    assert auth(request) is None
    assert joining.learn(signup, reply(201, member_id="m100001", token="tok-new"))  # noqa: S106
    assert auth(joining.request(home)) == "Bearer tok-new"


def test_a_member_step_before_sign_up_goes_without_a_token():
    early = JourneySpec("early", 1.0, (Step("home"),), member=False)
    assert auth(trip(early).request(Step("home"))) is None


@pytest.mark.parametrize(
    ("step", "response"),
    [
        (Step("home"), None),  # no answer
        (Step("home"), reply(503, code="dependency_unavailable")),
        (Step("title"), reply(404, code="not_found")),
        (Step("play"), reply(allowed=False)),  # not allowed to play: nothing to bookmark
    ],
)
def test_no_answer_an_error_or_a_refused_play_ends_the_trip(step, response):
    assert not trip(WATCH).learn(step, response)


def test_a_degraded_answer_goes_on():
    watching = trip(WATCH)
    degraded = reply(rows=[{"videos": [{"id": "t7"}]}], meta={"degraded": ["ratings"]})
    assert watching.learn(Step("home"), degraded)
    assert watching.title_id == "t7"


def test_think_times_are_jittered_around_the_declared_one():
    watching = trip(WATCH)
    times = [watching.think_s(Step("home", 10.0)) for _ in range(200)]
    assert 5.0 <= min(times) < 6.0
    assert 14.0 < max(times) <= 15.0


def test_journeys_start_in_proportion_to_their_rates():
    rng = random.Random(1)
    specs = [
        (JourneySpec("a", 3.0, (Step("home"),)), Mix({"home": 1}, tokens, rng, "r")),
        (JourneySpec("b", 1.0, (Step("home"),)), Mix({"home": 1}, tokens, rng, "r")),
    ]
    journeys = Journeys(specs, rng, tokens)
    assert journeys.rate == 4.0
    drawn = Counter(journeys.next().spec.name for _ in range(4000))
    assert 2850 < drawn["a"] < 3150


# -- scenarios ------------------------------------------------------------------------------


def scenario(**journey: object) -> dict[str, object]:
    table = {"name": "watch", "rate": 2, "steps": [{"endpoint": "home", "think_s": 1}]}
    table.update(journey)
    return {"load": {"duration_s": 10}, "journeys": [table]}


def test_a_scenario_declares_journeys_and_records_each_step():
    parsed = parse_scenario(
        scenario(
            steps=[
                {"endpoint": "home", "think_s": 4},
                {"endpoint": "heartbeat", "repeat": 3, "think_s": 30},
            ]
        ),
        name="s",
        source="s.toml",
    )
    (spec,) = parsed.journeys
    assert spec.steps == (Step("home", 4.0), Step("heartbeat", 30.0, 3))
    assert parsed.endpoints() == {"watch:home", "watch:heartbeat"}
    assert parsed.load == OpenLoop.constant(2.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (scenario(steps=[{"endpoint": "dance"}]), r"steps\[0\]\.endpoint: expected one of"),
        (scenario(steps=[]), r"steps: must be an array of 1 to 50"),
        (scenario(steps=[{"endpoint": "home", "repeat": 0}]), r"repeat"),
        (scenario(steps=[{"endpoint": "home", "think_s": -1}]), r"think_s"),
        (scenario(member="yes"), r"member: must be true or false"),
        (scenario(rate=None) | {"journeys": [{"name": "w", "steps": []}]}, r"rate: missing"),
        (
            scenario() | {"load": {"duration_s": 10, "rate": 5}},
            r"give no rate, steps or concurrency with \[\[journeys\]\]",
        ),
        (
            scenario() | {"clients": [{"name": "c", "rate": 1}]},
            r"give \[\[journeys\]\] or \[\[clients\]\], not both",
        ),
    ],
)
def test_a_bad_journey_is_refused_naming_its_key(data, message):
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(data, name="s", source="s.toml")


# -- the runner -----------------------------------------------------------------------------


class FakeClock:
    """Time moves only when the runner waits or a request takes time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        gevent.sleep(0)
        self.now += seconds
        return False


def test_the_runner_sends_each_trips_steps_in_turn_a_think_time_apart():
    """One trip a second for 3 s, steps home -> title (think 1 s, no jitter: think 0 and a
    fixed step), each step sent after the previous answer, recorded per step."""
    clock = FakeClock()
    sent: list[tuple[float, str]] = []
    steps = (Step("home", 0.0), Step("title", 0.0), Step("play", 0.0))
    spec = JourneySpec("w", 1.0, steps)

    def send(request):
        sent.append((round(clock() - 1000.0, 3), request.endpoint))
        clock.now += 0.25  # every answer takes 250 ms
        if request.endpoint == "w:home":
            return HOME
        if request.endpoint == "w:title":
            return reply(404, code="not_found")  # ends the trip: no play
        return reply()

    rng = random.Random(2)
    journeys = Journeys([(spec, Mix({"home": 1}, tokens, rng, "r"))], rng, tokens)
    plan = RunPlan(OpenLoop.constant(1.0), 0, 3)
    recorder = Recorder(PhaseMap.from_timeline([], 0, plan.end_s), 0)
    runner = Runner(
        plan,
        lambda: pytest.fail("no mix request with journeys"),
        send,
        recorder,
        clock=clock,
        wait=clock.wait,
        journeys=journeys.next,
    )
    runner.run()
    kinds = Counter(endpoint for _, endpoint in sent)
    assert kinds == {"w:home": 3, "w:title": 3}  # the 404 ended every trip before play
    for at, endpoint in sent:
        if endpoint == "w:title":
            assert (at - 0.25, "w:home") in sent  # right after its home answer
    assert recorder.cells[(0, "w:home")].count == 3
    assert recorder.cells[(0, "w:title")].statuses["4xx"] == 3
