"""The scheduler and the bucket under faults: what a review found, pinned."""

from __future__ import annotations

import gc

import anyio
import pytest
import trio
import trio.testing

from musicapi_async import (
    LimiterError,
    NotFoundError,
    Priority,
    RateLimitError,
    TaskProgress,
    TaskRef,
    TokenBucket,
    WaitTimeoutError,
)
from musicapi_async._constants import LIMITER_OUTAGE
from musicapi_async.testing import FakeMusicAPI
from tests._limiters import DelegatingLimiter

pytestmark = pytest.mark.anyio


class FlakyLimiter(DelegatingLimiter):
    """A limiter backend (think Redis) whose first background acquire fails."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def acquire(self, priority: Priority = Priority.USER) -> None:
        if priority is Priority.BACKGROUND and not self.failed:
            self.failed = True
            raise ConnectionError("limiter backend down")
        await self.inner.acquire(priority)


async def test_a_failing_limiter_backend_does_not_kill_the_wait_or_the_block() -> None:
    fake = FakeMusicAPI(sonic_duration=60.0)
    limiter = FlakyLimiter()
    async with fake.client(limiter=limiter) as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        task = await client.await_task(ref)
    assert limiter.failed
    assert task.succeeded


class DownLimiter(DelegatingLimiter):
    """A limiter backend whose background acquires (with ``every``: all of them) fail from
    ``down`` until ``up`` seconds after it is made (a Redis outage)."""

    def __init__(self, down: float, up: float, *, every: bool = False) -> None:
        super().__init__()
        start = anyio.current_time()
        self.down, self.up = start + down, start + up
        self.every = every
        self.failures = 0

    async def acquire(self, priority: Priority = Priority.USER) -> None:
        failing = self.every or priority is Priority.BACKGROUND
        if failing and self.down <= anyio.current_time() < self.up:
            self.failures += 1
            raise ConnectionError("limiter backend down")
        await self.inner.acquire(priority)


async def test_a_limiter_down_for_good_reaches_the_waiter_instead_of_a_silent_hang() -> None:
    fake = FakeMusicAPI(sonic_duration=60.0)
    limiter = DownLimiter(down=0.0, up=float("inf"))
    async with fake.client(limiter=limiter) as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        start = anyio.current_time()
        with anyio.fail_after(3600), pytest.raises(LimiterError, match="backend down") as caught:
            await client.await_task(ref, timeout=None)  # it used to wait for ever
        assert isinstance(caught.value.__cause__, ConnectionError)
        waited = anyio.current_time() - start
    assert LIMITER_OUTAGE <= waited <= LIMITER_OUTAGE + 60.0 + 2.0  # its first try + 30 s
    assert len(fake.requests) == 1  # the create: no poll got through


async def test_a_short_limiter_outage_is_waited_out() -> None:
    fake = FakeMusicAPI(sonic_duration=60.0)
    limiter = DownLimiter(down=0.0, up=LIMITER_OUTAGE / 2)
    async with fake.client(limiter=limiter) as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        task = await client.await_task(ref, timeout=None)
    assert task.succeeded


async def test_a_timeout_during_a_limiter_outage_says_why_nothing_was_polled() -> None:
    fake = FakeMusicAPI(sonic_duration=5.0)
    # Down for every call once the task is created: the last look (a user call) too.
    limiter = DownLimiter(down=1.0, up=float("inf"), every=True)
    async with fake.client(limiter=limiter) as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        with pytest.raises(WaitTimeoutError) as caught:
            await client.await_task(ref, timeout=20)
    assert isinstance(caught.value.__cause__, LimiterError)
    assert isinstance(caught.value.__cause__.__cause__, ConnectionError)
    assert "limiter backend down" in str(caught.value)


class AlwaysDown(DelegatingLimiter):
    """A limiter backend whose background acquires always fail."""

    async def acquire(self, priority: Priority = Priority.USER) -> None:
        if priority is Priority.BACKGROUND:
            raise ConnectionError("limiter backend down")
        await self.inner.acquire(priority)


def test_a_limiter_outage_is_timed_on_each_event_loops_own_clock() -> None:
    """One client for several ``trio.run`` calls (a Celery worker): an outage started in a
    loop whose clock ran far ahead must not keep the next loop's waiters blind for hours."""
    fake = FakeMusicAPI(sonic_duration=60.0)
    client = fake.client(limiter=AlwaysDown())

    async def wait(timeout: float) -> tuple[type[BaseException], float]:
        async with client:
            ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
            start = anyio.current_time()
            with pytest.raises((WaitTimeoutError, LimiterError)) as caught:
                await client.await_task(ref, timeout=timeout)
            return caught.type, anyio.current_time() - start

    def on_clock(offset: float, timeout: float) -> tuple[type[BaseException], float]:
        clock = trio.testing.MockClock(autojump_threshold=0)
        clock.jump(offset)
        return trio.run(wait, timeout, clock=clock)

    # The outage starts at the first poll, then this wait times out before it is given up.
    assert on_clock(100_000.0, 45.0)[0] is WaitTimeoutError
    error, waited = on_clock(0.0, 600.0)  # a loop whose clock is 100,000 s behind
    assert error is LimiterError
    assert waited <= LIMITER_OUTAGE + 60.0 + 2.0


