"""One client, several event loops: ``asyncio.run`` (or ``anyio.run``) once per job.

Celery tasks and scripts often keep one client at module level and run each job in its own
event loop. Connections belong to the loop that opened them, so an SDK that keeps one pool
fails the second job with "RuntimeError: Event loop is closed" (openai-python#1254,
replicate-python#217). Here the fake is served on loopback from a thread, so the client's
connections are real sockets, and each test runs several event loops one after the other,
in real time (about a second in all).
"""

from __future__ import annotations

import gc
import logging
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from musicapi_async import MusicAPI, TaskStatus, TokenBucket
from musicapi_async.testing import FakeMusicAPI, serving

KEY = FakeMusicAPI.DEFAULT_KEY

#: For the tests of plain calls, which never close a loop's connections: those a finished
#: loop leaves behind cannot be closed once it is gone, so Python closes their sockets as the
#: loop's pool is let go, with a ResourceWarning (hidden outside tests). ``async with
#: client:`` in each job closes them and warns of nothing (its test has no such filter).
leaves_connections = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture
def served() -> Iterator[tuple[FakeMusicAPI, str]]:
    """A fake served on loopback by an event loop of its own, in a thread."""
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=0.2)
    ready, stop = threading.Event(), threading.Event()
    found: list[str] = []

    async def serve() -> None:
        async with serving(fake, webhooks=False) as server:
            found.append(server.base_url)
            ready.set()
            await anyio.to_thread.run_sync(stop.wait)

    thread = threading.Thread(target=anyio.run, args=(serve,), daemon=True)
    thread.start()
    assert ready.wait(10), "the fake did not start serving"
    try:
        yield fake, found[0]
        # Connections left by the test's loops go now, while its warning filters apply (a
        # pool goes in one collection, the transports of its loop in the next).
        gc.collect()
        gc.collect()
    finally:
        stop.set()
        thread.join(10)


def fresh_loops(job: Callable[[], Coroutine[Any, Any, object]], backends: list[str]) -> list[Any]:
    """Run ``job`` once in a new event loop of each backend, one after the other."""
    return [anyio.run(job, backend=backend) for backend in backends]


def quick(base_url: str, **kwargs: Any) -> MusicAPI:
    return MusicAPI(
        KEY,
        base_url=base_url,
        limiter=TokenBucket(rate=50, per=1.0),  # one bucket across the loops, as in Celery
        expected_durations={"sonic": 0.2},
        min_poll_gap=0.05,
        **kwargs,
    )


