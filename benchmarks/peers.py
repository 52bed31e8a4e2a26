"""Frontdoor side by side with two lean reference implementations of the same endpoints.

What it measures. Frontdoor and reference implementations of ``POST /v1/playback/play``
and ``GET /v1/discovery/home``, each calling the same fixed-delay backends with the same
data dependencies:

- ``frontdoor``: ``frontdoor serve --no-embedded`` with every mechanism on (deadlines,
  retries, breakers, bulkheads sized for 64 concurrent requests, bearer-token auth,
  statsd metrics to a UDP socket on 127.0.0.1, the JSON access log to a file);
- ``aiohttp``: aiohttp + uvloop, one ClientSession, asyncio.gather
  (benchmarks/peers/aiohttp_peer.py);
- ``gevent``: gevent.pywsgi + one geventhttpclient pool per backend, gevent.spawn/joinall
  (benchmarks/peers/gevent_peer.py);
- ``gevent-requests``: the same with a requests.Session per backend (Frontdoor's HTTP
  client library), to separate the client library's cost from the rest.

The peers check the same bearer token, validate the same parameters and return the same
JSON (benchmarks/peers/_shared.py), with no resilience, metrics or logging.

The backends are one nginx (echo module): each path sleeps a fixed delay and returns a
body captured from the simulated microservices (benchmarks/peers/bodies.json, made by
benchmarks/peers/capture.py). Play is Frontdoor's plan
``(subscriber 5 ms || device 3) -> (decision 10 || bookmark 4) -> license 8``; home is
``subscriber 5 -> recommendations 15 -> (catalog 6 || ratings 4)`` for a 3 x 4 page (one
catalog call, ~2 KB, and one ratings call). The critical path (longest chain of delays)
is the floor of any implementation's latency: 23 ms for play, 26 ms for home.

How. The implementation under test runs alone on core 1; nginx, the load generators and
this script share core 0. One implementation at a time, one endpoint at a time:

1. one request to each endpoint, checked in full (status 200, the expected stream,
   licence, resume point, rows, cards and match scores; Frontdoor's ``meta.degraded``
   must be empty); any failure aborts the run;
2. open loop at 20 and at 100 req/s (benchmarks/peers/openloop.py): latency measured from
   each request's scheduled send time, after 1 s of warmup;
3. saturation: wrk, closed loop, ``--connections`` keep-alive connections (default 64),
   ``--duration`` s (default 10) after 2 s of warmup. CPU per request is the
   implementation process's user + system CPU (/proc) over the measured window divided by
   the requests wrk completed in it. Every reply body is checked by wrk's Lua script
   (Frontdoor: not degraded).

How to read it. ``req/s`` and ``CPU us/req`` are per core: what one process on one core
sustains, and what each request costs it. ``x aio`` columns are ratios to aiohttp +
uvloop (req/s: higher is better; CPU and latency: lower is better). ``p50/cp`` is the
open-loop p50 over the critical path: 1.0x would be an implementation costing no time at
all; what is above it is the implementation's own time (parsing, scheduling, queueing).
At 20 req/s for the default 5 s, p99 rests on 100 samples (it is the second-worst).
``own`` is the share of its core the implementation used at saturation (near 100%: it was
the limit, as it should be); ``load`` is nginx + wrk's share of core 0; ``c0+`` and ``c1+``
are what other processes used of each core. A row marked ``!`` was limited by something
else (own < 90%, core 0 > 90% busy, or c0+/c1+ > 10%): its req/s measured the machine,
while its CPU us/req stays meaningful. ``err`` counts failed, non-200 or wrong-bodied
replies across the three phases; it should be 0. The machine may be shared: compare
ratios within a run, and rows without ``!``.

    .venv/bin/python benchmarks/peers.py [--duration 10] [--connections 64] \
        [--only frontdoor,aiohttp] [--endpoints play,home] [--json OUT.json]

Needs nginx with the echo module (Debian: nginx + libnginx-mod-http-echo), wrk, and in
the virtualenv aiohttp, uvloop and geventhttpclient (plus Frontdoor's own requirements).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _processes import PYTHON, ROOT, cpu_s, free_port, rss_mb, stop, wait_listening

HERE = Path(__file__).resolve().parent / "peers"
NGINX = "/usr/sbin/nginx"
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
WRK = "/usr/bin/wrk"
LOAD_CORE = 0
IMPL_CORE = 1
OPEN_RATES = (20.0, 100.0)
OPEN_WARMUP_S = 1.0
WRK_WARMUP_S = 2.0
#: The peers verify the same HS256 tokens as Frontdoor; this run's secret (>= 32 bytes).
TOKEN_SECRET = "peers-benchmark-token-secret-not-a-credential"  # noqa: S105
BASELINE = "aiohttp"


# -- the workload ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One backend call of an endpoint: its nginx path, fixed delay and dependencies."""

    name: str
    path: str
    delay_ms: int
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    """One device endpoint: the request every generator sends, and its backend calls."""

    name: str
    method: str
    path: str
    body: str | None
    calls: tuple[Call, ...]
    check: Callable[[Any], str | None]

    def critical_path(self) -> tuple[int, list[Call]]:
        """The longest chain of delays through the calls' dependencies (calls in order)."""
        best: dict[str, tuple[int, list[Call]]] = {}
        for call in self.calls:  # listed in dependency order
            before = max((best[name] for name in call.after), key=lambda b: b[0], default=(0, []))
            best[call.name] = (before[0] + call.delay_ms, [*before[1], call])
        return max(best.values(), key=lambda b: b[0])


