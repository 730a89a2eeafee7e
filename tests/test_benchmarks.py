"""The benchmark scripts still run (a tiny workload); their figures are not asserted here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import scheduler as scheduler_benchmark


def test_the_scheduler_benchmark_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--style", "202", "--scenario", "batch", "--size", "3"]
    assert scheduler_benchmark.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| style | scenario | strategy |")
    rows = [line for line in lines[2:] if line.startswith("| 202 | batch 3 |")]
    assert [row.split(" | ")[2] for row in rows] == list(scheduler_benchmark.STRATEGIES)
    assert all(row.rstrip(" |").endswith(" 0") for row in rows), "no 429s"
