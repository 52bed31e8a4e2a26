"""The ``frontdoor`` command: serve, token, settings, routes, check-config.

``main`` patches gevent before anything else is imported (ssl, requests, pykka); every
other import is lazy for that reason.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import sys
from typing import Any

DEMO_MEMBER = "m1"
#: Who the banner's suggested admin token names (``frontdoor token --admin``).
DEMO_OPERATOR = "ops"
EMBEDDED_BACKENDS_PORT = 9090


def _patch() -> None:
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()


_DESCRIPTION = """Frontdoor, the device-facing API: serve it, mint demo tokens, list its
settings and routes, check a configuration. Settings come from built-in defaults, then
--config FILE (or FRONTDOOR_CONFIG), then FRONTDOOR_* environment variables."""

_EPILOG = """examples:
  frontdoor serve                          # the API on :8080 with simulated services on :9090
  frontdoor serve --no-embedded --port 8081 --config prod.toml
  frontdoor token m1                       # a member token for the curl tour
  frontdoor settings breaker               # settings whose name or variable contains 'breaker'
  frontdoor routes
  frontdoor check-config --config prod.toml"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="frontdoor",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_help = "TOML configuration file (default: $FRONTDOOR_CONFIG, else built-in defaults)"
    parser.add_argument("--config", help=config_help, default=None)
    # Also accepted after the command (``frontdoor serve --config x.toml``); SUPPRESS keeps
    # the subcommand from resetting a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help=config_help, default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", parents=[common], help="run the HTTP API (with embedded backends)"
    )
    serve.add_argument("--host", help="listen address (default from config: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default from config: 8080)")
    serve.add_argument(
        "--backends-port",
        type=int,
        default=EMBEDDED_BACKENDS_PORT,
        help="port of the embedded simulated microservices (default 9090)",
    )
    serve.add_argument(
        "--latency-profile",
        default="realistic",
        choices=("none", "fast", "realistic"),
        help="latency of the embedded simulated microservices",
    )
    serve.add_argument(
        "--no-embedded", action="store_true", help="call backends at [backends] base_url instead"
    )

    token = commands.add_parser(
        "token", parents=[common], help="print a signed bearer token for a member (or operator)"
    )
    token.add_argument("member_id")
    token.add_argument(
        "--admin",
        action="store_true",
        help="an admin-scoped token: /_admin/* (bearer) and X-Frontdoor-Admin-Token (traces)",
    )

    settings = commands.add_parser(
        "settings", parents=[common], help="list every setting: name, default, env key"
    )
    settings.add_argument(
        "filter", nargs="?", default="", help="only settings whose name or variable has this"
    )
    commands.add_parser(
        "routes", parents=[common], help="list the endpoints this configuration serves"
    )
    commands.add_parser(
        "check-config", parents=[common], help="load the configuration and report problems"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``frontdoor`` console script."""
    _patch()
    args = _parser().parse_args(argv)
    from orchestrator.config import ConfigError, load_settings, require_secrets

    try:
        settings = load_settings(args.config)
        if args.command == "serve":
            # The public demo secrets serve the embedded demo only, unless auth.demo opts in.
            require_secrets(settings, embedded_demo=_embedded(settings, args))
    except ConfigError as exc:
        print(f"frontdoor: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    handler = {
        "serve": _serve,
        "token": _token,
        "settings": _settings,
        "routes": _routes,
        "check-config": _check_config,
    }[args.command]
    try:
        return handler(settings, args)
    except BrokenPipeError:
        # The reader went away (``frontdoor routes | head``): not an error of ours. Point
        # stdout at /dev/null so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _embedded(settings: Any, args: argparse.Namespace) -> bool:
    """Whether ``serve`` runs the simulated services in-process (the embedded demo)."""
    return bool(settings.backends.embedded and not args.no_embedded)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _token(settings: Any, args: argparse.Namespace) -> int:
    from orchestrator.frontend.auth import TokenSigner

    signer = TokenSigner(settings.auth.token_secret.encode(), settings.auth.token_ttl_s)
    try:
        _out(signer.issue(args.member_id, scope="admin" if args.admin else "member"))
    except ValueError as exc:
        print(f"frontdoor: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


def _settings(_settings_obj: Any, args: argparse.Namespace) -> int:
    from orchestrator.config import describe_settings

    wanted = args.filter.lower()
    for info in describe_settings():
        if wanted not in info.name.lower() and wanted not in info.env_key.lower():
            continue
        default = "<secret>" if info.secret else _plain(info.default)
        _out(f"{info.name} = {default}\n    env {info.env_key}: {info.description}")
    return 0


def _plain(value: object) -> str:
    """A default as it would be written in the TOML file (an enum as its value)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | tuple):
        return json.dumps(value)
    return str(value)


