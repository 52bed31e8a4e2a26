"""The endpoint mix: weights, realistic and valid parameters, unique sign-ups."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from orchestrator.loadtest.mix import DEFAULT_MIX, Mix


def _mix(weights=DEFAULT_MIX):
    return Mix(weights, lambda member: f"token-{member}", random.Random(3), "run1")


def test_endpoints_are_drawn_by_weight():
    """10,000 draws of the default mix land within 2 points of each weight."""
    mix = _mix()
    counts = Counter(mix.next().endpoint for _ in range(10_000))
    for name, weight in DEFAULT_MIX.items():
        assert abs(counts[name] / 100 - weight) < 2


def test_member_endpoints_carry_a_minted_token_and_public_ones_none():
    """Home sends the member's bearer token; plans sends none."""
    home = _mix({"home": 1}).next()
    assert home.headers[0][0] == "Authorization"
    assert home.headers[0][1].startswith("Bearer token-m")
    assert _mix({"plans": 1}).next().headers == ()


def test_sign_ups_use_a_new_email_each_time():
    """The accounts service refuses a known e-mail, so every sign-up has its own."""
    mix = _mix({"signup": 1})
    emails = {json.loads(mix.next().body)["email"] for _ in range(100)}
    assert len(emails) == 100


def test_heartbeats_stay_within_the_shortest_title():
    """Positions beyond a title's end are refused by bookmarks: stay under 20 minutes."""
    mix = _mix({"heartbeat": 1})
    positions = [json.loads(mix.next().body)["position_s"] for _ in range(500)]
    assert min(positions) >= 0
    assert max(positions) < 1200


def test_popular_titles_dominate():
    """Zipf popularity: the top ten titles get far more than 10/2500 of the views."""
    mix = _mix({"title": 1})
    paths = [mix.next().path for _ in range(2000)]
    top = sum(
        path.rsplit("/t", 1)[1].isdigit() and int(path.rsplit("/t", 1)[1]) <= 10 for path in paths
    )
    assert top > 200


def test_search_queries_are_url_encoded():
    """Two-word queries are percent-encoded in the path."""
    mix = _mix({"search": 1})
    assert all(" " not in mix.next().path for _ in range(200))


def test_unknown_endpoints_and_empty_weights_are_refused():
    """Mistakes in a mix are errors, not silent no-ops."""
    with pytest.raises(ValueError, match="unknown endpoint"):
        _mix({"homepage": 1})
    with pytest.raises(ValueError, match="add up"):
        _mix({"home": 0})
