"""orchestrator.cli: user help, --config on either side of the command, FRONTDOOR_CONFIG,
settings filtered and printed as TOML values, routes with a header, deprecations and batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.config import load_settings


@pytest.fixture
def no_frontdoor_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own FRONTDOOR_* variables must not change what the CLI prints."""
    import os

    for key in list(os.environ):
        if key.startswith("FRONTDOOR_"):
            monkeypatch.delenv(key)


def test_help_is_for_users(capsys, no_frontdoor_env):
    """``frontdoor --help`` says what the tool does and how to call it, with examples."""
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "device-facing API" in text
    assert "examples:" in text
    assert "patches gevent" not in text  # the module's developer note stays out


@pytest.mark.parametrize("before", [True, False], ids=["before-command", "after-command"])
def test_config_is_accepted_on_either_side_of_the_command(tmp_path, capsys, before,
                                                          no_frontdoor_env):  # fmt: skip
    """``--config`` works before and after the subcommand, naming the file in errors."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'x'\n")
    argv = ["--config", str(bad), "check-config"] if before else ["check-config", "--config",
                                                                  str(bad)]  # fmt: skip
    assert main(argv) == 2
    assert "server.port" in capsys.readouterr().err


def test_frontdoor_config_names_the_file_without_a_warning(tmp_path: Path):
    """FRONTDOOR_CONFIG is read as the file's path, not warned about as an unknown setting."""
    good = tmp_path / "good.toml"
    good.write_text("[server]\nport = 8181\n")
    settings = load_settings(environ={"FRONTDOOR_CONFIG": str(good)})
    assert settings.server.port == 8181
    assert not [w for w in settings.warnings if "FRONTDOOR_CONFIG" in w]


def test_settings_filter_and_print_toml_values(capsys, no_frontdoor_env):
    """``settings topology`` lists only matching settings, their defaults as TOML values."""
    assert main(["settings", "topology"]) == 0
    out = capsys.readouterr().out
    assert 'server.topology = "one"' in out
    assert "Topology." not in out
    assert "server.port" not in out
    assert main(["settings", "FRONTDOOR_AUTH_DEMO"]) == 0
    assert "auth.demo = false" in capsys.readouterr().out


def test_routes_have_a_header_mark_deprecations_and_list_batch(capsys, no_frontdoor_env):
    """``routes`` starts with a header, marks v1 home deprecated and lists /v1/batch."""
    assert main(["routes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["METHOD", "PATH", "AUTH"]
    home_v1 = next(line for line in lines if " /v1/discovery/home " in line)
    assert "[deprecated, use /v2/discovery/home]" in home_v1
    assert any(line.split()[:2] == ["POST", "/v1/batch"] for line in lines)


def test_serve_without_embedded_services_refuses_the_demo_secrets(capsys, no_frontdoor_env):
    """Finding 8: ``frontdoor serve --no-embedded`` with no secrets configured stops before
    listening, with one configuration error and status 2 (it served with the public demo
    secret before, so that anyone could mint an admin token)."""
    assert main(["serve", "--no-embedded", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        (
            "frontdoor: configuration error: auth.token_secret, auth.admin_token: required "
            "outside the embedded demo (bin/serve); set FRONTDOOR_AUTH_TOKEN_SECRET and "
            "FRONTDOOR_AUTH_ADMIN_TOKEN, or FRONTDOOR_AUTH_DEMO=true to serve with the public "
            "demo secrets"
        )
    ]


def test_check_config_refuses_the_demo_secrets_outside_the_demo(capsys, monkeypatch,
                                                                no_frontdoor_env):  # fmt: skip
    """``check-config`` says what ``serve`` would: no embedded services, no demo secrets."""
    monkeypatch.setenv("FRONTDOOR_BACKENDS_EMBEDDED", "false")
    assert main(["check-config"]) == 2
    assert "required outside the embedded demo" in capsys.readouterr().err
