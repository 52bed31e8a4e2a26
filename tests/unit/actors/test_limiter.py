"""The adaptive concurrency limit, on a simulated clock against a tiny backend model."""

from __future__ import annotations

import heapq
import random
from dataclasses import asdict, dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.limiter import AdaptiveLimit, Limiter, LimiterSettings, Token

BASE_S = 0.020  # the model backend's no-load latency
RATE_PER_S = 10_000  # offered load: 200 calls in flight at no-load latency


@dataclass
class Backend:
    """``capacity`` calls served at full speed; beyond it they share it (latency grows in
    proportion), with ``jitter`` on every latency, a share of fast 503s, or a hang."""

    capacity: int
    base_s: float = BASE_S
    jitter: float = 0.0
    overloaded_rate: float = 0.0  # fast 503s: dropped
    error_rate: float = 0.0  # fast 500s: ignored
    hang: bool = False
    timeout_s: float = 1.0


@dataclass
class Run:
    """Open-loop arrivals at ``RATE_PER_S`` through a limiter into a ``Backend``, by events."""

    limiter: Limiter
    backend: Backend
    seed: int = 1
    now: float = 0.0
    rejected: int = 0
    #: (time, limit) after every ended call.
    limits: list[tuple[float, int]] = field(default_factory=list)
    #: (time, round-trip time) of every call answered.
    rtts: list[tuple[float, float]] = field(default_factory=list)
    _next_arrival: float = 0.0
    _ends: list[tuple[float, int, Token, str]] = field(default_factory=list)
    _seq: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def until(self, end: float) -> Run:
        """Advance the clock to ``end``, arriving and ending calls in time order."""
        while True:
            if self._ends and self._ends[0][0] <= self._next_arrival:
                if self._ends[0][0] > end:
                    break
                self.now, _, token, how = heapq.heappop(self._ends)
                self._end(token, how)
            else:
                if self._next_arrival > end:
                    break
                self.now = self._next_arrival
                self._next_arrival += 1.0 / RATE_PER_S
                self._arrive()
        self.now = end
        return self

    def _arrive(self) -> None:
        token = self.limiter.try_acquire(self.now)
        if token is None:
            self.rejected += 1
            return
        backend, draw = self.backend, self._rng.random()
        if backend.hang:
            self._schedule(backend.timeout_s, token, "drop")
        elif draw < backend.overloaded_rate:
            self._schedule(backend.base_s / 10, token, "drop")
        elif draw < backend.overloaded_rate + backend.error_rate:
            self._schedule(backend.base_s / 10, token, "ignore")
        else:
            spread = 1 + self._rng.uniform(-backend.jitter, backend.jitter)
            rtt = backend.base_s * spread * max(1.0, self.limiter.inflight / backend.capacity)
            if rtt >= backend.timeout_s:
                self._schedule(backend.timeout_s, token, "drop")
            else:
                self._schedule(rtt, token, "ok")

    def _schedule(self, after_s: float, token: Token, how: str) -> None:
        self._seq += 1
        heapq.heappush(self._ends, (self.now + after_s, self._seq, token, how))

    def _end(self, token: Token, how: str) -> None:
        if how == "ok":
            token.success(self.now)
            self.rtts.append((self.now, self.now - token.start))
        elif how == "drop":
            token.dropped(self.now)
        else:
            token.ignore()
        self.limits.append((self.now, self.limiter.limit))

    def limits_between(self, start: float, end: float) -> list[int]:
        """The limits after the calls that ended in ``[start, end)``."""
        return [limit for at, limit in self.limits if start <= at < end]

    def median_rtt_between(self, start: float, end: float) -> float:
        """The median round-trip time of the calls answered in ``[start, end)``."""
        rtts = sorted(rtt for at, rtt in self.rtts if start <= at < end)
        return rtts[len(rtts) // 2]


def run(capacity: int, seed: int = 1, **settings: float) -> Run:
    """A run with default settings (or the given ones) against a backend of ``capacity``."""
    return Run(Limiter(LimiterSettings(**settings)), Backend(capacity), seed)  # type: ignore[arg-type]


def test_defaults_are_the_documented_ones():
    """Gradient2's defaults where it has one; the rest as the docstring says."""
    assert asdict(LimiterSettings()) == {
        "initial_limit": 20,
        "min_limit": 2,
        "max_limit": 200,
        "smoothing": 0.2,
        "rtt_tolerance": 1.5,
        "queue_size": 4,
        "short_window": 10,
        "noload_window_s": 30.0,
        "probe_ratio": 0.5,
        "backoff_ratio": 0.9,
        "drop_threshold": 0.25,
        "drop_window": 100,
    }


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"min_limit": 0}, ValueError),
        ({"initial_limit": 1, "min_limit": 2}, ValueError),
        ({"initial_limit": 300}, ValueError),
        ({"smoothing": 0.0}, ValueError),
        ({"smoothing": 1.5}, ValueError),
        ({"rtt_tolerance": 0.9}, ValueError),
        ({"queue_size": -1}, ValueError),
        ({"short_window": 0}, ValueError),
        ({"drop_window": 0}, ValueError),
        ({"noload_window_s": 0.0}, ValueError),
        ({"probe_ratio": 0.0}, ValueError),
        ({"backoff_ratio": 1.0}, ValueError),
        ({"drop_threshold": 1.0}, ValueError),
        ({"noload_window_s": float("nan")}, ValueError),
        ({"min_limit": True}, TypeError),
        ({"max_limit": 200.5}, TypeError),
        ({"smoothing": "0.2"}, TypeError),
    ],
)
def test_settings_refuse_values_that_cannot_work(changes, error):
    """Bounds out of order, shares outside (0, 1], wrong types: refused at construction."""
    with pytest.raises(error):
        LimiterSettings(**changes)


