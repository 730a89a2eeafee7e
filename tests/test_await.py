"""await_task / as_completed and the client's scheduler, end to end against FakeMusicAPI.

Every test runs on asyncio and trio in virtual time, so a 10-minute wait takes milliseconds
and every poll's instant is exact. What the scheduler did is read off the fake's request
log: ``fake.requests_to("/sonic/task/<id>")`` are the polls of one task.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
from collections.abc import Sequence
from typing import Literal

import anyio
import pytest

from musicapi_async import (
    MusicAPI,
    MusicAPIError,
    NotFoundError,
    ProgressState,
    ServerError,
    Task,
    TaskFailedError,
    TaskFamily,
    TaskProgress,
    TaskRef,
    TaskStatus,
    TokenBucket,
    WaitTimeoutError,
)
from musicapi_async.testing import FakeMusicAPI, FakeTask, Fault, NotReadyStyle, Outcome

pytestmark = pytest.mark.anyio

#: ``expected_durations`` of a client that does not know the fake's durations (as against the
#: real API): ``fake.client()`` would take them from the fake, and poll when they end.
REAL_PRIOR: dict[str, float] = {}

STYLES: list[NotReadyStyle] = ["202", "200"]
#: The default bucket's safety margin and interval (1 request / 3 s plus the margin).
MARGIN = TokenBucket().margin
INTERVAL = TokenBucket().interval
#: The scheduler's documented default minimum gap between two polls of one task.
MIN_POLL_GAP = 6.0


async def create(client: MusicAPI, n: int = 1, *, mv: str = "sonic-v5") -> list[TaskRef]:
    """Start ``n`` Sonic tasks, one after the other."""
    return [await client.sonic.create(mv=mv, gpt_description_prompt=f"song {k}") for k in range(n)]


def task_path(ref: TaskRef) -> str:
    return f"/{ref.family.value}/task/{ref.task_id}"


def polls(fake: FakeMusicAPI, ref: TaskRef) -> list[float]:
    """When each poll of this task reached the fake."""
    return [r.time for r in fake.requests_to(task_path(ref))]


def ages(fake: FakeMusicAPI, ref: TaskRef) -> list[float]:
    """The task's age at each of its polls."""
    created = fake.tasks[ref.task_id].created_at
    return [t - created for t in polls(fake, ref)]


