"""The ``frontdoor`` command: serve, token, settings, routes, check-config.

``main`` patches gevent before anything else is imported (ssl, requests, pykka); every
other import is lazy for that reason.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEMO_MEMBER = "m1"
EMBEDDED_BACKENDS_PORT = 9090


def _patch() -> None:
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frontdoor", description=__doc__)
    parser.add_argument("--config", help="TOML configuration file", default=None)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP API (with embedded backends)")
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

    token = commands.add_parser("token", help="print a signed bearer token for a member")
    token.add_argument("member_id")
    token.add_argument("--admin", action="store_true", help="an admin-scoped token")

    commands.add_parser("settings", help="list every setting: name, default, env key")
    commands.add_parser("routes", help="list the endpoints this configuration serves")
    commands.add_parser("check-config", help="load the configuration and report problems")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``frontdoor`` console script."""
    _patch()
    args = _parser().parse_args(argv)
    from orchestrator.config import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
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
    return handler(settings, args)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _token(settings: Any, args: argparse.Namespace) -> int:
    from orchestrator.auth import TokenSigner

    signer = TokenSigner(settings.auth.token_secret.encode(), settings.auth.token_ttl_s)
    try:
        _out(signer.issue(args.member_id, scope="admin" if args.admin else "member"))
    except ValueError as exc:
        print(f"frontdoor: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


def _settings(_settings_obj: Any, _args: argparse.Namespace) -> int:
    from orchestrator.config import describe_settings

    for info in describe_settings():
        default = "<secret>" if info.secret else repr(info.default)
        _out(f"{info.name} = {default}\n    env {info.env_key}: {info.description}")
    return 0


def _routes(settings: Any, _args: argparse.Namespace) -> int:
    from orchestrator.runtime import endpoints_for

    for endpoint in endpoints_for(settings.server.topology):
        _out(
            f"{endpoint.method:6} {endpoint.path:36} {endpoint.auth.value:7} "
            f"{endpoint.team:10} {endpoint.deadline_ms:5} ms  {endpoint.summary}"
        )
    return 0


def _check_config(settings: Any, _args: argparse.Namespace) -> int:
    for warning in settings.warnings:
        _out(f"warning: {warning}")
    _out("configuration OK")
    return 0


def _serve(settings: Any, args: argparse.Namespace) -> int:
    import logging

    from orchestrator import gc_tuning
    from orchestrator.access_log import FIELDS_ATTR, install_json_logging, log_greenlet_errors
    from orchestrator.config import DEMO_TOKEN_SECRET
    from orchestrator.runtime import Frontdoor, rebase_specs
    from orchestrator.server import HttpServer

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
    if settings.backends.embedded and not args.no_embedded:
        from backends.simulated import SimulatedBackends

        simulated = SimulatedBackends(latency_profile=args.latency_profile)
        simulated.start(host="127.0.0.1", port=args.backends_port)
        backends_url = simulated.url
        specs = rebase_specs(specs, settings.backends.base_url, backends_url)

    frontdoor = Frontdoor.build(settings, specs)
    gc_tuning.tune(settings.server.gc_young_threshold)
    host = args.host if args.host is not None else settings.server.host
    port = args.port if args.port is not None else settings.server.port
    admin_port = settings.server.admin_port
    admin = (settings.server.admin_host, admin_port) if admin_port else None
    try:
        server = HttpServer(frontdoor, host, port, settings.server.drain_s, admin_address=admin)
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
    # A token signed with the public demo secret is worth nothing; any other is a credential.
    demo_secret = settings.auth.token_secret == DEMO_TOKEN_SECRET
    token = frontdoor.signer.issue(DEMO_MEMBER) if demo_secret else None
    _banner(server.url, server.admin_url, backends_url, token)
    server.wait()
    if simulated is not None:
        simulated.stop()
    log.info("stopped")
    return 0


def _banner(url: str, admin_url: str | None, backends_url: str, token: str | None) -> None:
    admin = admin_url if admin_url is not None else f"{url} (set server.admin_port to move them)"
    export = (
        f"export TOKEN={token}"
        if token is not None
        else f"export TOKEN=$(bin/frontdoor token {DEMO_MEMBER})"
    )
    _out(
        f"""
Frontdoor is listening on {url}
Admin routes (/_admin/*) on {admin}
Simulated microservices on {backends_url}  (bin/fake-backends fault|heal SERVICE)
Demo member token (member {DEMO_MEMBER}):
  {export}

Try:
  curl -s '{url}/v1/nonmember/plans?country=US'
  curl -s -H "Authorization: Bearer $TOKEN" '{url}/v1/discovery/home?rows=2&per_row=3'
  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
       -d '{{"title_id":"t42","device_type":"tv-samsung-2024"}}' {url}/v1/playback/play

Ctrl-C drains in-flight requests and stops. Logs: one JSON object per line on stderr.
"""
    )
