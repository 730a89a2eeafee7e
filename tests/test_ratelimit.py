"""TokenBucket: spacing, fairness, priorities, cancellation and 429 pauses, in virtual time.

Every async test runs on asyncio and trio with a virtual clock, so times are exact: the
default bucket grants one token per 3 s plus a small safety margin, and the tests assert the
very instants of the grants. Tests through a client count what :class:`FakeMusicAPI` (whose own
rule is one request per 3 s per key) saw.
"""

from __future__ import annotations

import functools
import gc
import itertools
import math
import threading
import weakref
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock

import anyio
import anyio.lowlevel
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from musicapi_async import (
    APIConnectionError,
    BucketStatistics,
    Limiter,
    LimiterError,
    MusicAPI,
    Priority,
    RateLimitError,
    RetryPolicy,
    TokenBucket,
)
from musicapi_async._ratelimit import limiter_interval
from musicapi_async.testing import FakeMusicAPI, RequestRecord
from tests._virtual_time import VirtualTimeEventLoop

pytestmark = pytest.mark.anyio

DEFAULT = TokenBucket()
#: Seconds the default bucket adds to every interval, and how much each 429 widens that.
MARGIN = DEFAULT.margin
STEP = DEFAULT.margin_step
#: The default bucket's interval: 1 request / 3 s plus the safety margin.
INTERVAL = 3.0 + MARGIN
#: The interval once a 429 has widened the margin by one step.
WIDE = INTERVAL + STEP
USER = Priority.USER
BACKGROUND = Priority.BACKGROUND