def gaps(times: Sequence[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def done_at(fake: FakeMusicAPI, ref: TaskRef) -> float:
    return fake.tasks[ref.task_id].done_at


# --- shapes: one, many, ids, families, styles ----------------------------------------------


@pytest.mark.parametrize("style", STYLES)
async def test_await_task_on_one_ref_returns_its_terminal_task(style: NotReadyStyle) -> None:
    fake = FakeMusicAPI(not_ready_style=style, sonic_duration=100.0)
    async with fake.client() as client:
        (ref,) = await create(client)
        task = await client.await_task(ref)
        seen = anyio.current_time()
    assert isinstance(task, Task)
    assert task.ref == ref
    assert task.status is TaskStatus.SUCCEEDED
    assert len(task.audio_urls) == 2
    assert done_at(fake, ref) <= seen < done_at(fake, ref) + 60
    assert polls(fake, ref)[-1] == seen  # returned as soon as the poll saw it
    assert fake.rate_limited() == 0


@pytest.mark.parametrize("style", STYLES)
async def test_await_task_on_many_returns_them_in_input_order_not_finishing_order(
    style: NotReadyStyle,
) -> None:
    fake = FakeMusicAPI(not_ready_style=style)
    for duration in (150.0, 120.0, 90.0, 70.0):
        fake.plan(duration=duration)
    async with fake.client() as client:
        refs = await create(client, 4)
        tasks = await client.await_task(refs)
    assert sorted(refs, key=lambda ref: done_at(fake, ref)) == refs[::-1]
    assert [task.ref for task in tasks] == refs
    assert all(task.status is TaskStatus.SUCCEEDED for task in tasks)
    assert fake.rate_limited() == 0


async def test_await_task_accepts_duplicates_and_polls_them_once() -> None:
    fake = FakeMusicAPI(sonic_duration=100.0)
    async with fake.client() as client:
        a, b = await create(client, 2)
        tasks = await client.await_task([a, b, a, a])
    assert [task.ref for task in tasks] == [a, b, a, a]
    assert tasks[0] == tasks[2] == tasks[3]
    assert min(gaps(polls(fake, a))) >= MIN_POLL_GAP


async def test_await_task_of_an_empty_list_returns_an_empty_list_at_once() -> None:
    fake = FakeMusicAPI()
    async with fake.client() as client:
        assert await client.await_task([]) == []
    assert fake.requests == ()


async def test_a_bare_task_id_string_is_a_sonic_task() -> None:
    fake = FakeMusicAPI(sonic_duration=80.0)
    async with fake.client() as client:
        (ref,) = await create(client)
        task = await client.await_task(ref.task_id)
        streamed = [t async for t in client.as_completed([ref.task_id])]
    assert task.ref == TaskRef(ref.task_id, TaskFamily.SONIC)
    assert task.status is TaskStatus.SUCCEEDED
    assert streamed == [task]


@pytest.mark.parametrize("style", STYLES)
async def test_sonic_producer_and_nuro_tasks_are_awaited_together(style: NotReadyStyle) -> None:
    fake = FakeMusicAPI(not_ready_style=style, nuro_retired=False)
    async with fake.client() as client:
        sonic = (await create(client))[0]
        producer = await client.producer.create(sound="synthwave with a driving bassline")
        nuro = await client.nuro.create(type="bgm", description="calm piano")
        tasks = await client.await_task([nuro, sonic, producer])
        one_producer = await client.await_task(producer)
    assert [task.ref for task in tasks] == [nuro, sonic, producer]
    assert [task.ref.family for task in tasks] == [
        TaskFamily.NURO,
        TaskFamily.SONIC,
        TaskFamily.PRODUCER,
    ]
    assert all(task.status is TaskStatus.SUCCEEDED for task in tasks)
    assert all(task.audio_urls for task in tasks)
    assert one_producer == tasks[2]
    for ref in (sonic, producer, nuro):
        assert polls(fake, ref)[-1] >= done_at(fake, ref)


@pytest.mark.parametrize("gap", [-1.0, float("inf"), float("nan")])
async def test_a_bad_min_poll_gap_raises_value_error(gap: float) -> None:
    with pytest.raises(ValueError, match="min_poll_gap must be a non-negative number"):
        FakeMusicAPI().client(min_poll_gap=gap)


async def test_as_completed_rejects_a_single_ref_and_await_task_a_negative_timeout() -> None:
    fake = FakeMusicAPI()
    async with fake.client() as client:
        (ref,) = await create(client)
        with pytest.raises(TypeError, match="use await_task for one"):
            client.as_completed(ref)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout must be"):
            await client.await_task(ref, timeout=-1)


# --- as_completed --------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
async def test_as_completed_yields_each_task_as_soon_as_a_poll_sees_it_done(
    style: NotReadyStyle,
) -> None:
    fake = FakeMusicAPI(not_ready_style=style)
    for duration in (150.0, 70.0, 110.0, 90.0, 130.0):
        fake.plan(duration=duration)
    yielded: list[tuple[TaskRef, float]] = []
    async with fake.client() as client:
        refs = await create(client, 5)
        async for task in client.as_completed(refs):
            yielded.append((task.ref, anyio.current_time()))
    assert [ref for ref, _ in yielded] == sorted(refs, key=lambda ref: done_at(fake, ref))
    for ref, at in yielded:
        assert done_at(fake, ref) <= at < done_at(fake, ref) + 60
        assert polls(fake, ref)[-1] == at


async def test_failed_tasks_are_returned_among_the_successes_and_raise_on_request() -> None:
    fake = FakeMusicAPI(sonic_duration=90.0)
    outcomes: list[Outcome] = ["success", "failed", "success", "timeout", "partial"]
    for outcome in outcomes:
        fake.plan(outcome=outcome)
    async with fake.client() as client:
        refs = await create(client, 5)
        tasks = await client.await_task(refs)
        streamed = [task async for task in client.as_completed(refs)]
    assert [task.ref for task in tasks] == refs
    assert [task.status for task in tasks] == [
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.SUCCEEDED,  # one clip of two failed: the task still succeeded
    ]
    for task in tasks:
        if task.succeeded:
            assert task.raise_for_status() is task
        else:
            with pytest.raises(TaskFailedError) as info:
                task.raise_for_status()
            assert info.value.task is task
    assert tasks[3].error_type == "timeout"
    assert sorted(t.task_id for t in streamed) == sorted(r.task_id for r in refs)


async def test_a_task_already_seen_finished_is_handed_out_again_without_a_request() -> None:
    fake = FakeMusicAPI(sonic_duration=90.0)
    async with fake.client() as client:
        (ref,) = await create(client)
        first = await client.await_task(ref)
        sent = len(fake.requests)
        again = await client.await_task(ref)
        also = [task async for task in client.as_completed([ref])]
    assert again == first
    assert also == [first]
    assert len(fake.requests) == sent


# --- shared polling ------------------------------------------------------------------------


async def poll_ages_with(waiters: int, *, join_late: float = 0.0) -> list[float]:
    """Ages at which one 150 s task was polled while ``waiters`` coroutines awaited it."""
    fake = FakeMusicAPI(sonic_duration=150.0)
    async with fake.client() as client:
        (ref,) = await create(client)
        results: list[Task] = []

        async def waiter(delay: float) -> None:
            await anyio.sleep(delay)
            results.append(await client.await_task(ref))

        async with anyio.create_task_group() as tg:
            for n in range(waiters):
                tg.start_soon(waiter, join_late * n)
    assert len(results) == waiters
    assert all(task.status is TaskStatus.SUCCEEDED for task in results)
    return ages(fake, ref)


async def test_two_concurrent_waiters_on_one_task_cost_one_poll_per_round() -> None:
    alone = await poll_ages_with(1)
    assert alone == pytest.approx(await poll_ages_with(2))
    assert alone == pytest.approx(await poll_ages_with(5, join_late=20.0))
    assert min(gaps(alone)) >= MIN_POLL_GAP


async def test_polls_of_one_task_are_never_closer_than_min_poll_gap() -> None:
    fake = FakeMusicAPI(sonic_duration=300.0)
    async with fake.client(min_poll_gap=20.0) as client:
        refs = await create(client, 3)
        await client.await_task(refs)
    for ref in refs:
        assert min(gaps(polls(fake, ref))) >= 20.0


async def test_a_task_awaited_again_keeps_its_polling_history() -> None:
    """Short waits one after the other (a heartbeat loop, a wait retried after its timeout):
    the task is polled on from where it was, never twice within min_poll_gap, and, seen
    running, not looked at again at once as if new."""
    fake = FakeMusicAPI(sonic_duration=200.0)
    async with fake.client(min_poll_gap=20.0, expected_durations=REAL_PRIOR) as client:
        (ref,) = await create(client)
        while True:
            with anyio.move_on_after(4):  # a keep-alive to send every 4 s, say
                task = await client.await_task(ref)
                break
        assert task.succeeded
    assert min(gaps(polls(fake, ref))) >= 20.0


async def test_a_task_expected_in_half_a_second_is_not_first_looked_at_a_second_late() -> None:
    """With no candidate yet, the scheduler looks again after a share of the shortest expected
    duration, not after a fixed second: a fast fake's task (the CLI's sandbox) is polled as
    soon as it may have finished: from half its expected 0.5 s (where the prior starts)."""
    fake = FakeMusicAPI(sonic_duration=0.3)
    bucket = TokenBucket(rate=1, per=0.01, margin=0.0)
    async with fake.client(
        limiter=bucket, min_poll_gap=0.05, expected_durations={"sonic": 0.5}
    ) as client:
        [ref] = await create(client)
        assert (await client.await_task(ref)).succeeded
    first = ages(fake, ref)[0]
    assert 0.25 <= first < 0.35  # not at the 1 s idle look


async def test_a_with_options_view_shares_the_clients_scheduler() -> None:
    fake = FakeMusicAPI(sonic_duration=150.0)
    async with fake.client() as client:
        (ref,) = await create(client)
        view = client.with_options(timeout=5.0, max_retries=1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.await_task, ref)
            tg.start_soon(view.await_task, ref)
        task = await view.await_task(ref)
    assert task.status is TaskStatus.SUCCEEDED
    assert ages(fake, ref) == pytest.approx(await poll_ages_with(1))


async def test_closing_a_with_options_view_leaves_the_original_client_working() -> None:
    fake = FakeMusicAPI(sonic_duration=90.0)
    async with fake.client() as client:
        first, second = await create(client, 2)
        async with client.with_options(timeout=5.0) as view:
            assert (await view.await_task(first)).succeeded
        # "Closing the view does not close the original" (MusicAPI.with_options).
        assert (await client.await_task(second)).succeeded


# --- priorities ----------------------------------------------------------------------------


async def test_a_user_create_waits_at_most_one_token_interval_behind_background_polls() -> None:
    spread = itertools.count()

    def duration(task: FakeTask) -> float:
        return 60.0 + next(spread) * 37 % 120  # 60 to 180 s

    fake = FakeMusicAPI(sonic_duration=duration)
    async with fake.client() as client:
        refs = await create(client, 30)
        waits: list[float] = []
        busy: list[int] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.await_task, refs)
            for k in range(8):
                await anyio.sleep(11.3 + k % 3)
                called = anyio.current_time()
                recent = [r for r in fake.requests_to("/sonic/task/*") if r.time > called - 10]
                busy.append(len(recent))
                await client.sonic.create(mv="sonic-v6", gpt_description_prompt=f"now {k}")
                waits.append(fake.requests_to("/sonic/create")[-1].time - called)
    assert all(n >= 2 for n in busy), "polling kept the key busy while the user called"
    assert max(waits) <= INTERVAL + 1e-9
    assert fake.rate_limited() == 0


async def test_the_scheduler_queues_at_most_one_background_poll_at_the_bucket() -> None:
    fake = FakeMusicAPI()
    bucket = TokenBucket()
    waiting: list[int] = []
    async with fake.client(limiter=bucket) as client:
        refs = await create(client, 30)

        async def watch() -> None:
            while True:
                waiting.append(bucket.statistics().waiting_background)
                await anyio.sleep(0.5)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await client.await_task(refs)
            tg.cancel_scope.cancel()
    assert max(waiting) == 1
    assert len(fake.requests_to("/sonic/task/*")) > 30
    assert fake.rate_limited() == 0


# --- deadlines and resume ------------------------------------------------------------------


async def test_a_timeout_raises_wait_timeout_error_at_the_deadline_with_what_is_pending() -> None:
    fake = FakeMusicAPI(sonic_duration=200.0)
    fake.plan(duration=40.0)
    async with fake.client() as client:
        refs = await create(client, 3)
        await anyio.sleep(60)
        start = anyio.current_time()
        with pytest.raises(WaitTimeoutError) as info:
            await client.await_task(refs, timeout=30)
        failed_at = anyio.current_time()
        await anyio.sleep(60)
        quiet = [r for r in fake.requests if r.time > failed_at]
    error = info.value
    assert failed_at - start == pytest.approx(30.0)
    assert isinstance(error, TimeoutError)
    assert isinstance(error, MusicAPIError)
    assert error.pending == (refs[1], refs[2])
    assert [task.ref for task in error.completed] == [refs[0]]
    assert error.completed[0].status is TaskStatus.SUCCEEDED
    assert quiet == []  # nobody waits: polling stopped
    # The references survive JSON, e.g. to resume in another process.
    saved = json.loads(error.pending_json())
    assert [TaskRef.from_dict(item) for item in saved] == list(error.pending)
    assert refs[1].task_id in str(error)


async def test_a_new_client_resumes_the_pending_refs_of_a_wait_timeout_error() -> None:
    fake = FakeMusicAPI(sonic_duration=120.0)
    async with fake.client() as client:
        refs = await create(client, 3)
        with pytest.raises(WaitTimeoutError) as info:
            await client.await_task(refs, timeout=50)
    saved = info.value.pending_json()
    # What the error message advises, verbatim.
    assert "await_task(TaskRef.list_from_json(error.pending_json()))" in str(info.value)
    resumed = TaskRef.list_from_json(saved)
    assert resumed == refs
    async with fake.client() as other:
        tasks = await other.await_task(resumed)
    assert [task.ref for task in tasks] == refs
    assert all(task.status is TaskStatus.SUCCEEDED for task in tasks)
    assert all(polls(fake, ref)[-1] >= done_at(fake, ref) for ref in refs)


@pytest.mark.parametrize(
    ("families", "deadline"),
    [(("sonic",), 600.0), (("producer",), 300.0), (("producer", "sonic"), 600.0)],
)
async def test_the_default_deadline_is_10_min_for_sonic_and_5_for_producer(
    families: tuple[str, ...], deadline: float
) -> None:
    fake = FakeMusicAPI(sonic_duration=5000.0, producer_duration=5000.0)
    async with fake.client() as client:
        refs = []
        for family in families:
            if family == "sonic":
                refs += await create(client)
            else:
                refs.append(await client.producer.create(sound="ambient drone"))
        start = anyio.current_time()
        with pytest.raises(WaitTimeoutError) as info:
            await client.await_task(refs)
    assert anyio.current_time() - start == pytest.approx(deadline)
    assert info.value.pending == tuple(refs)


async def test_anyio_fail_after_around_await_task_works_and_stops_the_polling() -> None:
    fake = FakeMusicAPI(sonic_duration=400.0)
    async with fake.client() as client:
        (ref,) = await create(client)
        with pytest.raises(TimeoutError):
            with anyio.fail_after(150):
                await client.await_task(ref, timeout=None)
        stopped = anyio.current_time()
        await anyio.sleep(300)
    assert stopped == pytest.approx(fake.tasks[ref.task_id].created_at + 150)
    assert polls(fake, ref), "it was polled before the deadline"
    assert [t for t in polls(fake, ref) if t > stopped] == []


# --- cancellation --------------------------------------------------------------------------


async def test_cancelling_a_waiter_stops_polling_its_tasks_unless_another_awaits_them() -> None:
    fake = FakeMusicAPI(sonic_duration=300.0)
    async with fake.client() as client:
        mine, shared = await create(client, 2)
        results: list[Task] = []
        cancelled: list[float] = []

        async def impatient() -> None:
            with anyio.move_on_after(130.37):
                await client.await_task([mine, shared])
            cancelled.append(anyio.current_time())

        async def patient() -> None:
            results.append(await client.await_task(shared))

        async with anyio.create_task_group() as tg:
            tg.start_soon(impatient)
            tg.start_soon(patient)
        (cancelled_at,) = cancelled
        await anyio.sleep(200)
    assert polls(fake, mine), "polled while awaited"
    assert [t for t in polls(fake, mine) if t > cancelled_at] == []
    assert [t for t in polls(fake, shared) if t > cancelled_at], "still polled for the other"
    assert results[0].status is TaskStatus.SUCCEEDED


async def test_a_waiter_leaving_while_its_poll_queues_leaves_the_slot_in_the_bucket() -> None:
    """The scheduler's acquire, queued for the only awaited task, steps out when its waiter
    leaves: no slot is taken and left unused, so the next user call goes at once."""
    fake = FakeMusicAPI(sonic_duration=100.0)
    bucket = TokenBucket()
    async with fake.client(limiter=bucket, expected_durations={"sonic": 2.0}) as client:
        [ref] = await create(client)  # at 0 s, answered at once: the next slot is at 3 s
        with anyio.move_on_after(2.0):
            await client.await_task(ref, timeout=None)  # a poll queued for 3 s
        await anyio.sleep(2.0)
        asked = anyio.current_time()
        await client.credits.get()
        assert anyio.current_time() == asked  # the 3 s slot was still there
    assert bucket.statistics().granted == len(fake.requests) == 2


async def test_breaking_out_of_as_completed_stops_polling_the_rest() -> None:
    fake = FakeMusicAPI(sonic_duration=300.0)
    fake.plan(duration=100.0)
    async with fake.client(expected_durations=REAL_PRIOR) as client:
        fast, *slow = await create(client, 3)
        async for task in client.as_completed([fast, *slow]):
            first = task
            break
        left_at = anyio.current_time()
        await anyio.sleep(400)
    assert first.ref == fast
    for ref in slow:
        assert polls(fake, ref), "polled while awaited"
        assert [t for t in polls(fake, ref) if t > left_at] == []


async def test_several_consumers_of_one_stream_all_hear_of_its_deadline() -> None:
    """Two workers drain one stream and the deadline passes with tasks unfinished: both
    get the WaitTimeoutError with the references to resume, not one of them an end as
    if every task were done."""
    fake = FakeMusicAPI(sonic_duration=5000.0)
    outcome: dict[str, WaitTimeoutError] = {}
    async with fake.client() as client:
        refs = await create(client, 2)
        async with client.as_completed(refs, timeout=100) as stream:

            async def worker(name: str) -> None:
                with pytest.raises(WaitTimeoutError) as caught:
                    async for _ in stream:
                        pass
                outcome[name] = caught.value

            with anyio.fail_after(3600):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(worker, "a")
                    tg.start_soon(worker, "b")
    assert sorted(outcome) == ["a", "b"]
    assert all(error.pending == tuple(refs) for error in outcome.values())


async def test_a_dropped_stream_whose_callback_is_its_owners_method_stops_polling() -> None:
    """An object keeps a stream and reports progress through one of its own methods (a
    cycle: stream, callback, object, stream). Dropped, the object and its stream are
    collected and the polling stops, as for any dropped stream: the scheduler does not
    hold the callback strongly."""

    class Job:
        def __init__(self, client: MusicAPI, refs: list[TaskRef]) -> None:
            self.heard: list[ProgressState] = []
            self.stream = client.as_completed(refs, timeout=None, on_progress=self.report)

        def report(self, event: TaskProgress) -> None:
            self.heard.append(event.state)

    fake = FakeMusicAPI(sonic_duration=600.0, not_ready_style="200")
    async with fake.client(expected_durations=REAL_PRIOR) as client:
        refs = await create(client)
        job = Job(client, refs)
        with anyio.move_on_after(200):  # looks for a while, then gives up
            async for _ in job.stream:
                pass
        assert job.heard  # the callback was heard while the stream lived
        # A checkpoint first: trio keeps the step's Cancelled (and so its frames, which
        # hold the stream) until the task next wakes.
        await anyio.sleep(1)
        del job
        gc.collect()
        dropped_at = anyio.current_time()
        await anyio.sleep(600)
        assert client._scheduler.statistics()["tracked"] == 0
    assert polls(fake, refs[0])
    assert [t for t in polls(fake, refs[0]) if t > dropped_at] == []


async def test_leaving_an_as_completed_block_early_stops_polling_the_rest() -> None:
    fake = FakeMusicAPI(sonic_duration=300.0)
    fake.plan(duration=70.0)
    async with fake.client() as client:
        fast, slow = await create(client, 2)
        async with client.as_completed([fast, slow]) as stream:
            async for task in stream:
                assert task.ref == fast
                break
            assert stream.pending == (slow,)
        left_at = anyio.current_time()
        await anyio.sleep(400)
    assert [t for t in polls(fake, slow) if t > left_at] == []


async def test_closing_an_as_completed_stream_stops_polling_its_tasks() -> None:
    fake = FakeMusicAPI(sonic_duration=300.0)
    async with fake.client(expected_durations=REAL_PRIOR) as client:
        refs = await create(client, 2)
        stream = client.as_completed(refs)
        await anyio.sleep(100)
        await stream.aclose()
        stream.close()  # idempotent
        closed_at = anyio.current_time()
        await anyio.sleep(300)
    assert all(polls(fake, ref) for ref in refs), "polled while open"
    assert [r for r in fake.requests_to("/sonic/task/*") if r.time > closed_at] == []


async def test_a_waiter_joining_while_a_left_waiters_poll_is_in_flight_gets_the_result() -> None:
    fake = FakeMusicAPI(sonic_duration=10.0, latency={"/sonic/task/*": 5.0})
    async with fake.client() as submitter:
        (ref,) = await create(submitter)
    await anyio.sleep(10)  # done now
    async with fake.client(limiter=TokenBucket(rate=1, per=10.0)) as client:
        with anyio.move_on_after(0.5):  # leaves while the first poll (5 s answer) is in flight
            await client.await_task(ref)
        assert len(polls(fake, ref)) == 1
        task = await client.await_task(ref, timeout=60)
    assert task.status is TaskStatus.SUCCEEDED


# --- lifecycle -----------------------------------------------------------------------------


async def test_await_task_outside_async_with_raises_runtime_error_saying_so() -> None:
    fake = FakeMusicAPI()
    client = fake.client()
    try:
        with pytest.raises(RuntimeError, match="async with"):
            await client.await_task(TaskRef("t-1"))
        with pytest.raises(RuntimeError, match="async with"):
            client.as_completed([TaskRef("t-1")])
    finally:
        await client.aclose()
    assert fake.requests == ()


async def test_nothing_keeps_polling_after_the_async_with_block_exits() -> None:
    fake = FakeMusicAPI(sonic_duration=400.0)
    async with fake.client(expected_durations=REAL_PRIOR) as client:
        refs = await create(client, 3)
        stream = client.as_completed(refs)  # left open: the block's exit must end it
        await anyio.sleep(120)
        assert fake.requests_to("/sonic/task/*"), "polled while open"
    sent = len(fake.requests)
    await anyio.sleep(1000)
    assert len(fake.requests) == sent
    with pytest.raises(RuntimeError, match="closed"):
        await stream.__anext__()


async def test_a_waiter_still_waiting_when_the_client_closes_gets_runtime_error() -> None:
    fake = FakeMusicAPI(sonic_duration=400.0)
    errors: list[RuntimeError] = []

    async def waiter(client: MusicAPI, ref: TaskRef) -> None:
        try:
            await client.await_task(ref)
        except RuntimeError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        async with fake.client(expected_durations=REAL_PRIOR) as client:
            (ref,) = await create(client)
            tg.start_soon(waiter, client, ref)
            await anyio.sleep(100)
        closed_at = anyio.current_time()
    assert len(errors) == 1
    assert "closed" in str(errors[0])
    assert anyio.current_time() == closed_at  # the waiter woke at once
    assert polls(fake, ref), "polled while open"
    await anyio.sleep(500)
    assert [t for t in polls(fake, ref) if t >= closed_at] == []


async def test_explicit_aclose_wakes_waiters_and_later_waits_raise_runtime_error() -> None:
    fake = FakeMusicAPI(sonic_duration=400.0)
    errors: list[RuntimeError] = []

    async def waiter(client: MusicAPI, ref: TaskRef) -> None:
        try:
            await client.await_task(ref)
        except RuntimeError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg, fake.client() as client:
        (ref,) = await create(client)
        tg.start_soon(waiter, client, ref)
        await anyio.sleep(100)
        await client.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await client.await_task(ref)
    assert len(errors) == 1
    assert "closed" in str(errors[0])


async def test_aclose_from_another_task_wakes_the_waiters_and_returns() -> None:
    fake = FakeMusicAPI(sonic_duration=400.0)
    outcome: list[str] = []
    async with fake.client() as client:
        (ref,) = await create(client)

        async def waiter() -> None:
            try:
                await client.await_task(ref)
            except RuntimeError:
                outcome.append("waiter woken")

        async def closer() -> None:
            await anyio.sleep(100)
            await client.aclose()
            outcome.append("closed")

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            tg.start_soon(closer)
    assert sorted(outcome) == ["closed", "waiter woken"]


async def test_aclose_inside_a_task_group_of_the_owning_task_wakes_the_waiters() -> None:
    fake = FakeMusicAPI(sonic_duration=400.0)
    outcome: list[str] = []
    async with fake.client() as client:
        (ref,) = await create(client)

        async def waiter() -> None:
            try:
                await client.await_task(ref)
            except RuntimeError:
                outcome.append("waiter woken")

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(100)
            await client.aclose()
            outcome.append("closed")
    assert sorted(outcome) == ["closed", "waiter woken"]


# --- poll errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("unknown_task_status", [404, 400])
async def test_an_unknown_task_raises_not_found_from_await_task(
    unknown_task_status: Literal[404, 400],
) -> None:
    fake = FakeMusicAPI(unknown_task_status=unknown_task_status)
    async with fake.client() as client:
        with pytest.raises(NotFoundError):
            await client.await_task("no-such-task")
        (ref,) = await create(client)
        with pytest.raises(NotFoundError):
            await client.await_task([ref, TaskRef("no-such-task")])
    assert len(fake.requests_to("/sonic/task/no-such-task")) == 2


async def test_a_task_created_here_moments_ago_and_not_found_yet_is_polled_again() -> None:
    """A task this client just created (and paid for) that the server does not know yet:
    polled again, not raised as "not found", which would invite creating it again."""
    fake = FakeMusicAPI(sonic_duration=20.0)
    async with fake.client(expected_durations={"sonic": 1.0}) as client:
        (ref,) = await create(client)
        fake.inject(task_path(ref), status=404, body={"error": "task not found."}, times=2)
        task = await client.await_task(ref)
    assert task.succeeded
    assert len(polls(fake, ref)) >= 3


async def test_a_task_created_here_still_not_found_after_a_minute_says_it_may_exist() -> None:
    fake = FakeMusicAPI(sonic_duration=20.0)
    async with fake.client(expected_durations={"sonic": 1.0}) as client:
        (ref,) = await create(client)
        fake.inject(task_path(ref), status=404, body={"error": "task not found."}, times=None)
        with pytest.raises(NotFoundError) as caught:
            await client.await_task(ref)
        given_up = anyio.current_time() - fake.tasks[ref.task_id].created_at
    assert given_up >= 60
    assert caught.value.task_may_exist
    assert "may still appear" in str(caught.value)
    assert "before creating it again" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "fault"),
    [(None, "connect_error"), (None, "read_timeout"), (500, None), (502, None)],
)
async def test_transient_poll_errors_are_retried_by_the_scheduler(
    status: int | None, fault: Fault | None
) -> None:
    fake = FakeMusicAPI(sonic_duration=100.0)
    async with fake.client() as client:
        (ref,) = await create(client)
        fake.inject(task_path(ref), status=status, fault=fault, times=3)
        task = await client.await_task(ref)
    assert task.status is TaskStatus.SUCCEEDED
    sent = fake.requests_to(task_path(ref))
    assert sum(r.injected for r in sent) == 3
    assert not sent[-1].injected
    assert min(gaps([r.time for r in sent])) >= MIN_POLL_GAP


