"""The CLI refuses a topology this build cannot serve with one line, not a traceback."""

from __future__ import annotations

import pytest

from orchestrator.cli import main


@pytest.mark.parametrize("command", ["serve", "routes", "check-config"])
def test_the_edge_topology_is_refused_in_one_line(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """Exit 2 and a sentence naming the setting and the topologies that work."""
    monkeypatch.setenv("FRONTDOOR_SERVER_TOPOLOGY", "edge")
    monkeypatch.setenv("FRONTDOOR_SERVER_PLAYBACK_UPSTREAM", "http://127.0.0.1:1")
    assert main([command]) == 2
    error = capsys.readouterr().err
    assert error.startswith('frontdoor: server.topology "edge" is not built yet')
    assert "Traceback" not in error
