"""A team's API package from outside the repository, served by configuration alone.

``examples/kids_api`` is installed (pip, from its own pyproject.toml) into a directory of
its own; its own tests pass on Frontdoor's test kit; then ``frontdoor serve`` with
``server.apis`` naming it serves its endpoints beside the built-in ones, calling the
team's backends on real sockets: routing, ``/v1/catalog``, ``/openapi.json``, the admin
views and statsd metrics all show them, with no edit to Frontdoor's code.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
import requests
from gevent.pywsgi import WSGIServer
from statsd_daemon import StatsdDaemon

from orchestrator.config import DEMO_ADMIN_TOKEN, DEMO_TOKEN_SECRET
from orchestrator.frontend.auth import TokenSigner

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "examples" / "kids_api"
SHIM = "from orchestrator.cli import main; raise SystemExit(main())"
TIMEOUT_S = 60
BUILTIN = ["orchestrator.apis.nonmember", "orchestrator.apis.discovery"]
SHOWS = [
    {"id": "s1", "title": "Moss and Pebble", "min_age": 3, "genres": ["animals"]},
    {"id": "s2", "title": "Night Rangers", "min_age": 10, "genres": ["adventure"]},
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package installed by pip (no network: its build backend is already here)."""
    target = tmp_path_factory.mktemp("site")
    # A copy: building writes build/ and *.egg-info beside the sources, never in the repo.
    source = shutil.copytree(PACKAGE, tmp_path_factory.mktemp("src") / PACKAGE.name)
    subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(source)],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    assert (target / "kids_api" / "endpoints.py").is_file()
    return target


def _team_backends(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The kids team's two services: ``/parental/controls/<member>`` and
    ``/kids_catalog/shows[/<id>]``."""
    parts = environ["PATH_INFO"].strip("/").split("/")
    status, body = "404 Not Found", {"error": "no such thing"}
    if parts[:2] == ["parental", "controls"]:
        status, body = "200 OK", {"max_age": 8}
    elif parts == ["kids_catalog", "shows"]:
        status, body = "200 OK", {"shows": SHOWS}
    elif parts[:2] == ["kids_catalog", "shows"] and parts[2] in {s["id"] for s in SHOWS}:
        status, body = "200 OK", next(s for s in SHOWS if s["id"] == parts[2])
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


@pytest.fixture
def team_backends() -> Iterator[str]:
    server = WSGIServer(("127.0.0.1", 0), _team_backends, log=None, error_log=None)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(tmp_path: Path, backends_url: str, statsd_port: int, prefix: str) -> Path:
    apis = json.dumps([*BUILTIN, "kids_api"])
    path = tmp_path / "frontdoor.toml"
    path.write_text(
        f"""
[server]
apis = {apis}

[statsd]
port = {statsd_port}
prefix = "{prefix}"

[backends.kids_catalog]
url = "{backends_url}/kids_catalog"

[backends.parental]
url = "{backends_url}/parental"
timeout_ms = 300
"""
    )
    return path


def _plain_config(tmp_path: Path, apis: list[str], backends: list[str]) -> Path:
    """A config serving ``apis``, each of ``backends`` at a closed port."""
    path = tmp_path / "frontdoor.toml"
    tables = "".join(
        f'\n[backends.{name}]\nurl = "http://127.0.0.1:9/{name}"\n' for name in backends
    )
    path.write_text(f"[server]\napis = {json.dumps(apis)}\n{tables}")
    return path


def _environ(installed: Path) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("FRONTDOOR_")}
    environ["PYTHONPATH"] = os.pathsep.join([str(installed), str(ROOT)])
    return environ


def _frontdoor(args: list[str], installed: Path, **options: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-c", SHIM, *args],
        cwd=ROOT,
        env=_environ(installed),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def _listening_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    prefix = "Frontdoor is listening on "
    with gevent.Timeout(TIMEOUT_S, AssertionError("frontdoor did not start")):
        for line in process.stdout:
            if line.startswith(prefix):
                return line.removeprefix(prefix).strip()
    raise AssertionError(f"frontdoor exited: {process.wait()} {process.stderr}")


def test_the_packages_own_tests_pass_on_the_test_kit(installed):
    """The team's tests, run as the team runs them, against the installed package."""
    result = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "gevent.monkey", "--module", "pytest", "-q",
         "-p", "no:cacheprovider", str(PACKAGE / "tests")],
        cwd=installed, env=_environ(installed), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


