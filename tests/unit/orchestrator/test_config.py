"""orchestrator.config: defaults, TOML and environment layering, errors that name the key."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest

from backends.simulated.reference import SERVICES as BACKEND_NAMES
from backends.specs import BackendSpec, BreakerSettings, LimitSettings, RetrySettings
from orchestrator.config import (
    DEMO_ADMIN_TOKEN,
    DEMO_TOKEN_SECRET,
    ConfigError,
    MultipleConfigError,
    Settings,
    Topology,
    describe_settings,
    load_settings,
    require_secrets,
)
from orchestrator.packages import Served
from orchestrator.runtime import layer_specs

SECRET = "s" * 40
ADMIN = "a" * 20
PRODUCTION = {
    "FRONTDOOR_AUTH_DEMO": "false",
    "FRONTDOOR_AUTH_TOKEN_SECRET": SECRET,
    "FRONTDOOR_AUTH_ADMIN_TOKEN": ADMIN,
}


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "frontdoor.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def _error(path: str | None = None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={} if environ is None else environ)
    return str(caught.value)


# --- defaults ------------------------------------------------------------------------


def test_defaults_serve_the_embedded_demo():
    """With no file and no environment, the built-in defaults describe the local demo."""
    settings = load_settings(environ={})
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.server.max_inflight == 32
    assert settings.server.max_body_bytes == 65_536
    assert settings.server.drain_s == 10.0
    assert settings.server.topology is Topology.ONE
    assert settings.server.playback_upstream == ""
    assert (settings.server.admin_host, settings.server.admin_port) == ("127.0.0.1", 0)
    assert settings.auth.demo is False  # the demo secrets serve the embedded demo only
    assert settings.server.trust_request_id is False
    assert settings.auth.token_ttl_s == 86_400
    assert (settings.statsd.host, settings.statsd.port) == ("127.0.0.1", 8125)
    assert settings.statsd.prefix == "frontdoor"
    assert settings.statsd.enabled is True
    assert settings.statsd.gauge_interval_s == 1.0
    assert settings.backends.base_url == "http://127.0.0.1:9090"
    assert settings.backends.transport == "gevent"
    assert settings.backends.embedded is True
    assert (settings.logging.level, settings.logging.slow_request_ms) == ("INFO", 1000)


def test_demo_defaults_use_public_secrets_and_warn():
    """Demo mode falls back to the public secrets and says so in the warnings."""
    settings = load_settings(environ={})
    assert settings.auth.token_secret == DEMO_TOKEN_SECRET
    assert settings.auth.admin_token == DEMO_ADMIN_TOKEN
    assert "using the demo token secret; set FRONTDOOR_AUTH_TOKEN_SECRET" in settings.warnings
    assert "using the demo admin token; set FRONTDOOR_AUTH_ADMIN_TOKEN" in settings.warnings


def test_backend_specs_cover_every_known_backend_in_order():
    """One spec per known backend, at base_url/name, with a per-service timeout."""
    specs = load_settings(environ={}).backend_specs()
    assert tuple(spec.name for spec in specs) == BACKEND_NAMES
    for spec in specs:
        assert spec.base_url == f"http://127.0.0.1:9090/{spec.name}"
        assert 300 <= spec.timeout_ms <= 800
        assert spec.breaker == BreakerSettings()
        assert spec.retry == RetrySettings()
        assert spec.transport == "gevent"


def test_spec_lookup_by_name():
    """BackendsSettings.spec finds one backend and refuses unknown names."""
    backends = load_settings(environ={}).backends
    assert backends.spec("catalog").name == "catalog"
    with pytest.raises(KeyError):
        backends.spec("nope")


def test_settings_are_frozen():
    """Loaded settings cannot be changed in place."""
    settings = load_settings(environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server.port = 1  # type: ignore[misc]


def test_repr_never_shows_secrets():
    """Printing or logging the settings does not reveal the token secret or admin token."""
    text = repr(load_settings(environ=PRODUCTION))
    assert SECRET not in text
    assert ADMIN not in text


# --- layering ------------------------------------------------------------------------


def test_toml_file_overrides_defaults(tmp_path):
    """Values in the TOML file replace the built-in defaults, nested tables included."""
    path = _toml(
        tmp_path,
        """
        [server]
        port = 9000
        drain_s = 2
        topology = "discovery"

        [statsd]
        enabled = false

        [backends]
        base_url = "http://backends.internal:8000/"

        [backends.catalog]
        timeout_ms = 250

        [backends.catalog.breaker]
        error_percent = 25

        [backends.catalog.retry]
        max_attempts = 3
        """,
    )
    settings = load_settings(path, environ={})
    assert settings.server.port == 9000
    assert settings.server.drain_s == 2.0
    assert settings.server.topology is Topology.DISCOVERY
    assert settings.statsd.enabled is False
    catalog = settings.backends.spec("catalog")
    assert catalog.base_url == "http://backends.internal:8000/catalog"
    assert catalog.timeout_ms == 250
    assert catalog.breaker.error_percent == 25.0
    assert catalog.retry.max_attempts == 3
    assert settings.backends.spec("search").timeout_ms == 600


def test_adaptive_limit_is_opt_in_per_backend_and_the_timeout_trip_on_by_default(tmp_path):
    """``limit.adaptive`` is off unless a backend's table turns it on; its bounds and the
    breaker's run of timeouts are read from the same table."""
    path = _toml(
        tmp_path,
        """
        [backends.licensing.limit]
        adaptive = true
        min_limit = 3
        initial_limit = 6
        max_limit = 40
        rtt_tolerance = 2.0
        drop_threshold = 0.5

        [backends.catalog.breaker]
        consecutive_timeouts = 0
        """,
    )
    settings = load_settings(path, environ={"FRONTDOOR_BACKENDS_LICENSING_LIMIT_QUEUE_SIZE": "2"})
    licensing = settings.backends.spec("licensing").limit
    assert licensing == LimitSettings(
        adaptive=True,
        min_limit=3,
        initial_limit=6,
        max_limit=40,
        rtt_tolerance=2.0,
        queue_size=2,
        drop_threshold=0.5,
    )
    assert settings.backends.spec("search").limit.adaptive is False
    assert settings.backends.spec("catalog").breaker.consecutive_timeouts == 0
    assert settings.backends.spec("search").breaker.consecutive_timeouts == 3


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"FRONTDOOR_BACKENDS_PLAYBACK_LIMIT_MIN_LIMIT": "30"},
            (
                "backends.playback.limit.initial_limit: must satisfy min_limit (30) <= "
                "initial_limit (20) <= max_limit (200) "
                "(from FRONTDOOR_BACKENDS_PLAYBACK_LIMIT_MIN_LIMIT)"
            ),
        ),
        (
            {"FRONTDOOR_BACKENDS_PLAYBACK_LIMIT_SMOOTHING": "0"},
            "backends.playback.limit.smoothing",
        ),
        (
            {"FRONTDOOR_BACKENDS_PLAYBACK_BREAKER_CONSECUTIVE_TIMEOUTS": "-1"},
            "backends.playback.breaker.consecutive_timeouts",
        ),
    ],
)
def test_bad_limit_and_trip_values_name_the_key(environ, message):
    """Limits out of order, a smoothing of 0 or a negative run are refused by name."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(environ=environ)


def test_environment_beats_the_file(tmp_path):
    """For the same key, FRONTDOOR_* wins over the TOML file."""
    path = _toml(tmp_path, "[server]\nport = 9000\n[statsd]\nhost = 'statsd.file'\n")
    settings = load_settings(
        path, environ={"FRONTDOOR_SERVER_PORT": "9100", "FRONTDOOR_STATSD_HOST": "statsd.env"}
    )
    assert settings.server.port == 9100
    assert settings.statsd.host == "statsd.env"


def test_environment_values_are_parsed_by_type():
    """Environment text becomes ints, floats, bools, enums and upper-cased levels."""
    settings = load_settings(
        environ={
            "FRONTDOOR_SERVER_MAX_INFLIGHT": "50",
            "FRONTDOOR_STATSD_GAUGE_INTERVAL_S": "0.25",
            "FRONTDOOR_STATSD_ENABLED": "off",
            "FRONTDOOR_BACKENDS_EMBEDDED": "No",
            "FRONTDOOR_SERVER_TOPOLOGY": "playback",
            "FRONTDOOR_LOGGING_LEVEL": "debug",
            "FRONTDOOR_BACKENDS_CATALOG_TIMEOUT_MS": "500",
        }
    )
    assert settings.server.max_inflight == 50
    assert settings.statsd.gauge_interval_s == 0.25
    assert settings.statsd.enabled is False
    assert settings.backends.embedded is False
    assert settings.server.topology is Topology.PLAYBACK
    assert settings.logging.level == "DEBUG"
    assert settings.backends.spec("catalog").timeout_ms == 500


def test_zero_is_kept_not_replaced_by_a_default():
    """0 is a real value where allowed (queue, floor, slow log), not a cue for the default."""
    settings = load_settings(
        environ={
            "FRONTDOOR_BACKENDS_DEFAULTS_MAX_QUEUE": "0",
            "FRONTDOOR_BACKENDS_DEFAULTS_RETRY_BUDGET_FLOOR": "0",
            "FRONTDOOR_LOGGING_SLOW_REQUEST_MS": "0",
            "FRONTDOOR_SERVER_DRAIN_S": "0",
        }
    )
    assert all(spec.max_queue == 0 for spec in settings.backend_specs())
    assert all(spec.retry.budget_floor == 0 for spec in settings.backend_specs())
    assert settings.logging.slow_request_ms == 0
    assert settings.server.drain_s == 0.0


def test_backend_defaults_apply_to_every_backend(tmp_path):
    """[backends.defaults] replaces the built-in per-backend tuning for all backends."""
    path = _toml(tmp_path, "[backends.defaults]\ntimeout_ms = 2000\nmax_concurrent = 4\n")
    specs = load_settings(path, environ={}).backend_specs()
    assert {(spec.timeout_ms, spec.max_concurrent) for spec in specs} == {(2000, 4)}


def test_most_specific_key_wins_across_sources(tmp_path):
    """A backend's own key in the file beats backends.defaults from the environment."""
    path = _toml(tmp_path, "[backends.catalog]\ntimeout_ms = 250\n")
    settings = load_settings(path, environ={"FRONTDOOR_BACKENDS_DEFAULTS_TIMEOUT_MS": "900"})
    assert settings.backends.spec("catalog").timeout_ms == 250
    assert settings.backends.spec("search").timeout_ms == 900


