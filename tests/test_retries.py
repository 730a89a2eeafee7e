"""The retry loop of the one request path, timed exactly in virtual time.

Safe calls (GETs) are retried on connection errors, timeouts, 429 and 5xx; paid calls
(POSTs) only when the server certainly did not act on them (never pay twice, CONTRACT §15).
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from musicapi_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    MusicAPI,
    MusicAPIError,
    RateLimitError,
    RetryEvent,
    RetryPolicy,
    ServerError,
    UpstreamTimeoutError,
)
from musicapi_async.testing import FakeMusicAPI
from tests._scripted import (
    CREDITS_BODY,
    SONIC_TASK_BODY,
    SUBMIT_BODY,
    UPLOAD_BODY,
    ScriptedTransport,
    json_response,
    scripted_client,
)

pytestmark = pytest.mark.anyio

NO_JITTER = RetryPolicy(jitter=0.0)

Call = Callable[[MusicAPI], Awaitable[object]]


async def get_task(client: MusicAPI) -> object:
    return await client.sonic.get_task("t-1")


async def get_credits(client: MusicAPI) -> object:
    return await client.credits.get()


async def sonic_create(client: MusicAPI) -> object:
    return await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi for rain")


async def producer_create(client: MusicAPI) -> object:
    return await client.producer.create(sound="warm analog synthwave")


async def sonic_upload(client: MusicAPI) -> object:
    return await client.sonic.upload("https://example.com/song.mp3")


GETS: dict[str, tuple[Call, dict[str, Any]]] = {
    "sonic.get_task": (get_task, SONIC_TASK_BODY),
    "credits.get": (get_credits, CREDITS_BODY),
}
POSTS: dict[str, tuple[Call, dict[str, Any]]] = {
    "sonic.create": (sonic_create, SUBMIT_BODY),
    "producer.create": (producer_create, SUBMIT_BODY),
    "sonic.upload": (sonic_upload, UPLOAD_BODY),
}


def error_response(status: int, **headers: str) -> httpx.Response:
    return json_response(status, {"error": f"scripted {status}"}, headers=headers)


# Each failure, and the SDK exception class it must surface as once retries run out.
TRANSPORT_FAILURES: list[tuple[type[httpx.RequestError], type[MusicAPIError]]] = [
    (httpx.ConnectError, APIConnectionError),
    (httpx.ConnectTimeout, APITimeoutError),
    (httpx.ReadTimeout, APITimeoutError),
    (httpx.RemoteProtocolError, APIConnectionError),
    (httpx.DecodingError, APIConnectionError),
]
STATUS_FAILURES: list[tuple[int, type[APIStatusError]]] = [
    (429, RateLimitError),
    (500, ServerError),
    (502, ServerError),
    (503, ServerError),
    (504, UpstreamTimeoutError),
]


def failure_step(
    failure: type[httpx.RequestError] | int,
) -> type[httpx.RequestError] | httpx.Response:
    return error_response(failure) if isinstance(failure, int) else failure


ALL_FAILURES = [f for f, _ in TRANSPORT_FAILURES] + [s for s, _ in STATUS_FAILURES]
EXPECTED_CLASS: dict[type[httpx.RequestError] | int, type[MusicAPIError]] = {
    **dict(TRANSPORT_FAILURES),
    **dict(STATUS_FAILURES),
}


def failure_id(failure: object) -> str:
    return failure.__name__ if isinstance(failure, type) else str(failure)


# --- safe calls (GET) ----------------------------------------------------------------------


@pytest.mark.parametrize("failure", ALL_FAILURES, ids=failure_id)
@pytest.mark.parametrize("call_name", list(GETS))
async def test_get_is_retried_after_each_transient_failure_and_succeeds(
    call_name: str, failure: type[httpx.RequestError] | int
) -> None:
    call, ok_body = GETS[call_name]
    transport = ScriptedTransport(failure_step(failure), json_response(200, ok_body))
    async with scripted_client(transport) as client:
        result = await call(client)
    assert result is not None
    assert len(transport.sent) == 2
    assert transport.sent[0].path == transport.sent[1].path


@pytest.mark.parametrize("failure", ALL_FAILURES, ids=failure_id)
@pytest.mark.parametrize("call_name", list(GETS))
async def test_get_gives_up_after_max_retries_with_the_last_error(
    call_name: str, failure: type[httpx.RequestError] | int
) -> None:
    """1 + max_retries requests; the last failure is raised as its class, chained to httpx."""
    call, _ = GETS[call_name]
    if isinstance(failure, int):
        steps: list[httpx.Response | httpx.RequestError] = [
            json_response(failure, {"error": f"attempt {n}"}) for n in (1, 2, 3)
        ]
    else:
        steps = [failure(f"attempt {n}") for n in (1, 2, 3)]
    transport = ScriptedTransport(*steps)
    async with scripted_client(transport, max_retries=2) as client:
        with pytest.raises(MusicAPIError) as caught:
            await call(client)
    assert len(transport.sent) == 3
    error = caught.value
    assert type(error) is EXPECTED_CLASS[failure]
    assert "attempt 3" in str(error)
    assert error.task_may_exist is False
    assert error.method == "GET"
    if isinstance(failure, int):
        assert isinstance(error, APIStatusError)
        assert error.status_code == failure
    else:
        assert error.__cause__ is steps[-1]


async def test_get_retries_with_the_default_policy_three_times() -> None:
    transport = ScriptedTransport(*[error_response(503)] * 4)
    async with scripted_client(transport) as client:
        with pytest.raises(ServerError):
            await client.credits.get()
    assert len(transport.sent) == 4


# --- backoff -------------------------------------------------------------------------------


async def test_backoff_without_jitter_doubles_from_1_s_and_is_capped_at_8_s() -> None:
    transport = ScriptedTransport(*[error_response(500)] * 5, json_response(200, CREDITS_BODY))
    async with scripted_client(transport, retry=RetryPolicy(max_retries=5, jitter=0.0)) as client:
        await client.credits.get()
    assert transport.gaps == [1.0, 2.0, 4.0, 8.0, 8.0]


async def test_backoff_follows_a_custom_initial_value_and_cap() -> None:
    policy = RetryPolicy(max_retries=4, initial_backoff=0.5, max_backoff=3.0, jitter=0.0)
    transport = ScriptedTransport(
        httpx.ConnectError, *[error_response(502)] * 3, json_response(200, CREDITS_BODY)
    )
    async with scripted_client(transport, retry=policy) as client:
        await client.credits.get()
    assert transport.gaps == [0.5, 1.0, 2.0, 3.0]


async def test_jittered_delays_lie_between_base_times_one_minus_jitter_and_base() -> None:
    random.seed(1234)
    policy = RetryPolicy(max_retries=5, jitter=0.5)
    events: list[RetryEvent] = []
    transport = ScriptedTransport(*[error_response(503)] * 5, json_response(200, CREDITS_BODY))
    async with scripted_client(transport, retry=policy, on_retry=events.append) as client:
        await client.credits.get()
    bases = [1.0, 2.0, 4.0, 8.0, 8.0]
    for gap, base in zip(transport.gaps, bases, strict=True):
        assert base * 0.5 <= gap <= base
    # The hook reports the very delay that was slept.
    assert transport.gaps == pytest.approx([event.delay for event in events])
    # With jitter > 0 the delays are not all exactly the base (the point of jitter).
    assert transport.gaps != bases


@given(
    retry_index=st.integers(min_value=0, max_value=100_000),  # 2.0 ** 1024 overflows
    jitter=st.floats(min_value=0.0, max_value=1.0),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_backoff_is_always_within_the_jitter_band(
    retry_index: int, jitter: float, draw: float
) -> None:
    policy = RetryPolicy(jitter=jitter)
    base = min(1.0 * 2.0 ** min(retry_index, 10), 8.0)
    delay = policy.backoff(retry_index, rng=lambda: draw)
    assert base * (1.0 - jitter) - 1e-9 <= delay <= base


async def test_max_retries_zero_means_exactly_one_attempt() -> None:
    transport = ScriptedTransport(httpx.ConnectError)
    async with scripted_client(transport, retry=RetryPolicy(max_retries=0)) as client:
        with pytest.raises(APIConnectionError):
            await client.sonic.get_task("t-1")
    assert len(transport.sent) == 1


# --- Retry-After ---------------------------------------------------------------------------


async def test_retry_after_seconds_is_waited_when_longer_than_the_backoff() -> None:
    transport = ScriptedTransport(
        error_response(429, **{"Retry-After": "7"}), json_response(200, CREDITS_BODY)
    )
    async with scripted_client(transport, retry=NO_JITTER) as client:
        await client.credits.get()
    assert transport.gaps == [7.0]


async def test_retry_after_shorter_than_the_backoff_waits_the_backoff() -> None:
    """The wait is max(backoff, Retry-After): retry 3 backs off 4 s even if told 1 s."""
    transport = ScriptedTransport(
        error_response(500),
        error_response(500),
        error_response(429, **{"Retry-After": "1"}),
        json_response(200, CREDITS_BODY),
    )
    async with scripted_client(transport, retry=NO_JITTER) as client:
        await client.credits.get()
    assert transport.gaps == [1.0, 2.0, 4.0]


async def test_retry_after_as_an_http_date_is_waited_until_that_date() -> None:
    # A whole second: the header has 1 s resolution, and a truncated fraction would make
    # the wait up to a second short of 30 s.
    when = (datetime.now(timezone.utc) + timedelta(seconds=31)).replace(microsecond=0)
    transport = ScriptedTransport(
        error_response(429, **{"Retry-After": format_datetime(when, usegmt=True)}),
        json_response(200, CREDITS_BODY),
    )
    async with scripted_client(transport, retry=NO_JITTER) as client:
        await client.credits.get()
    # The date has 1 s resolution and is compared with the wall clock.
    [gap] = transport.gaps
    assert 29.0 <= gap <= 31.0


async def test_retry_after_ms_is_honoured_in_milliseconds() -> None:
    transport = ScriptedTransport(
        error_response(429, **{"retry-after-ms": "2500", "Retry-After": "60"}),
        json_response(200, CREDITS_BODY),
    )
    async with scripted_client(transport, retry=NO_JITTER) as client:
        await client.credits.get()
    assert transport.gaps == [2.5]


async def test_rate_limit_error_carries_the_retry_after_seconds() -> None:
    transport = ScriptedTransport(error_response(429, **{"Retry-After": "3"}))
    async with scripted_client(transport, max_retries=0) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.credits.get()
    assert caught.value.retry_after == 3.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    # Delay-seconds too large for a float are a wait past any cap, not a missing header.
    [("600", 600.0), ("9" * 400, math.inf)],
    ids=["600", "400 digits"],
)
@pytest.mark.parametrize("call_name", ["credits.get", "sonic.create"])
async def test_retry_after_over_the_default_120_s_is_raised_at_once_not_slept(
    call_name: str, value: str, seconds: float
) -> None:
    call, _ = {**GETS, **POSTS}[call_name]
    transport = ScriptedTransport(error_response(429, **{"Retry-After": value}))
    async with scripted_client(transport) as client:
        start = anyio.current_time()
        with pytest.raises(RateLimitError) as caught:
            await call(client)
    assert anyio.current_time() == start
    assert len(transport.sent) == 1
    error = caught.value
    assert error.retry_after == seconds
    message = str(error)
    assert str(seconds).removesuffix(".0") in message
    assert "max_retry_after" in message
    assert "not retried" in message


async def test_retry_after_up_to_max_retry_after_is_slept_through() -> None:
    transport = ScriptedTransport(
        error_response(429, **{"Retry-After": "120"}), json_response(200, CREDITS_BODY)
    )
    async with scripted_client(transport, retry=NO_JITTER) as client:
        await client.credits.get()
    assert transport.gaps == [120.0]


async def test_a_custom_max_retry_after_raises_beyond_it() -> None:
    transport = ScriptedTransport(error_response(429, **{"Retry-After": "30"}))
    async with scripted_client(transport, retry=RetryPolicy(max_retry_after=10.0)) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.credits.get()
    assert caught.value.retry_after == 30.0
    assert "max_retry_after=10" in str(caught.value)


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "soon"},
        {"Retry-After": "-5"},
        {"Retry-After": "nan"},
        {"Retry-After": "inf"},
        {"Retry-After": "1e400"},
        {"Retry-After": ""},
        {"Retry-After": "Thu, 99 Foo 20xx"},
        {"retry-after-ms": "abc"},
        {"retry-after-ms": "-100"},
    ],
    ids=lambda headers: repr(headers),
)
async def test_invalid_retry_after_values_are_ignored_and_the_backoff_used(
    headers: dict[str, str],
) -> None:
    transport = ScriptedTransport(error_response(429, **headers), error_response(429, **headers))
    async with scripted_client(transport, retry=RetryPolicy(max_retries=1, jitter=0.0)) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.credits.get()
    assert transport.gaps == [1.0]
    assert caught.value.retry_after is None


async def test_invalid_retry_after_ms_falls_back_to_retry_after() -> None:
    transport = ScriptedTransport(
        error_response(429, **{"retry-after-ms": "later", "Retry-After": "5"}),
        json_response(200, CREDITS_BODY),
    )
    async with scripted_client(transport, retry=NO_JITTER) as client:
        await client.credits.get()
    assert transport.gaps == [5.0]


# --- never pay twice (POST) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, 429],
    ids=failure_id,
)
@pytest.mark.parametrize("call_name", list(POSTS))
async def test_post_is_retried_when_the_request_certainly_did_not_act(
    call_name: str, failure: type[httpx.RequestError] | int
) -> None:
    """Not sent (connect/pool) or refused (429): the server started nothing, repeat is safe."""
    call, ok_body = POSTS[call_name]
    transport = ScriptedTransport(failure_step(failure), json_response(200, ok_body))
    async with scripted_client(transport) as client:
        await call(client)
    assert len(transport.sent) == 2
    # The only attempt the server acted on is the one that succeeded: submitted once.
    assert transport.remaining == 0
    assert transport.sent[0].request.content == transport.sent[1].request.content


async def test_post_refused_by_429_repeatedly_raises_rate_limit_without_task_may_exist() -> None:
    transport = ScriptedTransport(*[error_response(429)] * 3)
    async with scripted_client(transport, max_retries=2) as client:
        with pytest.raises(RateLimitError) as caught:
            await sonic_create(client)
    assert len(transport.sent) == 3
    assert caught.value.task_may_exist is False


UNCLEAR_POST_FAILURES: list[tuple[type[httpx.RequestError] | int, type[MusicAPIError]]] = [
    (httpx.ReadTimeout, APITimeoutError),
    (httpx.WriteTimeout, APITimeoutError),
    (httpx.RemoteProtocolError, APIConnectionError),
    (httpx.ReadError, APIConnectionError),
    (httpx.DecodingError, APIConnectionError),
    (httpx.TooManyRedirects, APIConnectionError),
    (500, ServerError),
    (502, ServerError),
    (503, ServerError),
    (504, UpstreamTimeoutError),
]


@pytest.mark.parametrize(("failure", "expected"), UNCLEAR_POST_FAILURES, ids=failure_id)
@pytest.mark.parametrize("call_name", list(POSTS))
async def test_post_is_never_repeated_when_the_task_may_already_exist(
    call_name: str, failure: type[httpx.RequestError] | int, expected: type[MusicAPIError]
) -> None:
    """One request only, even with retries to spare; the error says so and how to check."""
    call, _ = POSTS[call_name]
    transport = ScriptedTransport(failure_step(failure))
    async with scripted_client(transport, max_retries=5) as client:
        with pytest.raises(MusicAPIError) as caught:
            await call(client)
    assert len(transport.sent) == 1
    error = caught.value
    assert type(error) is expected
    assert error.task_may_exist is True
    assert error.method == "POST"
    message = str(error).lower()
    assert "not retried" in message
    assert "may already have started" in message
    assert "charged" in message
    assert "check" in message
    assert "client.credits.get()" in message
    assert "webhook" in message
    if not isinstance(failure, int):
        assert isinstance(error.__cause__, failure)


async def test_a_504_to_a_create_says_why_it_may_still_have_charged_despite_the_refund() -> None:
    """MusicAPI's 504 says "credits refunded": the advice must not contradict it blindly."""
    body = {"error": "Task failed due to timeout. Credits were previously refunded."}
    transport = ScriptedTransport(json_response(504, body))
    async with scripted_client(transport, max_retries=5) as client:
        with pytest.raises(UpstreamTimeoutError) as caught:
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
    message = str(caught.value)
    assert "MusicAPI refunds a task that timed out" in message
    assert "gateway" in message
    assert caught.value.task_may_exist is True


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, 500, 504], ids=failure_id)
async def test_get_errors_never_claim_a_task_may_exist(
    failure: type[httpx.RequestError] | int,
) -> None:
    transport = ScriptedTransport(failure_step(failure))
    async with scripted_client(transport, max_retries=0) as client:
        with pytest.raises(MusicAPIError) as caught:
            await client.sonic.get_task("t-1")
    assert caught.value.task_may_exist is False
    assert "may already have started" not in str(caught.value)