def _bodies() -> dict[str, Any]:
    return json.loads((HERE / "bodies.json").read_text())


def _endpoints(bodies: dict[str, Any]) -> dict[str, Endpoint]:
    req = bodies["request"]
    member, title, device = req["member_id"], req["title_id"], req["device_type"]
    replies = {path: reply["body"] for path, reply in bodies["replies"].items()}
    subscriber = Call("subscriber", f"/subscriber/members/{member}", 5)
    play_calls = (
        subscriber,
        Call("device", f"/device/devices/{device}", 3),
        Call("decision", "/playback/decisions", 10, ("subscriber", "device")),
        Call("bookmark", f"/bookmarks/{member}/{title}", 4, ("subscriber", "device")),
        Call("license", "/licensing/licenses", 8, ("device", "decision")),
    )
    home_calls = (
        subscriber,
        Call("recommendations", f"/recommendations/rows/{member}", 15, ("subscriber",)),
        Call("catalog", "/catalog/titles", 6, ("recommendations",)),
        Call("ratings", f"/ratings/match/{member}", 4, ("recommendations",)),
    )
    play_body = json.dumps({"title_id": title, "device_type": device})
    home_path = f"/v1/discovery/home?rows={req['rows']}&per_row={req['per_row']}"
    return {
        "play": Endpoint(
            "play", "POST", "/v1/playback/play", play_body, play_calls, _play_check(replies, req)
        ),
        "home": Endpoint("home", "GET", home_path, None, home_calls, _home_check(replies, req)),
    }


def _play_check(replies: dict[str, Any], req: dict[str, Any]) -> Callable[[Any], str | None]:
    member, title = req["member_id"], req["title_id"]
    stream = replies["/playback/decisions"]["stream"]["manifest_url"]
    licence = replies["/licensing/licenses"]["license_id"]
    position = replies[f"/bookmarks/{member}/{title}"]["position_s"]

    def check(reply: Any) -> str | None:
        got = (
            reply.get("allowed"),
            reply.get("stream", {}).get("manifest_url"),
            reply.get("license", {}).get("id"),
            reply.get("resume_position_s"),
        )
        want = (True, stream, licence, position)
        return None if got == want else f"(allowed, manifest, licence, resume) {got} != {want}"

    return check


def _home_check(replies: dict[str, Any], req: dict[str, Any]) -> Callable[[Any], str | None]:
    member = req["member_id"]
    rows = replies[f"/recommendations/rows/{member}"]["rows"][: req["rows"]]
    want_rows = [(row["id"], row["video_ids"][: req["per_row"]]) for row in rows]
    scores = replies[f"/ratings/match/{member}"]["scores"]
    name = replies[f"/subscriber/members/{member}"]["name"]

    def check(reply: Any) -> str | None:
        got_rows = [(row["id"], [v["id"] for v in row["videos"]]) for row in reply.get("rows", [])]
        if got_rows != want_rows:
            return f"rows {got_rows} != {want_rows}"
        cards = [card for row in reply["rows"] for card in row["videos"]]
        if any(
            card.get("match") != scores.get(card["id"]) or "boxart" not in card for card in cards
        ):
            return "cards without their boxart or match score"
        if reply.get("member", {}).get("name") != name:
            return "member name missing"
        return None

    return check