def test_explicit_backend_url_wins_over_base_url():
    """A backend's own url is used as given (minus a trailing slash); others follow base_url."""
    settings = load_settings(
        environ={
            "FRONTDOOR_BACKENDS_BASE_URL": "https://svc.internal",
            "FRONTDOOR_BACKENDS_SEARCH_URL": "http://search.internal:7000/v2/",
        }
    )
    assert settings.backends.spec("search").base_url == "http://search.internal:7000/v2"
    assert settings.backends.spec("plans").base_url == "https://svc.internal/plans"


def test_transport_for_all_backends_and_for_one(tmp_path):
    """backends.transport picks every backend's transport; a backend's own key wins over it,
    from the file or the environment."""
    path = _toml(tmp_path, '[backends]\ntransport = "requests"\n')
    settings = load_settings(path, environ={"FRONTDOOR_BACKENDS_SEARCH_TRANSPORT": "gevent"})
    assert settings.backends.transport == "requests"
    assert settings.backends.spec("search").transport == "gevent"
    assert settings.backends.spec("plans").transport == "requests"
    settings = load_settings(environ={"FRONTDOOR_BACKENDS_CATALOG_TRANSPORT": "requests"})
    assert settings.backends.spec("catalog").transport == "requests"
    assert settings.backends.spec("search").transport == "gevent"


