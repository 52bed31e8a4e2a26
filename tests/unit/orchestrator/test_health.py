"""Health routes: alive whenever the process answers, ready while backends run and not draining."""

from __future__ import annotations

from stage_kit import Started, answer, observed, request

from orchestrator.frontend.health import PATHS, Health


class Backends:
    running = True


def _probe(health: Health, path: str) -> tuple[int, object]:
    started = Started()
    body = answer(health.serve(started, request(path=path)))
    return started.code, body


def test_healthz_and_readyz_answer_while_all_is_well():
    respond, _ = observed()
    health = Health(Backends(), respond)
    assert _probe(health, "/healthz") == (200, {"status": "ok"})
    assert _probe(health, "/readyz") == (200, {"ready": True, "draining": False})
    assert frozenset({"/healthz", "/readyz"}) == PATHS


def test_not_ready_while_draining_or_with_backends_stopped():
    respond, _ = observed()
    backends = Backends()
    health = Health(backends, respond)
    health.draining = True
    assert _probe(health, "/readyz") == (503, {"ready": False, "draining": True})
    assert _probe(health, "/healthz") == (200, {"status": "ok"})
    health.draining, backends.running = False, False
    assert _probe(health, "/readyz") == (503, {"ready": False, "draining": False})


def test_other_paths_are_not_health_probes():
    respond, _ = observed()
    assert Health(Backends(), respond).serve(Started(), request()) is None