async def test_a_429_on_a_poll_pauses_the_shared_bucket_and_the_wait_goes_on() -> None:
    fake = FakeMusicAPI(sonic_duration=100.0)
    bucket = TokenBucket()
    async with fake.client(limiter=bucket) as client:
        (ref,) = await create(client)
        fake.inject(task_path(ref), status=429, headers={"Retry-After": "20"})
        task = await client.await_task(ref)
    assert task.status is TaskStatus.SUCCEEDED
    limited, *rest = fake.requests_to(task_path(ref))
    assert limited.status == 429
    assert rest[0].time >= limited.time + 20.0 + MARGIN
    assert bucket.statistics().rate_limited == 1


# --- progress ------------------------------------------------------------------------------


async def test_progress_reports_each_state_change_with_the_time_since_submit() -> None:
    fake = FakeMusicAPI(not_ready_style="200", sonic_duration=400.0)
    events: list[TaskProgress] = []
    async with fake.client(expected_durations=REAL_PRIOR) as client:
        (ref,) = await create(client)
        task = await client.await_task(ref, on_progress=events.append)
    assert [e.state for e in events] == [
        ProgressState.PENDING,
        ProgressState.RUNNING,
        ProgressState.STREAMING,
        ProgressState.SUCCEEDED,
    ]
    assert all(e.ref == ref for e in events)
    poll_ages = ages(fake, ref)
    for event in events:
        assert any(event.elapsed == pytest.approx(age) for age in poll_ages)
    assert [e.elapsed for e in events] == sorted(e.elapsed for e in events)
    streaming = events[2].task
    assert not streaming.is_terminal
    assert streaming.audio_urls, "an early audio_url while streaming"
    assert all("audiopipe" in url for url in streaming.audio_urls)
    assert events[-1].task == task
    assert events[-1].elapsed == pytest.approx(poll_ages[-1])


