"""``bin/loadtest report`` and ``compare`` on saved reports: outputs and exit codes."""

from __future__ import annotations

import io
import json

from synthetic_run import synthetic_report

from orchestrator.loadtest.cli import EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, main


def _saved(tmp_path, name, report):
    path = tmp_path / name
    path.write_text(json.dumps(report))
    return str(path)


def test_report_renders_a_saved_run_as_html(tmp_path):
    """``report RUN.json --html OUT``: the page, from the file alone."""
    run = _saved(tmp_path, "run.json", synthetic_report())
    out = tmp_path / "out.html"
    assert main(["report", run, "--html", str(out)], out=io.StringIO()) == EXIT_OK
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert "licensing hang" in out.read_text()


def test_report_without_an_output_prints_the_tables(tmp_path):
    """No --html or --plot: the text report, as the run printed it."""
    run = _saved(tmp_path, "run.json", synthetic_report())
    printed = io.StringIO()
    assert main(["report", run], out=printed) == EXIT_OK
    assert printed.getvalue().startswith("== synthetic: ")


def test_compare_exits_0_without_and_99_with_a_regression(tmp_path):
    """Same service: 0 and 'no change'; slower: 99 and the flagged rows."""
    a = _saved(tmp_path, "a.json", synthetic_report(1))
    same = _saved(tmp_path, "same.json", synthetic_report(2))
    slow = _saved(tmp_path, "slow.json", synthetic_report(2, slower=1.5))
    printed = io.StringIO()
    assert main(["compare", a, same], out=printed) == EXIT_OK
    assert printed.getvalue().splitlines()[-1] == "compare: no change beyond noise"
    printed = io.StringIO()
    assert main(["compare", a, slow], out=printed) == EXIT_REGRESSION == 99
    assert "WORSE  home whole run p50: " in printed.getvalue()


def test_a_file_that_is_not_a_report_is_a_usage_error(tmp_path, capsys):
    """Missing, not JSON, or JSON without a report's keys: exit 2 naming the file."""
    not_json = tmp_path / "x.json"
    not_json.write_text("{")
    other = _saved(tmp_path, "other.json", {"run": {}})
    for path in (str(tmp_path / "missing.json"), str(not_json), other):
        assert main(["compare", path, path], out=io.StringIO()) == EXIT_USAGE
        assert path in capsys.readouterr().err