@leaves_connections
def test_plain_calls_work_in_one_event_loop_after_another(served: tuple[FakeMusicAPI, str]) -> None:
    fake, base_url = served
    client = quick(base_url)  # module level, as in a Celery worker

    async def job() -> float:
        return (await client.credits.get()).credits

    assert fresh_loops(job, ["asyncio", "asyncio", "trio", "asyncio"]) == [1000.0] * 4
    assert len(fake.requests_to("/get-credits")) == 4


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_async_with_and_await_task_in_one_event_loop_after_another(
    served: tuple[FakeMusicAPI, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, base_url = served
    client = quick(base_url)

    async def job() -> TaskStatus:
        async with client:  # opened again by each job: closed at the end of the last one
            ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
            with anyio.fail_after(20):
                return (await client.await_task(ref)).status

    backends = ["asyncio", "asyncio", "trio", "trio", "asyncio"]
    assert fresh_loops(job, backends) == [TaskStatus.SUCCEEDED] * 5
    assert client._core.http_client is not None
    assert client._core.http_client.is_closed
    # The poller's wake-up event belongs to its loop: a stale one would fail every round.
    assert errors(caplog) == []


@leaves_connections  # the create is a plain call
@pytest.mark.parametrize(
    ("created_in", "awaited_in"),
    [("asyncio", "asyncio"), ("asyncio", "trio"), ("trio", "asyncio"), ("trio", "trio")],
)
def test_a_task_created_in_one_loop_is_awaited_promptly_in_the_next(
    served: tuple[FakeMusicAPI, str],
    caplog: pytest.LogCaptureFixture,
    created_in: str,
    awaited_in: str,
) -> None:
    """Loops keep different clocks (trio starts each at a random offset): the task's age
    on the first one means nothing on the second, so it is polled as of unknown age."""
    _, base_url = served
    client = quick(base_url)

    async def create() -> Any:
        return await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")

    async def wait(ref: Any) -> tuple[TaskStatus, float]:
        async with client:
            started = anyio.current_time()
            with anyio.fail_after(10):
                task = await client.await_task(ref)
            return task.status, anyio.current_time() - started

    ref = anyio.run(create, backend=created_in)
    status, waited = anyio.run(wait, ref, backend=awaited_in)
    assert status is TaskStatus.SUCCEEDED
    assert waited < 5.0  # the first poll finds it done; not the deadline
    assert errors(caplog) == []


@leaves_connections
def test_downloads_work_in_one_event_loop_after_another(
    served: tuple[FakeMusicAPI, str], tmp_path: Any
) -> None:
    _, base_url = served

    async def create() -> Any:
        async with quick(base_url) as maker:
            ref = await maker.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
            with anyio.fail_after(20):
                return await maker.await_task(ref)

    task = anyio.run(create)
    client = quick(base_url)  # never opened: plain calls only

    async def save(index: int) -> Any:
        return await client.download(task.clips[index], tmp_path)

    paths = [anyio.run(save, index) for index in range(2)]
    assert all(path.stat().st_size > 0 for path in paths)


def test_a_closed_client_refuses_plain_calls_until_opened_again(
    served: tuple[FakeMusicAPI, str],
) -> None:
    _, base_url = served
    client = quick(base_url)

    async def job() -> None:
        async with client:
            await client.credits.get()
        with pytest.raises(RuntimeError, match="closed"):
            await client.credits.get()
        async with client:  # the same loop: opened again
            await client.credits.get()

    anyio.run(job)
    assert client._core.http_client is not None
    assert client._core.http_client.is_closed


def test_a_given_http_client_is_used_as_it_is(served: tuple[FakeMusicAPI, str]) -> None:
    """The user owns a client they pass: it is neither replaced nor closed."""
    _, base_url = served

    async def job() -> None:
        async with httpx.AsyncClient() as http:
            client = quick(base_url, http_client=http)
            async with client:
                await client.credits.get()
            assert client._core.http_client is http
            assert not http.is_closed

    anyio.run(job)


@leaves_connections
def test_a_given_http_client_used_from_a_second_loop_fails_with_advice(
    served: tuple[FakeMusicAPI, str],
) -> None:
    """The pool is the user's and cannot be replaced: the error says what to do instead of
    httpx's bare "Event loop is closed"."""
    _, base_url = served
    http = httpx.AsyncClient()
    client = quick(base_url, http_client=http)

    async def job(client: MusicAPI) -> float:
        return (await client.credits.get()).credits

    assert anyio.run(job, client) == 1000.0
    with pytest.raises(RuntimeError, match=r"create the httpx\.AsyncClient inside the loop"):
        anyio.run(job, client)
    del client, http  # its connection of the first loop goes in the fixture's gc.collect()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_clients_made_and_closed_in_one_long_loop_leave_nothing_behind(backend: str) -> None:
    """A web server making a client per request, in one loop that never ends: each
    client's pool, scheduler state and bucket clock go with the client, not with the loop
    (they were kept until the loop ended: 0.86 MB per request)."""

    async def main() -> None:
        kept: list[weakref.ref[Any]] = []
        for _ in range(30):
            client = MusicAPI("k", base_url="http://127.0.0.1:9")
            async with client:
                pool = client._core.http()
                client._scheduler._epoch()
                bucket = client.limiter
                assert isinstance(bucket, TokenBucket)
                bucket.statistics()  # reads its clock in this loop
            kept += [weakref.ref(pool), weakref.ref(client), weakref.ref(bucket)]
            del client, pool, bucket
        gc.collect()
        assert [ref() for ref in kept] == [None] * len(kept)

    anyio.run(main, backend=backend)


def test_a_client_makes_its_pool_on_first_use_with_tls_settings_loaded_once() -> None:
    """Loading the CA bundle takes tens of milliseconds: a client made per request must
    not block its event loop that long, each time."""
    clients = [MusicAPI("k") for _ in range(3)]
    assert all(client._core.http_client is None for client in clients)

    async def main() -> list[object]:
        contexts = []
        for client in clients:
            async with client:
                pool = client._core.http()
                contexts.append(pool._transport._pool._ssl_context)  # type: ignore[attr-defined]
        return contexts

    first, *others = anyio.run(main)
    assert first is not None
    assert all(context is first for context in others)