async def test_progress_in_the_202_style_goes_from_pending_to_done() -> None:
    fake = FakeMusicAPI(not_ready_style="202", sonic_duration=100.0)
    fake.plan(outcome="failed")
    events: list[TaskProgress] = []
    async with fake.client() as client:
        refs = await create(client, 2)
        await client.await_task(refs, on_progress=events.append)
    by_task = {ref: [e.state for e in events if e.ref == ref] for ref in refs}
    assert by_task == {
        refs[0]: [ProgressState.PENDING, ProgressState.FAILED],
        refs[1]: [ProgressState.PENDING, ProgressState.SUCCEEDED],
    }


async def test_an_async_progress_callback_is_awaited() -> None:
    fake = FakeMusicAPI(not_ready_style="200", sonic_duration=200.0)
    seen: list[ProgressState] = []

    async def on_progress(event: TaskProgress) -> None:
        await anyio.sleep(1)
        seen.append(event.state)

    async with fake.client(expected_durations=REAL_PRIOR) as client:
        (ref,) = await create(client)
        await client.await_task(ref, on_progress=on_progress)
        await anyio.sleep(2)
    assert seen[-1] is ProgressState.SUCCEEDED
    assert len(seen) >= 3


async def test_the_last_async_progress_callback_has_run_when_the_wait_returns() -> None:
    """A coroutine callback of the final state finishes before await_task hands out the
    task, so leaving ``async with`` right after cannot cancel it half-way."""
    fake = FakeMusicAPI(not_ready_style="200", sonic_duration=100.0)
    log: list[str] = []

    async def on_progress(event: TaskProgress) -> None:
        log.append(f"start {event.state.value}")
        await anyio.sleep(5)
        log.append(f"done {event.state.value}")

    async with fake.client() as client:
        (ref,) = await create(client)
        task = await client.await_task(ref, on_progress=on_progress)
        at_return = list(log)
    assert task.succeeded
    assert at_return[-2:] == ["start succeeded", "done succeeded"]
    assert log == at_return