def test_edge_layer_backends_use_the_configured_transport():
    """The edge's playback-layer backends follow backends.transport too."""
    settings = load_settings(
        environ={
            "FRONTDOOR_SERVER_TOPOLOGY": "edge",
            "FRONTDOOR_SERVER_PLAYBACK_UPSTREAM": "http://127.0.0.1:8081",
            "FRONTDOOR_BACKENDS_TRANSPORT": "requests",
        }
    )
    layer = layer_specs(settings, Served.configured(settings.server).passed_through())
    assert layer
    assert {spec.transport for spec in layer} == {"requests"}


def test_production_secrets_give_no_warnings():
    """With demo off and real secrets set, nothing is warned about."""
    settings = load_settings(environ=PRODUCTION)
    assert settings.auth.demo is False
    assert settings.auth.token_secret == SECRET
    assert settings.auth.admin_token == ADMIN
    assert settings.warnings == ()


def test_edge_topology_with_upstream():
    """The edge topology loads when it names its playback layer."""
    settings = load_settings(
        environ={
            "FRONTDOOR_SERVER_TOPOLOGY": "edge",
            "FRONTDOOR_SERVER_PLAYBACK_UPSTREAM": "http://playback-layer:8081",
        }
    )
    assert settings.server.topology is Topology.EDGE
    assert settings.server.playback_upstream == "http://playback-layer:8081"