# -- nginx -------------------------------------------------------------------------------------


def _nginx_text(body: Any) -> str:
    """``body`` as a single-quoted nginx string (nginx unescapes \\\\ and \\')."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    if "$" in text:
        raise ValueError("a body with '$' would be read as an nginx variable")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def nginx_config(folder: Path, port: int, endpoints: list[Endpoint], bodies: dict[str, Any]) -> str:
    """The nginx configuration serving every call of ``endpoints``."""
    delays: dict[str, int] = {}
    for endpoint in endpoints:
        for call in endpoint.calls:
            if delays.setdefault(call.path, call.delay_ms) != call.delay_ms:
                raise ValueError(f"{call.path}: two delays")
    blocks = []
    for number, (path, delay_ms) in enumerate(sorted(delays.items())):
        body = _nginx_text(bodies["replies"][path]["body"])
        blocks.append(
            f"        location = {path} {{ echo_sleep {delay_ms / 1000:.3f}; "
            f"echo_exec /_reply/{number}; }}\n"
            f"        location = /_reply/{number} {{ internal; return 200 {body}; }}"
        )
    template = (HERE / "nginx.conf.template").read_text()
    return (
        template.replace("@@DIR@@", str(folder))
        .replace("@@PORT@@", str(port))
        .replace("@@LOCATIONS@@", "\n".join(blocks))
    )


# -- processes ---------------------------------------------------------------------------------


@dataclass
class Started:
    """A child process with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path


def _start(
    name: str, args: list[str], core: int, log: Path, env: dict[str, str] | None = None
) -> Started:
    """Like _processes.spawn, with stderr to ``log`` so a failed start can be explained."""
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter, nginx, scripts
            args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=out
        )
    os.sched_setaffinity(process.pid, {core % (os.cpu_count() or 1)})
    return Started(name, process, log)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class BenchmarkError(RuntimeError):
    """The run cannot go on: an implementation did not start or answered wrongly."""


