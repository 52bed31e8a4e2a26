"""The reference statsd daemon (npm ``statsd``, installed by ``bin/_statsd``) on loopback.

``StatsdDaemon.launch`` writes a config with free loopback UDP/TCP ports, no backends and
a flush interval of a day (so nothing is reset while a test reads), starts ``node
stats.js config``, and returns once the management port answers ``health`` and a probe
datagram has been counted. Reading is through the management interface (``counters``,
``timers``, ``gauges``), whose replies are Node ``util.inspect`` renderings: JavaScript
object literals, not JSON (single-quoted keys, ``1e+21``, ``NaN``, and arrays over 100
items cut to ``... N more items``). ``parse_js_literal`` reads them.

``launch(..., graphite=GraphiteBackend(host, port))`` starts it instead with statsd's
graphite backend writing to a carbon line receiver (``carbon_daemon.CarbonCache``) every
second, with the settings docs/alerts.md and docs/grafana/frontdoor.json assume (legacy
namespace, ``percentThreshold: [90, 99]``, ``deleteGauges``). Each flush then resets
counters and timers (their names stay listed) and drops gauges not set since the last one.

``sync`` is the barrier a test uses instead of sleeping: it sends a marker counter and
polls (bounded) until the daemon has counted it. Datagrams to one UDP socket on loopback
are queued in the order they were sent and the daemon handles them in that order, so
everything sent before the marker has been applied once the marker shows.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent

ROOT = Path(__file__).resolve().parents[2]
STATS_JS = ROOT / ".tools" / "statsd" / "node_modules" / "statsd" / "stats.js"
INSTALLER = ROOT / "bin" / "_statsd"
#: A day: the daemon never flushes (and so never resets counters) during a test run.
FLUSH_INTERVAL_MS = 86_400_000
#: The graphite backend's flush: one whisper point a second.
GRAPHITE_FLUSH_INTERVAL_MS = 1000


class DaemonUnavailableError(RuntimeError):
    """The daemon could not be installed or started (the message says why)."""


class JsParseError(ValueError):
    """Text that is not a ``util.inspect`` object literal this parser understands."""


# ---------------------------------------------------------------------------------------
# util.inspect output.


class TruncatedList(list[Any]):
    """An array that ``util.inspect`` cut: the shown items, and how many were left out."""

    omitted: int = 0


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<punct>[{}\[\]:,])
    | (?P<more>\.\.\.\s+(?P<count>\d+)\s+more\s+items?)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<number>[-+]?(?:Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|NaN)
    | (?P<word>[A-Za-z_$][\w$]*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)", re.DOTALL)
_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None, "undefined": None}


def _unquote(literal: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escape = match.group(1)
        if escape[0] in "xu" and len(escape) > 1:
            return chr(int(escape[1:], 16))
        return _ESCAPES.get(escape, escape)

    return _ESCAPE.sub(replace, literal[1:-1])


def _number(text: str) -> float:
    if text.endswith("Infinity"):
        return -math.inf if text.startswith("-") else math.inf
    if text == "NaN":
        return math.nan
    value = float(text)
    return int(value) if value.is_integer() and "e" not in text.lower() else value


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        text = text.rstrip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise JsParseError(f"unexpected text at {position}: {text[position:][:30]!r}")
            kind = match.lastgroup or ""
            if kind == "count":
                kind = "more"
            value = match.group("count") if kind == "more" else match.group(kind)
            self.tokens.append((kind, value))
            position = match.end()
        self.index = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.index] if self.index < len(self.tokens) else ("end", "")

    def take(self, kind: str, value: str | None = None) -> str:
        token_kind, token_value = self.peek()
        if token_kind != kind or (value is not None and token_value != value):
            raise JsParseError(f"expected {value or kind}, found {token_value or token_kind!r}")
        self.index += 1
        return token_value

    def value(self) -> Any:
        kind, text = self.peek()
        if kind == "punct" and text == "{":
            return self.mapping()
        if kind == "punct" and text == "[":
            return self.array()
        self.index += 1
        if kind == "string":
            return _unquote(text)
        if kind == "number":
            return _number(text)
        if kind == "word" and text in _WORDS:
            return _WORDS[text]
        # [Object], [Array], [Function]...: util.inspect hid something; never guess.
        raise JsParseError(f"unsupported value {text!r}")

    def key(self) -> str:
        kind, text = self.peek()
        self.index += 1
        if kind == "string":
            return _unquote(text)
        if kind in {"word", "number"}:
            return text
        raise JsParseError(f"bad key {text!r}")

    def mapping(self) -> dict[str, Any]:
        self.take("punct", "{")
        result: dict[str, Any] = {}
        while self.peek() != ("punct", "}"):
            key = self.key()
            self.take("punct", ":")
            result[key] = self.value()
            if self.peek() != ("punct", ","):
                break
            self.take("punct", ",")
        self.take("punct", "}")
        return result

    def array(self) -> list[Any]:
        self.take("punct", "[")
        items = TruncatedList()
        while self.peek() != ("punct", "]"):
            if self.peek()[0] == "more":
                items.omitted = int(self.take("more"))
            else:
                items.append(self.value())
            if self.peek() != ("punct", ","):
                break
            self.take("punct", ",")
        self.take("punct", "]")
        return items if items.omitted else list(items)


def parse_js_literal(text: str) -> Any:
    """One value printed by Node's ``util.inspect`` (objects, arrays, strings, numbers)."""
    parser = _Parser(text)
    value = parser.value()
    if parser.peek()[0] != "end":
        raise JsParseError(f"trailing text: {parser.peek()[1]!r}")
    return value


