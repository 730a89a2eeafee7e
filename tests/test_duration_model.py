"""The scheduler's duration estimates: what polls saw becomes a usable distribution."""

from __future__ import annotations

import itertools
import random

import pytest

from musicapi_async import Task, TaskFamily, TaskRef
from musicapi_async._poller import DurationModel, _Learner, _Stage, _stage, _Tracked
from musicapi_async._serde import parse_task
from musicapi_async.testing import FakeMusicAPI


def observed(seed: int, n: int, *, gap: float) -> DurationModel:
    """n tasks with durations uniform on 60-180 s, polled every ``gap`` seconds from 0."""
    rng = random.Random(seed)
    model = DurationModel(expected=120.0)
    for _ in range(n):
        duration = rng.uniform(60.0, 180.0)
        high = gap * (int(duration // gap) + 1)
        model.add(high - gap, high)
    return model


def test_the_prior_alone_is_uniform_on_half_to_twice_the_expected_duration() -> None:
    model = DurationModel(expected=120.0)
    assert model.cdf(59.9) == 0.0
    assert model.cdf(150.0) == pytest.approx(0.5)
    assert model.cdf(240.0) == 1.0


def test_interval_observations_recover_the_true_distribution() -> None:
    model = observed(1, 200, gap=10.0)
    for t, expected in ((60, 0.0), (90, 0.25), (120, 0.5), (150, 0.75), (180, 1.0)):
        assert model.cdf(t) == pytest.approx(expected, abs=0.07)


def test_the_cdf_is_monotone_and_its_integral_is_consistent() -> None:
    model = observed(2, 50, gap=25.0)
    ts = [t / 2 for t in range(600)]
    values = [model.cdf(t) for t in ts]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(values))
    # The tabulated integral matches a numeric one.
    numeric = sum(model.cdf(t + 0.025) * 0.05 for t in [i * 0.05 for i in range(4000)])
    assert model.cdf_integral(200.0) == pytest.approx(numeric, rel=0.01)


def test_chance_and_expected_lag_grow_with_age_and_vanish_at_the_last_poll() -> None:
    model = observed(3, 100, gap=5.0)
    assert model.finished_since(100.0, 100.0) == 0.0
    assert model.expected_lag(100.0, 100.0) == 0.0
    chances = [model.finished_since(100.0, age) for age in (105, 120, 150, 179)]
    lags = [model.expected_lag(100.0, age) for age in (105, 120, 150, 179)]
    assert chances == sorted(chances)
    assert lags == sorted(lags)
    assert chances[-1] > 0.9
    # Uniform on 100-180 given alive at 100: E[lag at 150] = 50**2 / (2 * 80).
    assert lags[2] == pytest.approx(50**2 / 160, rel=0.2)


def test_tasks_still_running_keep_the_estimate_from_being_biased_short() -> None:
    """Early completions alone would say "everything ends by 100 s"; running tasks say not."""
    biased = DurationModel(expected=120.0)
    fair = DurationModel(expected=120.0)
    for _ in range(20):
        biased.add(80.0, 100.0)
        fair.add(80.0, 100.0, running=[100.0] * 20)
    assert biased.cdf(100.0) > 0.9
    assert fair.cdf(100.0) < 0.6


def test_a_stage_model_is_used_only_once_it_has_enough_observations() -> None:
    learner = _Learner({})
    family = TaskFamily.SONIC
    assert learner.model(family, "sonic-v5", _Stage.STREAMING) is None
    for _ in range(3):
        learner.record(family, "sonic-v5", 20.0, 30.0, [], _Stage.STREAMING)
    staged = learner.model(family, "sonic-v5", _Stage.STREAMING)
    assert staged is not None
    assert staged.cdf(30.0) > 0.7
    # Another model of the family falls back to the family's stage model.
    assert learner.model(family, "sonic-v4", _Stage.STREAMING) is not None
    # The whole-duration model always exists (the prior until observations come).
    assert learner.model(family, "other") is not None


def test_the_seen_quantile_reads_the_observations_not_the_prior() -> None:
    model = DurationModel(expected=120.0)
    assert model.seen_quantile(0.99) is None
    for low in range(1, 101):  # running at 1 s, 2 s, ... 100 s, then seen finished late
        model.add(float(low), low + 500.0)
    assert model.seen_quantile(0.99) == 99.0
    assert model.seen_quantile(0.5) == 50.0
    assert model.seen_quantile(1.0) == 100.0
    assert model.seen_quantile(0.0) == 1.0


# --- stages -------------------------------------------------------------------------------


def snapshot(*states: str) -> Task:
    """A Sonic snapshot whose clips are in ``states`` ("200" style)."""
    clips = [{"clip_id": f"c{i}", "state": state} for i, state in enumerate(states)]
    return parse_task(TaskRef("t"), 200, {"code": 200, "data": clips, "message": "success"})


@pytest.mark.parametrize(
    ("states", "stage"),
    [
        (("pending", "pending"), None),
        (("running", "pending"), _Stage.RUNNING),
        (("streaming", "running"), _Stage.STREAMING),
        (("succeeded", "streaming"), _Stage.PARTLY_DONE),  # clips end at different times
        (("failed", "running"), _Stage.PARTLY_DONE),
        (("succeeded", "succeeded"), None),  # finished: no stage to learn from
    ],
)
def test_the_stage_of_a_snapshot_is_the_furthest_it_shows(
    states: tuple[str, ...], stage: _Stage | None
) -> None:
    assert _stage(snapshot(*states)) is stage


def test_a_task_seen_partly_done_is_judged_by_how_soon_such_tasks_finished() -> None:
    """Tasks took 10 s from their first finished clip to their last: one seen partly done
    20 s ago is almost surely done, whatever the whole durations or streaming say."""
    learner = _Learner({})
    family = TaskFamily.SONIC
    for _ in range(5):
        learner.record(family, "sonic-v5", 0.0, 10.0, [], _Stage.PARTLY_DONE)
        learner.record(family, "sonic-v5", 30.0, 150.0, [], _Stage.STREAMING)
    partly = learner.model(family, "sonic-v5", _Stage.PARTLY_DONE)
    streaming = learner.model(family, "sonic-v5", _Stage.STREAMING)
    assert partly is not None
    assert streaming is not None
    assert partly.finished_since(0.0, 20.0) > 0.8  # the prior counts as one more task
    assert streaming.finished_since(0.0, 20.0) < 0.2


def test_a_task_seen_running_past_every_finished_one_is_expected_to_end_soon() -> None:
    """A batch's first polls all come at the same age (155 s here): finished ones say
    "done by 155 s", the others only "not yet". Nothing says how long those go on; they are
    assumed to end within a quarter of the expected duration past the longest seen, and
    each poll that finds one running moves that horizon on. (Up to 360 s, as before, kept
    them from being looked at again until every other task was done.)"""
    model = DurationModel(expected=120.0)
    for _ in range(40):
        model.add(0.0, 155.0, running=[155.0] * 10)
    assert model.finished_since(155.0, 185.0) > 0.9
    assert 0.3 < model.finished_since(155.0, 170.0) < 0.7
    model.add(0.0, 155.0, running=[185.0])  # one was found running at 185 s
    assert model.finished_since(185.0, 195.0) < 0.5
    assert model.finished_since(185.0, 215.0) > 0.9


# --- the scheduler's choice ------------------------------------------------------------------


def test_with_a_backlog_the_surest_task_goes_first_otherwise_the_longest_finished() -> None:
    """A batch's creates are out and its tasks all likely finished: a poll in vain delays
    every one of them, so the surest goes first (a task seen running at 155 s, now 180 s
    old), not one never looked at (about 80 % likely finished, and for longer). Without such
    a backlog the ranking weighs how long a task is likely to have been finished."""
    scheduler = FakeMusicAPI().client()._scheduler
    family = TaskFamily.SONIC
    for _ in range(40):  # done by their first poll at 155 s, or not
        scheduler._learner.record(family, None, 0.0, 155.0, [(None, 155.0)] * 10)
    now = 1000.0

    def track(task_id: str, age: float, seen_running_at: float | None = None) -> None:
        tracked = _Tracked(TaskRef(task_id, family), now - age, known_age=True, model=None)
        if seen_running_at is not None:
            tracked.last_running_age = seen_running_at
            tracked.last_poll = now - age + seen_running_at
        scheduler._tracked[family, task_id] = tracked

    track("seen", 180.0, seen_running_at=155.0)
    for i in range(4):
        track(f"fresh{i}", 155.0 + i)
    picked = scheduler._pick(now)
    assert picked is not None
    assert picked.ref.task_id == "seen"
    for i in range(1, 4):
        del scheduler._tracked[family, f"fresh{i}"]
    picked = scheduler._pick(now)
    assert picked is not None
    assert picked.ref.task_id == "fresh0"


def test_tasks_stuck_past_every_duration_seen_do_not_take_every_slot() -> None:
    """Three tasks found running long after every duration seen (a slow server) are each
    expected within a window after their last poll, not "any moment now": a task nearly
    sure to be done goes before them, backlog or not. (Polled as if certain, and winning
    every tie as the oldest, they took every slot and the others waited for their deadline.)"""
    scheduler = FakeMusicAPI().client()._scheduler
    family = TaskFamily.SONIC
    for _ in range(40):
        scheduler._learner.record(family, None, 0.0, 155.0, [(None, 155.0)] * 10)
    now = 5000.0
    for i in range(3):  # seen running at 600 s, 7 s ago (more than min_poll_gap)
        tracked = _Tracked(TaskRef(f"stuck{i}", family), now - 607.0, known_age=True, model=None)
        tracked.last_running_age, tracked.last_poll = 600.0, now - 7.0
        scheduler._tracked[family, f"stuck{i}"] = tracked
    model = scheduler._learner.model(family, None)
    assert model is not None
    assert model.finished_since(600.0, 607.0) < 0.5
    tracked = _Tracked(TaskRef("normal", family), now - 180.0, known_age=True, model=None)
    tracked.last_running_age, tracked.last_poll = 155.0, now - 25.0
    scheduler._tracked[family, "normal"] = tracked
    picked = scheduler._pick(now)
    assert picked is not None
    assert picked.ref.task_id == "normal"