def test_acquire_admits_up_to_the_limit_and_counts_rejections():
    """With a limit of 3 the fourth call is refused; ending one frees its place."""
    limiter = Limiter(LimiterSettings(initial_limit=3))
    tokens = [limiter.try_acquire(0.0) for _ in range(3)]
    assert None not in tokens
    assert [token.inflight for token in tokens if token] == [1, 2, 3]
    assert limiter.try_acquire(0.0) is None
    assert (limiter.inflight, limiter.rejected) == (3, 1)
    assert tokens[0] is not None
    tokens[0].ignore()
    assert limiter.try_acquire(0.0) is not None


def test_a_token_ends_once_and_ignore_teaches_nothing():
    """A second end is a no-op; ``ignore`` frees the place without a sample."""
    limiter = Limiter(LimiterSettings(initial_limit=4, short_window=1))
    token = limiter.try_acquire(0.0)
    assert token is not None
    token.ignore()
    token.dropped(5.0)
    token.success(5.0)
    assert limiter.inflight == 0
    assert limiter.algorithm.short_rtt_s == 0.0
    assert limiter.algorithm.estimate == 4.0


def test_an_app_limited_caller_neither_grows_nor_shrinks_the_limit():
    """One call at a time under a limit of 20 says nothing about capacity: the limit stays."""
    algorithm = AdaptiveLimit()
    for index in range(200):
        algorithm.on_sample(index * 0.1, 0.02 if index < 100 else 0.2, 1, dropped=False)
    assert algorithm.limit == 20


def test_a_capacity_drop_shrinks_the_limit_near_the_new_capacity():
    """Capacity 100 -> 40: the limit falls from ~154 to ~64 (1.5 x 40 + 4) within 1 s (about
    1,500 calls) and stays there; latency settles at about 1.6 x the no-load latency."""
    sim = run(100).until(5.0)
    assert 150 <= min(sim.limits_between(4.0, 5.0)) <= max(sim.limits_between(4.0, 5.0)) <= 158
    sim.backend.capacity = 40
    calls_before = len(sim.limits)
    sim.until(10.0)
    after_drop = [limit for _, limit in sim.limits[calls_before:]]
    calls_to_converge = next(index for index, limit in enumerate(after_drop) if limit <= 68)
    assert calls_to_converge < 2_000  # measured: 1,492
    settled = sim.limits_between(6.0, 10.0)
    assert 60 <= min(settled) <= max(settled) <= 68
    assert 1.4 * BASE_S <= sim.median_rtt_between(8.0, 10.0) <= 1.8 * BASE_S