def _await_port(started: Started, port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if started.process.poll() is not None:
            break
        try:
            wait_listening(port, timeout_s=1.0)
        except RuntimeError:
            continue
        return
    raise BenchmarkError(
        f"{started.name} did not start listening on port {port} "
        f"(exit code {started.process.poll()}); last lines of {started.log}:\n{_tail(started.log)}"
    )


class StatsdSink:
    """Frontdoor's statsd server: a UDP socket on 127.0.0.1, drained by a thread that
    counts the packets (proof that metrics are on) and throws them away."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port: int = self._socket.getsockname()[1]
        self.packets = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="statsd-sink", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stopped.is_set():
            try:
                self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.packets += 1

    def close(self) -> None:
        """Stop draining and close the socket."""
        self._stopped.set()
        self._thread.join(timeout=2)
        self._socket.close()


@dataclass(frozen=True)
class Bench:
    """What every measurement of a run shares."""

    args: argparse.Namespace
    folder: Path
    backends_url: str
    statsd: StatsdSink
    token: str
    nginx_pids: tuple[int, ...]

    def load_cpu_s(self) -> float:
        """CPU seconds used so far by nginx and by the finished load generators (wrk)."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return sum(cpu_s(pid) for pid in self.nginx_pids) + children.ru_utime + children.ru_stime


def _with_children(pid: int) -> tuple[int, ...]:
    """``pid`` and its child processes (nginx: the master and its worker)."""
    deadline = time.monotonic() + 5
    children = []
    while not children and time.monotonic() < deadline:  # the worker may still be forking
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        time.sleep(0.05)
    return (pid, *(int(child) for child in children))


# -- implementations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Impl:
    """An implementation under test: how to start it, and the marker of a good reply."""

    name: str
    label: str
    frontdoor: bool = False
    args: tuple[str, ...] = ()

    def expect(self, endpoint: Endpoint) -> str:
        """Text every good reply body contains (for the bulk checks of wrk and the open loop)."""
        if self.frontdoor:
            return '"degraded":[]'
        return '"manifest_url"' if endpoint.name == "play" else '"match"'


IMPLS = {
    impl.name: impl
    for impl in (
        Impl("frontdoor", "frontdoor", frontdoor=True),
        Impl("aiohttp", "aiohttp+uvloop", args=(str(HERE / "aiohttp_peer.py"),)),
        Impl("gevent", "gevent+geventhttpclient", args=(str(HERE / "gevent_peer.py"),)),
        Impl(
            "gevent-requests",
            "gevent+requests",
            args=(str(HERE / "gevent_peer.py"), "--client", "requests"),
        ),
    )
}


def _frontdoor_env(backends_url: str, statsd_port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRONTDOOR_")}
    env.update(
        FRONTDOOR_BACKENDS_BASE_URL=backends_url,
        FRONTDOOR_BACKENDS_EMBEDDED="false",
        FRONTDOOR_AUTH_DEMO="true",
        FRONTDOOR_AUTH_TOKEN_SECRET=TOKEN_SECRET,
        FRONTDOOR_SERVER_MAX_INFLIGHT="256",
        FRONTDOOR_SERVER_ADMIN_PORT="0",
        FRONTDOOR_BACKENDS_DEFAULTS_MAX_CONCURRENT="64",
        FRONTDOOR_BACKENDS_DEFAULTS_MAX_QUEUE="64",
        FRONTDOOR_STATSD_ENABLED="true",
        FRONTDOOR_STATSD_HOST="127.0.0.1",
        FRONTDOOR_STATSD_PORT=str(statsd_port),
        FRONTDOOR_LOGGING_LEVEL="INFO",  # the access log: one JSON line per request
        # wrk drives ~1,100 req/s with one member token: limits stay on (their cost is
        # measured) with a rate no saturation run reaches.
        FRONTDOOR_LIMITS_MEMBER_RATE="1000000",
        FRONTDOOR_LIMITS_MEMBER_BURST="1000000",
    )
    return env


def _frontdoor_token(env: dict[str, str], member: str) -> str:
    result = subprocess.run(  # noqa: S603 - the project's own console script
        [str(Path(PYTHON).with_name("frontdoor")), "token", member],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise BenchmarkError(f"frontdoor token {member} failed:\n{result.stderr.strip()}")
    return result.stdout.strip()


def start_impl(impl: Impl, bench: Bench) -> tuple[Started, int]:
    """Start ``impl`` on core 1; returns once it listens."""
    port = free_port()
    log = bench.folder / f"{impl.name}.log"
    backends_url = bench.backends_url
    if impl.frontdoor:
        env = _frontdoor_env(backends_url, bench.statsd.port)
        args = [str(Path(PYTHON).with_name("frontdoor")), "serve", "--no-embedded"]
        args += ["--port", str(port)]
    else:
        env = dict(os.environ, PEERS_TOKEN_SECRET=TOKEN_SECRET)
        args = [PYTHON, *impl.args, backends_url, str(port)]
    started = _start(impl.label, args, IMPL_CORE, log, env)
    try:
        _await_port(started, port)
    except BenchmarkError:
        stop([started.process])
        raise
    return started, port


# -- measuring ---------------------------------------------------------------------------------


def verify(impl: Impl, port: int, endpoint: Endpoint, token: str) -> None:
    """One request, checked in full; BenchmarkError unless it is right and complete."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        connection.request(endpoint.method, endpoint.path, body=endpoint.body, headers=headers)
        response = connection.getresponse()
        data = response.read()
    except OSError as exc:
        raise BenchmarkError(f"{impl.label} {endpoint.path}: {exc}") from exc
    finally:
        connection.close()
    what = f"{impl.label} {endpoint.method} {endpoint.path}"
    if response.status != 200:
        raise BenchmarkError(f"{what}: status {response.status}: {data[:500]!r}")
    try:
        reply = json.loads(data)
    except ValueError as exc:
        raise BenchmarkError(f"{what}: not JSON: {data[:200]!r}") from exc
    if impl.frontdoor and reply.get("meta", {}).get("degraded") != []:
        raise BenchmarkError(f"{what}: degraded reply: meta = {reply.get('meta')}")
    problem = endpoint.check(reply)
    if problem is None and impl.expect(endpoint).encode() not in data:
        problem = f"the body lacks {impl.expect(endpoint)}"
    if problem is not None:
        raise BenchmarkError(f"{what}: wrong reply: {problem}")


def open_loop(
    port: int, endpoint: Endpoint, token: str, rate: float, duration_s: float, expect: str
) -> dict[str, Any]:
    """benchmarks/peers/openloop.py at ``rate`` (on this script's core)."""
    args = [
        PYTHON, str(HERE / "openloop.py"), f"http://127.0.0.1:{port}{endpoint.path}",
        "--rate", str(rate), "--duration", str(duration_s), "--warmup", str(OPEN_WARMUP_S),
        "--method", endpoint.method, "--header", f"Authorization: Bearer {token}",
        "--expect", expect,
    ]  # fmt: skip
    if endpoint.body is not None:
        args += ["--body", endpoint.body]
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        args, cwd=ROOT, capture_output=True, text=True, check=False,
        timeout=OPEN_WARMUP_S + duration_s + 30,
    )  # fmt: skip
    if result.returncode != 0:
        raise BenchmarkError(f"open-loop generator failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout)


_WRK_LUA = """
wrk.method = "{method}"
{body}
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Content-Type"] = "application/json"
local expect = [==[{expect}]==]
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status == 200 and not string.find(body, expect, 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local wrong = 0
  for _, thread in ipairs(threads) do wrong = wrong + thread:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"bad_body":%d,"p50_us":%d,"p99_us":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    wrong, latency:percentile(50), latency:percentile(99)))
end
"""


def _core_times() -> dict[int, tuple[int, int]]:
    """(busy, total) jiffies per core, from /proc/stat."""
    cores = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(v) for v in values]
            idle = ticks[3] + ticks[4]  # idle + iowait
            cores[int(name[3:])] = (sum(ticks[:8]) - idle, sum(ticks[:8]))
    return cores


def wrk(
    folder: Path, port: int, endpoint: Endpoint, token: str, expect: str, duration_s: float,
    connections: int,
) -> dict[str, Any]:  # fmt: skip
    """wrk, one thread, closed loop; the summary its Lua done() prints."""
    body = f"wrk.body = [==[{endpoint.body}]==]" if endpoint.body is not None else ""
    script = folder / f"wrk-{endpoint.name}.lua"
    script.write_text(
        _WRK_LUA.format(method=endpoint.method, body=body, token=token, expect=expect)
    )
    args = [
        WRK, "-t1", f"-c{connections}", f"-d{duration_s:g}s", "--timeout", "5s",
        "-s", str(script), f"http://127.0.0.1:{port}{endpoint.path}",
    ]  # fmt: skip
    result = subprocess.run(  # noqa: S603 - wrk, bounded by -d
        args, capture_output=True, text=True, check=False, timeout=duration_s + 30
    )
    for line in result.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            return json.loads(line.removeprefix("WRK_JSON "))
    raise BenchmarkError(f"wrk printed no summary:\n{result.stdout}\n{result.stderr}")


def saturate(
    bench: Bench, started: Started, port: int, endpoint: Endpoint, expect: str
) -> dict[str, Any]:
    """wrk warmup, then the measured window with the implementation's CPU and core load."""
    folder, token, connections = bench.folder, bench.token, bench.args.connections
    wrk(folder, port, endpoint, token, expect, WRK_WARMUP_S, connections)
    cpu_before, cores_before = cpu_s(started.process.pid), _core_times()
    packets_before, load_before = bench.statsd.packets, bench.load_cpu_s()
    summary = wrk(folder, port, endpoint, token, expect, bench.args.duration, connections)
    cpu_used, cores_after = cpu_s(started.process.pid) - cpu_before, _core_times()
    load_share = (bench.load_cpu_s() - load_before) / (summary["duration_us"] / 1e6)
    packets = bench.statsd.packets - packets_before
    busy = {}
    for core in (LOAD_CORE, IMPL_CORE):
        spent = cores_after[core][1] - cores_before[core][1]
        busy[core] = (cores_after[core][0] - cores_before[core][0]) / max(1, spent)
    seconds = summary["duration_us"] / 1e6
    own_share = cpu_used / seconds
    errors = sum(summary[k] for k in ("connect", "read", "write", "status", "timeout", "bad_body"))
    return {
        "requests": summary["requests"],
        "rate": summary["requests"] / seconds,
        "cpu_s": round(cpu_used, 3),
        "cpu_us_per_request": cpu_used / max(1, summary["requests"]) * 1e6,
        "impl_cpu_share": round(own_share, 3),
        "core_busy": {str(core): round(share, 3) for core, share in busy.items()},
        # Core 1 time the implementation did not use itself: other processes on its core.
        "core1_other": round(max(0.0, busy[IMPL_CORE] - own_share), 3),
        # nginx + wrk's share of core 0, and what other processes used of it.
        "load_cpu_share": round(load_share, 3),
        "core0_other": round(max(0.0, busy[LOAD_CORE] - load_share), 3),
        "latency_ms": {"p50": summary["p50_us"] / 1000, "p99": summary["p99_us"] / 1000},
        "errors": errors,
        "wrk": summary,
        "rss_mb": round(rss_mb(started.process.pid), 1),
        "statsd_packets_per_request": round(packets / max(1, summary["requests"]), 2),
    }


@dataclass
class Result:
    """One implementation's numbers for one endpoint."""

    impl: Impl
    endpoint: Endpoint
    open_loop: dict[float, dict[str, Any]] = field(default_factory=dict)
    saturation: dict[str, Any] = field(default_factory=dict)

    def errors(self) -> int:
        """Failed, non-200 or wrong replies over every phase."""
        total = self.saturation.get("errors", 0)
        for report in self.open_loop.values():
            total += report["failed"] + report["bad_status"] + report["bad_body"]
            total += report["unfinished"]
        return total

    def as_json(self) -> dict[str, Any]:
        """What --json writes for this row."""
        return {
            "implementation": self.impl.name,
            "label": self.impl.label,
            "endpoint": self.endpoint.name,
            "open_loop": {f"{rate:g}": report for rate, report in self.open_loop.items()},
            "saturation": self.saturation,
            "errors": self.errors(),
        }


def measure(impl: Impl, bench: Bench, endpoints: list[Endpoint]) -> list[Result]:
    """Start ``impl``, verify every endpoint, then measure each; stop it whatever happens."""
    started, port = start_impl(impl, bench)
    token = bench.token
    try:
        for endpoint in endpoints:
            verify(impl, port, endpoint, token)
        results = []
        for endpoint in endpoints:
            result = Result(impl, endpoint)
            expect = impl.expect(endpoint)
            for rate in OPEN_RATES:
                result.open_loop[rate] = open_loop(
                    port, endpoint, token, rate, bench.args.open_duration, expect
                )
            result.saturation = saturate(bench, started, port, endpoint, expect)
            print(f"  {impl.label:24} {endpoint.name:5} {_progress(result)}", flush=True)
            results.append(result)
        for endpoint in endpoints:  # still right after saturation?
            verify(impl, port, endpoint, token)
        return results
    finally:
        stop([started.process])


def _progress(result: Result) -> str:
    sat = result.saturation
    low = result.open_loop[OPEN_RATES[0]]["latency_ms"]["p50"]
    return (
        f"{sat['rate']:7.0f} req/s  {sat['cpu_us_per_request']:6.0f} us/req  "
        f"p50@{OPEN_RATES[0]:g} {_ms(low)} ms  errors {result.errors()}"
        + (
            f"  statsd {sat['statsd_packets_per_request']:.1f} pkt/req"
            if result.impl.frontdoor
            else ""
        )
    )


# -- the table ---------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _pct(share: float) -> str:
    return f"{share * 100:4.0f}%"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}x"


#: A saturation row is suspect when its implementation did not use most of its core, or
#: something else loaded a core: then req/s measured the machine, not the implementation.
SUSPECT_OWN_SHARE = 0.9
SUSPECT_CORE0_BUSY = 0.9
SUSPECT_OTHER = 0.1
#: Open-loop latencies count from the due time; past this lag the generator itself was late.
MAX_SEND_LAG_MS = 5.0


def suspect(saturation: dict[str, Any]) -> bool:
    """Whether the saturation numbers were limited by something else than the implementation."""
    return (
        saturation["impl_cpu_share"] < SUSPECT_OWN_SHARE
        or saturation["core_busy"][str(LOAD_CORE)] > SUSPECT_CORE0_BUSY
        or saturation["core0_other"] > SUSPECT_OTHER
        or saturation["core1_other"] > SUSPECT_OTHER
    )


def table(endpoint: Endpoint, results: list[Result], args: argparse.Namespace) -> str:
    """The side-by-side table of one endpoint."""
    critical_ms, chain = endpoint.critical_path()
    steps = " -> ".join(f"{call.name} {call.delay_ms}" for call in chain)
    low, high = OPEN_RATES
    saturation = f" saturation: wrk {args.connections} conns, {args.duration:g} s"
    saturation_head = (
        f"{'req/s':>8}{'x aio':>7}{'CPU us/req':>11}{'x aio':>7}"
        f"{'own':>5}{'load':>5}{'c0+':>5}{'c1+':>5}{'err':>5}  "
    )
    latency_head = f"{'p50':>6}{'p99':>7}{'p50/cp':>7}{'x aio':>7} "
    lines = [
        f"{endpoint.method} {endpoint.path}  critical path {critical_ms} ms ({steps})",
        "|".join(
            (
                f"{'':25}",
                f"{saturation:{len(saturation_head)}}",
                f"{f' open loop {low:g} req/s (ms)':{len(latency_head)}}",
                f" open loop {high:g} req/s (ms)",
            )
        ),
        "|".join((f"{'implementation':25}", saturation_head, latency_head, latency_head)).rstrip(),
    ]
    base = next((r for r in results if r.impl.name == BASELINE), None)
    flagged = False
    for result in results:
        sat = result.saturation
        base_sat = base.saturation if base else {}
        rate, cpu = sat["rate"], sat["cpu_us_per_request"]
        flag = "!" if suspect(sat) else " "
        flagged = flagged or flag == "!"
        cells = [
            f"{result.impl.label:25}",
            (
                f"{rate:8.0f}{_ratio(rate, base_sat.get('rate')):>7}"
                f"{cpu:11.0f}{_ratio(cpu, base_sat.get('cpu_us_per_request')):>7}"
                f"{_pct(sat['impl_cpu_share'])}{_pct(sat['load_cpu_share'])}"
                f"{_pct(sat['core0_other'])}{_pct(sat['core1_other'])}{result.errors():5d} {flag}"
            ),
        ]
        for open_rate in OPEN_RATES:
            latency = result.open_loop[open_rate]["latency_ms"]
            base_p50 = base.open_loop[open_rate]["latency_ms"]["p50"] if base else None
            cells.append(
                f"{_ms(latency['p50']):>6}{_ms(latency['p99']):>7}"
                f"{_ratio(latency['p50'], critical_ms):>7}{_ratio(latency['p50'], base_p50):>7} "
            )
        lines.append("|".join(cells).rstrip())
    late = [
        f"{result.impl.label} at {rate:g} req/s"
        for result in results
        for rate, report in result.open_loop.items()
        if (report["send_lag_ms"]["p99"] or 0) > MAX_SEND_LAG_MS
    ]
    if late:
        lines.append(
            f"~ the open-loop generator sent late (send lag p99 > {MAX_SEND_LAG_MS:g} ms; "
            f"counted against the implementation): {', '.join(late)}"
        )
    if flagged:
        lines.append(
            f"! req/s limited by something else: the implementation used < {SUSPECT_OWN_SHARE:.0%}"
            f" of its core, core 0 was > {SUSPECT_CORE0_BUSY:.0%} busy, or other processes used"
            f" > {SUSPECT_OTHER:.0%} of a core (c0+, c1+); its CPU us/req is the steadier number"
        )
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------


def _busy_now(seconds: float = 1.0) -> dict[int, float]:
    """How busy each core is over the next ``seconds`` (before anything is started)."""
    before = _core_times()
    time.sleep(seconds)  # sampling /proc/stat over an interval: nothing to wait on instead
    after = _core_times()
    return {
        core: (after[core][0] - before[core][0]) / max(1, after[core][1] - before[core][1])
        for core in after
    }


def _check_tools() -> None:
    missing = [tool for tool in (NGINX, ECHO_MODULE, WRK) if not Path(tool).exists()]
    if missing:
        raise BenchmarkError(f"missing: {', '.join(missing)} (nginx + echo module, wrk)")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="wrk measured seconds")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument(
        "--open-duration", type=float, default=5.0, help="measured seconds of each open loop"
    )
    parser.add_argument(
        "--only", help=f"comma-separated implementations, of: {', '.join(IMPLS)} (default all)"
    )
    parser.add_argument("--endpoints", default="play,home", help="comma-separated: play,home")
    parser.add_argument("--json", metavar="OUT", help="write every number as JSON")
    args = parser.parse_args()
    if not (1 <= args.duration <= 60 and 1 <= args.open_duration <= 60):
        parser.error("--duration and --open-duration: 1 to 60 s")
    if not 1 <= args.connections <= 1000:
        parser.error("--connections: 1 to 1000")
    names = args.only.split(",") if args.only else list(IMPLS)
    unknown = [name for name in names if name not in IMPLS]
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(IMPLS)}")
    args.impls = [IMPLS[name] for name in names]
    args.endpoint_names = args.endpoints.split(",")
    if not args.endpoint_names or any(n not in ("play", "home") for n in args.endpoint_names):
        parser.error("--endpoints: play, home or play,home")
    return args