async def test_a_huge_retry_after_does_not_freeze_the_other_users_of_the_bucket() -> None:
    fake = FakeMusicAPI(rate_limit=None)
    fake.inject("/get-credits", status=429, headers={"Retry-After": "3600"})
    bucket = TokenBucket()
    async with fake.client(limiter=bucket) as a, fake.client(limiter=bucket) as b:
        with pytest.raises(RateLimitError):
            await a.credits.get()
        start = anyio.current_time()
        await b.credits.get()
        waited = anyio.current_time() - start
    assert waited <= bucket.max_pause + bucket.interval + 1.0


def test_a_bucket_reused_by_a_later_event_loop_with_an_earlier_clock_does_not_stall() -> None:
    """The second run's clock is 50,000 s behind the first's: the bucket waits out what is
    left of the 429 pause (the runs are an instant apart), not the clocks' difference."""
    bucket = TokenBucket()
    waited: list[float] = []

    async def first() -> None:
        await bucket.acquire()
        await trio.sleep(50_000)
        bucket.on_rate_limited(60.0)

    async def second() -> None:
        with trio.fail_after(60.0 + 2 * bucket.margin):
            started = trio.current_time()
            await bucket.acquire()
            waited.append(trio.current_time() - started)

    trio.run(first, clock=trio.testing.MockClock(autojump_threshold=0))
    trio.run(second, clock=trio.testing.MockClock(autojump_threshold=0))
    assert waited[0] >= 58.0  # the pause held, less the real time between the runs


async def test_one_unknown_task_raises_with_the_others_results_reachable() -> None:
    fake = FakeMusicAPI(sonic_duration=60.0)
    async with fake.client() as client:
        good = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        await anyio.sleep(200)
        unknown = TaskRef("no-such-task")
        with pytest.raises(NotFoundError) as caught:
            await client.await_task([good, unknown])
    error = caught.value
    assert error.failed_task == unknown
    assert [task.ref for task in error.completed] + list(error.pending) == [good]


async def test_learned_durations_let_short_tasks_be_polled_before_the_prior_allows() -> None:
    """The prior for Sonic says nothing ends before 60 s; tasks that take 30 s teach it."""
    fake = FakeMusicAPI(sonic_duration=30.0)
    async with fake.client() as client:
        for _ in range(5):
            ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
            await client.await_task(ref)
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="y")
        created = anyio.current_time()
        await client.await_task(ref)
        seen = anyio.current_time() - created
    assert seen < 45.0