async def test_a_hanging_progress_callback_delays_a_result_only_to_the_deadline() -> None:
    fake = FakeMusicAPI(sonic_duration=60.0)

    async def on_progress(event: TaskProgress) -> None:
        await anyio.sleep_forever()

    async with fake.client() as client:
        (ref,) = await create(client)
        start = anyio.current_time()
        task = await client.await_task(ref, on_progress=on_progress, timeout=300)
        assert task.succeeded
        assert anyio.current_time() - start == pytest.approx(300, abs=1)


async def test_a_hanging_callback_of_a_result_found_at_once_still_yields_to_the_deadline() -> None:
    """The first wait of a new ``async with`` block, on a task that finished in an earlier
    one: its callback starts before the scheduler does, and still holds the result back
    only until just before the deadline (it once ran in the waiter, past any deadline)."""
    fake = FakeMusicAPI(sonic_duration=60.0)

    async def on_progress(event: TaskProgress) -> None:
        await anyio.sleep_forever()

    client = fake.client()
    async with client:
        (ref,) = await create(client)
        await client.await_task(ref)
    async with client:
        start = anyio.current_time()
        with anyio.fail_after(3600):
            task = await client.await_task(ref, timeout=30, on_progress=on_progress)
        assert task.succeeded
        assert 29 < anyio.current_time() - start < 30


@pytest.mark.parametrize("before_exit", [0.0, 1.0])
async def test_leaving_the_client_block_cancels_callbacks_of_results_found_at_once(
    before_exit: float,
) -> None:
    """A stream kept in a variable, made on a task finished in an earlier block: its slow
    callback runs in the client's task group, and leaving ``async with client`` cancels it
    (running, or not started yet) instead of waiting for it."""
    fake = FakeMusicAPI(sonic_duration=60.0)
    ran: list[str] = []

    async def slow(event: TaskProgress) -> None:
        ran.append("started")
        await anyio.sleep(3000)
        ran.append("returned")

    client = fake.client()
    async with client:
        (ref,) = await create(client)
        await client.await_task(ref)
    start = anyio.current_time()
    async with client:
        stream = client.as_completed([ref], on_progress=slow, timeout=600)
        await anyio.sleep(before_exit)
    assert anyio.current_time() - start == before_exit
    assert "returned" not in ran
    assert stream.pending == (ref,)
    gc.collect()  # a coroutine never awaited would warn here (an error in this suite)