# --- configuration -------------------------------------------------------------------------


async def test_client_max_retries_sets_the_number_of_retries() -> None:
    transport = ScriptedTransport(*[error_response(500)] * 2)
    async with scripted_client(transport, max_retries=1) as client:
        with pytest.raises(ServerError):
            await client.credits.get()
    assert len(transport.sent) == 2
    assert client.retry.max_retries == 1


async def test_client_retry_policy_is_used_and_max_retries_overrides_its_count() -> None:
    policy = RetryPolicy(max_retries=5, initial_backoff=2.0, jitter=0.0)
    transport = ScriptedTransport(*[error_response(500)] * 3)
    async with scripted_client(transport, retry=policy, max_retries=2) as client:
        with pytest.raises(ServerError):
            await client.credits.get()
    assert transport.gaps == [2.0, 4.0]
    assert client.retry == RetryPolicy(max_retries=2, initial_backoff=2.0, jitter=0.0)


async def test_with_options_max_retries_changes_only_the_view() -> None:
    transport = ScriptedTransport(error_response(503))
    async with scripted_client(transport, retry=NO_JITTER) as client:
        view = client.with_options(max_retries=0)
        with pytest.raises(ServerError):
            await view.credits.get()
        assert len(transport.sent) == 1
        # The original keeps its policy (3 retries) and sends through the same transport.
        transport.add(error_response(503), error_response(503), json_response(200, CREDITS_BODY))
        await client.credits.get()
    assert len(transport.sent) == 4
    assert view.retry.max_retries == 0
    assert client.retry.max_retries == 3
    assert view._core.http_client is client._core.http_client