# ---------------------------------------------------------------------------------------
# The daemon.


@dataclass(frozen=True)
class TimerSamples:
    """A timer's samples as the daemon holds them (the first 100 shown, the rest counted)."""

    values: tuple[float, ...]
    omitted: int = 0

    @property
    def count(self) -> int:
        """How many samples the daemon holds."""
        return len(self.values) + self.omitted


@dataclass(frozen=True)
class GraphiteBackend:
    """statsd's graphite backend, sending to a carbon line receiver at ``host:port``."""

    host: str
    port: int
    flush_interval_ms: int = GRAPHITE_FLUSH_INTERVAL_MS

    def config(self) -> dict[str, Any]:
        """The statsd config keys, as docs/alerts.md gives them but for the flush interval:
        ``stats_counts.N``, ``stats.timers.N.<stat>`` (``upper_99`` too), ``stats.gauges.N``."""
        return {
            "flushInterval": self.flush_interval_ms,
            "percentThreshold": [90, 99],
            "deleteGauges": True,
            "backends": ["./backends/graphite"],
            "graphiteHost": self.host,
            "graphitePort": self.port,
            "graphite": {"legacyNamespace": True},
        }


def _free_port(kind: socket.SocketKind) -> int:
    probe = socket.socket(socket.AF_INET, kind)
    try:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
    finally:
        probe.close()


def ensure_installed() -> Path:
    """``stats.js`` of the pinned daemon, installing it with ``bin/_statsd`` if missing."""
    if STATS_JS.is_file():
        return STATS_JS
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise DaemonUnavailableError("node and npm are needed for the statsd daemon")
    result = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [str(INSTALLER)], capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0 or not STATS_JS.is_file():
        raise DaemonUnavailableError(f"bin/_statsd failed: {result.stderr.strip()[-2000:]}")
    return STATS_JS