def test_recovery_grows_the_limit_back():
    """Capacity 40 -> 100: the limit grows by ~0.8 per round trip, back above 150 within 5 s,
    never overshooting the equilibrium by more than a few calls."""
    sim = run(40).until(5.0)
    assert max(sim.limits_between(4.0, 5.0)) <= 68
    sim.backend.capacity = 100
    sim.until(6.0)
    assert 80 <= max(sim.limits_between(5.0, 6.0)) <= 120
    sim.until(10.0)
    assert min(sim.limits_between(9.0, 10.0)) >= 150
    assert max(sim.limits_between(5.0, 10.0)) <= 158


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_jitter_and_errors_do_not_shrink_the_limit_below_capacity(seed):
    """±30 % latency jitter, 10 % fast 503s (dropped) and 10 % fast 500s (ignored): the limit
    holds between the capacity and 1.8 x it; never a backoff cascade."""
    sim = run(40, seed)
    sim.backend.jitter, sim.backend.overloaded_rate, sim.backend.error_rate = 0.3, 0.1, 0.1
    limits = sim.until(10.0).limits_between(3.0, 10.0)
    assert 45 <= min(limits) <= max(limits) <= 70
    # The no-load estimate is the low edge of the jittered latency, not the fastest draw.
    assert 0.75 * BASE_S <= sim.limiter.algorithm.noload_rtt_s <= BASE_S


def test_noise_leaves_an_unsaturated_limit_above_demand():
    """Below capacity (200 in flight of 10,000), jitter and 10 % 503s never pull the limit
    down to the demand: after the start-up ramp no call is refused."""
    sim = run(10_000, max_limit=400)
    sim.backend.jitter, sim.backend.overloaded_rate = 0.3, 0.1
    refused_during_ramp = sim.until(3.0).rejected
    assert min(sim.until(10.0).limits_between(3.0, 10.0)) >= 350
    assert sim.rejected == refused_during_ramp


def test_bounds_hold_against_an_unlimited_and_a_hopeless_backend():
    """An unlimited backend takes the limit to max_limit exactly; a hang, to min_limit."""
    sim = run(10_000, max_limit=60, min_limit=5, initial_limit=10).until(3.0)
    assert set(sim.limits_between(2.0, 3.0)) == {60}
    sim.backend.hang = True
    sim.until(6.0)
    assert set(sim.limits_between(5.0, 6.0)) == {5}


samples = st.lists(
    st.tuples(
        st.floats(0.0, 5.0),  # gap since the previous start
        st.floats(0.0, 10.0),  # round-trip time
        st.integers(1, 500),  # in flight at start
        st.booleans(),  # dropped
    ),
    max_size=300,
)


@given(samples, st.integers(1, 50), st.integers(0, 100), st.floats(0.1, 1.0))
def test_the_limit_never_leaves_its_bounds(sequence, min_limit, spread, probe_ratio):
    """Whatever the samples (zero RTTs, huge RTTs, all drops), min_limit <= limit <= max."""
    settings = LimiterSettings(
        initial_limit=min_limit + spread // 2,
        min_limit=min_limit,
        max_limit=min_limit + spread,
        short_window=3,
        noload_window_s=2.0,
        probe_ratio=probe_ratio,
    )
    algorithm, start = AdaptiveLimit(settings), 0.0
    for gap, rtt, inflight, dropped in sequence:
        start += gap
        limit = algorithm.on_sample(start, rtt, inflight, dropped)
        assert limit == algorithm.limit
        assert min_limit <= limit <= min_limit + spread
        assert min_limit <= algorithm.estimate <= min_limit + spread