async def test_with_options_retry_replaces_the_policy_of_the_view() -> None:
    transport = ScriptedTransport(*[error_response(502)] * 3)
    async with scripted_client(transport) as client:
        view = client.with_options(retry=RetryPolicy(max_retries=2, initial_backoff=3.0, jitter=0))
        with pytest.raises(ServerError):
            await view.credits.get()
    assert transport.gaps == [3.0, 6.0]
    assert client.retry == RetryPolicy()


async def test_on_retry_receives_each_event_before_its_sleep() -> None:
    seen: list[tuple[float, RetryEvent]] = []

    def hook(event: RetryEvent) -> None:
        seen.append((anyio.current_time(), event))

    transport = ScriptedTransport(
        httpx.ReadTimeout,
        error_response(429, **{"Retry-After": "5"}),
        json_response(200, SONIC_TASK_BODY),
    )
    async with scripted_client(transport, retry=NO_JITTER, on_retry=hook) as client:
        await client.sonic.get_task("t-1")
    assert [event.attempt for _, event in seen] == [1, 2]
    assert [event.delay for _, event in seen] == [1.0, 5.0]
    assert all(event.method == "GET" and event.path == "/sonic/task/t-1" for _, event in seen)
    assert isinstance(seen[0][1].error, APITimeoutError)
    assert isinstance(seen[1][1].error, RateLimitError)
    # Each hook call happens right after the failed attempt, before the sleep.
    times = transport.times
    assert [at for at, _ in seen] == times[:2]
    assert times[1] == seen[0][0] + 1.0
    assert times[2] == seen[1][0] + 5.0