def test_unused_playback_upstream_is_warned_about():
    """An upstream set outside the edge topology is ignored, with a warning."""
    settings = load_settings(
        environ={"FRONTDOOR_SERVER_PLAYBACK_UPSTREAM": "http://playback-layer:8081"}
    )
    assert any("server.playback_upstream is ignored" in w for w in settings.warnings)


def test_unknown_environment_variable_is_warned_with_a_suggestion():
    """A misspelt FRONTDOOR_* variable is reported, with the closest real one."""
    settings = load_settings(environ={"FRONTDOOR_SERVER_PROT": "9000", "HOME": "/root"})
    assert settings.server.port == 8080
    assert (
        "ignoring unknown environment variable FRONTDOOR_SERVER_PROT; "
        "did you mean FRONTDOOR_SERVER_PORT?"
    ) in settings.warnings


def test_os_environ_is_the_default_source(monkeypatch):
    """Without an explicit mapping, the process environment is read."""
    monkeypatch.setenv("FRONTDOOR_SERVER_PORT", "9123")
    assert load_settings().server.port == 9123


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"FRONTDOOR_SERVER_PORT": "abc"},
            'server.port: expected an integer 1-65535, got "abc" (from FRONTDOOR_SERVER_PORT)',
        ),
        (
            {"FRONTDOOR_STATSD_PORT": "70000"},
            'statsd.port: expected an integer 1-65535, got "70000" (from FRONTDOOR_STATSD_PORT)',
        ),
        (
            {"FRONTDOOR_SERVER_MAX_INFLIGHT": "1_000"},
            "server.max_inflight: expected an integer >= 1",
        ),
        ({"FRONTDOOR_STATSD_ENABLED": "maybe"}, "statsd.enabled: expected true or false"),
        (
            {"FRONTDOOR_STATSD_GAUGE_INTERVAL_S": "0"},
            "statsd.gauge_interval_s: expected a number > 0",
        ),
        ({"FRONTDOOR_SERVER_DRAIN_S": "nan"}, "server.drain_s: expected a number >= 0"),
        (
            {"FRONTDOOR_BACKENDS_CATALOG_BREAKER_ERROR_PERCENT": "101"},
            (
                'backends.catalog.breaker.error_percent: expected a number 0-100, got "101" '
                "(from FRONTDOOR_BACKENDS_CATALOG_BREAKER_ERROR_PERCENT)"
            ),
        ),
        (
            {"FRONTDOOR_BACKENDS_CATALOG_TIMEOUT_MS": "-5"},
            "backends.catalog.timeout_ms: expected an integer >= 1",
        ),
        (
            {"FRONTDOOR_BACKENDS_DEFAULTS_RETRY_MAX_ATTEMPTS": "50"},
            "backends.defaults.retry.max_attempts: expected an integer 1-10",
        ),
        (
            {"FRONTDOOR_SERVER_TOPOLOGY": "two"},
            'server.topology: expected one of "one", "discovery", "playback", "edge"',
        ),
        ({"FRONTDOOR_LOGGING_LEVEL": "LOUD"}, "logging.level: expected one of"),
        (
            {"FRONTDOOR_STATSD_PREFIX": "front|door"},
            "statsd.prefix: expected dot-separated words",
        ),
        ({"FRONTDOOR_SERVER_HOST": "bad host"}, "server.host: expected a host name"),
        (
            {"FRONTDOOR_SERVER_ADMIN_HOST": "0.0.0.0"},
            (
                "server.admin_host: expected a loopback IP address (127.0.0.0/8 or ::1), "
                'got "0.0.0.0" (from FRONTDOOR_SERVER_ADMIN_HOST)'
            ),
        ),
        (
            {"FRONTDOOR_SERVER_ADMIN_HOST": "localhost"},
            "server.admin_host: expected a loopback IP address",
        ),
        (
            {"FRONTDOOR_SERVER_ADMIN_HOST": "10.0.0.1"},
            "server.admin_host: expected a loopback IP address",
        ),
        (
            {"FRONTDOOR_SERVER_ADMIN_PORT": "65536"},
            "server.admin_port: expected an integer 0-65535",
        ),
        (
            {"FRONTDOOR_SERVER_ADMIN_PORT": "8080"},
            (
                "server.admin_port: must differ from server.port (8080), or be 0 to serve admin "
                "routes there (from FRONTDOOR_SERVER_ADMIN_PORT)"
            ),
        ),
        (
            {"FRONTDOOR_BACKENDS_BASE_URL": "ftp://x"},
            "backends.base_url: expected an http(s) URL",
        ),
        (
            {"FRONTDOOR_BACKENDS_TRANSPORT": "urllib3"},
            (
                'backends.transport: expected one of "gevent", "requests", got "urllib3" '
                "(from FRONTDOOR_BACKENDS_TRANSPORT)"
            ),
        ),
        (
            {"FRONTDOOR_BACKENDS_CATALOG_TRANSPORT": "Gevent"},
            'backends.catalog.transport: expected one of "gevent", "requests", got "Gevent"',
        ),
        (
            {"FRONTDOOR_BACKENDS_SEARCH_URL": "http://user:pw@search"},
            "backends.search.url: expected an http(s) URL",
        ),
        (
            {"FRONTDOOR_BACKENDS_SEARCH_URL": "http://search:99999"},
            "backends.search.url: expected an http(s) URL",
        ),
        (
            {"FRONTDOOR_SERVER_TOPOLOGY": "edge"},
            'server.playback_upstream: required when server.topology is "edge"',
        ),
        (
            {"FRONTDOOR_BACKENDS_CATALOG_RETRY_BACKOFF_MAX_MS": "5"},
            (
                "backends.catalog.retry.backoff_max_ms: must be >= retry.backoff_base_ms (10), "
                "got 5 (from FRONTDOOR_BACKENDS_CATALOG_RETRY_BACKOFF_MAX_MS)"
            ),
        ),
        (
            {**PRODUCTION, "FRONTDOOR_AUTH_TOKEN_SECRET": DEMO_TOKEN_SECRET},
            (
                "auth.token_secret: the public demo value is not allowed when auth.demo is false "
                "(from FRONTDOOR_AUTH_TOKEN_SECRET)"
            ),
        ),
    ],
)
def test_bad_environment_values_name_key_and_source(environ, message):
    """Every wrong environment value gives one ConfigError naming the key and the variable."""
    assert message in _error(environ=environ)


