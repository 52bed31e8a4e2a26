"""Deprecation headers: RFC 9745 Deprecation, RFC 8594 Sunset, and Links, made once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from stage_kit import endpoint

from orchestrator.frontend.deprecation import Deprecations, deprecation_headers


def test_a_deprecated_endpoint_has_deprecation_sunset_and_links():
    old = endpoint(
        deprecated=datetime(2026, 1, 1, tzinfo=UTC),
        sunset=datetime(2027, 7, 1, 2, tzinfo=timezone(timedelta(hours=2))),
        successor="/v2/things/thing",
    )
    assert deprecation_headers(old) == [
        ("Deprecation", "@1767225600"),
        ("Sunset", "Thu, 01 Jul 2027 00:00:00 GMT"),
        (
            "Link",
            (
                '</v2/things/thing>; rel="successor-version", '
                '</docs#things.thing>; rel="deprecation"; type="text/html"'
            ),
        ),
    ]
    assert Deprecations((old,)).headers(old) == tuple(deprecation_headers(old))


def test_without_a_successor_or_sunset_only_the_documentation_link():
    old = endpoint(deprecated=datetime(2026, 1, 1, tzinfo=UTC))
    assert deprecation_headers(old)[1:] == [
        ("Link", '</docs#things.thing>; rel="deprecation"; type="text/html"')
    ]


def test_a_current_endpoint_has_none():
    current = endpoint()
    assert deprecation_headers(current) == []
    assert Deprecations((current,)).headers(current) == ()
