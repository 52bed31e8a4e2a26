"""Loads go to loopback origins only, unless the operator explicitly allows otherwise."""

from __future__ import annotations

import pytest

from orchestrator.loadtest.target import TargetError, parse_target


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:80/", "http://127.3.4.5"],
)
def test_loopback_origins_are_accepted(url):
    """127.0.0.0/8, ::1 and localhost are loopback."""
    assert parse_target(url).port in (8080, 9, 80)


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:8080", "http://192.168.1.1", "http://example.com", "http://0.0.0.0"]
)
def test_other_hosts_are_refused_by_default(url):
    """Private, public and wildcard addresses and any name are refused."""
    with pytest.raises(TargetError, match="allow-remote"):
        parse_target(url)


def test_allow_remote_lifts_the_loopback_rule():
    """--allow-remote is the explicit opt-in."""
    assert parse_target("http://10.0.0.1:8080", allow_remote=True).host == "10.0.0.1"


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1", "http://127.0.0.1/v1", "http://u:p@127.0.0.1", "127.0.0.1:80"]
)
def test_only_plain_http_origins(url):
    """No TLS, paths, credentials or scheme-less strings."""
    with pytest.raises(TargetError):
        parse_target(url)


def test_the_host_header_brackets_ipv6():
    """IPv6 literals are bracketed in URLs and Host headers."""
    target = parse_target("http://[::1]:8080")
    assert (target.url, target.host_header) == ("http://[::1]:8080", "[::1]:8080")
