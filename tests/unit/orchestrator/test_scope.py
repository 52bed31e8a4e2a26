"""The scope stage: a request's deadline, shared calls, trace flag and enrichment."""

from __future__ import annotations

import pytest
from stage_kit import NoDirectory

from actors.call_cache import SharedCalls
from orchestrator.frontend.auth import TokenSigner
from orchestrator.frontend.edge_enrichment import EdgeEnrichment
from orchestrator.frontend.enrichment import ENVIRON_KEY, Enricher
from orchestrator.frontend.problems import Problem
from orchestrator.frontend.scope import Scopes, budget_ms

ADMIN = "admin-token-0123456789"


def test_a_scope_has_the_requests_authorization_deadline_and_its_own_shared_calls():
    scopes = Scopes(NoDirectory(), ADMIN)
    environ = {"HTTP_AUTHORIZATION": "Bearer t"}
    first = scopes.open(environ, 100.0, 800)
    second = scopes.open(environ, 100.0, 800)
    assert (first.authorization, first.deadline, first.trace) == ("Bearer t", 100.8, False)
    assert (first.verified, first.claims, first.enriched_member, first.presets) == (
        False,
        None,
        None,
        None,
    )
    assert isinstance(first.calls, SharedCalls)
    assert first.calls is not second.calls


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 800),
        ({"HTTP_X_REQUEST_TIMEOUT_MS": "300"}, 300),
        ({"HTTP_X_REQUEST_TIMEOUT_MS": "5000"}, 800),
        ({"HTTP_X_FRONTDOOR_DEADLINE_MS": "250"}, 250),
        ({"HTTP_X_FRONTDOOR_DEADLINE_MS": "250", "HTTP_X_REQUEST_TIMEOUT_MS": "100"}, 100),
        ({"HTTP_X_FRONTDOOR_DEADLINE_MS": "0"}, 0),  # the upstream has no time left
        ({"HTTP_X_FRONTDOOR_DEADLINE_MS": "x"}, 800),
        ({"HTTP_X_FRONTDOOR_DEADLINE_MS": "1234567890"}, 800),
    ],
)
def test_the_budget_is_lowered_never_raised(headers, expected):
    assert budget_ms(headers, 800) == expected


@pytest.mark.parametrize("asked", ["0", "-1", "abc", "1234567890", ""])
def test_a_bad_request_timeout_is_an_invalid_parameter(asked):
    with pytest.raises(Problem) as caught:
        budget_ms({"HTTP_X_REQUEST_TIMEOUT_MS": asked}, 800)
    assert (caught.value.code, caught.value.extras["parameter"]) == (
        "invalid_parameter",
        "X-Request-Timeout-Ms",
    )


def test_a_trace_needs_the_admin_token():
    asked = {"HTTP_X_FRONTDOOR_TRACE": "1"}
    scopes = Scopes(NoDirectory(), ADMIN)
    assert scopes.open({**asked, "HTTP_X_FRONTDOOR_ADMIN_TOKEN": ADMIN}, 0.0, 1).trace
    assert not scopes.open({**asked, "HTTP_X_FRONTDOOR_ADMIN_TOKEN": "guess"}, 0.0, 1).trace
    assert not scopes.open({"HTTP_X_FRONTDOOR_ADMIN_TOKEN": ADMIN}, 0.0, 1).trace
    assert not Scopes(NoDirectory(), "").open({**asked}, 0.0, 1).trace


def test_a_trace_takes_an_admin_scoped_token_like_the_admin_routes():
    signer = TokenSigner(b"k" * 32, 3600)
    asked = {"HTTP_X_FRONTDOOR_TRACE": "1"}
    scopes = Scopes(NoDirectory(), "", signer=signer)
    admin = {**asked, "HTTP_X_FRONTDOOR_ADMIN_TOKEN": signer.issue("ops", scope="admin")}
    member = {**asked, "HTTP_X_FRONTDOOR_ADMIN_TOKEN": signer.issue("m1")}
    assert scopes.open(admin, 0.0, 1).trace
    assert not scopes.open(member, 0.0, 1).trace
    assert not Scopes(NoDirectory(), ADMIN).open(admin, 0.0, 1).trace  # no signer: no tokens


def test_an_enrichment_counts_only_where_the_scope_trusts_one():
    enricher = Enricher(b"s" * 32)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/v1/playback/history",
        ENVIRON_KEY: enricher.seal(
            "m1", {"subscriber": {"plan": "p"}}, "GET", "/v1/playback/history"
        ),
    }
    trusting = Scopes(NoDirectory(), ADMIN, EdgeEnrichment(enricher, frozenset({"subscriber"})))
    enriched = trusting.open(environ, 0.0, 1)
    assert (enriched.enriched_member, enriched.presets) == ("m1", {"subscriber": {"plan": "p"}})
    ignoring = Scopes(NoDirectory(), ADMIN).open(environ, 0.0, 1)
    assert (ignoring.enriched_member, ignoring.presets) == (None, None)
