"""The benchmark scripts still run (a tiny workload); their figures are not asserted here,
but for the spacing of requests, which the figures rest on."""

from __future__ import annotations

import random
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


@pytest.mark.parametrize(("latency", "spacing"), [(0.0, 3.0), (0.2, 3.1)])
def test_creates_go_3_s_apart_when_answers_are_quick_and_with_the_margin_when_slow(
    latency: float, spacing: float
) -> None:
    """Ten creates at once: the k-th waits k spacings. The fake answering at once, each
    answer gives the bucket's 0.1 s margin back; answers 0.2 s late leave it in place."""
    run = scheduler_benchmark.simulate(
        "clairvoyant", scheduler_benchmark.batch_arrivals(10), "202", 7, latency=latency
    )
    assert run.figures()["create wait"] == pytest.approx(4.5 * spacing)
    assert run.rate_limited == 0


def test_the_ideal_polling_simulation_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    import ideal_polling

    assert ideal_polling.main(["--rate", "1", "--seeds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| index | interval |")
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert len(rows) == 2 * (len(ideal_polling.INDEXES) + 1)  # and the clairvoyant bound


def test_the_ideal_batch_says_how_often_each_index_meets_the_batch_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import ideal_polling

    assert ideal_polling.main(["--batch", "10", "--seeds", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    shares = [line for line in lines if "of the clairvoyant bound on" in line]
    # Every index, at 3 s apart (the fake answering at once) and at 3.1 s (the margin kept).
    assert [line.split(" s:")[0] for line in shares] == [
        f"{name} at {interval}" for interval in ("3", "3.1") for name in ideal_polling.INDEXES
    ]
    for line in shares:
        within = int(line.rsplit(" on ", 1)[1].split(" of ")[0])
        assert 0 <= within <= 3
        assert line.endswith("of 3 seeds")


def test_the_ideal_simulation_detects_every_task_and_polls_no_earlier_than_possible() -> None:
    import ideal_polling

    arrivals, durations = ideal_polling.stream(3, 1.0)
    figures = ideal_polling.simulate(
        ideal_polling.INDEXES["greedy"], arrivals=arrivals, durations=durations, interval=3.0
    )
    # Lightly loaded: almost every token is free, so the lag is a few token intervals at most,
    # and never negative (a task is only seen done after it finished).
    assert 0.0 <= figures.lag < 10.0
    assert 0.0 <= figures.create_wait <= 3.0
    assert figures.requests_per_task >= 2.0  # a create and at least one poll each


def test_in_the_ideal_simulation_the_clairvoyant_bound_is_a_bound() -> None:
    import ideal_polling

    arrivals, durations = ideal_polling.batch(5, 20)
    bound = ideal_polling.simulate(None, arrivals=arrivals, durations=durations, interval=3.0)
    greedy = ideal_polling.simulate(
        ideal_polling.INDEXES["greedy"], arrivals=arrivals, durations=durations, interval=3.0
    )
    assert bound.requests_per_task == 2.0  # a create and one poll, at the right moment
    assert bound.makespan <= greedy.makespan
    assert bound.lag <= greedy.lag
    # Creates first, one every 3 s; the last finishes no earlier than it was created plus its
    # duration.
    assert bound.makespan >= 19 * 3.0 + min(durations)


def test_a_plan_polls_later_when_polls_cost_more_and_the_whittle_index_grows_with_age() -> None:
    import ideal_polling

    cheap, dear = ideal_polling.polling_plan(1.0), ideal_polling.polling_plan(20.0)
    start = 0  # a task never polled
    assert ideal_polling.LOW <= cheap[start] < dear[start] <= ideal_polling.HIGH
    # A task is never planned past the longest duration, where it is certainly done.
    assert max(dear) <= ideal_polling.HIGH
    young = ideal_polling.whittle(0.2, 90.0, 0.0)
    old = ideal_polling.whittle(0.6, 150.0, 0.0)
    assert young < old
    # Just polled in vain: lower than a task of the same age never polled.
    assert ideal_polling.whittle(0.1, 150.0, 145.0) < old


def test_the_fluid_bound_falls_with_more_polls_and_no_index_beats_it() -> None:
    import ideal_polling

    # One poll a task can only be at the longest duration: the mean lag is half the spread.
    assert ideal_polling.fluid_bound(1.0) == pytest.approx(60.0, abs=0.5)
    assert ideal_polling.fluid_bound(4.0) < ideal_polling.fluid_bound(2.0) < 60.0
    arrivals, durations = ideal_polling.stream(7, 5.0)
    for index in ideal_polling.INDEXES.values():
        figures = ideal_polling.simulate(
            index, arrivals=arrivals, durations=durations, interval=3.0
        )
        assert figures.lag >= ideal_polling.fluid_bound(figures.requests_per_task - 1.0)


def test_the_stage_bounds_hold_the_true_duration_and_narrow_it() -> None:
    import ideal_polling

    rng = random.Random(5)
    for _ in range(2000):
        duration = rng.uniform(ideal_polling.LOW, ideal_polling.HIGH)
        age = rng.uniform(0.0, duration)
        low, high = ideal_polling.stage_bounds(age, duration)
        assert low < duration <= high
    # A task of 100 s seen at 47 s: its first clip (ending at 95 s) is still running, just
    # short of streaming at half its time, so the task lasts more than 2 * 47 + 5 s.
    assert ideal_polling.stage_bounds(47.0, 100.0) == (99.0, ideal_polling.HIGH)
    # Its first clip done and the last not yet: it ends within 5 s.
    assert ideal_polling.stage_bounds(96.0, 100.0) == (96.0, 101.0)
    # Before the first snapshots (plain "not ready"), a poll shows nothing.
    assert ideal_polling.stage_bounds(5.0, 100.0) == (ideal_polling.LOW, ideal_polling.HIGH)


def test_reading_stages_leaves_whittle_out_and_helps_the_ideal_pollers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import ideal_polling

    assert ideal_polling.main(["--rate", "3", "--seeds", "1", "--stages"]) == 0
    out = capsys.readouterr().out
    assert "stages read" in out
    assert "whittle" not in out
    arrivals, durations = ideal_polling.stream(7, 3.0)
    greedy = ideal_polling.INDEXES["greedy"]
    blind = ideal_polling.simulate(greedy, arrivals=arrivals, durations=durations, interval=3.0)
    seeing = ideal_polling.simulate(
        greedy, arrivals=arrivals, durations=durations, interval=3.0, stages=True
    )
    assert seeing.lag < blind.lag
