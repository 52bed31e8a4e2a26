"""Suite-wide guards: the run is gevent-patched, and no test leaves an actor behind."""

from __future__ import annotations

import gevent
import gevent.monkey

if not gevent.monkey.is_module_patched("socket"):  # pragma: no cover - guard
    raise RuntimeError(
        "the test run must be gevent-patched first: use bin/test "
        "(python -m gevent.monkey --module pytest)"
    )

from collections.abc import Iterator

import pykka
import pytest


@pytest.fixture(autouse=True)
def _no_actor_left_behind() -> Iterator[None]:
    """Fail the test if it leaves a running actor; stop them so later tests start clean."""
    before = {ref.actor_urn for ref in pykka.ActorRegistry.get_all()}
    yield
    gevent.idle()  # let actors that were asked to stop finish doing so
    left = [ref for ref in pykka.ActorRegistry.get_all() if ref.actor_urn not in before]
    if left:
        pykka.ActorRegistry.stop_all(block=True, timeout=5)
        pytest.fail(f"actors left running: {[str(ref) for ref in left]}")
