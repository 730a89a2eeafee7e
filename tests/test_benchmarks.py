"""The benchmark scripts still run (a tiny workload), requests are spaced as their figures
assume, and a few rows of the README's table are what the benchmark measures now."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from musicapi_async.testing import NotReadyStyle

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


# --- the README's table is what the benchmark prints -------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"
COLUMNS = ("req/task", "lag mean", "lag p95", "create wait", "overhead", "makespan")


def readme_row(scenario: str, label: str) -> dict[str, list[float]]:
    """A row of the README's benchmark table: column -> the figures quoted (one per style
    when the label says "(202 / 200)")."""
    prefix = f"| {scenario} | {label} |"
    [line] = [line for line in README.read_text().splitlines() if line.startswith(prefix)]
    cells = [cell.strip() for cell in line[len(prefix) :].strip(" |").split("|")]
    return {
        column: [float(value) for value in cell.split(" / ")]
        for column, cell in zip(COLUMNS, cells, strict=False)
        if cell
    }


@pytest.mark.parametrize(
    ("scenario", "label", "strategy", "arrivals"),
    [
        ("stream 5/min", "scheduler (202 / 200)", "scheduler", "stream 5"),
        ("batch 50", "scheduler", "scheduler", "batch 50"),
        ("batch 50", "clairvoyant", "clairvoyant", "batch 50"),
    ],
)
def test_the_readme_quotes_what_the_benchmark_measures_now(
    scenario: str, label: str, strategy: str, arrivals: str
) -> None:
    """A change that moves the scheduler's figures must come with the README's table
    measured again (`python benchmarks/scheduler.py`, seed 7). The runs are deterministic in
    virtual time; the tolerance only covers the table's rounding and a library's scheduling
    order changing the odd tie."""
    kind, amount = arrivals.split()
    if kind == "stream":
        workload = scheduler_benchmark.stream_arrivals(float(amount), 7)
    else:
        workload = scheduler_benchmark.batch_arrivals(int(amount))
    quoted = readme_row(scenario, label)
    styles: tuple[NotReadyStyle, ...] = ("202", "200") if "(202 / 200)" in label else ("202",)
    for index, style in enumerate(styles):
        figures = scheduler_benchmark.simulate(strategy, workload, style, 7).figures()
        assert figures["429s"] == 0
        for column, values in quoted.items():
            value = values[min(index, len(values) - 1)]
            tolerance = 0.005 * value if column == "makespan" else 0.3
            assert figures[column] == pytest.approx(value, abs=tolerance), (style, column)