def test_configuration_alone_serves_the_package(
    installed, team_backends, statsd_daemon: StatsdDaemon, tmp_path
):
    """Routes, catalog, OpenAPI, admin views and metrics carry the kids endpoints."""
    prefix = "team.frontdoor"
    config = _config(tmp_path, team_backends, statsd_daemon.port, prefix)
    routes = _frontdoor(["routes", "--config", str(config)], installed)
    listed, _ = routes.communicate(timeout=TIMEOUT_S)
    assert "GET    /v1/kids/shows/{show_id}" in listed
    assert "/v1/playback/play" not in listed

    process = _frontdoor(
        ["serve", "--config", str(config), "--port", str(_free_port()), "--backends-port", "0",
         "--latency-profile", "none"],
        installed,
    )  # fmt: skip
    http = requests.Session()
    http.trust_env = False
    try:
        url = _listening_url(process)
        member = TokenSigner(DEMO_TOKEN_SECRET.encode(), 3600).issue("m7")
        shows = http.get(
            f"{url}/v1/kids/shows?fields=max_age,shows(id,title)",
            headers={"Authorization": f"Bearer {member}"},
            timeout=10,
        )
        assert shows.status_code == 200, shows.text
        assert shows.json()["max_age"] == 8
        assert shows.json()["shows"] == [{"id": "s1", "title": "Moss and Pebble"}]
        missing = http.get(f"{url}/v1/kids/shows/s404", timeout=10)
        assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
        # The built-in packages it was told to serve are there; the others are not.
        plans = http.get(f"{url}/v1/nonmember/plans?country=US", timeout=10)
        assert plans.status_code == 200
        assert http.get(f"{url}/v1/playback/history", timeout=10).status_code == 404

        catalog = http.get(f"{url}/v1/catalog", timeout=10).json()
        kids = [e for e in catalog["endpoints"] if e["path"].startswith("/v1/kids/")]
        assert {e["path"] for e in kids} == {"/v1/kids/shows", "/v1/kids/shows/{show_id}"}
        openapi = http.get(f"{url}/openapi.json", timeout=10).json()
        assert {"/v1/kids/shows", "/v1/kids/shows/{show_id}"} <= set(openapi["paths"])

        admin = {"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"}
        views = http.get(f"{url}/_admin/endpoints", headers=admin, timeout=10).json()
        shows_view = next(e for e in views["endpoints"] if e["name"] == "kids.shows")
        assert (shows_view["team"], shows_view["window"]["successes"]) == ("kids", 1)
        backends = http.get(f"{url}/_admin/backends", headers=admin, timeout=10).json()
        assert {"kids_catalog", "parental"} <= {b["name"] for b in backends["backends"]}

        def counted() -> bool:
            counters = statsd_daemon.counters()
            return counters.get(f"{prefix}.endpoint.kids.shows.status.2xx") == 1 and bool(
                counters.get(f"{prefix}.backend.parental.success")
            )

        statsd_daemon.wait_for(counted, TIMEOUT_S, "the kids endpoint's metrics")
    finally:
        http.close()
        process.terminate()
        process.communicate(timeout=TIMEOUT_S)


def test_an_unconfigured_backend_stops_start_up_with_one_clear_error(installed, tmp_path):
    """Without [backends.kids_catalog] the process does not start, and says why."""
    config = _plain_config(tmp_path, [*BUILTIN, "kids_api"], ["parental", "recommendationz"])
    checked = _frontdoor(["check-config", "--config", str(config)], installed)
    out, err = checked.communicate(timeout=TIMEOUT_S)
    assert checked.returncode == 2, out
    assert "backends.kids_catalog.url: not configured; called by endpoint shows, show" in err
    served = _frontdoor(["serve", "--config", str(config), "--backends-port", "0"], installed)
    out, err = served.communicate(timeout=TIMEOUT_S)
    assert served.returncode == 2
    assert "backends.kids_catalog.url: not configured" in err
    assert "Traceback" not in err


def test_unused_backends_are_listed(installed, tmp_path):
    """A configured backend that no served endpoint calls is named in a warning."""
    config = _plain_config(tmp_path, ["kids_api"], ["parental", "kids_catalog", "recommendationz"])
    checked = _frontdoor(["check-config", "--config", str(config)], installed)
    out, _ = checked.communicate(timeout=TIMEOUT_S)
    assert checked.returncode == 0, out
    assert "called by no endpoint served here: recommendationz" in out
    assert "configuration OK: 2 endpoints from kids" in out