async def test_progress_elapsed_counts_from_submission_not_from_the_wait() -> None:
    fake = FakeMusicAPI(sonic_duration=120.0)
    events: list[TaskProgress] = []
    async with fake.client() as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        await anyio.sleep(50)
        await client.await_task(ref, on_progress=events.append)
    assert events
    assert events[0].elapsed >= 50.0


async def test_expected_durations_let_a_fast_fake_be_polled_from_the_first_task() -> None:
    """A client told that tasks take about 6 s polls the very first one early."""
    fake = FakeMusicAPI(sonic_duration=6.0, rate_limit=None)
    async with fake.client(expected_durations={"sonic": 6.0}) as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        created = anyio.current_time()
        await client.await_task(ref)
        seen = anyio.current_time() - created
    assert seen < 15.0


def test_expected_durations_are_checked_before_anything_opens() -> None:
    from musicapi_async import MusicAPI

    with pytest.raises(ValueError, match="unknown task family"):
        MusicAPI("k", expected_durations={"suno": 10.0})
    with pytest.raises(ValueError, match="seconds > 0"):
        MusicAPI("k", expected_durations={"sonic": 0.0})


async def test_a_clip_finished_before_the_others_teaches_how_soon_the_task_ends() -> None:
    """In the "200" style a task's clips end at different times: once a poll saw one done,
    the scheduler learns how long the rest took (a far sharper guess than the whole
    duration), so that the next task seen partly done is looked at again soon."""
    fake = FakeMusicAPI(not_ready_style="200", rate_limit=None, clip_spread=40.0)
    fake.plan(duration=100.0)
    async with fake.client(expected_durations={}) as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        await client.await_task(ref)
        learned = client._scheduler.statistics()["learned"]
    # Its first clip ended at 60 s; the first poll (about 69 s) saw it partly done.
    assert learned.get("sonic:None:partly done") == 1


async def test_callbacks_of_results_found_at_once_run_together_and_stop_with_the_waiter() -> None:
    """Results found at once (the scheduler of a new ``async with`` block not started yet)
    start their coroutine callbacks in the background, together: none holds back another
    task's result. A waiter that leaves cancels them, and a stream closed unread never
    starts its own but closes them rather than leave them "never awaited"."""
    fake = FakeMusicAPI(sonic_duration=5.0)
    client = fake.client()
    async with client:
        refs = [await client.sonic.create(mv="sonic-v5", gpt_description_prompt=p) for p in "abc"]
        await client.await_task(refs)  # finished: kept for re-reading

    started: list[str] = []
    ended: list[str] = []

    async def progress(event: TaskProgress) -> None:
        started.append(event.ref.task_id)
        try:
            await anyio.sleep(10)
        finally:
            ended.append("cancelled" if anyio.current_time() - left < 5 else "returned")

    async with client:  # a new block: its scheduler has not started yet
        left = anyio.current_time() + 1
        with anyio.move_on_after(1):  # leaves while the callbacks run
            await client.await_task(refs, on_progress=progress)
        client.as_completed(refs, on_progress=progress).close()  # made and closed unread
        await anyio.sleep(20)
    gc.collect()  # a coroutine never awaited would warn here (an error in this suite)
    assert sorted(started) == sorted(ref.task_id for ref in refs)
    assert ended == ["cancelled"] * 3


async def test_a_limiter_outage_logs_no_password_from_the_backends_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Down(DelegatingLimiter):
        """Down for every call after the first (the create): the last look too."""

        calls = 0

        async def acquire(self, priority: Priority = Priority.USER) -> None:
            self.calls += 1
            if self.calls > 1:
                raise ConnectionError("cannot reach redis://default:hunter2@cache:6379/0")
            await self.inner.acquire(priority)

    fake = FakeMusicAPI(sonic_duration=5.0)
    async with fake.client(limiter=Down()) as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        with pytest.raises((WaitTimeoutError, LimiterError)):
            await client.await_task(ref, timeout=40)
    assert "cannot reach" in caplog.text
    assert "hunter2" not in caplog.text