async def test_on_retry_is_not_called_when_nothing_is_retried() -> None:
    events: list[RetryEvent] = []
    transport = ScriptedTransport(error_response(500))
    async with scripted_client(transport, on_retry=events.append) as client:
        with pytest.raises(ServerError):
            await sonic_create(client)
    assert events == []


async def test_with_options_can_replace_or_drop_the_on_retry_hook() -> None:
    original: list[RetryEvent] = []
    replacement: list[RetryEvent] = []
    transport = ScriptedTransport(
        error_response(500),
        json_response(200, CREDITS_BODY),
        error_response(500),
        json_response(200, CREDITS_BODY),
        error_response(500),
        json_response(200, CREDITS_BODY),
    )
    async with scripted_client(transport, on_retry=original.append) as client:
        await client.with_options(on_retry=replacement.append).credits.get()
        await client.with_options(on_retry=None).credits.get()
        await client.with_options(max_retries=1).credits.get()
    assert len(replacement) == 1
    assert len(original) == 1  # only the last view inherited it


# --- cancellation --------------------------------------------------------------------------


async def test_move_on_after_cancels_during_the_backoff_sleep() -> None:
    transport = ScriptedTransport(error_response(503))
    policy = RetryPolicy(initial_backoff=10.0, jitter=0.0)
    async with scripted_client(transport, retry=policy) as client:
        start = anyio.current_time()
        with anyio.move_on_after(4) as scope:
            await client.sonic.get_task("t-1")
    assert scope.cancelled_caught
    assert anyio.current_time() - start == 4.0
    assert len(transport.sent) == 1