def _routes(settings: Any, _args: argparse.Namespace) -> int:
    from orchestrator.frontend.protocol.batch import BATCH_PATH
    from orchestrator.runtime import endpoints_for

    _out(f"{'METHOD':6} {'PATH':36} {'AUTH':7} {'TEAM':10} {'DEADLINE':>8}  SUMMARY")
    for endpoint in endpoints_for(settings.server):
        summary = endpoint.summary
        if endpoint.deprecated is not None:
            successor = f", use {endpoint.successor}" if endpoint.successor else ""
            summary = f"[deprecated{successor}] {summary}"
        _out(
            f"{endpoint.method:6} {endpoint.path:36} {endpoint.auth.value:7} "
            f"{endpoint.team:10} {endpoint.deadline_ms:5} ms  {summary}"
        )
    _out(
        f"{'POST':6} {BATCH_PATH:36} {'-':7} {'-':10} {'-':>8}  "
        "several of the calls above in one round trip (each call's own auth and deadline)"
    )
    return 0


def _check_config(settings: Any, _args: argparse.Namespace) -> int:
    from orchestrator.config import ConfigError, require_secrets
    from orchestrator.packages import Served, check_backends
    from orchestrator.runtime import layer_specs

    warnings = list(settings.warnings)
    try:
        require_secrets(settings, embedded_demo=settings.backends.embedded)
        # The packages load and every backend their endpoints call is configured.
        served = Served.configured(settings.server)
        endpoints = served.endpoints()
        layer = layer_specs(settings, served.passed_through())
        warnings += check_backends(settings, endpoints, (*settings.backend_specs(), *layer))
    except ConfigError as exc:
        print(f"frontdoor: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    for warning in warnings:
        _out(f"warning: {warning}")
    packages = ", ".join(p.name for p in served.own) + "".join(
        f", {p.name} (passed through)" for p in served.passed
    )
    _out(f"configuration OK: {len(endpoints)} endpoints from {packages}")
    return 0


def _connection_caps(settings: Any, frontdoor: Any, *, embedded: bool) -> Any:
    """The caps on open device connections: what the descriptor limit leaves after backend
    calls' reserve (the soft limit is raised when allowed); ``DescriptorBudgetError``, a
    ``ConfigError``, when too few fit."""
    from orchestrator.frontend.connections import budgeted

    slots = [view.max_concurrent for view in frontdoor.system.backend_views()]
    return budgeted(settings.server, slots, embedded=embedded)


def _serve(settings: Any, args: argparse.Namespace) -> int:
    import logging

    from orchestrator.config import ConfigError
    from orchestrator.frontend.server import HttpServer
    from orchestrator.ops import gc_tuning
    from orchestrator.ops.access_log import FIELDS_ATTR, install_json_logging, log_greenlet_errors
    from orchestrator.runtime import Frontdoor, rebase_specs

    # One JSON object per line on stderr; the secrets are scrubbed wherever they appear.
    install_json_logging(
        settings.logging.level, redact=(settings.auth.admin_token, settings.auth.token_secret)
    )
    logging.captureWarnings(capture=True)  # Python warnings become JSON lines too
    log_greenlet_errors()
    log = logging.getLogger("frontdoor")
    for warning in settings.warnings:
        log.warning("%s", warning)

    simulated = None
    specs = settings.backend_specs()
    backends_url = settings.backends.base_url
    if _embedded(settings, args):
        from backends.simulated import SimulatedBackends

        simulated = SimulatedBackends(latency_profile=args.latency_profile)
        simulated.start(host="127.0.0.1", port=args.backends_port)
        backends_url = simulated.url
        specs = rebase_specs(specs, settings.backends.base_url, backends_url)

    try:
        frontdoor = Frontdoor.build(settings, specs)
        connections = _connection_caps(settings, frontdoor, embedded=simulated is not None)
    except ConfigError as exc:
        print(f"frontdoor: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        if simulated is not None:
            simulated.stop()
        return 2
    gc_tuning.tune(settings.server.gc_young_threshold)
    host = args.host if args.host is not None else settings.server.host
    port = args.port if args.port is not None else settings.server.port
    admin_port = settings.server.admin_port
    admin = (settings.server.admin_host, admin_port) if admin_port else None
    try:
        server = HttpServer(
            frontdoor,
            host,
            port,
            settings.server.drain_s,
            admin_address=admin,
            connections=connections,
            drain_grace_s=settings.server.drain_grace_s,
        )
        server.start()
    except (OSError, ValueError) as exc:
        log.error("cannot listen on %s:%s (admin %s): %s", host, port, admin, exc)  # noqa: TRY400 - no traceback
        if simulated is not None:
            simulated.stop()
        frontdoor.stop()
        return 1
    server.install_signal_handlers()
    log.info(
        "listening",
        extra={
            FIELDS_ATTR: {"event": "listening", "url": server.url, "admin_url": server.admin_url}
        },
    )
    _banner(server.url, server.admin_url, backends_url, *_demo_tokens(settings, frontdoor.signer))
    server.wait()
    if simulated is not None:
        simulated.stop()
    log.info("stopped")
    return 0


def _demo_tokens(settings: Any, signer: Any) -> tuple[str | None, str | None]:
    """The member and admin tokens the banner may print: only worthless ones. A token
    signed with the public demo secret, and the public demo admin token; any other is a
    credential, never printed (None)."""
    from orchestrator.config import DEMO_ADMIN_TOKEN, DEMO_TOKEN_SECRET

    demo_secret = settings.auth.token_secret == DEMO_TOKEN_SECRET
    token = signer.issue(DEMO_MEMBER) if demo_secret else None
    admin_token = DEMO_ADMIN_TOKEN if settings.auth.admin_token == DEMO_ADMIN_TOKEN else None
    return token, admin_token


def _banner(
    url: str,
    admin_url: str | None,
    backends_url: str,
    token: str | None,
    admin_token: str | None = None,
) -> None:
    """What to try first; ``token`` and ``admin_token`` only when they are the public
    demo values (else the command that makes one)."""
    admin = admin_url if admin_url is not None else f"{url} (set server.admin_port to move them)"
    admin_base = admin_url if admin_url is not None else url
    export = (
        f"export TOKEN={token}"
        if token is not None
        else f"export TOKEN=$(bin/frontdoor token {DEMO_MEMBER})"
    )
    export_admin = (
        f"export ADMIN_TOKEN={admin_token}"
        if admin_token is not None
        else f"export ADMIN_TOKEN=$(bin/frontdoor token --admin {DEMO_OPERATOR})"
    )
    _out(
        f"""
Frontdoor is listening on {url}
Admin routes (/_admin/*) on {admin}
Simulated microservices on {backends_url}  (bin/fake-backends fault|heal SERVICE)
Demo member token (member {DEMO_MEMBER}):
  {export}
Admin token (/_admin/* and X-Frontdoor-Trace):
  {export_admin}

Try:
  curl -s '{url}/v1/nonmember/plans?country=US'
  curl -s -H "Authorization: Bearer $TOKEN" '{url}/v1/discovery/home?rows=2&per_row=3'
  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
       -d '{{"title_id":"t42","device_type":"tv-samsung-2024"}}' {url}/v1/playback/play
  curl -s -H "Authorization: Bearer $ADMIN_TOKEN" '{admin_base}/_admin/backends'

Ctrl-C drains in-flight requests and stops. Logs: one JSON object per line on stderr.
"""
    )
