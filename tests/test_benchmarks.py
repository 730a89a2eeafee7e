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


def test_the_ideal_polling_simulation_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    import ideal_polling

    assert ideal_polling.main(["--rate", "1", "--seeds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| index | interval |")
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert len(rows) == 2 * len(ideal_polling.INDEXES)


def test_the_ideal_simulation_detects_every_task_and_polls_no_earlier_than_possible() -> None:
    import ideal_polling

    figures = ideal_polling.simulate(
        ideal_polling.INDEXES["greedy"], seed=3, per_minute=1.0, interval=3.0
    )
    # Lightly loaded: almost every token is free, so the lag is a few token intervals at most,
    # and never negative (a task is only seen done after it finished).
    assert 0.0 <= figures.lag < 10.0
    assert 0.0 <= figures.create_wait <= 3.0
    assert figures.requests_per_task >= 2.0  # a create and at least one poll each
