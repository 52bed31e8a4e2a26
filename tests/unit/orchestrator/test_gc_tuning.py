"""gc_tuning: the serving process freezes its start-up heap and collects young objects less."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from orchestrator.ops import gc_tuning


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Put the collector back as the test process had it."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_tune_freezes_the_heap_and_raises_the_thresholds():
    """Objects alive at start-up move to the permanent generation; thresholds are raised."""
    gc_tuning.tune(20_000)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (20_000, gc_tuning.OLDER_THRESHOLD, gc_tuning.OLDER_THRESHOLD)


@pytest.mark.usefixtures("restored_gc")
def test_zero_keeps_pythons_defaults():
    """0 is the operator's way out: nothing is frozen, the thresholds stay."""
    before = gc.get_threshold()
    gc_tuning.tune(0)
    assert (gc.get_freeze_count(), gc.get_threshold()) == (0, before)
