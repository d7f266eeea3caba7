"""The benchmark entry point: one subprocess per benchmark, rows handed back as JSON, one table.

Only the plumbing is checked (real numbers come back and are shown), never whether a
target is met: speed is measured by ``make bench``, not asserted in tests.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import common

REPO = Path(__file__).resolve().parents[1]


def test_run_all_quick_hands_rows_of_real_numbers_to_one_table(tmp_path):
    """``run_all --quick --only top_examples``: JSON, printed table and Markdown agree."""
    handoff, markdown = tmp_path / "rows.json", tmp_path / "results.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run_all", "--quick", "--only", "top_examples",
         "--json", str(handoff), "--markdown", str(markdown)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    payload = json.loads(handoff.read_text())
    rows = payload["rows"]
    assert {r["bench"] for r in rows} == {"top_examples"}
    assert [r["metric"] for r in rows[:2]] == [
        "conv1: 16 filters, with projections",
        "conv2: 32 filters, with projections",
    ]
    for result in rows:
        assert set(result) == set(common.ROW_KEYS)
        assert isinstance(result["value"], float)
        assert math.isfinite(result["value"]) and result["value"] > 0, result
    # the total is the sum of the layers' times (rounded in neither)
    total = next(r for r in rows if r["metric"].startswith("all layers per logged epoch, "))
    assert total["value"] == pytest.approx(rows[0]["value"] + rows[1]["value"], rel=1e-6)
    assert payload["machine"]["nproc"] >= 1 and payload["machine"]["tensorflow"] != ""
    assert payload["runs"]["top_examples"]["returncode"] == 0
    table = done.stdout[done.stdout.index("bench  ") :]
    assert "Machine: " in done.stdout and "load average" in done.stdout
    for result in rows:
        line = next(line for line in table.splitlines() if result["metric"] in line)
        assert common.format_value(result["value"]) in line
    lines = markdown.read_text().splitlines()
    assert lines[0] == "# Benchmark results"
    table_lines = [line for line in lines if line.startswith("| top_examples |")]
    assert len(table_lines) == len(rows)


def test_run_all_reports_a_failing_benchmark_as_a_row(monkeypatch):
    """A benchmark that crashes gives a 'benchmark failed' row, and the others still run."""
    from benchmarks import run_all

    monkeypatch.setitem(run_all.BENCHMARKS, "broken", ("benchmarks.no_such_module", [], []))
    rows, info = run_all.run_one("broken", timeout=60)
    assert info["returncode"] == 1
    assert [(r["bench"], r["metric"]) for r in rows] == [("broken", "benchmark failed (1)")]
    assert math.isnan(rows[0]["value"])
    assert "ModuleNotFoundError" in rows[0]["note"]


@pytest.mark.parametrize(
    ("value", "target", "expected"),
    [(1.08, "< 1.15", "ok"), (1.2, "< 1.15", "MISSED"), (4.0, ">= 4", "ok"),
     (3.9, ">= 4", "MISSED"), (49.0, 50, "ok"), (51.0, 50, "MISSED"),
     (float("nan"), "< 1", "n/a"), (7.0, None, "")],
)  # fmt: skip
def test_verdict_follows_the_targets_direction(value, target, expected):
    assert common.verdict(common.row("b", "m", value, "x", target)) == expected


def test_targets_are_normalized_and_bad_ones_rejected():
    assert common.row("b", "m", 1, "ms", 50)["target"] == "< 50"
    assert common.row("b", "m", 1, "x", ">=0.8 ")["target"] == ">= 0.8"
    with pytest.raises(ValueError, match="'<op> <number>'"):
        common.row("b", "m", 1, "x", "fast")
    with pytest.raises(ValueError, match="got '=> 3'"):
        common.parse_target("=> 3")


def test_normalize_keeps_extra_keys_in_the_note():
    result = common.normalize(
        {"metric": "tags median", "value": 3, "unit": "ms", "target": 50, "loader": "rust",
         "note": "20 requests"}, "plugin",
    )  # fmt: skip
    assert result == {"bench": "plugin", "metric": "tags median", "value": 3.0, "unit": "ms",
                      "target": "< 50", "note": "loader=rust; 20 requests"}  # fmt: skip
    assert common.format_table([result]).splitlines()[1].split()[:6] == [
        "plugin", "tags", "median", "3", "ms", "<"
    ]  # fmt: skip
