"""Enrichment headers: sealed by the edge, opened by the playback layer, never forged."""

from __future__ import annotations

import pytest

from orchestrator.frontend.auth import TokenSigner
from orchestrator.frontend.enrichment import TTL_S, Enricher, EnrichmentError

SECRET = b"a-shared-token-secret-of-32-bytes!"
PLAY = ("POST", "/v1/playback/play")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_what_the_edge_seals_the_layer_opens():
    """The member id and the results come back as sealed."""
    clock = Clock()
    enricher = Enricher(SECRET, clock)
    value = enricher.seal(
        "m7", {"subscriber": {"name": "Ana"}, "device": {"drm": "widevine"}}, *PLAY
    )
    assert enricher.open(value, *PLAY) == (
        "m7",
        {"subscriber": {"name": "Ana"}, "device": {"drm": "widevine"}},
    )


@pytest.mark.parametrize(
    "tamper",
    [
        lambda v: v[:-2] + ("AA" if v[-2:] != "AA" else "BB"),  # signature changed
        lambda v: "e30" + v[3:],  # payload changed
        lambda v: v.replace(".", ""),  # no separator
        lambda v: v + ".x",  # two separators
        lambda _v: "x" * 40_000,  # oversized
    ],
)
def test_a_tampered_enrichment_is_refused(tamper):
    """Any change to payload or signature fails verification."""
    enricher = Enricher(SECRET, Clock())
    with pytest.raises(EnrichmentError):
        enricher.open(tamper(enricher.seal("m7", {"subscriber": {}}, *PLAY)), *PLAY)


def test_another_secret_or_an_expired_enrichment_is_refused():
    """A different secret never verifies; an enrichment is good for TTL_S seconds."""
    clock = Clock()
    value = Enricher(SECRET, clock).seal("m7", {}, *PLAY)
    with pytest.raises(EnrichmentError, match="signature"):
        Enricher(b"another-secret-of-thirty-two-bytes!", clock).open(value, *PLAY)
    clock.now += TTL_S + 1
    with pytest.raises(EnrichmentError, match="expired"):
        Enricher(SECRET, clock).open(value, *PLAY)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/playback/heartbeat"),  # another endpoint
        ("GET", "/v1/playback/play"),  # another method
        ("POST", "/v1/playback/play/"),  # another path, however close
        ("POST", "/v1/batch"),
    ],
)
def test_an_enrichment_replayed_on_another_request_is_refused(method, path):
    """Finding 8: an enrichment is bound to the method and path it was sealed for (and its
    member, the ``sub``): within its TTL it opens for that request only."""
    enricher = Enricher(SECRET, Clock())
    value = enricher.seal("m7", {"subscriber": {}}, *PLAY)
    assert enricher.open(value, *PLAY)[0] == "m7"
    with pytest.raises(EnrichmentError, match="another request"):
        enricher.open(value, method, path)


def test_a_member_token_is_not_an_enrichment():
    """The signing domains differ: a valid token signed with the same secret is refused."""
    token = TokenSigner(SECRET, 3600).issue("m7")
    with pytest.raises(EnrichmentError):
        Enricher(SECRET, Clock()).open(token, *PLAY)
