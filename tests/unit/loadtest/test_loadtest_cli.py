"""bin/loadtest's command line: defaults in --help, the backends URL's one name, and
thresholds checked before anything is sent."""

from __future__ import annotations

import argparse
import io
import socket

import pytest

from backends.simulated import cli as fake_backends
from orchestrator.config import load_settings
from orchestrator.loadtest.cli import EXIT_USAGE, _backends_url, _parser, main


def test_help_shows_every_default_and_the_exit_codes():
    """The target and backends URLs, the env variable, and each exit code."""
    text = _parser().format_help()
    flat = " ".join(text.split())
    assert "(default: http://127.0.0.1:8080)" in flat
    assert "$FRONTDOOR_BACKENDS_BASE_URL, else http://127.0.0.1:9090" in flat
    assert "(default: abort)" in flat
    assert "(default: 1)" in flat  # --seed
    for code in ("0 ", "1 ", "2 ", "99 ", "130 "):
        assert f"\n  {code}" in text


def _args(**given):
    return argparse.Namespace(backends=given.get("backends"))


def test_the_backends_url_is_frontdoors_own_setting():
    """--backends wins; else backends.base_url (FRONTDOOR_BACKENDS_BASE_URL); else :9090."""
    settings = load_settings(environ={"FRONTDOOR_BACKENDS_BASE_URL": "http://127.0.0.1:19090"})
    assert _backends_url(_args(), settings) == "http://127.0.0.1:19090"
    assert _backends_url(_args(backends="http://127.0.0.1:1"), settings) == "http://127.0.0.1:1"
    assert _backends_url(_args(), load_settings(environ={})) == "http://127.0.0.1:9090"


def _closed_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_fake_backends_reads_the_same_name_and_warns_on_the_old_one():
    """FRONTDOOR_BACKENDS_BASE_URL is used as is; FRONTDOOR_BACKENDS_URL still works, with
    a deprecation warning; the new name wins when both are set."""
    new, old = _closed_url(), "http://127.0.0.1:9"
    err = io.StringIO()
    code = fake_backends.main(
        ["status"], environ={"FRONTDOOR_BACKENDS_BASE_URL": new}, out=io.StringIO(), err=err
    )
    assert code == 2
    assert f"cannot reach fake backends at {new}/_faults" in err.getvalue()
    assert "deprecated" not in err.getvalue()
    err = io.StringIO()
    fake_backends.main(
        ["status"], environ={"FRONTDOOR_BACKENDS_URL": old}, out=io.StringIO(), err=err
    )
    assert "FRONTDOOR_BACKENDS_URL is deprecated; set FRONTDOOR_BACKENDS_BASE_URL" in err.getvalue()
    assert f"cannot reach fake backends at {old}/_faults" in err.getvalue()
    err = io.StringIO()
    fake_backends.main(
        ["status"],
        environ={"FRONTDOOR_BACKENDS_URL": old, "FRONTDOOR_BACKENDS_BASE_URL": new},
        out=io.StringIO(),
        err=err,
    )
    assert f"at {new}/_faults" in err.getvalue()
    assert "deprecated" not in err.getvalue()


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--threshold", "home.p95<1s"], "unknown metric 'p95'"),
        (["--threshold", "history.p99<1s"], "this run sends no 'history'"),
        (["--threshold", "all@fault.p99<1s"], "this run has no phase fault"),
    ],
)
def test_a_bad_threshold_is_a_usage_error_before_anything_is_sent(argv, problem, capsys):
    """Exit 2 and the problem; the target (a closed port) is never contacted."""
    code = main([*argv, "--target", _closed_url(), "--duration", "1", "--no-progress"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert problem in err
    assert "does not answer" not in err
