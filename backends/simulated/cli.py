"""``fake-backends``: run the simulated microservices, or script a running instance's faults.

    fake-backends [serve] [--host 127.0.0.1] [--port 9090] [--seed 7]
                  [--latency-profile realistic] [--latency-scale 1.0]
    fake-backends fault SERVICE [--url URL] [--latency-ms N] [--error-rate R] [--hang]
                  [--refuse] [--malformed] [--drip-ms N]
    fake-backends heal [SERVICE] [--url URL]
    fake-backends status [--url URL]

The process must be gevent-patched before this module is imported (``bin/fake-backends``
does it). Client commands only ever talk to the given URL (default from
``FRONTDOOR_BACKENDS_BASE_URL``, Frontdoor's own name for where the simulated services
live, else http://127.0.0.1:9090), never through a proxy. The former
``FRONTDOOR_BACKENDS_URL`` still works, with a deprecation warning.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

import gevent
import requests
from gevent.event import Event

from backends.simulated.app import DEFAULT_HANG_CAP_S
from backends.simulated.faults import LATENCY_PROFILES
from backends.simulated.reference import DEFAULT_SEED, SERVICES
from backends.simulated.server import SimulatedBackends

DEFAULT_URL = "http://127.0.0.1:9090"
#: Frontdoor's ``backends.base_url`` (orchestrator/config.py): one name for one URL.
URL_ENV = "FRONTDOOR_BACKENDS_BASE_URL"
#: The name this tool used before; read when ``URL_ENV`` is not set, with a warning.
DEPRECATED_URL_ENV = "FRONTDOOR_BACKENDS_URL"
_COMMANDS = ("serve", "fault", "heal", "status", "-h", "--help")
_TIMEOUT_S = (3.0, 10.0)
_USAGE_ERROR = 2


class _UsageError(Exception):
    """Bad arguments or an unusable server: reported in one line, exit code 2."""


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run one command; returns the exit code (0 ok, 1 failed to serve, 2 usage/unreachable)."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    env = os.environ if environ is None else environ
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in _COMMANDS:
        args.insert(0, "serve")
    try:
        options = _parser(_default_url(env, err)).parse_args(args)
    except SystemExit as exc:  # argparse has printed the usage and the problem
        return exc.code if isinstance(exc.code, int) else _USAGE_ERROR
    try:
        if options.command == "serve":
            return _serve(options, out, err)
        return _client(options, out)
    except _UsageError as exc:
        err.write(f"fake-backends: {exc}\n")
        return _USAGE_ERROR


def _default_url(env: Mapping[str, str], err: TextIO) -> str:
    if URL_ENV in env:
        return env[URL_ENV]
    if DEPRECATED_URL_ENV in env:
        err.write(
            f"fake-backends: warning: {DEPRECATED_URL_ENV} is deprecated; "
            f"set {URL_ENV} (Frontdoor's backends.base_url) instead\n"
        )
        return env[DEPRECATED_URL_ENV]
    return DEFAULT_URL


def _parser(default_url: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fake-backends", description="Simulated microservices with run-time fault injection."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the simulated services (the default)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="listen address")
    serve.add_argument("--port", type=_port, default=9090, help="listen port; 0 picks a free one")
    serve.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the data set")
    serve.add_argument(
        "--latency-profile",
        choices=tuple(LATENCY_PROFILES),
        default="realistic",
        help="added latency per service",
    )
    serve.add_argument(
        "--latency-scale", type=_non_negative, default=1.0, help="multiplies every latency"
    )
    serve.add_argument(
        "--hang-cap-s",
        type=_non_negative,
        default=DEFAULT_HANG_CAP_S,
        help="longest a hanging service holds a request, in s",
    )
    url_help = (
        "base URL of a running fake-backends (its /_faults and /_stats admin API); "
        f"default: ${URL_ENV}, else {DEFAULT_URL}; now %(default)s"
    )
    fault = commands.add_parser("fault", help="replace a running service's fault")
    fault.add_argument("service", choices=SERVICES)
    fault.add_argument("--url", default=default_url, help=url_help)
    fault.add_argument("--latency-ms", type=_non_negative, help="added to every response")
    fault.add_argument("--error-rate", type=_non_negative, help="share answered 503, 0..1")
    fault.add_argument("--hang", action="store_true", help="never answer until healed")
    fault.add_argument("--refuse", action="store_true", help="drop connections unanswered")
    fault.add_argument("--malformed", action="store_true", help="answer truncated JSON")
    fault.add_argument("--drip-ms", type=_non_negative, help="send the body slowly")
    heal = commands.add_parser("heal", help="heal one service, or all")
    heal.add_argument("service", nargs="?", choices=SERVICES)
    heal.add_argument("--url", default=default_url, help=url_help)
    status = commands.add_parser("status", help="show active faults and request counts")
    status.add_argument("--url", default=default_url, help=url_help)
    return parser


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65_535:  # noqa: PLR2004 - the TCP port range
        raise argparse.ArgumentTypeError("port must be 0..65535")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError("must be a number >= 0")
    return value


def _serve(options: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        backends = SimulatedBackends(
            options.seed,
            options.latency_profile,
            options.latency_scale,
            hang_cap_s=options.hang_cap_s,
        )
    except ValueError as exc:
        raise _UsageError(str(exc)) from exc
    try:
        backends.start(options.host, options.port)
    except OSError as exc:
        err.write(f"fake-backends: cannot listen on {options.host}:{options.port}: {exc}\n")
        return 1
    stopping = Event()
    handlers = [gevent.signal_handler(sig, stopping.set) for sig in (signal.SIGINT, signal.SIGTERM)]
    try:
        out.write(
            f"fake backends listening on {backends.url} (seed {options.seed}, latency "
            f"{options.latency_profile} x{options.latency_scale:g})\n"
        )
        out.flush()
        stopping.wait()
    finally:
        for handler in handlers:
            handler.cancel()
        backends.stop()
    out.write("fake backends stopped\n")
    return 0


def _client(options: argparse.Namespace, out: TextIO) -> int:
    base = _base_url(options.url)
    if options.command == "fault":
        fault = _fault_body(options)
        reply = _call("PUT", f"{base}/_faults/{quote(options.service, safe='')}", fault)
    elif options.command == "heal" and options.service:
        reply = _call("DELETE", f"{base}/_faults/{quote(options.service, safe='')}")
    elif options.command == "heal":
        reply = _call("DELETE", f"{base}/_faults")
    else:
        reply = {"faults": _call("GET", f"{base}/_faults")["faults"]}
        reply["requests"] = _call("GET", f"{base}/_stats")["requests"]
    out.write(json.dumps(reply, indent=2, sort_keys=True) + "\n")
    return 0


def _fault_body(options: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in ("latency_ms", "error_rate", "drip_ms"):
        if getattr(options, key) is not None:
            body[key] = getattr(options, key)
    for key in ("hang", "refuse", "malformed"):
        if getattr(options, key):
            body[key] = True
    if not body:
        raise _UsageError("give at least one fault option (see fake-backends fault --help)")
    return body


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise _UsageError(f"--url must be an http(s) URL, got {url!r}")
    return url.rstrip("/")


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    with requests.Session() as session:
        session.trust_env = False  # only ever the given URL: no proxies from the environment
        try:
            reply = session.request(
                method, url, json=body, timeout=_TIMEOUT_S, allow_redirects=False
            )
        except requests.Timeout as exc:
            raise _UsageError(f"cannot reach fake backends at {url}: timed out") from exc
        except requests.RequestException as exc:
            # requests' own message is a paragraph of pool internals; the cause is what helps.
            reason = "connection failed; is `fake-backends serve` running there?"
            raise _UsageError(f"cannot reach fake backends at {url}: {reason}") from exc
    try:
        decoded = reply.json()
    except ValueError as exc:
        raise _UsageError(f"{url} answered {reply.status_code} without JSON") from exc
    if not isinstance(decoded, dict):
        raise _UsageError(f"{url} answered {reply.status_code} with unexpected JSON")
    if reply.status_code >= 400:  # noqa: PLR2004 - HTTP error statuses
        raise _UsageError(f"{url} answered {reply.status_code}: {decoded.get('error', decoded)}")
    return decoded