async def test_a_hanging_callback_yields_to_a_cancel_scope_deadline_with_the_result() -> None:
    """``timeout=None`` inside ``anyio.fail_after``: the finished task is handed out just
    before the scope's deadline, not lost to a TimeoutError."""
    fake = FakeMusicAPI(sonic_duration=60.0)

    async def on_progress(event: TaskProgress) -> None:
        if event.state is ProgressState.SUCCEEDED:
            await anyio.sleep_forever()

    async with fake.client() as client:
        (ref,) = await create(client)
        start = anyio.current_time()
        with anyio.fail_after(600):
            task = await client.await_task(ref, on_progress=on_progress, timeout=None)
        assert task.succeeded
        assert 590 < anyio.current_time() - start < 600


async def test_one_tasks_slow_callback_does_not_hold_back_another_tasks_result() -> None:
    durations = iter([60.0, 600.0])
    fake = FakeMusicAPI(sonic_duration=lambda task: next(durations))
    seen: list[tuple[str, float]] = []

    async def on_progress(event: TaskProgress) -> None:
        # The slow task's first poll comes while the quick one's last callback still runs.
        await anyio.sleep(10_000 if event.ref == slow else 5)

    async with fake.client() as client:
        quick, slow = await create(client, 2)
        async with client.as_completed([quick, slow], timeout=None, on_progress=on_progress) as it:
            async for task in it:
                seen.append((task.task_id, anyio.current_time()))
                break
    (task_id, handed_out), *_ = seen
    assert task_id == quick.task_id
    assert polls(fake, slow)[0] < handed_out  # its callback started before the hand-out
    assert handed_out == pytest.approx(polls(fake, quick)[-1] + 5)  # after quick's own only


async def test_a_raising_progress_callback_does_not_break_the_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeMusicAPI(not_ready_style="200", sonic_duration=200.0)
    calls: list[ProgressState] = []

    def sync_boom(event: TaskProgress) -> None:
        calls.append(event.state)
        raise ValueError("boom")

    async def async_boom(event: TaskProgress) -> None:
        raise ValueError("async boom")

    with caplog.at_level(logging.ERROR, logger="musicapi_async"):
        async with fake.client(expected_durations=REAL_PRIOR) as client:
            first, second = await create(client, 2)
            assert (await client.await_task(first, on_progress=sync_boom)).succeeded
            assert (await client.await_task(second, on_progress=async_boom)).succeeded
            await anyio.sleep(1)
    assert calls[-1] is ProgressState.SUCCEEDED
    assert len(calls) >= 3
    messages = [r.getMessage() for r in caplog.records]
    assert any("on_progress callback raised" in m for m in messages)
    assert any(r.exc_info and "async boom" in str(r.exc_info[1]) for r in caplog.records)


# --- learning durations --------------------------------------------------------------------


@pytest.mark.parametrize("batch", [4, 10, 20])
async def test_learned_durations_hold_back_the_polls_of_a_new_task(batch: int) -> None:
    """After a batch of ~100 s tasks, a new one is not polled before ~50 s of age.

    With 10 or more, most of the batch is first polled only after it finished: those
    observations ("done some time before age 104") must not teach that tasks end at 0 s.
    """
    durations = itertools.cycle([95.0, 100.0, 105.0, 98.0, 102.0, 97.0, 103.0, 99.0, 101.0])
    fake = FakeMusicAPI(sonic_duration=lambda task: next(durations))
    async with fake.client() as client:
        await client.await_task(await create(client, batch))
        fake.plan(duration=100.0)
        (ref,) = await create(client)
        await client.await_task(ref)
    new_ages = ages(fake, ref)
    assert new_ages[0] >= 50.0
    # A loop polling every 5 s would have spent 20 requests on this 100 s task.
    assert len(new_ages) <= 5


# --- deadlines and answers the SDK cannot read ----------------------------------------------


async def test_a_task_is_looked_at_before_a_short_deadline_whatever_the_model_says() -> None:
    """The prior expects Sonic tasks of minutes: a 2-s task awaited with ``timeout=30``
    would otherwise time out without a single poll."""
    fake = FakeMusicAPI(sonic_duration=2.0)
    async with fake.client(expected_durations=REAL_PRIOR) as client:
        (ref,) = await create(client)
        task = await client.await_task(ref, timeout=30)
    assert task.succeeded
    (poll,) = ages(fake, ref)
    assert poll == pytest.approx(30 - 10, abs=INTERVAL)


@pytest.mark.parametrize("how", ["timeout", "move_on_after"])
async def test_a_task_still_running_is_polled_once_before_the_deadline(
    how: Literal["timeout", "move_on_after"],
) -> None:
    fake = FakeMusicAPI(sonic_duration=1000.0)
    async with fake.client() as client:
        (ref,) = await create(client)
        if how == "timeout":
            with pytest.raises(WaitTimeoutError) as caught:
                await client.await_task(ref, timeout=40)
            assert caught.value.pending == (ref,)
        else:
            with anyio.move_on_after(40):
                await client.await_task(ref)
    assert len(ages(fake, ref)) == 1
    assert ages(fake, ref)[0] < 40


async def test_a_timeout_names_the_tasks_it_never_polled() -> None:
    """A deadline too short for the budget to look at every task: the error tells the ones
    never polled (unknown, maybe a mistyped id) from those seen running."""
    fake = FakeMusicAPI(sonic_duration=600.0)
    async with fake.client(expected_durations={"sonic": 1.0}) as client:
        refs = await create(client, 3)
        with pytest.raises(WaitTimeoutError) as caught:
            await client.await_task(refs, timeout=4)
    error = caught.value
    polled = [ref for ref in refs if polls(fake, ref)]
    assert polled
    assert len(polled) < len(refs)
    assert set(error.unpolled) == set(refs) - set(polled)
    assert f"{len(error.unpolled)} of them not polled during the wait" in str(error)


async def test_tasks_sharing_a_deadline_all_get_their_last_look_before_it() -> None:
    """Eight fast tasks of a type the client has not seen (its guess: 2 minutes) and a 60 s
    wait: nothing says "poll" until the deadline nears, and 10 s before it leaves room for
    three polls. The last looks start early enough for all eight, one request interval
    apart, the latest 10 s before the deadline."""
    fake = FakeMusicAPI(sonic_duration=20.0)
    async with fake.client(expected_durations=REAL_PRIOR) as client:
        refs = await create(client, 8)
        start = anyio.current_time()
        tasks = await client.await_task(refs, timeout=60)
    assert all(task.succeeded for task in tasks)
    looks = sorted(t for ref in refs for t in polls(fake, ref))
    assert len(looks) == 8  # one each: finished when looked at
    assert looks[-1] <= start + 60 - 10
    assert looks[0] >= start + 60 - 10 - 8 * INTERVAL  # not earlier than needed


async def test_tasks_still_running_at_their_last_look_keep_their_slot() -> None:
    """Four tasks still running at their last look and four finished: every one gets its
    look before the deadline, the finished ones are all found. A task looked at keeps its
    slot and is not due again as finished ones leave (those looks were once repeated while
    the last tasks were pushed out of the window, never looked at)."""
    fake = FakeMusicAPI(sonic_duration=20.0)
    fake.plan(duration=5000.0, times=4)  # the four oldest run long, the rest end in 20 s
    # Expected to take a day: only the last looks poll them.
    async with fake.client(expected_durations={"sonic": 100_000.0}) as client:
        refs = await create(client, 8)
        start = anyio.current_time()
        with pytest.raises(WaitTimeoutError) as caught:
            await client.await_task(refs, timeout=120)
    looks = sorted(polls(fake, ref)[0] for ref in refs)  # each one's first poll
    assert looks[-1] <= start + 120 - 10
    assert looks[0] >= start + 120 - 10 - 8 * INTERVAL
    assert len(caught.value.completed) == 4
    assert caught.value.pending == tuple(refs[:4])