def test_a_hang_cuts_the_limit_to_min_within_one_timeout():
    """Every call times out (1 s) from t=5: the limit goes from ~154 to min_limit by the time
    the first calls sent into the hang time out, stays there, and once the hang heals slow
    start takes it back to ~154 within a second."""
    sim = run(100).until(5.0)
    assert sim.limiter.limit >= 150
    sim.backend.hang = True
    sim.until(6.05)
    assert sim.limiter.limit == 2
    assert set(sim.until(9.0).limits_between(6.05, 9.0)) == {2}
    sim.backend.hang = False
    sim.until(10.0)
    assert 140 <= sim.limiter.limit <= 170


def test_slow_start_finds_the_capacity_within_a_few_round_trips():
    """From initial_limit 20, the limit nearly doubles per round trip until latency rises; it
    overshoots (to max_limit here) for a quarter of a second, back to 1.5 x capacity + 4."""
    sim = run(100).until(0.1)  # five no-load round trips
    assert sim.limiter.limit >= 100
    sim.until(2.0)
    overshoot = [at for at, limit in sim.limits if limit > 170]
    assert max(overshoot) - min(overshoot) < 0.25
    assert set(sim.limits_between(1.0, 2.0)) == {154}


def test_probes_stop_the_no_load_estimate_drifting_under_saturation():
    """Saturated for 30 windows (1 s each): with probes the limit stays at ~1.5 x capacity;
    without them the no-load estimate climbs to the loaded latency and the limit to its max."""
    probed = run(40, noload_window_s=1.0).until(30.0)
    assert max(probed.limits_between(10.0, 30.0)) <= 70
    assert probed.limiter.algorithm.noload_rtt_s <= 1.05 * BASE_S
    unprobed = run(40, noload_window_s=1.0, probe_ratio=1.0).until(30.0)
    assert min(unprobed.limits_between(20.0, 30.0)) == 200
    assert unprobed.limiter.algorithm.noload_rtt_s >= 4 * BASE_S
    # What the probes cost: the calls refused while the limit is halved, ~2 % with 1 s windows.
    served = len(probed.rtts) / len(unprobed.rtts)
    assert 0.95 <= served < 1.0


def test_a_probe_halves_the_limit_for_two_round_trips():
    """At the end of a no-load window the limit is cut to probe_ratio for 2 x short RTT."""
    algorithm = AdaptiveLimit(LimiterSettings(initial_limit=40, short_window=1))
    algorithm.on_sample(0.0, 0.1, 40, dropped=False)  # opens the window at t=0.1
    before = algorithm.on_sample(1.0, 0.1, 40, dropped=False)
    assert not algorithm.probing(30.0)
    during = algorithm.on_sample(30.0, 0.1, 40, dropped=False)  # ends at 30.1: window over
    assert algorithm.probing(30.2)
    assert during == int(algorithm.estimate * 0.5)
    assert during < before
    after = algorithm.on_sample(30.2, 0.1, 40, dropped=False)  # ends at 30.3: probe over
    assert not algorithm.probing(30.3)
    assert after == int(algorithm.estimate)


def test_a_slower_backend_is_re_measured_within_a_window():
    """The backend's own latency triples (not its capacity): the limit is cut while that
    looks like queueing; once a whole window has seen only the new latency it is the no-load
    latency, and slow start takes the limit back to its max."""
    sim = run(10_000, noload_window_s=2.0, max_limit=150).until(4.0)
    assert sim.limiter.limit == 150
    sim.backend.base_s = 3 * BASE_S
    sim.until(5.0)
    assert sim.limiter.limit <= 100
    sim.until(10.0)  # two windows: one mixes old and new latency, the next only the new
    assert sim.limiter.algorithm.noload_rtt_s == pytest.approx(3 * BASE_S)
    assert sim.limiter.limit == 150