@contextmanager
def backends(args: argparse.Namespace, folder: Path, endpoints: list[Endpoint]) -> Iterator[Bench]:
    """nginx serving every call of ``endpoints`` (on core 0) and the statsd sink, for the
    ``with`` block; both stopped on leaving it (other benchmarks use it too)."""
    bodies = _bodies()
    nginx_port = free_port()
    (folder / "nginx.conf").write_text(nginx_config(folder, nginx_port, endpoints, bodies))
    nginx = _start(
        "nginx",
        [NGINX, "-p", str(folder), "-e", str(folder / "nginx-error.log"),
         "-c", str(folder / "nginx.conf")],
        LOAD_CORE, folder / "nginx.log",
    )  # fmt: skip
    statsd = StatsdSink()
    try:
        _await_port(nginx, nginx_port)
        backends_url = f"http://127.0.0.1:{nginx_port}"
        token = _frontdoor_token(
            _frontdoor_env(backends_url, statsd.port), bodies["request"]["member_id"]
        )
        yield Bench(args, folder, backends_url, statsd, token, _with_children(nginx.process.pid))
    finally:
        statsd.close()
        stop([nginx.process])


def run(args: argparse.Namespace, folder: Path) -> list[Result]:
    """nginx up, then every implementation in turn."""
    endpoints = [_endpoints(_bodies())[name] for name in args.endpoint_names]
    with backends(args, folder, endpoints) as bench:
        results = []
        for impl in args.impls:
            results += measure(impl, bench, endpoints)
        return results