async def test_a_last_look_gets_a_slot_behind_a_steady_stream_of_user_calls() -> None:
    """Creates in a loop take every slot before a background poll. A waiter's last look
    queues as a user call, so the task finished long before is found, not timed out on."""
    fake = FakeMusicAPI(sonic_duration=5.0)
    async with fake.client() as client:
        (first,) = await create(client)
        start = anyio.current_time()
        task: Task | None = None

        async def creating() -> None:
            await create(client, 40)

        async with anyio.create_task_group() as tg:
            tg.start_soon(creating)
            task = await client.await_task(first, timeout=60)
    assert task is not None
    assert task.succeeded
    (look,) = polls(fake, first)
    assert start + 60 - 10 <= look <= start + 60 - 10 + 2 * INTERVAL


async def test_last_looks_start_at_most_a_minute_early_however_many_share_the_deadline() -> None:
    """Looks long before the deadline say little about the tasks at it: with more tasks
    than fit, the first looks come at most a minute before the lead, not at once."""
    fake = FakeMusicAPI(sonic_duration=1000.0)
    # Expected to take hours: only the last looks poll them.
    async with fake.client(expected_durations={"sonic": 10_000.0}) as client:
        refs = await create(client, 40)
        start = anyio.current_time()
        with pytest.raises(WaitTimeoutError):
            await client.await_task(refs, timeout=500)
    looks = sorted(t for ref in refs for t in polls(fake, ref))
    assert looks[0] >= start + 500 - 10 - 60 - 1e-9
    assert len(looks) > 20  # the minute was spent looking


@pytest.mark.parametrize("armed_at", [5.0, 40.0])
async def test_a_scope_deadline_set_late_in_the_wait_still_gets_its_last_look(
    armed_at: float,
) -> None:
    """A batch arms its waits' deadlines once every create is out: whenever it is set, a
    deadline with more than DEADLINE_LEAD left is looked before (it is re-read every 5 s,
    not at intervals that grow with the wait), not run into blind."""
    fake = FakeMusicAPI(sonic_duration=2.0)
    task: Task | None = None
    async with fake.client(expected_durations=REAL_PRIOR) as client:
        (ref,) = await create(client)
        with anyio.CancelScope() as scope:

            async def arm() -> None:
                await anyio.sleep(armed_at)
                scope.deadline = anyio.current_time() + 25

            async with anyio.create_task_group() as tg:
                tg.start_soon(arm)
                task = await client.await_task(ref, timeout=None)
                tg.cancel_scope.cancel()
    assert task is not None
    assert task.succeeded
    (poll,) = ages(fake, ref)
    assert poll == pytest.approx(armed_at + 25 - 10, abs=INTERVAL)


async def test_a_scope_around_one_step_of_a_stream_is_not_the_streams_deadline() -> None:
    """A per-item ``move_on_after`` ends that step of ``as_completed``, not the wait: it
    must not make the scheduler look at every task before each step's end."""
    fake = FakeMusicAPI(sonic_duration=1000.0)
    async with fake.client() as client:
        (ref,) = await create(client)
        async with client.as_completed([ref], timeout=None) as stream:
            for _ in range(10):
                with anyio.move_on_after(20):
                    await stream.__anext__()
    assert ages(fake, ref) == []  # a 1000-s task, a prior of minutes: no poll in 200 s


async def test_answers_that_cannot_be_read_reach_the_waiter_not_the_deadline() -> None:
    fake = FakeMusicAPI(sonic_duration=30.0)
    unreadable = {"code": 200, "data": [{"clip_id": "c", "state": "succeeded", "title": 12}]}
    async with fake.client() as client:
        first, second = await create(client, 2)
        fake.inject(task_path(first), status=200, body=unreadable, times=None)
        start = anyio.current_time()
        with pytest.raises(MusicAPIError) as caught:
            await client.await_task([first, second], timeout=600)
        assert anyio.current_time() - start < 300
    assert type(caught.value).__name__ == "ResponseValidationError"
    assert "$.data[0].title" in str(caught.value)
    assert caught.value.failed_task == first
    assert len(polls(fake, first)) == 3  # a glitch is polled again; three in a row is not one


async def test_one_unreadable_answer_is_polled_again() -> None:
    fake = FakeMusicAPI(sonic_duration=30.0)
    unreadable = {"code": 200, "data": [{"clip_id": "c", "state": "succeeded", "title": 12}]}
    async with fake.client() as client:
        (ref,) = await create(client)
        fake.inject(task_path(ref), status=200, body=unreadable, times=2)
        task = await client.await_task(ref, timeout=600)
    assert task.succeeded
    assert len(polls(fake, ref)) == 3


async def test_a_timeout_after_failing_polls_says_why_and_chains_the_cause() -> None:
    fake = FakeMusicAPI(sonic_duration=30.0)
    async with fake.client() as client:
        (ref,) = await create(client)
        fake.inject(task_path(ref), status=503, times=None)
        with pytest.raises(WaitTimeoutError) as caught:
            await client.await_task(ref, timeout=200)
    assert "the last poll failed" in str(caught.value)
    assert isinstance(caught.value.__cause__, ServerError)
    assert caught.value.__cause__.status_code == 503


# --- as_completed after a cancelled step or a failed task; callbacks and their waiter -------


async def test_a_step_of_as_completed_cancelled_from_outside_loses_nothing() -> None:
    """A per-item time limit (a heartbeat) around each step: the stream goes on after it."""
    fake = FakeMusicAPI(sonic_duration=60.0)
    async with fake.client() as client:
        refs = await create(client, 2)
        got: list[TaskRef] = []
        async with client.as_completed(refs, timeout=None) as stream:
            while len(got) < 2 and anyio.current_time() < 3600:
                with anyio.move_on_after(30):
                    got.append((await stream.__anext__()).ref)
        assert sorted(r.task_id for r in got) == sorted(r.task_id for r in refs)
        assert anyio.current_time() < 120  # seen when they finished, not at the hour


@pytest.mark.parametrize("timeout", [None, 600.0])
async def test_iterating_on_after_one_task_failed_for_good_yields_the_others(
    timeout: float | None,
) -> None:
    fake = FakeMusicAPI(sonic_duration=60.0)
    async with fake.client() as client:
        (good,) = await create(client)
        unknown = TaskRef("no-such-task")
        got: list[Task] = []
        errors: list[NotFoundError] = []
        stream = client.as_completed([unknown, good], timeout=timeout)
        with anyio.fail_after(3600):  # a stream that stopped polling would wait for ever
            async with stream:
                while True:
                    try:
                        got.append(await stream.__anext__())
                    except NotFoundError as exc:
                        errors.append(exc)
                    except StopAsyncIteration:
                        break
        assert stream.pending == ()
    assert [error.failed_task for error in errors] == [unknown]
    assert errors[0].pending == (good,)
    assert [task.ref for task in got] == [good]
    assert anyio.current_time() < 120


async def test_a_closed_stream_ends_instead_of_waiting() -> None:
    fake = FakeMusicAPI(sonic_duration=60.0)
    async with fake.client() as client:
        refs = await create(client, 2)
        stream = client.as_completed(refs, timeout=None)
        stream.close()
        with anyio.fail_after(1):
            assert [task async for task in stream] == []