async def test_fail_after_cancels_a_retry_after_wait_with_no_further_request() -> None:
    transport = ScriptedTransport(error_response(429, **{"Retry-After": "60"}))
    async with scripted_client(transport) as client:
        start = anyio.current_time()
        with pytest.raises(TimeoutError), anyio.fail_after(5):
            await sonic_create(client)
    assert anyio.current_time() - start == 5.0
    assert len(transport.sent) == 1
    # Nothing more is sent later either: the loop is gone, not merely paused.
    await anyio.sleep(120)
    assert len(transport.sent) == 1


# --- follow-ups: async hooks, 503 Retry-After, errors that repeat identically ------------------


async def test_an_async_on_retry_hook_is_awaited_before_the_sleep() -> None:
    seen: list[float] = []

    async def hook(event: RetryEvent) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(anyio.current_time())

    transport = ScriptedTransport(error_response(500), json_response(200, CREDITS_BODY))
    async with scripted_client(transport, retry=NO_JITTER, on_retry=hook) as client:
        await client.credits.get()
    assert seen == transport.times[:1]


async def test_a_503_retry_after_is_honoured_for_gets() -> None:
    transport = ScriptedTransport(
        error_response(503, **{"Retry-After": "9"}), json_response(200, CREDITS_BODY)
    )
    async with scripted_client(transport, retry=NO_JITTER) as client:
        await client.credits.get()
    assert transport.gaps == [9.0]


