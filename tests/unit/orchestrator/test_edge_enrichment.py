"""The edge's enrichment at a playback layer: the member, and presets of shared steps only."""

from __future__ import annotations

import logging

import pytest
from stage_kit import scope

from orchestrator.frontend.edge_enrichment import EdgeEnrichment
from orchestrator.frontend.enrichment import ENVIRON_KEY, Enricher
from orchestrator.frontend.problems import Problem

SHARED = frozenset({"subscriber", "device"})
PLAY = ("POST", "/v1/playback/play")
#: The request the enrichments below were sealed for, as the layer's WSGI server sees it.
AT_PLAY = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/playback/play"}


def test_a_valid_enrichment_gives_the_member_and_presets_only_the_shared_steps():
    enricher = Enricher(b"s" * 32)
    sealed = enricher.seal("m1", {"subscriber": {"plan": "p"}, "license": {"id": "forged?"}}, *PLAY)
    enriched = scope()
    EdgeEnrichment(enricher, SHARED).apply({**AT_PLAY, ENVIRON_KEY: sealed}, enriched)
    assert (enriched.enriched_member, enriched.presets) == ("m1", {"subscriber": {"plan": "p"}})


def test_the_presettable_steps_are_the_stages_to_choose():
    enricher = Enricher(b"s" * 32)
    sealed = enricher.seal("m1", {"subscriber": 1, "device": 2}, *PLAY)
    enriched = scope()
    EdgeEnrichment(enricher, frozenset({"device"})).apply(
        {**AT_PLAY, ENVIRON_KEY: sealed}, enriched
    )
    assert enriched.presets == {"device": 2}


def test_without_the_header_nothing_changes():
    untouched = scope()
    EdgeEnrichment(Enricher(b"s" * 32), SHARED).apply({}, untouched)
    assert (untouched.enriched_member, untouched.presets) == (None, None)


def test_a_forged_enrichment_is_403_and_the_reason_logged(caplog):
    caplog.set_level(logging.INFO)
    forged = Enricher(b"other" * 8).seal("m1", {}, *PLAY)
    with pytest.raises(Problem) as caught:
        EdgeEnrichment(Enricher(b"s" * 32), SHARED).apply({**AT_PLAY, ENVIRON_KEY: forged}, scope())
    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    (warning,) = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert (warning.name, warning.getMessage()) == (
        "frontdoor.app",
        "rejected enrichment: bad signature",
    )


def test_an_enrichment_replayed_on_another_endpoint_is_403(caplog):
    """Finding 8: sealed for play, presented with a heartbeat, it is refused."""
    caplog.set_level(logging.INFO)
    enricher = Enricher(b"s" * 32)
    sealed = enricher.seal("m1", {"subscriber": {"plan": "p"}}, *PLAY)
    heartbeat = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/playback/heartbeat"}
    with pytest.raises(Problem) as caught:
        EdgeEnrichment(enricher, SHARED).apply({**heartbeat, ENVIRON_KEY: sealed}, scope())
    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    assert "rejected enrichment: sealed for another request" in caplog.text