def main() -> int:
    """Run the benchmark and print the tables."""
    args = _parse_args()
    os.sched_setaffinity(0, {LOAD_CORE})  # nginx, wrk and the generator inherit core 0
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="frontdoor-peers-"))
    try:
        _check_tools()
        busy = _busy_now()
        if max(busy.values()) > SUSPECT_OTHER:
            shares = ", ".join(f"core {core} {share:.0%}" for core, share in sorted(busy.items()))
            print(f"warning: the machine is not idle ({shares} busy): expect rows marked !")
        print(
            f"implementations on core {IMPL_CORE}; nginx backends, wrk and the open-loop "
            f"generator on core {LOAD_CORE}; logs in {folder}",
            flush=True,
        )
        results = run(args, folder)
    except BenchmarkError as exc:
        print(f"peers: aborted: {exc}", file=sys.stderr)
        print(f"peers: logs kept in {folder}", file=sys.stderr)
        return 1
    print()
    for name in args.endpoint_names:
        rows = [r for r in results if r.endpoint.name == name]
        print(table(rows[0].endpoint, rows, args))
        print()
    print(f"took {time.monotonic() - started:.0f} s")
    if args.json:
        document = {
            "args": {
                "duration_s": args.duration,
                "connections": args.connections,
                "open_duration_s": args.open_duration,
                "open_rates": list(OPEN_RATES),
            },
            "critical_path_ms": {
                name: _endpoints(_bodies())[name].critical_path()[0] for name in args.endpoint_names
            },
            "results": [result.as_json() for result in results],
        }
        Path(args.json).write_text(json.dumps(document, indent=1) + "\n")
    failed = sum(result.errors() for result in results)
    if failed:
        print(f"peers: {failed} failed or wrong replies; logs kept in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