def gaps(times: Sequence[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def assert_served(log: Sequence[tuple[str, float]], expected: Sequence[tuple[str, float]]) -> None:
    """The waiters were served in this order, at these instants."""
    assert [name for name, _ in log] == [name for name, _ in expected]
    assert [t for _, t in log] == pytest.approx([t for _, t in expected], abs=1e-9)


def request_times(records: Sequence[RequestRecord]) -> list[float]:
    return [r.time for r in records]


async def acquire_at(
    bucket: TokenBucket,
    delay: float,
    priority: Priority,
    name: str,
    log: list[tuple[str, float]],
) -> None:
    """Sleep ``delay`` s, then acquire and log (name, grant time)."""
    await anyio.sleep(delay)
    with anyio.fail_after(3600):  # a lost wake-up fails the test instead of hanging it
        await bucket.acquire(priority)
    log.append((name, anyio.current_time()))


async def acquire_or_give_up(
    bucket: TokenBucket,
    delay: float,
    give_up_after: float,
    name: str,
    log: list[tuple[str, float]],
) -> None:
    """Sleep ``delay`` s, then acquire, cancelling the wait ``give_up_after`` s later."""
    await anyio.sleep(delay)
    with anyio.move_on_after(give_up_after):
        await bucket.acquire()
        log.append((name, anyio.current_time()))


async def create_song(client: MusicAPI, prompt: str) -> None:
    await client.sonic.create(mv="sonic-v5", gpt_description_prompt=prompt)


# --- defaults and spacing ------------------------------------------------------------------


async def test_the_default_bucket_is_one_request_per_3_s_burst_1_plus_a_small_margin() -> None:
    bucket = TokenBucket()
    assert isinstance(bucket, Limiter)
    assert (bucket.rate, bucket.per, bucket.burst) == (1.0, 3.0, 1)
    assert 0.0 < bucket.margin <= 0.25  # enough for network jitter, small against 3 s
    assert bucket.margin_step > 0.0
    assert bucket.interval == pytest.approx(3.0 + bucket.margin)
    assert bucket.statistics() == BucketStatistics(
        tokens=1.0,
        waiting_user=0,
        waiting_background=0,
        granted=0,
        rate_limited=0,
        throttled_time=0.0,
        margin=MARGIN,
        quick_answers=0,
    )
    assert repr(bucket) == f"TokenBucket(rate=1, per=3, burst=1, margin={MARGIN:g})"


async def test_grants_of_a_default_bucket_are_spaced_exactly_one_interval_apart() -> None:
    bucket = TokenBucket()
    start = anyio.current_time()
    times = []
    for _ in range(6):
        await bucket.acquire()
        times.append(anyio.current_time() - start)
    assert times == pytest.approx([n * INTERVAL for n in range(6)], abs=1e-9)
    assert bucket.statistics().granted == 6


async def test_an_idle_bucket_refills_up_to_burst_and_no_further() -> None:
    bucket = TokenBucket(rate=1, per=3.0, burst=3)
    start = anyio.current_time()
    times = []
    for _ in range(4):
        await bucket.acquire()
        times.append(anyio.current_time() - start)
    assert times == pytest.approx([0.0, 0.0, 0.0, INTERVAL], abs=1e-9)
    await anyio.sleep(1000)  # long enough for 300 tokens: only 3 are kept
    assert bucket.statistics().tokens == pytest.approx(3.0)
    restart = anyio.current_time()
    times = []
    for _ in range(4):
        await bucket.acquire()
        times.append(anyio.current_time() - restart)
    assert times == pytest.approx([0.0, 0.0, 0.0, INTERVAL], abs=1e-9)


async def test_rate_and_per_set_the_interval_and_margin_adds_to_it() -> None:
    bucket = TokenBucket(rate=2, per=1.0, margin=0.25)  # 0.5 s + 0.25 s
    assert bucket.interval == pytest.approx(0.75)
    start = anyio.current_time()
    times = []
    for _ in range(4):
        await bucket.acquire()
        times.append(anyio.current_time() - start)
    assert times == pytest.approx([0.0, 0.75, 1.5, 2.25], abs=1e-9)


# --- fairness under load -------------------------------------------------------------------


async def test_300_concurrent_callers_are_served_one_interval_apart_in_arrival_order() -> None:
    bucket = TokenBucket()
    arrivals: list[int] = []
    grants: list[tuple[int, float]] = []

    async def caller(n: int) -> None:
        # Arrivals interleave (and collide) so that arrival order is not the spawn order.
        await anyio.sleep((n * 7 % 11) * 0.3)
        arrivals.append(n)  # no checkpoint until acquire queues it
        await bucket.acquire()
        grants.append((n, anyio.current_time()))

    async with anyio.create_task_group() as tg:
        for n in range(300):
            tg.start_soon(caller, n)
    assert [n for n, _ in grants] == arrivals
    times = [t for _, t in grants]
    assert min(gaps(times)) >= 3.0
    assert gaps(times) == pytest.approx([INTERVAL] * 299, abs=1e-6)
    assert bucket.statistics().granted == 300


async def test_one_client_under_120_concurrent_calls_draws_no_429_from_the_fake() -> None:
    fake = FakeMusicAPI()  # its own rule: one request per 3 s per key
    async with fake.client() as client, anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(client.credits.get)
        for n in range(20):
            tg.start_soon(create_song, client, f"song {n}")
    assert fake.rate_limited() == 0
    assert len(fake.requests) == 120
    assert len(fake.requests_to("/sonic/create")) == 20
    assert min(gaps(request_times(fake.requests))) >= 3.0
    assert all(r.status == 200 for r in fake.requests)


async def test_two_clients_sharing_one_bucket_stay_under_the_keys_budget_together() -> None:
    fake = FakeMusicAPI()
    bucket = TokenBucket()
    async with fake.client(limiter=bucket) as a, fake.client(limiter=bucket) as b:
        assert a.limiter is bucket
        assert b.limiter is bucket
        async with anyio.create_task_group() as tg:
            for _ in range(60):
                tg.start_soon(a.credits.get)
                tg.start_soon(b.credits.get)
    assert fake.rate_limited() == 0
    assert len(fake.requests) == 120
    assert min(gaps(request_times(fake.requests))) >= 3.0
    assert bucket.statistics().granted == 120


async def test_two_clients_with_a_bucket_each_do_draw_429s_on_one_key() -> None:
    """The control for the test above: without sharing, the key's budget is overrun."""
    fake = FakeMusicAPI()
    refused: list[RateLimitError] = []

    async def get_credits(client: MusicAPI) -> None:
        try:
            await client.credits.get()
        except RateLimitError as exc:
            refused.append(exc)

    async with (
        fake.client(max_retries=0) as a,
        fake.client(max_retries=0) as b,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(get_credits, a)
        tg.start_soon(get_credits, b)
    assert fake.rate_limited() == 1
    assert len(refused) == 1


# --- priorities ----------------------------------------------------------------------------


async def test_user_waiters_arriving_later_are_served_before_queued_background_waiters() -> None:
    bucket = TokenBucket()
    await bucket.acquire(BACKGROUND)  # t=0: the token is gone, everyone below queues
    log: list[tuple[str, float]] = []
    stats: list[BucketStatistics] = []

    async def snapshot(at: float) -> None:
        await anyio.sleep(at)
        stats.append(bucket.statistics())

    async with anyio.create_task_group() as tg:
        tg.start_soon(acquire_at, bucket, 0.1, BACKGROUND, "bg1", log)
        tg.start_soon(acquire_at, bucket, 0.2, BACKGROUND, "bg2", log)
        tg.start_soon(acquire_at, bucket, 0.3, BACKGROUND, "bg3", log)
        tg.start_soon(acquire_at, bucket, 1.0, USER, "user1", log)
        tg.start_soon(acquire_at, bucket, 1.5, USER, "user2", log)
        tg.start_soon(snapshot, 2.0)
        tg.start_soon(snapshot, 7.0)
    assert_served(
        log,
        [
            ("user1", INTERVAL),
            ("user2", 2 * INTERVAL),
            # The overtaken background waiters go right after, still first come, first served.
            ("bg1", 3 * INTERVAL),
            ("bg2", 4 * INTERVAL),
            ("bg3", 5 * INTERVAL),
        ],
    )
    assert (stats[0].waiting_user, stats[0].waiting_background) == (2, 3)
    assert (stats[1].waiting_user, stats[1].waiting_background) == (0, 3)


async def test_a_user_request_overtakes_a_background_waiter_due_at_the_same_instant() -> None:
    """The background head sleeps toward its token; a user arriving 3 s in still goes first."""
    bucket = TokenBucket()
    await bucket.acquire()
    log: list[tuple[str, float]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(acquire_at, bucket, 0.0, BACKGROUND, "poll", log)
        tg.start_soon(acquire_at, bucket, 3.0, USER, "create", log)
    assert_served(log, [("create", INTERVAL), ("poll", 2 * INTERVAL)])


async def test_a_user_request_on_an_idle_bucket_is_granted_at_once() -> None:
    bucket = TokenBucket()
    await bucket.acquire(BACKGROUND)
    await anyio.sleep(10)
    start = anyio.current_time()
    await bucket.acquire(USER)
    assert anyio.current_time() == start


# --- cancellation --------------------------------------------------------------------------


async def test_a_cancelled_head_waiter_takes_no_token_and_delays_no_one() -> None:
    bucket = TokenBucket()
    await bucket.acquire()
    log: list[tuple[str, float]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(acquire_or_give_up, bucket, 0.1, 1.0, "head", log)  # gone at 1.1
        tg.start_soon(acquire_at, bucket, 0.5, USER, "next", log)
        tg.start_soon(acquire_at, bucket, 0.6, USER, "last", log)
        await anyio.sleep(2.0)
        assert bucket.statistics().waiting_user == 2
        assert bucket.statistics().granted == 1
    # Exactly when they would have been served had "head" never come.
    assert_served(log, [("next", INTERVAL), ("last", 2 * INTERVAL)])
    assert bucket.statistics().granted == 3


async def test_a_cancelled_waiter_in_the_middle_of_the_queue_takes_no_token() -> None:
    bucket = TokenBucket()
    await bucket.acquire()
    log: list[tuple[str, float]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(acquire_at, bucket, 0.1, USER, "first", log)
        tg.start_soon(acquire_or_give_up, bucket, 0.2, 2.0, "middle", log)  # gone at 2.2
        tg.start_soon(acquire_at, bucket, 0.3, USER, "last", log)
    assert_served(log, [("first", INTERVAL), ("last", 2 * INTERVAL)])
    assert bucket.statistics().granted == 3


async def test_cancelling_the_user_head_lets_a_background_waiter_go_on_time() -> None:
    bucket = TokenBucket()
    await bucket.acquire()
    log: list[tuple[str, float]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(acquire_at, bucket, 0.1, BACKGROUND, "poll", log)
        tg.start_soon(acquire_or_give_up, bucket, 0.2, 1.0, "create", log)
    assert_served(log, [("poll", INTERVAL)])


async def test_an_acquire_in_an_already_cancelled_scope_takes_nothing() -> None:
    bucket = TokenBucket()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await bucket.acquire()
        pytest.fail("acquire must raise the cancellation")  # pragma: no cover
    stats = bucket.statistics()
    assert (stats.granted, stats.tokens, stats.waiting_user) == (0, 1.0, 0)


async def test_many_waiters_cancelled_at_random_leave_the_survivors_on_schedule() -> None:
    bucket = TokenBucket()
    log: list[tuple[str, float]] = []
    async with anyio.create_task_group() as tg:
        for n in range(40):
            if n % 3 == 1:  # gives up after 5 + n s, some before their turn, some not
                tg.start_soon(acquire_or_give_up, bucket, n * 0.01, 5.0 + n, str(n), log)
            else:
                tg.start_soon(acquire_at, bucket, n * 0.01, USER, str(n), log)
    served = [int(name) for name, _ in log]
    assert served == sorted(served)
    assert set(range(0, 40, 3)) | set(range(2, 40, 3)) <= set(served)
    assert len(served) < 40
    assert gaps([t for _, t in log]) == pytest.approx([INTERVAL] * (len(log) - 1), abs=1e-6)
    assert bucket.statistics().granted == len(log)


# --- acquire_nowait ------------------------------------------------------------------------


async def test_acquire_nowait_takes_a_free_token_or_raises_would_block_taking_nothing() -> None:
    bucket = TokenBucket()
    bucket.acquire_nowait()
    assert bucket.statistics().granted == 1
    with pytest.raises(anyio.WouldBlock):
        bucket.acquire_nowait()
    with pytest.raises(anyio.WouldBlock):
        bucket.acquire_nowait(BACKGROUND)
    assert bucket.statistics().granted == 1
    await anyio.sleep(3.0)  # the server's 3 s have passed, but not the margin
    with pytest.raises(anyio.WouldBlock):
        bucket.acquire_nowait()
    await anyio.sleep(MARGIN)
    bucket.acquire_nowait()
    assert bucket.statistics().granted == 2
    # A blocking waiter is then due one full interval later: nowait did take the token.
    start = anyio.current_time()
    await bucket.acquire()
    assert anyio.current_time() - start == pytest.approx(INTERVAL)


async def test_acquire_nowait_does_not_jump_a_queue_of_equal_or_higher_priority() -> None:
    """A token is free while others queue (the instant a paused burst bucket reopens)."""
    bucket = TokenBucket(rate=1, per=3.0, burst=2)
    bucket.on_rate_limited(10.0)  # two tokens are due when the pause ends
    outcome: dict[str, object] = {}

    async def head() -> None:
        await bucket.acquire()
        # No checkpoint since the grant: the queued waiters have not run yet.
        outcome["stats"] = bucket.statistics()
        for priority in (USER, BACKGROUND):
            try:
                bucket.acquire_nowait(priority)
            except anyio.WouldBlock:
                outcome[priority.name] = "would block"
            else:
                outcome[priority.name] = "granted"

    log: list[tuple[str, float]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(head)
        tg.start_soon(acquire_at, bucket, 1.0, USER, "queued user", log)
    stats = outcome["stats"]
    assert isinstance(stats, BucketStatistics)
    assert stats.tokens == pytest.approx(1.0)
    assert stats.waiting_user == 1
    assert outcome == {"stats": stats, "USER": "would block", "BACKGROUND": "would block"}
    assert_served(log, [("queued user", 10.0 + MARGIN)])


async def test_a_user_acquire_nowait_may_pass_queued_background_waiters() -> None:
    bucket = TokenBucket(rate=1, per=3.0, burst=2)
    bucket.on_rate_limited(10.0)
    log: list[tuple[str, float]] = []

    async def head() -> None:
        await bucket.acquire()
        bucket.acquire_nowait(USER)  # only a background poll waits: the user goes first
        log.append(("nowait", anyio.current_time()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(head)
        tg.start_soon(acquire_at, bucket, 1.0, BACKGROUND, "poll", log)
    assert_served(log, [("nowait", 10.0 + MARGIN), ("poll", 10.0 + MARGIN + WIDE)])
    assert bucket.statistics().granted == 3


async def test_acquire_nowait_during_a_429_pause_raises_would_block() -> None:
    bucket = TokenBucket(burst=5)
    bucket.on_rate_limited(4.0)
    with pytest.raises(anyio.WouldBlock):
        bucket.acquire_nowait()
    await anyio.sleep(4.0)
    with pytest.raises(anyio.WouldBlock):
        bucket.acquire_nowait()  # the pause is Retry-After plus the margin
    await anyio.sleep(MARGIN)
    bucket.acquire_nowait()


# --- 429 feedback --------------------------------------------------------------------------


async def test_on_rate_limited_pauses_every_waiter_until_retry_after_plus_margin() -> None:
    bucket = TokenBucket()
    await bucket.acquire()
    await anyio.sleep(1.0)
    bucket.on_rate_limited(10.0)  # at t=1: nobody before t=11 + margin
    stats = bucket.statistics()
    assert stats.rate_limited == 1
    assert stats.throttled_time == pytest.approx(10.0 + MARGIN)
    assert stats.margin == pytest.approx(MARGIN + STEP)
    assert stats.tokens == 0.0
    log: list[tuple[str, float]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(acquire_at, bucket, 0.0, BACKGROUND, "poll", log)
        tg.start_soon(acquire_at, bucket, 0.5, USER, "create", log)
        tg.start_soon(acquire_at, bucket, 9.0, USER, "credits", log)
    # After the pause one token, then the widened interval.
    assert_served(
        log,
        [
            ("create", 11.0 + MARGIN),
            ("credits", 11.0 + MARGIN + WIDE),
            ("poll", 11.0 + MARGIN + 2 * WIDE),
        ],
    )
    assert bucket.statistics().throttled_time == pytest.approx(10.0 + MARGIN)


async def test_on_rate_limited_without_retry_after_pauses_one_interval() -> None:
    bucket = TokenBucket()
    bucket.on_rate_limited(None)
    start = anyio.current_time()
    await bucket.acquire()
    # One (widened) interval, plus the margin.
    assert anyio.current_time() - start == pytest.approx(WIDE + MARGIN)
    assert bucket.statistics().throttled_time == pytest.approx(WIDE + MARGIN)


async def test_overlapping_429_pauses_count_throttled_time_once() -> None:
    bucket = TokenBucket(margin_step=0.0)
    bucket.on_rate_limited(10.0)  # until 10 s + margin
    await anyio.sleep(1.0)
    bucket.on_rate_limited(5.0)  # until 6 s + margin: inside the first pause
    assert bucket.statistics().throttled_time == pytest.approx(10.0 + MARGIN)
    await anyio.sleep(2.0)
    bucket.on_rate_limited(10.0)  # until 13 s + margin: 3 s more than the first
    stats = bucket.statistics()
    assert stats.throttled_time == pytest.approx(13.0 + MARGIN)
    assert stats.rate_limited == 3
    start = anyio.current_time()
    await bucket.acquire()
    assert anyio.current_time() - start == pytest.approx(10.0 + MARGIN)


async def test_429s_widen_the_margin_by_margin_step_up_to_max_margin() -> None:
    bucket = TokenBucket(margin=0.1, margin_step=0.1, max_margin=0.35)
    margins = []
    for _ in range(5):
        bucket.on_rate_limited(0.0)
        margins.append(bucket.statistics().margin)
    assert margins == pytest.approx([0.2, 0.3, 0.35, 0.35, 0.35])
    assert bucket.interval == pytest.approx(3.35)


async def test_the_margin_recovers_one_step_per_recover_after_clean_grants() -> None:
    bucket = TokenBucket(margin=0.1, margin_step=0.1, recover_after=5)
    bucket.on_rate_limited(0.0)
    bucket.on_rate_limited(0.0)
    assert bucket.statistics().margin == pytest.approx(0.3)
    margins = []
    for _ in range(10):
        await bucket.acquire()
        margins.append(bucket.statistics().margin)
    assert margins == pytest.approx([0.3] * 4 + [0.2] * 5 + [0.1])
    # Never below the configured margin.
    for _ in range(10):
        await bucket.acquire()
    assert bucket.statistics().margin == pytest.approx(0.1)
    start = anyio.current_time()
    await bucket.acquire()
    assert anyio.current_time() - start == pytest.approx(3.1)


async def test_a_429_in_the_middle_of_recovery_restarts_the_count_of_clean_grants() -> None:
    bucket = TokenBucket(margin=0.1, margin_step=0.1, recover_after=3)
    bucket.on_rate_limited(0.0)
    await bucket.acquire()
    await bucket.acquire()
    bucket.on_rate_limited(0.0)  # 2 clean grants forgotten; margin 0.3 now
    for _ in range(2):
        await bucket.acquire()
    assert bucket.statistics().margin == pytest.approx(0.3)
    await bucket.acquire()
    assert bucket.statistics().margin == pytest.approx(0.2)


async def test_a_429_on_one_client_holds_back_the_other_client_sharing_the_bucket() -> None:
    fake = FakeMusicAPI()
    fake.inject("/get-credits", status=429, headers={"Retry-After": "10"})
    bucket = TokenBucket()
    async with fake.client(limiter=bucket) as a, fake.client(limiter=bucket) as b:
        sent_b_at: list[float] = []

        async def b_call() -> None:
            await anyio.sleep(0.5)
            sent_b_at.append(anyio.current_time())
            await b.credits.get()

        async with anyio.create_task_group() as tg:
            tg.start_soon(a.credits.get)  # t=0: 429, Retry-After 10
            tg.start_soon(b_call)
    first, *rest = fake.requests
    assert (first.time, first.status, first.injected) == (0.0, 429, True)
    # b asked at 0.5 s but waited for the pause like a did: no herd at t=10.
    assert [r.status for r in rest] == [200, 200]
    assert rest[0].time == pytest.approx(10.0 + MARGIN)
    # Answered at once: 3 s later, plus the step the 429 added (the base margin given back).
    assert rest[1].time == pytest.approx(10.0 + MARGIN + 3.0 + STEP)
    assert fake.rate_limited() == 0
    stats = bucket.statistics()
    assert (stats.rate_limited, stats.granted) == (1, 3)
    assert stats.throttled_time == pytest.approx(10.0 + MARGIN)


async def test_a_429_from_the_server_pauses_the_bucket_and_the_retry_succeeds() -> None:
    """Someone else spent the key's budget: the 429 is fed back and no second one follows."""
    fake = FakeMusicAPI()
    bucket = TokenBucket()
    async with fake.client() as outsider:
        await outsider.credits.get()  # t=0, with its own bucket
    async with fake.client(limiter=bucket) as client, anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(client.credits.get)
    assert fake.rate_limited() == 1
    assert bucket.statistics().rate_limited == 1
    statuses = [r.status for r in fake.requests]
    assert statuses == [200, 429, 200, 200, 200, 200, 200]


# --- statistics ----------------------------------------------------------------------------


async def test_statistics_follow_every_step_of_the_bucket() -> None:
    bucket = TokenBucket()

    def check(tokens: float, user: int, background: int, granted: int) -> BucketStatistics:
        stats = bucket.statistics()
        assert stats.tokens == pytest.approx(tokens)
        assert (stats.waiting_user, stats.waiting_background, stats.granted) == (
            user,
            background,
            granted,
        )
        return stats

    check(1.0, 0, 0, 0)
    await bucket.acquire()
    check(0.0, 0, 0, 1)
    await anyio.sleep(INTERVAL / 2)
    check(0.5, 0, 0, 1)
    log: list[tuple[str, float]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(acquire_at, bucket, 0.0, BACKGROUND, "poll 1", log)
        tg.start_soon(acquire_at, bucket, 0.1, BACKGROUND, "poll 2", log)
        tg.start_soon(acquire_at, bucket, 0.2, USER, "create", log)
        await anyio.sleep(0.5)
        check(0.5 + 0.5 / INTERVAL, 1, 2, 1)
        await anyio.sleep(INTERVAL / 2 - 0.4)  # the create went at one interval
        check(0.1 / INTERVAL, 0, 2, 2)
        bucket.on_rate_limited(5.0)  # everyone waits 5 s + margin
        stats = check(0.0, 0, 2, 2)
        assert stats.rate_limited == 1
        assert stats.throttled_time == pytest.approx(5.0 + MARGIN)
        assert stats.margin == pytest.approx(MARGIN + STEP)
        await anyio.sleep(5.0)
        check(0.0, 0, 2, 2)  # still paused, though tokens have accrued meanwhile
    resumed = INTERVAL + 0.1 + 5.0 + MARGIN
    assert_served(log, [("create", INTERVAL), ("poll 1", resumed), ("poll 2", resumed + WIDE)])
    stats = check(0.0, 0, 0, 4)
    assert stats.rate_limited == 1
    assert stats.throttled_time == pytest.approx(5.0 + MARGIN)
    assert stats.margin == pytest.approx(MARGIN + STEP)


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0}, "rate must be a positive number"),
        ({"rate": -1}, "rate must be a positive number"),
        ({"rate": math.nan}, "rate must be a positive number"),
        ({"rate": math.inf}, "rate must be a positive number"),
        ({"rate": "1"}, "rate must be a positive number"),
        ({"per": 0}, "per must be a positive number of seconds"),
        ({"per": -3.0}, "per must be a positive number of seconds"),
        ({"per": math.inf}, "per must be a positive number of seconds"),
        ({"burst": 0}, "burst must be a whole number of at least 1"),
        ({"burst": 1.5}, "burst must be a whole number of at least 1"),
        ({"burst": True}, "burst must be a whole number of at least 1"),
        ({"margin": -0.1}, "margin must be a non-negative number of seconds"),
        ({"margin": math.nan}, "margin must be a non-negative number of seconds"),
        ({"margin_step": -1}, "margin_step must be a non-negative number of seconds"),
        ({"max_margin": math.inf}, "max_margin must be a non-negative number of seconds"),
        ({"recover_after": 0}, "recover_after must be a whole number of at least 1"),
        ({"recover_after": 2.5}, "recover_after must be a whole number of at least 1"),
    ],
)
def test_bad_bucket_settings_raise_value_error_naming_the_setting(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        TokenBucket(**kwargs)
    value = next(iter(kwargs.values()))
    if kwargs.keys() & {"rate", "per", "burst"}:
        assert repr(value) in str(info.value)  # the message shows what was given


def test_max_margin_below_margin_is_raised_to_margin() -> None:
    bucket = TokenBucket(margin=0.5, max_margin=0.2)
    assert bucket.max_margin == 0.5


def test_a_client_rejects_a_limiter_that_is_not_one() -> None:
    fake = FakeMusicAPI()
    with pytest.raises(TypeError, match="limiter must be a TokenBucket"):
        MusicAPI(api_key="k", base_url=fake.base_url, limiter=object())  # type: ignore[arg-type]


async def test_a_client_without_a_limiter_sends_calls_unpaced() -> None:
    fake = FakeMusicAPI(rate_limit=None)
    async with fake.client(limiter=None) as client:
        assert client.limiter is None
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(client.credits.get)
    assert request_times(fake.requests) == [0.0] * 5


async def test_every_retry_attempt_passes_through_the_bucket() -> None:
    fake = FakeMusicAPI()
    fake.inject("/get-credits", status=500, times=2)
    bucket = TokenBucket()
    async with fake.client(limiter=bucket, retry=RetryPolicy(jitter=0.0)) as client:
        await client.credits.get()
    assert bucket.statistics().granted == 3
    # 3 s apart, not less: each answer came at once (and gave the margin back).
    assert min(gaps(request_times(fake.requests))) >= 3.0 - 1e-9


# --- the Limiter protocol, as a second backend sees it --------------------------------------


class StoreLimiter:
    """A second backend, as one whose state lives in a shared store would be written: only
    the protocol's two methods, the 429 report a coroutine (a round trip to the store)."""

    def __init__(self, report_delay: float = 1.0, report_error: Exception | None = None):
        self.inner = TokenBucket()
        self.report_delay = report_delay
        self.report_error = report_error
        self.reported: list[tuple[float | None, float]] = []  # (retry_after, when stored)

    async def acquire(self, priority: Priority = Priority.USER) -> None:
        await self.inner.acquire(priority)

    async def on_rate_limited(self, retry_after: float | None) -> None:
        await anyio.sleep(self.report_delay)
        if self.report_error is not None:
            raise self.report_error
        self.inner.on_rate_limited(retry_after)
        self.reported.append((retry_after, anyio.current_time()))


async def test_an_async_429_report_of_a_two_method_limiter_is_awaited_before_the_retry() -> None:
    fake = FakeMusicAPI()
    fake.inject("/get-credits", status=429, headers={"Retry-After": "10"})
    limiter = StoreLimiter()
    async with fake.client(limiter=limiter) as client:
        await client.credits.get()
    # Stored 1 s after the 429 (the round trip), and the retry waited for the pause.
    [(retry_after, stored_at)] = limiter.reported
    assert retry_after == 10.0
    assert stored_at == pytest.approx(1.0)
    first, retry = fake.requests
    assert (first.status, retry.status) == (429, 200)
    assert retry.time >= 10.0


async def test_a_429_report_that_fails_is_logged_and_the_call_behaves_as_for_any_429(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeMusicAPI()
    fake.inject("/get-credits", status=429, headers={"Retry-After": "5"})
    fake.inject("/sonic/create", status=429, headers={"Retry-After": "5"})
    limiter = StoreLimiter(report_error=ConnectionError("store down at redis://:hunter2@db"))
    async with fake.client(limiter=limiter) as client:
        assert (await client.credits.get()).credits >= 0  # retried as usual
        with pytest.raises(RateLimitError) as caught:
            await client.with_options(max_retries=0).sonic.create(
                mv="sonic-v5", gpt_description_prompt="x"
            )
    assert not caught.value.task_may_exist  # a 429: nothing was made
    assert "could not record a 429" in caplog.text
    assert "hunter2" not in caplog.text


async def test_a_429_report_that_hangs_is_given_up_after_five_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeMusicAPI()
    fake.inject("/get-credits", status=429, headers={"Retry-After": "1"})
    limiter = StoreLimiter(report_delay=math.inf)
    async with fake.client(limiter=limiter) as client:
        await client.credits.get()
    _, retry = fake.requests
    assert retry.time == pytest.approx(5.0 + 1.0, abs=0.5)  # the report's 5 s, then the wait
    assert "took over 5 s to record a 429" in caplog.text


async def test_a_failing_limiter_reaches_a_direct_call_as_limiter_error() -> None:
    class Down:
        async def acquire(self, priority: Priority = Priority.USER) -> None:
            raise ConnectionError("cannot reach redis://:hunter2@db.internal:6379")

        def on_rate_limited(self, retry_after: float | None) -> None:
            pass

    fake = FakeMusicAPI()
    async with fake.client(limiter=Down()) as client:
        with pytest.raises(LimiterError) as caught:
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert not caught.value.task_may_exist
    assert "not sent" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert not fake.requests


def test_a_limiter_whose_acquire_is_not_a_coroutine_function_is_refused_at_once() -> None:
    class Sync:
        def acquire(self, priority: Priority = Priority.USER) -> None:
            pass

        def on_rate_limited(self, retry_after: float | None) -> None:
            pass

    with pytest.raises(TypeError, match="coroutine function"):
        MusicAPI(api_key="k", limiter=Sync())  # type: ignore[arg-type]


async def test_without_a_limiter_a_429_holds_back_the_background_polls_too() -> None:
    """limiter=None leaves the user's calls unpaced, but the polls keep their own bucket,
    which must hear the server's Retry-After."""
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=30.0)
    async with fake.client(limiter=None) as client:
        refs = [await client.sonic.create(mv="sonic-v5", gpt_description_prompt=p) for p in "abc"]
        fake.inject("/sonic/task/*", status=429, headers={"Retry-After": "20"})
        await client.await_task(refs)
    polls = fake.requests_to("/sonic/task/*")
    throttled = next(r for r in polls if r.status == 429)
    after = [r.time for r in polls if r.time > throttled.time]
    assert after, "the other tasks were polled after the 429"
    assert min(after) >= throttled.time + 20.0


@pytest.mark.parametrize(
    ("interval", "expected"),
    [(6.0, 6.0), (2, 2.0), (None, 3.0), (0.0, 3.0), (math.inf, 3.0), (True, 3.0), ("6", 3.0)],
)
def test_a_limiters_optional_interval_is_read_only_when_it_is_a_positive_number(
    interval: object, expected: float
) -> None:
    class Store(StoreLimiter):
        pass

    limiter = Store()
    if interval is not None:
        limiter.interval = interval  # type: ignore[attr-defined]
    assert limiter_interval(limiter) == expected
    assert limiter_interval(TokenBucket(rate=1, per=6.0)) == pytest.approx(6.1)


# --- the property --------------------------------------------------------------------------

Arrival = tuple[float, Priority, str, float]
arrivals_strategy = st.lists(
    st.tuples(
        st.floats(0.0, 40.0, allow_nan=False),  # when it arrives, seconds
        st.sampled_from(list(Priority)),
        st.sampled_from(["wait", "wait", "wait", "nowait", "give_up"]),
        st.floats(0.0, 20.0, allow_nan=False),  # how long a "give_up" waiter waits
    ),
    min_size=1,
    max_size=25,
)


def run_schedule(
    bucket_args: tuple[float, float, int, float], arrivals: Sequence[Arrival]
) -> tuple[BucketStatistics, list[tuple[int, Priority, float]], list[tuple[int, Priority]]]:
    """Run the arrivals against a fresh bucket under trio's MockClock.

    Returns the bucket's final statistics, the grants (arrival index, priority, time) in
    grant order, and the order in which the acquirers reached the bucket.
    """
    rate, per, burst, margin = bucket_args
    grants: list[tuple[int, Priority, float]] = []
    reached: list[tuple[int, Priority]] = []
    final: list[BucketStatistics] = []
    bucket = TokenBucket(rate, per, burst=burst, margin=margin)

    async def acquirer(
        index: int, delay: float, priority: Priority, kind: str, patience: float
    ) -> None:
        await trio.sleep(delay)
        if kind == "nowait":
            try:
                bucket.acquire_nowait(priority)
            except anyio.WouldBlock:
                return
            grants.append((index, priority, trio.current_time()))
            return
        with trio.move_on_after(patience if kind == "give_up" else math.inf):
            reached.append((index, priority))
            await bucket.acquire(priority)
            grants.append((index, priority, trio.current_time()))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for index, (delay, priority, kind, patience) in enumerate(arrivals):
                nursery.start_soon(acquirer, index, delay, priority, kind, patience)
        final.append(bucket.statistics())

    trio.run(main, clock=MockClock(autojump_threshold=0))
    return final[0], grants, reached


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(0.5, 5.0),
    per=st.floats(0.5, 10.0),
    burst=st.integers(1, 5),
    margin=st.floats(0.0, 0.5),
    arrivals=arrivals_strategy,
)
def test_the_bucket_never_grants_more_than_burst_plus_rate_times_elapsed(
    rate: float, per: float, burst: int, margin: float, arrivals: list[Arrival]
) -> None:
    stats, grants, reached = run_schedule((rate, per, burst, margin), arrivals)
    times = [t for _, _, t in grants]
    assert times == sorted(times)
    interval = per / rate + margin
    for i, j in itertools.combinations_with_replacement(range(len(times)), 2):
        elapsed = times[j] - times[i]
        assert j - i + 1 <= burst + rate * elapsed / per + 1e-9
        # The margin is kept too: tokens come one interval apart.
        assert j - i + 1 <= burst + elapsed / interval + 1e-6
    # Nobody who kept waiting was left behind, and the count adds up.
    patient = {n for n, (_, _, kind, _) in enumerate(arrivals) if kind == "wait"}
    assert patient <= {n for n, _, _ in grants}
    assert stats.granted == len(grants)
    assert stats.waiting_user == stats.waiting_background == 0
    # First come, first served within each priority: by arrival, grant times never go back.
    granted_at = {n: t for n, _, t in grants}
    for priority in Priority:
        served = [granted_at[n] for n, p in reached if p is priority and n in granted_at]
        assert served == sorted(served)


# --- answers give back the margin -------------------------------------------------------------


async def test_an_answer_within_the_margin_lets_the_next_grant_come_per_after_it() -> None:
    """The server saw the request before answering it: the jitter the margin is for is
    ruled out, and the next token comes 3 s after the answer, not 3 s plus margin after the
    grant."""
    bucket = TokenBucket()
    ticket = await bucket.acquire()
    await anyio.sleep(0.04)
    bucket.on_answered(ticket)
    await bucket.acquire()
    assert anyio.current_time() == pytest.approx(3.04)
    assert bucket.statistics().quick_answers == 1
    assert bucket.statistics().margin == MARGIN  # the setting is unchanged


async def test_an_answer_slower_than_the_margin_leaves_the_interval_whole() -> None:
    bucket = TokenBucket()
    ticket = await bucket.acquire()
    await anyio.sleep(MARGIN + 0.3)
    bucket.on_answered(ticket)
    await bucket.acquire()
    assert anyio.current_time() == pytest.approx(INTERVAL)
    assert bucket.statistics().quick_answers == 0


async def test_only_the_latest_grant_s_answer_counts_and_only_once() -> None:
    bucket = TokenBucket()
    first = await bucket.acquire()  # t=0, its answer late
    second = await bucket.acquire()  # t=INTERVAL, its answer late too
    bucket.on_answered(first)  # an older request's answer says nothing of the latest one
    third = await bucket.acquire()
    assert anyio.current_time() == pytest.approx(2 * INTERVAL)
    bucket.on_answered(second)  # nor does this one now: the third is the latest
    assert bucket.statistics().quick_answers == 0
    bucket.on_answered(third)
    bucket.on_answered(third)  # twice: the margin is given back once
    await bucket.acquire()
    assert anyio.current_time() == pytest.approx(2 * INTERVAL + 3.0)
    assert bucket.statistics().quick_answers == 1


async def test_an_answer_during_a_429_pause_changes_nothing_and_a_429s_margin_stays() -> None:
    bucket = TokenBucket()
    first = await bucket.acquire()
    bucket.on_rate_limited(10.0)  # paused until 10 s plus margin; the margin one step wider
    bucket.on_answered(first)
    second = await bucket.acquire()
    assert anyio.current_time() == pytest.approx(10.0 + MARGIN)
    assert bucket.statistics().quick_answers == 0
    # Answered at once, the next grant gives back the base margin only: the step the 429
    # added stays until recover_after clean grants.
    bucket.on_answered(second)
    await bucket.acquire()
    assert anyio.current_time() == pytest.approx(10.0 + MARGIN + 3.0 + STEP)
    assert bucket.statistics().quick_answers == 1


@pytest.mark.parametrize("ticket", [None, object(), "grant", "another bucket's"])
async def test_a_ticket_the_bucket_did_not_give_is_ignored(ticket: object) -> None:
    if ticket == "another bucket's":
        ticket = TokenBucket().acquire_nowait()
    bucket = TokenBucket()
    await bucket.acquire()
    bucket.on_answered(ticket)
    await bucket.acquire()
    assert anyio.current_time() == pytest.approx(INTERVAL)
    assert bucket.statistics().quick_answers == 0


async def test_with_a_burst_above_1_an_answer_gives_nothing_back() -> None:
    """Tokens saved up are not spaced one by one: one answer bounds no later grant."""
    bucket = TokenBucket(burst=2)
    for _ in range(2):
        bucket.on_answered(await bucket.acquire())  # the saved-up pair, answered at once
    await bucket.acquire()
    assert anyio.current_time() == pytest.approx(INTERVAL)
    assert bucket.statistics().quick_answers == 0


async def test_a_429_after_an_answer_takes_the_margin_it_gave_back() -> None:
    bucket = TokenBucket()
    bucket.on_answered(await bucket.acquire())  # the next token would come at 3.0 s
    bucket.on_rate_limited(None)  # another request's 429: one (wider) interval, plus margin
    await bucket.acquire()
    assert anyio.current_time() == pytest.approx(INTERVAL + STEP + MARGIN)


def test_an_answer_reported_in_another_event_loop_than_its_grant_gives_nothing_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No real time passes between the runs, so the wait is exact.
    monkeypatch.setattr("musicapi_async._clock.time", SimpleNamespace(monotonic=lambda: 1e3))
    bucket = TokenBucket()
    tickets: list[object] = []

    async def grant() -> None:
        tickets.append(await bucket.acquire())

    async def answer_then_request() -> float:
        bucket.on_answered(tickets[0])  # its time in the other loop is an estimate here
        return await seconds_to_a_slot(bucket)

    run_on_clock(50_000.0, grant)
    assert run_on_clock(100_000.0, answer_then_request) == pytest.approx(INTERVAL)
    assert bucket.statistics().quick_answers == 0


class AnsweredLimiter:
    """A two-method limiter that also asks for answers, and records what it is told."""

    def __init__(self, fail: bool = False) -> None:
        self.inner = TokenBucket()
        self.fail = fail
        self.granted: list[object] = []
        self.answered: list[tuple[object, float]] = []

    async def acquire(self, priority: Priority = Priority.USER) -> object:
        ticket = await self.inner.acquire(priority)
        self.granted.append(ticket)
        return ticket

    def on_rate_limited(self, retry_after: float | None) -> None:
        self.inner.on_rate_limited(retry_after)

    def on_answered(self, ticket: object) -> None:
        self.answered.append((ticket, anyio.current_time()))
        if self.fail:
            raise ConnectionError("store down at redis://:hunter2@db")
        self.inner.on_answered(ticket)


async def test_the_sdk_hands_each_answered_slot_back_after_its_answer_but_not_a_429s() -> None:
    fake = FakeMusicAPI(latency={"/get-credits": 0.05})
    fake.inject("/get-credits", status=429, headers={"Retry-After": "5"})
    limiter = AnsweredLimiter()
    async with fake.client(limiter=limiter) as client:
        await client.credits.get()  # a 429 (not handed back), then the retry's answer
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        await client.await_task(ref)  # background polls hand theirs back too
    assert len(limiter.granted) == len(fake.requests) >= 4
    answered = [ticket for ticket, _ in limiter.answered]
    assert answered == limiter.granted[1:]  # every one but the 429's, in order
    # Each after its answer: the credits retry was answered 0.05 s after it was sent.
    retry = fake.requests[1]
    assert limiter.answered[0][1] == pytest.approx(retry.time + 0.05)
    # The create went 3 s after that answer (plus the step the 429 added to the margin),
    # not a whole interval after the retry left.
    assert fake.requests[2].time == pytest.approx(retry.time + 0.05 + 3.0 + STEP)
    assert fake.rate_limited() == 0


async def test_a_429_in_a_2xx_body_is_reported_as_a_429_not_as_an_answer() -> None:
    fake = FakeMusicAPI()
    fake.inject("/get-credits", status=200, body={"code": 429, "message": "Too many requests"})
    limiter = AnsweredLimiter()
    async with fake.client(limiter=limiter) as client:
        await client.credits.get()  # refused in the body, then retried
    assert [r.status for r in fake.requests] == [200, 200]
    assert limiter.inner.statistics().rate_limited == 1
    assert [ticket for ticket, _ in limiter.answered] == limiter.granted[1:]


class CoroutineAnsweredLimiter(AnsweredLimiter):
    async def on_answered(self, ticket: object) -> None:  # type: ignore[override]
        raise AssertionError("never awaited")


def test_an_async_on_answered_is_refused_when_the_client_is_made() -> None:
    with pytest.raises(TypeError, match=r"on_answered must be a plain method"):
        MusicAPI("key", limiter=CoroutineAnsweredLimiter())


class CoroutineReturningLimiter(AnsweredLimiter):
    def on_answered(self, ticket: object) -> Any:
        super().on_answered(ticket)
        return anyio.lowlevel.checkpoint()  # a coroutine nobody awaits


async def test_a_coroutine_returned_by_on_answered_is_closed_unawaited_and_named_once(
    caplog: pytest.LogCaptureFixture,
    recwarn: pytest.WarningsRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("musicapi_async._ratelimit._ASYNC_ANSWER_WARNED", weakref.WeakSet())
    fake = FakeMusicAPI()
    limiter = CoroutineReturningLimiter()
    async with fake.client(limiter=limiter) as client:
        for _ in range(2):
            assert (await client.credits.get()).credits >= 0
    gc.collect()  # a coroutine dropped unawaited warns when it is collected
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert caplog.text.count("CoroutineReturningLimiter.on_answered returned a coroutine") == 1
    assert len(limiter.answered) == 2  # its work was done all the same


async def test_a_mock_limiter_is_not_told_of_answers_it_never_declared(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``AsyncMock()`` answers every attribute name: its made-up ``on_answered`` is not
    called (its ``mock_calls`` stay what a test of an app expects), and nothing is logged."""
    limiter = AsyncMock()
    fake = FakeMusicAPI()
    async with fake.client(limiter=limiter) as client:
        await client.credits.get()
    assert [call[0] for call in limiter.mock_calls] == ["acquire"]
    assert "on_answered" not in caplog.text


async def test_without_a_client_limiter_the_polls_private_bucket_hears_the_answers() -> None:
    fake = FakeMusicAPI(sonic_duration=20.0)
    async with fake.client(limiter=None) as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        await client.await_task(ref)
        polls = client._scheduler.limiter
    assert isinstance(polls, TokenBucket)
    assert polls.statistics().quick_answers == polls.statistics().granted >= 2


async def test_a_limiter_whose_on_answered_fails_is_logged_and_the_call_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeMusicAPI()
    limiter = AnsweredLimiter(fail=True)
    async with fake.client(limiter=limiter) as client:
        assert (await client.credits.get()).credits >= 0
    assert len(limiter.answered) == 1
    assert "could not record an answer" in caplog.text
    assert "hunter2" not in caplog.text


async def test_a_request_that_gets_no_answer_hands_nothing_back() -> None:
    fake = FakeMusicAPI()
    fake.inject("/get-credits", fault="connect_error")
    limiter = AnsweredLimiter()
    async with fake.client(limiter=limiter, max_retries=0) as client:
        with pytest.raises(APIConnectionError):
            await client.credits.get()
    assert len(limiter.granted) == 1
    assert limiter.answered == []


async def test_quick_answers_space_a_clients_requests_per_apart_and_slow_ones_keep_margin() -> None:
    fast = FakeMusicAPI(latency={"*": 0.02})
    slow = FakeMusicAPI(latency={"*": 0.5})
    for fake, gap in ((fast, 3.0 + 0.02), (slow, INTERVAL)):
        bucket = TokenBucket()
        async with fake.client(limiter=bucket) as client:
            for _ in range(4):
                await client.credits.get()
        times = [r.time for r in fake.requests]
        assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([gap] * 3)
        assert fake.rate_limited() == 0


Answered = tuple[float, float, Priority, float]  # (delay, patience, priority, answer latency)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    burst=st.integers(1, 4),
    margin=st.floats(0.0, 0.5),
    requests=st.lists(
        st.tuples(
            st.floats(0.0, 30.0),
            st.floats(0.0, 10.0),
            st.sampled_from(list(Priority)),
            st.floats(0.0, 1.0) | st.just(math.inf),
        ),
        max_size=25,
    ),
)
def test_answers_never_let_a_grant_come_sooner_than_per_after_the_answer_before_it(
    burst: int, margin: float, requests: list[Answered]
) -> None:
    """Whatever the answers' timing: the rate bound holds, and with burst 1 each grant comes
    either a whole interval after the one before, or at least ``per`` after its answer (the
    server saw it by then): never closer to the server than its rule allows."""
    bucket = TokenBucket(rate=1, per=3.0, burst=burst, margin=margin)
    grants: list[list[float]] = []  # [granted, answer reported: inf until then]

    async def request(delay: float, patience: float, priority: Priority, latency: float) -> None:
        await trio.sleep(delay)
        with trio.move_on_after(patience):
            ticket = await bucket.acquire(priority)
            grant = [trio.current_time(), math.inf]
            grants.append(grant)
            if latency < math.inf:
                await trio.sleep(latency)
                bucket.on_answered(ticket)
                grant[1] = trio.current_time()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for item in requests:
                nursery.start_soon(request, *item)

    trio.run(main, clock=MockClock(autojump_threshold=0))
    grants.sort()
    times = [grant[0] for grant in grants]
    for i, j in itertools.combinations_with_replacement(range(len(times)), 2):
        assert j - i + 1 <= burst + (times[j] - times[i]) / 3.0 + 1e-9
    if burst == 1:
        for (before, answered), (after, _) in itertools.pairwise(grants):
            assert after - before >= 3.0 + margin - 1e-6 or after - answered >= 3.0 - 1e-6


def test_a_boolean_rate_or_per_is_refused() -> None:
    """True is an int to Python, not a number of requests to a user."""
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=True)
    with pytest.raises(ValueError, match="per"):
        TokenBucket(per=True)


# --- one bucket, several event loops ---------------------------------------------------------


async def seconds_to_a_slot(bucket: TokenBucket) -> float:
    """How long one request waits for its slot."""
    started = anyio.current_time()
    await bucket.acquire()
    return anyio.current_time() - started


def run_on_clock(offset: float, job: Any) -> Any:
    """``job()`` in a new trio run whose clock reads ``offset`` at its start (trio starts
    each run's clock at a random offset), in virtual time."""
    clock = MockClock(autojump_threshold=0)
    clock.jump(offset)
    return trio.run(job, clock=clock)


@pytest.mark.parametrize("offset", [100_000.0, 0.0], ids=["clock ahead", "clock behind"])
def test_the_spacing_holds_from_one_event_loop_to_the_next(offset: float) -> None:
    """A module-level bucket used by one ``anyio.run`` per job: the next run's clock has
    nothing to do with the last one's, and the next request must still wait its turn."""
    bucket = TokenBucket()

    one_request = functools.partial(seconds_to_a_slot, bucket)
    assert run_on_clock(50_000.0, one_request) == 0.0
    waited = run_on_clock(offset, one_request)  # (virtually) at once after the first
    assert bucket.interval - 2.0 <= waited <= bucket.interval  # less the real time between


@pytest.mark.parametrize("answers", [1, 2], ids=["answered", "answered, then a new grant"])
def test_a_margin_an_answer_gave_back_is_taken_back_in_the_next_event_loop(
    answers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The time between two loops is read on another clock: an answer's proof, given in
    one loop, does not shorten the wait in the next. (Real time is frozen between the runs
    here, so the waits are exact.)"""
    monkeypatch.setattr("musicapi_async._clock.time", SimpleNamespace(monotonic=lambda: 1e3))
    bucket = TokenBucket()

    async def answered_at_once() -> None:
        for _ in range(answers):
            bucket.on_answered(await bucket.acquire())

    run_on_clock(50_000.0, answered_at_once)
    # The last answer had given the margin back; the next loop waits a whole interval.
    waited = run_on_clock(100_000.0, functools.partial(seconds_to_a_slot, bucket))
    assert waited == pytest.approx(INTERVAL)
    assert bucket.statistics().quick_answers == answers


def test_a_429_pause_holds_in_the_next_event_loop() -> None:
    bucket = TokenBucket()

    async def rate_limited() -> None:
        await bucket.acquire()
        bucket.on_rate_limited(60.0)

    run_on_clock(50_000.0, rate_limited)
    waited = run_on_clock(100_000.0, functools.partial(seconds_to_a_slot, bucket))
    assert 58.0 <= waited <= 60.0 + bucket.margin


def test_waits_across_event_loops_end_whatever_the_rounding_of_the_clock_offset() -> None:
    """The bucket's clock is the loop's plus an offset: a wait left over by its rounding
    (smaller than the loop's clock can tell from now) once made the bucket spin for ever.
    The rounding depends on the real time between the runs: twenty tries (each spun with a
    chance of about one half)."""

    async def rate_limited(bucket: TokenBucket) -> None:
        await bucket.acquire()
        bucket.on_rate_limited(60.0)

    for _ in range(20):
        bucket = TokenBucket()
        run_on_clock(50_000.0, functools.partial(rate_limited, bucket))
        waited = run_on_clock(100_000.0, functools.partial(seconds_to_a_slot, bucket))
        assert 58.0 <= waited <= 60.0 + bucket.margin


def test_statistics_work_outside_an_event_loop_between_runs() -> None:
    """A health check or a log line between two ``asyncio.run`` calls (the Celery pattern)."""
    bucket = TokenBucket(rate=1, per=3.0)
    assert bucket.statistics().tokens == 1.0  # never used, outside any loop

    async def spend() -> None:
        await bucket.acquire()

    anyio.run(spend)
    stats = bucket.statistics()
    assert stats.granted == 1
    assert 0.0 <= stats.tokens < 1.0  # the token just spent is not back yet


def abandon_a_queued_request(bucket: TokenBucket) -> None:
    """Take the bucket's token and queue a second request behind it in an asyncio loop that
    is then closed without cancelling it (a sync wrapper giving up: ``run_until_complete``
    on a short wait, then ``loop.close()``): the queued waiter's cleanup never runs."""
    loop = VirtualTimeEventLoop()

    async def two_requests() -> None:
        await bucket.acquire()
        await bucket.acquire()

    loop.create_task(two_requests())
    loop.run_until_complete(anyio.wait_all_tasks_blocked())
    loop.close()
    assert bucket.statistics().waiting_user == 1


def run_in_virtual_time(backend: str, job: Any) -> Any:
    options: dict[str, Any] = (
        {"loop_factory": VirtualTimeEventLoop}
        if backend == "asyncio"
        else {"clock": MockClock(autojump_threshold=0)}
    )
    return anyio.run(job, backend=backend, backend_options=options)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_request_left_queued_by_a_closed_event_loop_holds_no_later_loop_back(
    backend: str,
) -> None:
    """Once deadlocked for ever: every later acquire queued behind the dead loop's waiter."""
    bucket = TokenBucket()
    abandon_a_queued_request(bucket)

    async def one_request() -> float:
        started = anyio.current_time()
        with anyio.fail_after(60):
            await bucket.acquire()
        return anyio.current_time() - started

    assert run_in_virtual_time(backend, one_request) <= bucket.interval  # spaced, not stuck
    assert bucket.statistics().waiting_user == 0


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_request_queued_by_a_loop_still_running_is_kept_when_another_loop_comes(
    backend: str,
) -> None:
    """Only an ended loop's waiters are dropped: a live one's, in another thread, would
    otherwise never be woken (one loop at a time is the rule, but breaking it must not hang
    a request for ever)."""
    bucket = TokenBucket(rate=1, per=0.2, margin=0.0)
    queued, looked = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    async def first_loop() -> None:
        await bucket.acquire()  # the token: the next request queues for 0.2 s

        async def second_request() -> None:
            with anyio.move_on_after(5) as scope:
                await bucket.acquire()
            outcome["granted"] = not scope.cancelled_caught

        async with anyio.create_task_group() as tg:
            tg.start_soon(second_request)
            await anyio.wait_all_tasks_blocked()
            queued.set()
            await anyio.to_thread.run_sync(looked.wait)

    async def other_loop() -> None:
        with pytest.raises(anyio.WouldBlock):
            bucket.acquire_nowait()  # another loop touches the bucket...
        outcome["still queued"] = bucket.statistics().waiting_user
        looked.set()

    thread = threading.Thread(target=anyio.run, args=(first_loop,), kwargs={"backend": backend})
    thread.start()
    assert queued.wait(5)
    anyio.run(other_loop, backend=backend)
    thread.join(10)
    assert not thread.is_alive()
    assert outcome == {"still queued": 1, "granted": True}  # ...and the first is still served


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_429_in_a_later_event_loop_does_not_wake_a_closed_loops_waiter(backend: str) -> None:
    """Waking the dead waiter would touch its closed loop (RuntimeError)."""
    bucket = TokenBucket()
    abandon_a_queued_request(bucket)

    async def rate_limited_then_one_request() -> None:
        bucket.on_rate_limited(1.0)
        with anyio.fail_after(60):
            await bucket.acquire()

    run_in_virtual_time(backend, rate_limited_then_one_request)
    assert bucket.statistics().waiting_user == 0
    assert bucket.statistics().granted == 2


async def test_an_acquire_cancelled_as_its_token_is_taken_returns_or_takes_nothing() -> None:
    bucket = TokenBucket()
    granted: list[bool] = []
    scope = anyio.CancelScope()

    async def take() -> None:
        with scope:
            await bucket.acquire()
            granted.append(True)

    async def cancel() -> None:
        scope.cancel()  # runs while take() is at acquire's last checkpoint

    async with anyio.create_task_group() as tg:
        tg.start_soon(take)
        tg.start_soon(cancel)
    assert bucket.statistics().granted == len(granted)  # raised => no token taken


async def test_a_429_empties_a_full_burst_bucket() -> None:
    bucket = TokenBucket(rate=1, per=3.0, burst=3, margin=0.0)
    start = anyio.current_time()
    bucket.on_rate_limited(0.0)  # the server says: not even one slot was free
    await bucket.acquire()
    assert anyio.current_time() - start >= 3.0 - 1e-6  # a whole interval: no burst left
