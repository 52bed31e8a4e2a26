"""The boundary team code stands on: orchestrator.plans is enough to declare an endpoint,
and the build refuses team code that reaches into the actor runtime or the backend client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import orchestrator.plans

ROOT = Path(__file__).resolve().parents[2]
RUFF = str(Path(sys.executable).with_name("ruff"))


def _lint(path: str, source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the project's own linter on a fixed snippet
        [RUFF, "check", "--no-cache", "--select", "TID251", "--stdin-filename", path, "-"],
        input=source, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "source",
    ["from actors.plan import Step\n", "import backends.transport\n"],
    ids=["actors", "backends"],
)
@pytest.mark.parametrize(
    "path",
    ["orchestrator/apis/new_team/endpoints.py", "examples/kids_api/kids_api/endpoints.py"],
    ids=["built-in package", "example team package"],
)
def test_team_code_importing_actors_or_backends_fails_the_lint(path, source):
    """An API package's module that imports actors or backends is a TID251 error."""
    result = _lint(path, source)
    assert result.returncode == 1
    assert "TID251" in result.stdout


def test_framework_code_may_import_them():
    """The rule is for team code only: the app and the runtime import them as before."""
    result = _lint("orchestrator/frontend/app.py", "from actors.plan import Step\n")
    assert result.returncode == 0, result.stdout


def test_the_public_api_offers_what_a_declaration_needs():
    """Plans, steps, fallbacks, device errors, requests and the response schema, all here."""
    needed = {
        "Endpoint", "Param", "Source", "Auth", "Plan", "Step", "StepContext", "Fallback",
        "DeviceError", "Refused", "RequestBuilder", "BackendRequest", "get", "post", "put",
        "Field", "body", "obj", "objects", "text", "texts", "integer", "number", "boolean",
    }  # fmt: skip
    assert needed <= set(orchestrator.plans.__all__)
    assert all(hasattr(orchestrator.plans, name) for name in orchestrator.plans.__all__)