def test_demo_secrets_serve_only_the_embedded_demo_or_an_explicit_opt_in():
    """Finding 8: without configured secrets only the embedded demo may start; any other
    start is refused with one error naming both secrets and their variables, unless
    auth.demo opts in (which still warns)."""
    bare = load_settings(environ={})
    assert bare.auth.demo_secrets == ("auth.token_secret", "auth.admin_token")
    require_secrets(bare, embedded_demo=True)  # bin/serve: zero configuration
    with pytest.raises(ConfigError) as caught:
        require_secrets(bare, embedded_demo=False)  # gunicorn, --no-embedded
    assert str(caught.value) == (
        "auth.token_secret, auth.admin_token: required outside the embedded demo (bin/serve); "
        "set FRONTDOOR_AUTH_TOKEN_SECRET and FRONTDOOR_AUTH_ADMIN_TOKEN, or "
        "FRONTDOOR_AUTH_DEMO=true to serve with the public demo secrets"
    )
    half = load_settings(environ={"FRONTDOOR_AUTH_TOKEN_SECRET": SECRET})
    with pytest.raises(ConfigError, match=r"^auth\.admin_token: required outside"):
        require_secrets(half, embedded_demo=False)
    opted_in = load_settings(environ={"FRONTDOOR_AUTH_DEMO": "true"})
    require_secrets(opted_in, embedded_demo=False)
    assert "using the demo token secret; set FRONTDOOR_AUTH_TOKEN_SECRET" in opted_in.warnings
    production = load_settings(environ=PRODUCTION)
    assert production.auth.demo_secrets == ()
    require_secrets(production, embedded_demo=False)