class StatsdDaemon:
    """A running daemon: its UDP ``port``, management ``mgmt_port``, and readers."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, mgmt_port: int, log: Path):
        self.process = process
        self.host = "127.0.0.1"
        self.port = port
        self.mgmt_port = mgmt_port
        self.log = log
        self._markers = itertools.count()
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    @classmethod
    def launch(
        cls,
        workdir: Path,
        *,
        timeout_s: float = 15.0,
        tries: int = 3,
        graphite: GraphiteBackend | None = None,
    ) -> StatsdDaemon:
        """Install if needed, start on free ports, wait until it counts a datagram.

        Without ``graphite``: no backend, and no flush during a test. With it: statsd's
        graphite backend, flushing every ``graphite.flush_interval_ms``."""
        stats_js = ensure_installed()
        node = shutil.which("node")
        if node is None:
            raise DaemonUnavailableError("node is not on PATH")
        problem = "not started"
        for attempt in range(tries):
            # A free port can be taken between the probe and the daemon's bind: retry.
            port, mgmt_port = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
            config = workdir / f"config-{attempt}.json"
            settings: dict[str, Any] = {
                "port": port,
                "address": "127.0.0.1",
                "mgmt_port": mgmt_port,
                "mgmt_address": "127.0.0.1",
                "flushInterval": FLUSH_INTERVAL_MS,
                "backends": [],
            }
            if graphite is not None:
                settings.update(graphite.config())
            config.write_text(json.dumps(settings))
            log = workdir / f"statsd-{attempt}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(  # noqa: S603 - node and a path we chose
                    [node, str(stats_js), str(config)], stdout=out, stderr=subprocess.STDOUT
                )
            daemon = cls(process, port, mgmt_port, log)
            try:
                daemon._wait_ready(timeout_s)
            except DaemonUnavailableError as exc:
                problem = str(exc)
                daemon.stop()
                continue
            return daemon
        raise DaemonUnavailableError(problem)

    def stop(self) -> None:
        """Terminate the daemon (bounded), then kill it if it lingers."""
        self._udp.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    # -- reading ------------------------------------------------------------------------

    def command(self, name: str) -> str:
        """One management command's reply, without its ``END`` trailer."""
        with socket.create_connection((self.host, self.mgmt_port), timeout=5) as conn:
            conn.sendall(name.encode("ascii") + b"\n")
            reply = b""
            # Replies end with "END\n\n", except health's single line.
            while not reply.endswith(b"END\n\n") and not (
                name == "health" and reply.endswith(b"\n")
            ):
                chunk = conn.recv(65_536)
                if not chunk:
                    break
                reply += chunk
        text = reply.decode("ascii", errors="replace")
        return text.removesuffix("END\n\n").strip()

    def counters(self) -> dict[str, float]:
        """Every counter's value."""
        return dict(parse_js_literal(self.command("counters")))

    def gauges(self) -> dict[str, float]:
        """Every gauge's value."""
        return dict(parse_js_literal(self.command("gauges")))

    def timers(self) -> dict[str, TimerSamples]:
        """Every timer's samples."""
        raw = parse_js_literal(self.command("timers"))
        return {
            name: TimerSamples(tuple(values), getattr(values, "omitted", 0))
            for name, values in raw.items()
        }

    # -- synchronising ------------------------------------------------------------------

    def send_raw(self, payload: bytes) -> None:
        """Send one datagram as a client would."""
        self._udp.sendto(payload, (self.host, self.port))

    def sync(self, timeout_s: float = 5.0) -> None:
        """Return once every datagram sent before this call has been applied."""
        marker = f"fixture.sync.m{next(self._markers)}"
        self.send_raw(f"{marker}:1|c".encode("ascii"))
        self.wait_for(lambda: marker in self.counters(), timeout_s, f"marker {marker}")

    def wait_for(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll ``condition`` with a short backoff until it holds or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        delay = 0.005
        while not condition():
            if self.process.poll() is not None:
                raise DaemonUnavailableError(f"statsd exited: {self._log_tail()}")
            if time.monotonic() >= deadline:
                raise DaemonUnavailableError(f"statsd: no {what} after {timeout_s} s")
            # Waiting on an external process: a bounded poll is the only event we have.
            gevent.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _wait_ready(self, timeout_s: float) -> None:
        def answers() -> bool:
            with contextlib.suppress(OSError):
                return self.command("health").startswith("health: up")
            return False

        self.wait_for(answers, timeout_s, "answer on the management port")
        self.sync(timeout_s)

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-2000:]
        return "(no log)"