async def test_closing_a_stream_from_another_task_ends_the_consumer_waiting_on_it() -> None:
    """A cancel button or a shutdown hook closes the stream while a consumer waits in
    ``async for``: the consumer ends at once, and no task is polled after."""
    fake = FakeMusicAPI(sonic_duration=120.0)
    async with fake.client() as client:
        refs = await create(client, 2)
        stream = client.as_completed(refs, timeout=None)
        ended: list[float] = []

        async def consume() -> None:
            async for _ in stream:
                pass
            ended.append(anyio.current_time())

        with anyio.fail_after(3600):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                await anyio.sleep(10)
                closed_at = anyio.current_time()
                stream.close()
        assert ended == [closed_at]
        await anyio.sleep(600)
    assert [polls(fake, ref) for ref in refs] == [[], []]


@pytest.mark.parametrize("handling", [0.0, 10.0])
@pytest.mark.parametrize("timeout", [None, 300.0])
async def test_several_consumers_of_one_stream_all_end_when_it_runs_out(
    timeout: float | None, handling: float
) -> None:
    """Workers draining one stream: each result goes to one of them, and once the last is
    handed out every worker ends (none waits for ever on an event nobody sets again, nor
    times out with nothing pending)."""
    fake = FakeMusicAPI(sonic_duration=60.0)  # created, so finished, 3 s apart
    async with fake.client() as client:
        refs = await create(client, 4)
        got: dict[str, list[TaskRef]] = {"a": [], "b": []}
        ended: dict[str, float] = {}
        async with client.as_completed(refs, timeout=timeout) as stream:

            async def worker(name: str) -> None:
                async for task in stream:
                    got[name].append(task.ref)
                    # Handling it (a download, say): 10 s is longer than the next result
                    # takes to come, so the other worker gets that one.
                    await anyio.sleep(handling)
                ended[name] = anyio.current_time()

            with anyio.fail_after(3600):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(worker, "a")
                    tg.start_soon(worker, "b")
    assert sorted(got["a"] + got["b"], key=refs.index) == refs
    if handling:
        assert got["a"]
        assert got["b"]
    last_seen = max(polls(fake, ref)[-1] for ref in refs)
    assert sorted(ended) == ["a", "b"]
    # Each ends once done with its last result: at most two handlings after the last poll.
    assert all(at <= last_seen + 2 * handling for at in ended.values())


async def test_a_waiters_coroutine_callbacks_are_cancelled_when_it_leaves() -> None:
    """A cancelled waiter leaks nothing: its callback still running stops with it."""
    fake = FakeMusicAPI(sonic_duration=60.0, not_ready_style="200")
    ended: list[tuple[str, float]] = []

    async def on_progress(event: TaskProgress) -> None:
        try:
            await anyio.sleep(1000)
            ended.append(("returned", anyio.current_time()))
        except anyio.get_cancelled_exc_class():
            ended.append(("cancelled", anyio.current_time()))
            raise

    async with fake.client() as client:
        (ref,) = await create(client)
        with anyio.move_on_after(30):
            await client.await_task(ref, on_progress=on_progress)
        left = anyio.current_time()
        await anyio.sleep(2000)  # the client goes on serving others
    assert ended
    assert all(how == "cancelled" and at == left for how, at in ended)


async def test_a_slow_callback_of_an_earlier_result_does_not_hold_back_a_later_one() -> None:
    durations = iter([60.0, 90.0])
    fake = FakeMusicAPI(sonic_duration=lambda task: next(durations))

    async def on_progress(event: TaskProgress) -> None:
        if event.ref == first and event.state is ProgressState.SUCCEEDED:
            await anyio.sleep(1000)  # uploading its audio somewhere, say

    async with fake.client() as client:
        first, second = await create(client, 2)
        handed: list[tuple[TaskRef, float]] = []
        stream = client.as_completed([first, second], timeout=None, on_progress=on_progress)
        async with stream:
            async for task in stream:
                handed.append((task.ref, anyio.current_time()))
    assert [ref for ref, _ in handed] == [second, first]
    assert handed[0][1] == polls(fake, second)[-1]  # at once, as its last poll answered
    assert handed[1][1] >= polls(fake, first)[-1] + 1000  # after its own callback


async def test_hours_of_failing_polls_back_off_and_time_out_cleanly() -> None:
    """A long outage must not overflow the backoff (2.0 ** 1024) and take the client down."""
    fake = FakeMusicAPI(sonic_duration=60.0)
    async with fake.client(min_poll_gap=0) as client:
        (ref,) = await create(client)
        fake.inject(task_path(ref), status=503, times=None)
        with pytest.raises(WaitTimeoutError) as caught:
            await client.await_task(ref, timeout=20 * 3600.0)
    assert isinstance(caught.value.__cause__, ServerError)
    sent = polls(fake, ref)
    assert len(sent) > 1024  # past the float overflow of an uncapped doubling
    assert min(b - a for a, b in itertools.pairwise(sent[:20])) >= 1.0  # backs off even at 0


async def test_a_waiter_that_joins_late_hears_where_the_task_stands() -> None:
    """Progress is per waiter: one joining a wait under way is told the current state (audio
    already streaming, say), and one on a finished task is told it finished."""
    fake = FakeMusicAPI(sonic_duration=120.0, not_ready_style="200")
    early: list[str] = []
    late: list[str] = []
    after: list[str] = []
    async with fake.client() as client:
        (ref,) = await create(client)
        async with anyio.create_task_group() as tg:

            async def wait(into: list[str]) -> None:
                await client.await_task(ref, on_progress=lambda e: into.append(e.state.value))

            tg.start_soon(wait, early)
            await anyio.sleep(80)  # streaming by now, and reported so
            assert early == ["streaming"]
            tg.start_soon(wait, late)
        await wait(after)
    assert early == ["streaming", "succeeded"]
    assert late == ["streaming", "succeeded"]
    assert after == ["succeeded"]


async def test_a_coroutine_callback_hears_a_task_that_finished_before_anyone_waited() -> None:
    """The first wait of a client is on a finished task (awaited in an earlier block): its
    coroutine callback runs too, not only a plain function."""
    fake = FakeMusicAPI(sonic_duration=60.0)
    heard: list[str] = []

    async def on_progress(event: TaskProgress) -> None:
        await anyio.sleep(1)
        heard.append(event.state.value)

    client = fake.client()
    async with client:
        (ref,) = await create(client)
        await client.await_task(ref)
    async with client:  # a new block: its scheduler has not started yet
        task = await client.await_task(ref, on_progress=on_progress)
    assert task.succeeded
    assert heard == ["succeeded"]


async def test_a_slow_poll_is_never_overlapped_by_another_poll_of_the_same_task() -> None:
    fake = FakeMusicAPI(sonic_duration=60.0, latency={"/sonic/task/*": 10.0})
    async with fake.client() as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        await client.await_task(ref, timeout=600)
    times = [r.time for r in fake.requests_to(f"/sonic/task/{ref.task_id}")]
    assert len(times) >= 2
    assert min(gaps(times)) >= 10.0


async def test_a_task_failing_for_good_carries_the_results_already_yielded() -> None:
    fake = FakeMusicAPI(sonic_duration=60.0)
    async with fake.client() as client:
        good = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        await anyio.sleep(200)
        fake.inject("/sonic/task/no-such-task", status=503)  # fails for good at its 2nd poll
        got = []
        async with client.as_completed([good, TaskRef("no-such-task")], timeout=600) as stream:
            got.append(await stream.__anext__())
            with pytest.raises(NotFoundError) as caught:
                await stream.__anext__()
    assert [t.ref for t in got] == [good]
    assert caught.value.completed == tuple(got)
    assert caught.value.pending == ()
