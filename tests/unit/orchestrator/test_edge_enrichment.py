"""The edge's enrichment at a playback layer: the member, and presets of shared steps only."""

from __future__ import annotations

import logging

import pytest
from stage_kit import scope

from orchestrator.frontend.edge_enrichment import EdgeEnrichment
from orchestrator.frontend.enrichment import ENVIRON_KEY, Enricher
from orchestrator.frontend.problems import Problem

SHARED = frozenset({"subscriber", "device"})


def test_a_valid_enrichment_gives_the_member_and_presets_only_the_shared_steps():
    enricher = Enricher(b"s" * 32)
    sealed = enricher.seal("m1", {"subscriber": {"plan": "p"}, "license": {"id": "forged?"}})
    enriched = scope()
    EdgeEnrichment(enricher, SHARED).apply({ENVIRON_KEY: sealed}, enriched)
    assert (enriched.enriched_member, enriched.presets) == ("m1", {"subscriber": {"plan": "p"}})


def test_the_presettable_steps_are_the_stages_to_choose():
    enricher = Enricher(b"s" * 32)
    sealed = enricher.seal("m1", {"subscriber": 1, "device": 2})
    enriched = scope()
    EdgeEnrichment(enricher, frozenset({"device"})).apply({ENVIRON_KEY: sealed}, enriched)
    assert enriched.presets == {"device": 2}


def test_without_the_header_nothing_changes():
    untouched = scope()
    EdgeEnrichment(Enricher(b"s" * 32), SHARED).apply({}, untouched)
    assert (untouched.enriched_member, untouched.presets) == (None, None)


def test_a_forged_enrichment_is_403_and_the_reason_logged(caplog):
    caplog.set_level(logging.INFO)
    forged = Enricher(b"other" * 8).seal("m1", {})
    with pytest.raises(Problem) as caught:
        EdgeEnrichment(Enricher(b"s" * 32), SHARED).apply({ENVIRON_KEY: forged}, scope())
    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    (warning,) = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert (warning.name, warning.getMessage()) == (
        "orchestrator.frontend.app",
        "rejected enrichment: bad signature",
    )
