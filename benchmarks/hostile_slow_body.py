"""Slow bodies against a real ``frontdoor serve``: do 100 trickled bodies hurt other clients?

Frontdoor runs in its own process on core 1 (embedded simulated services,
``--latency-profile fast``, default settings: ``server.max_inflight`` 32). This process
(gevent, core 0) is both clients. A normal client asks ``GET
/v1/nonmember/plans?country=US`` at ``--rate`` requests a second, open loop, a new
connection each (latency from each request's scheduled send time, so a stalled server
shows). First for ``--phase-s`` seconds alone ("without attack"), then as long again while
``--connections`` attack connections each send ``POST /v1/batch`` headers with
``Content-Length: 1000`` and then one body byte every ``--trickle-s`` seconds; an attack
connection the server answers or closes is replaced one drip interval later, so that about
that many are always pending. (Finding 1 of the hostile-client review: 34 such connections
made 156 of 179 other clients' plans requests answer 503 ``overloaded``.)

Reported for each phase: the normal client's requests, successes (200), success rate, its
503s, p50/p99/max; and what the attack got back (answers by status, connections made).
Run it on an older checkout's server with ``--tree PATH`` (that checkout's code first on
``PYTHONPATH``) for a "before" column.

Bounded: one server, 2 x ``--phase-s`` + ~10 s, 127.0.0.1 only; every socket has a
timeout and the attack stops with its phase.

    .venv/bin/python benchmarks/hostile_slow_body.py [--connections 100] [--rate 20]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after patching, by design
import os  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
from _processes import PYTHON, ROOT, free_port, spawn, stop, wait_listening  # noqa: E402

PATH = "/v1/nonmember/plans?country=US"
REQUEST = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
ATTACK_HEAD = (
    b"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n"
)
TIMEOUT_S = 10.0


@dataclass
class Phase:
    """What the normal client saw in one phase, and what the attack got."""

    name: str
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    attack: Counter[str] = field(default_factory=Counter)
    attack_connections: int = 0

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    def percentile(self, value: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, round(value / 100 * (len(ordered) - 1)))]


def _status(raw: bytes) -> str:
    line = raw.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split()
    return parts[1] if len(parts) > 1 and line.startswith("HTTP/") else "no-status"


def _get(port: int) -> str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
            sock.sendall(REQUEST)
            raw = b""
            while chunk := sock.recv(65_536):
                raw += chunk
        return _status(raw)
    except OSError as exc:
        return type(exc).__name__


def _normal(port: int, rate: float, seconds: float, phase: Phase) -> None:
    """Open loop at ``rate``: each request at its scheduled time, in its own greenlet."""
    group = gevent.pool.Group()
    start = time.perf_counter()

    def one(scheduled: float) -> None:
        status = _get(port)
        phase.statuses[status] += 1
        if status == "200":
            phase.latencies_ms.append((time.perf_counter() - scheduled) * 1000)

    for index in range(int(rate * seconds)):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            gevent.sleep(delay)  # the schedule itself: the load generator's clock
        group.spawn(one, scheduled)
    group.join(timeout=TIMEOUT_S + 1)
    group.kill()


def _attacker(port: int, trickle_s: float, until: float, phase: Phase) -> None:
    """One slow-body connection after another until ``until``: headers, then a byte at a
    time; whatever the server answers is counted, and a new connection replaces it one drip
    interval later."""
    while time.perf_counter() < until:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        except OSError as exc:
            phase.attack[f"connect {type(exc).__name__}"] += 1
            gevent.sleep(trickle_s)
            continue
        phase.attack_connections += 1
        try:
            sock.settimeout(trickle_s)
            sock.sendall(ATTACK_HEAD)
            for _ in range(1000):
                if time.perf_counter() >= until:
                    break
                sock.sendall(b" ")
                try:
                    raw = sock.recv(4096)  # waits trickle_s for an answer, else drips again
                except TimeoutError:
                    continue
                phase.attack[_status(raw) if raw else "closed"] += 1
                break
        except OSError as exc:
            phase.attack[type(exc).__name__] += 1
        finally:
            sock.close()
        gevent.sleep(trickle_s)  # the attack's own pace: a new connection per drip interval


def _run_phase(name: str, port: int, args: argparse.Namespace, *, attack: bool) -> Phase:
    phase = Phase(name)
    attackers = []
    if attack:
        until = time.perf_counter() + args.phase_s + 1.0
        attackers = [
            gevent.spawn(_attacker, port, args.trickle_s, until, phase)
            for _ in range(args.connections)
        ]
        gevent.sleep(1.0)  # let every attack connection get its headers in first
    _normal(port, args.rate, args.phase_s, phase)
    gevent.joinall(attackers, timeout=TIMEOUT_S)
    gevent.killall(attackers)
    return phase


def _report(phases: list[Phase], args: argparse.Namespace, tree: str) -> None:
    print(
        f"frontdoor serve from {tree}; normal client {args.rate:g} req/s on {PATH}, "
        f"{args.phase_s:g} s per phase; attack: {args.connections} connections, "
        f"POST /v1/batch, Content-Length 1000, 1 byte every {args.trickle_s:g} s"
    )
    header = f"{'phase':<16}{'sent':>6}{'200':>6}{'ok %':>8}{'503':>6}{'p50 ms':>9}{'p99 ms':>9}"
    print(header + f"{'max ms':>9}  attack answers")
    for phase in phases:
        ok = phase.statuses.get("200", 0)
        rate = 100.0 * ok / phase.sent if phase.sent else 0.0
        answers = ", ".join(f"{k} x{v}" for k, v in sorted(phase.attack.items())) or "-"
        if phase.attack_connections:
            answers += f" ({phase.attack_connections} connections)"
        print(
            f"{phase.name:<16}{phase.sent:>6}{ok:>6}{rate:>8.2f}"
            f"{phase.statuses.get('503', 0):>6}{phase.percentile(50):>9.1f}"
            f"{phase.percentile(99):>9.1f}{max(phase.latencies_ms, default=0.0):>9.1f}  {answers}"
        )
    others = {k: v for p in phases for k, v in p.statuses.items() if k not in ("200", "503")}
    if others:
        print(f"normal client's other outcomes: {others}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0, help="normal client, req/s")
    parser.add_argument("--phase-s", type=float, default=20.0)
    parser.add_argument("--trickle-s", type=float, default=0.5)
    parser.add_argument("--tree", default=str(ROOT), help="checkout whose server to run")
    args = parser.parse_args()
    if not 1 <= args.connections <= 1000 or not 0 < args.rate <= 500:
        parser.error("--connections 1-1000 and --rate 0-500 keep the run bounded")
    if not 1 <= args.phase_s <= 120:
        parser.error("--phase-s must be 1-120")
    tree = str(Path(args.tree).resolve())
    port, backends_port = free_port(), free_port()
    env = dict(
        os.environ,
        PYTHONPATH=tree,
        FRONTDOOR_STATSD_ENABLED="false",
        FRONTDOOR_LOGGING_LEVEL="WARNING",
    )
    frontdoor = str(Path(PYTHON).with_name("frontdoor"))
    server = spawn(
        [frontdoor, "serve", "--port", str(port), "--backends-port", str(backends_port),
         "--latency-profile", "fast"],
        core=1,
        env=env,
    )  # fmt: skip
    os.sched_setaffinity(0, {0})
    try:
        wait_listening(port)
        _get(port)  # warm: first request's imports and connections
        phases = [
            _run_phase("without attack", port, args, attack=False),
            _run_phase("with attack", port, args, attack=True),
        ]
    finally:
        stop([server])
    _report(phases, args, tree)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