async def test_an_unsupported_protocol_is_raised_at_once_not_retried() -> None:
    """The same request would fail the same way: no backoff, no second attempt."""
    transport = ScriptedTransport(httpx.UnsupportedProtocol)
    async with scripted_client(transport) as client:
        with pytest.raises(APIConnectionError):
            await client.credits.get()
    assert len(transport.sent) == 1


async def test_too_many_redirects_on_a_get_is_raised_at_once_as_a_connection_error() -> None:
    """A redirect loop repeats identically: an SDK error, not httpx's, and no retry."""
    transport = ScriptedTransport(httpx.TooManyRedirects)
    async with scripted_client(transport) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.credits.get()
    assert len(transport.sent) == 1
    assert caught.value.task_may_exist is False
    assert isinstance(caught.value.__cause__, httpx.TooManyRedirects)


async def test_a_retry_after_just_over_max_retry_after_is_raised_not_slept() -> None:
    fake = FakeMusicAPI(sonic_duration=5.0)
    async with fake.client(retry=RetryPolicy(max_retry_after=10.0), limiter=None) as client:
        ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="x")
        fake.inject(f"/sonic/task/{ref.task_id}", status=429, headers={"Retry-After": "15"})
        start = anyio.current_time()
        with pytest.raises(RateLimitError, match="max_retry_after"):
            await client.sonic.get_task(ref)
        assert anyio.current_time() - start < 1.0