def test_trust_request_id_from_environment():
    """server.trust_request_id is read like any boolean setting."""
    settings = load_settings(environ={"FRONTDOOR_SERVER_TRUST_REQUEST_ID": "true"})
    assert settings.server.trust_request_id is True


def test_short_secret_is_refused_without_being_echoed():
    """A too-short token secret is an error that gives its length, never its value."""
    message = _error(environ={"FRONTDOOR_AUTH_TOKEN_SECRET": "hunter2"})
    assert message == (
        "auth.token_secret: expected a string of at least 32 characters, got 7 characters "
        "(from FRONTDOOR_AUTH_TOKEN_SECRET)"
    )
    assert "hunter2" not in message


def test_admin_listener_settings_from_file_and_environment(tmp_path):
    """admin_port moves admin routes to a loopback listener; IPv6 loopback is accepted."""
    path = _toml(tmp_path, "[server]\nport = 9000\nadmin_port = 9001\n")
    settings = load_settings(path, environ={"FRONTDOOR_SERVER_ADMIN_HOST": "::1"})
    assert (settings.server.admin_host, settings.server.admin_port) == ("::1", 9001)
    clash = _error(path, environ={"FRONTDOOR_SERVER_PORT": "9001"})
    assert clash.startswith("server.admin_port: must differ from server.port (9001)")


def test_config_error_carries_key_and_source():
    """ConfigError exposes the key and the source for programmatic use."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"FRONTDOOR_SERVER_PORT": "0"})
    assert caught.value.key == "server.port"
    assert caught.value.source == "FRONTDOOR_SERVER_PORT"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nport = 70000\n", "server.port: expected an integer 1-65535, got 70000"),
        ("[server]\nport = true\n", "server.port: expected an integer 1-65535, got true"),
        ("[server]\nport = '8080'\n", 'server.port: expected an integer 1-65535, got "8080"'),
        ("[server]\nport = 80.5\n", "server.port: expected an integer 1-65535, got 80.5"),
        ("[server.port]\nx = 1\n", "server.port: expected an integer 1-65535, got a table"),
        ("[server]\nprot = 1\n", "server.prot: unknown key; did you mean server.port?"),
        ("[sever]\nport = 1\n", "sever: unknown section; did you mean server?"),
        (
            "[backends.catalogue]\ntimeout_ms = 1\n",
            (
                "backends.catalogue.url: required: backends.base_url only serves the simulated "
                "services; did you mean backends.catalog?"
            ),
        ),
        (
            "[backends.catalog.breaker]\nerror_pct = 5\n",
            (
                "backends.catalog.breaker.error_pct: unknown key; "
                "did you mean backends.catalog.breaker.error_percent?"
            ),
        ),
        ("[backends.defaults]\nurl = 'http://x'\n", "backends.defaults.url: unknown key"),
        ("server = 5\n", "server: expected a table, got 5"),
        (
            "[backends.catalog.breaker]\nerror_percent = -1\n",
            "backends.catalog.breaker.error_percent: expected a number 0-100, got -1",
        ),
        (
            "[backends.catalog.breaker]\nerror_percent = nan\n",
            "backends.catalog.breaker.error_percent: expected a number 0-100, got nan",
        ),
        ("[statsd]\nhost = ['a']\n", "statsd.host: expected a host name or IP address, got an"),
        ("[auth]\ndemo = 1\n", "auth.demo: expected true or false, got 1"),
        (
            "[auth]\ntoken_secret = 12345\n",
            "auth.token_secret: expected a string of at least 32 characters, got an integer",
        ),
    ],
)
def test_bad_file_values_name_key_and_file(tmp_path, text, message):
    """Every wrong TOML value or unknown key names the key and the file."""
    path = _toml(tmp_path, text)
    error = _error(path)
    assert message in error
    assert error.endswith(f"(from {path})")


def test_invalid_toml_names_file_and_line(tmp_path):
    """A syntax error names the file and the line."""
    path = _toml(tmp_path, "[server]\nport = 80\nhost = \n")
    error = _error(path)
    assert error.startswith(f"{path}: invalid TOML: ")
    assert "line 3" in error


def test_non_utf8_file_names_file(tmp_path):
    """A file that is not UTF-8 is refused by name."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[server]\nhost = '\xe9'\n")
    assert _error(str(path)).startswith(f"{path}: invalid TOML")


def test_missing_file_names_file(tmp_path):
    """An unreadable config file is refused by name, with the OS reason."""
    path = str(tmp_path / "absent.toml")
    assert _error(path) == f"{path}: cannot read the config file: No such file or directory"


def test_demo_values_in_the_file_still_warn(tmp_path):
    """Setting the demo secret explicitly in demo mode still warns."""
    path = _toml(tmp_path, f"[auth]\ndemo = true\ntoken_secret = '{DEMO_TOKEN_SECRET}'\n")
    settings = load_settings(path, environ={})
    assert "using the demo token secret; set FRONTDOOR_AUTH_TOKEN_SECRET" in settings.warnings


def _as_env_text(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


# --- the settings listing ------------------------------------------------------------


def test_listing_is_complete_and_consistent():
    """Every setting is listed once, with an env key derived from its name and a description."""
    infos = describe_settings()
    names = [info.name for info in infos]
    assert len(names) == len(set(names))
    assert len({info.env_key for info in infos}) == len(infos)
    for info in infos:
        assert info.env_key == "FRONTDOOR_" + info.name.replace(".", "_").upper()
        assert info.description
        assert info.expected
    sections = {name.split(".")[0] for name in names}
    assert sections == {"server", "auth", "statsd", "backends", "logging", "limits"}
    for backend in (*BACKEND_NAMES, "defaults"):
        assert f"backends.{backend}.timeout_ms" in names
        assert f"backends.{backend}.breaker.error_percent" in names
        assert f"backends.{backend}.retry.budget_window_ms" in names


def test_listing_marks_secrets_and_gives_them_no_default():
    """The token secret and admin token are flagged secret and have no listed default."""
    secrets = {info.name: info for info in describe_settings() if info.secret}
    assert set(secrets) == {"auth.token_secret", "auth.admin_token"}
    assert all(info.default is None for info in secrets.values())


def test_every_listed_environment_key_is_honoured():
    """Each listed env key, set to its listed default, is accepted and changes nothing."""
    environ = {
        info.env_key: _as_env_text(info.default) for info in describe_settings() if not info.secret
    }
    assert load_settings(environ=environ) == load_settings(environ={})


def test_listing_covers_every_backend_spec_field():
    """Every field of BackendSpec, and of each of its tables (BreakerSettings, RetrySettings,
    LimitSettings...), is configurable."""
    names = {info.name for info in describe_settings()}
    # base_url and transport are set for all backends as backends.base_url and
    # backends.transport, and per backend as backends.<name>.url and .transport.
    own = {"name", "base_url", "transport"}
    fields: list[str] = []
    # The tables of settings this test knows are listed by their own fields; a table it
    # does not know (added by another mechanism) is left to that mechanism's tests.
    tables = {"breaker": BreakerSettings, "retry": RetrySettings, "limit": LimitSettings}
    others: set[str] = set()
    for spec_field in dataclasses.fields(BackendSpec):
        default = getattr(BackendSpec("x", "http://x"), spec_field.name)
        if spec_field.name in own:
            continue
        if spec_field.name in tables:
            assert type(default) is tables[spec_field.name]
            fields += [f"{spec_field.name}.{f.name}" for f in dataclasses.fields(default)]
        elif dataclasses.is_dataclass(default):
            others.add(spec_field.name)
        else:
            fields.append(spec_field.name)
    assert {"breaker.consecutive_timeouts", "limit.adaptive"} <= set(fields)
    listed = {
        name
        for name in names
        if name.startswith("backends.defaults.") and name.split(".")[2] not in others
    }
    assert {f"backends.defaults.{field}" for field in fields} == listed
    assert "backends.transport" in names
    assert all(f"backends.{backend}.transport" in names for backend in BACKEND_NAMES)


def test_listed_defaults_match_loaded_defaults():
    """The defaults the listing shows are the ones load_settings produces."""
    settings: Settings = load_settings(environ={})
    listed = {info.name: info.default for info in describe_settings()}
    assert listed["server.port"] == settings.server.port
    assert listed["backends.catalog.timeout_ms"] == settings.backends.spec("catalog").timeout_ms
    assert listed["backends.catalog.url"] == settings.backends.spec("catalog").base_url
    assert listed["statsd.prefix"] == settings.statsd.prefix


def test_every_wrong_value_is_reported_not_only_the_first():
    """Three bad values: one error that lists all three, each with its key and source."""
    environ = {
        "FRONTDOOR_SERVER_PORT": "x",
        "FRONTDOOR_SERVER_MAX_INFLIGHT": "-3",
        "FRONTDOOR_BACKENDS_CATALOG_TIMEOUT_MS": "slow",
    }
    with pytest.raises(MultipleConfigError) as caught:
        load_settings(environ=environ)
    assert sorted(error.key for error in caught.value.errors) == [
        "backends.catalog.timeout_ms",
        "server.max_inflight",
        "server.port",
    ]
    text = str(caught.value)
    assert text.startswith("3 settings are wrong:")
    assert "FRONTDOOR_SERVER_PORT" in text
    assert isinstance(caught.value, ConfigError)  # callers that catch one catch all


def test_a_single_wrong_value_is_a_plain_config_error():
    """One bad value keeps the one-line error naming its key."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"FRONTDOOR_SERVER_PORT": "x"})
    assert not isinstance(caught.value, MultipleConfigError)
    assert str(caught.value).startswith("server.port:")
