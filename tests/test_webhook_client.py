"""A client configured with a webhook: creates attach it, deliveries resolve waiters at once,
polling is only a safety net.

Deliveries are built here from what the fake decided for each task and signed with
``sign_webhook``, then handed to ``client.webhooks.handle`` exactly as a web framework
adapter would; the fake's own delivery machinery is tested in ``test_fake_webhooks.py``.
Every test runs on asyncio and trio in virtual time.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from musicapi_async import (
    MusicAPI,
    MusicAPIError,
    ProgressState,
    Task,
    TaskFamily,
    TaskProgress,
    TaskRef,
    TaskStatus,
    WebhookResponse,
    sign_webhook,
)
from musicapi_async._constants import (
    EXPECTED_DURATION,
    WEBHOOK_EARLY_KEEP,
    WEBHOOK_FALLBACK_EVERY,
    WEBHOOK_FALLBACK_FACTOR,
)
from musicapi_async.testing import FakeMusicAPI, FakeTask

pytestmark = pytest.mark.anyio

HOOK = "https://example.com/musicapi-webhook"
SECRET = "whsec-Zq81-do-not-print"
#: When the scheduler first polls a webhook task whose delivery never came (sonic).
FALLBACK = WEBHOOK_FALLBACK_FACTOR * EXPECTED_DURATION["sonic"]


def make_fake(duration: float = 90.0) -> FakeMusicAPI:
    return FakeMusicAPI(rate_limit=None, sonic_duration=duration)


def hooked(fake: FakeMusicAPI, **kwargs: Any) -> MusicAPI:
    """A client with the webhook, and the default prior of durations (the fallback polls'
    timing follows it), not the fake's durations that ``fake.client()`` would take."""
    options = {"webhook_url": HOOK, "webhook_secret": SECRET, "expected_durations": {}}
    return fake.client(**{**options, **kwargs})


def body_of(
    task: FakeTask, *, state: str = "succeeded", top_level_id: bool = True, named: bool = True
) -> bytes:
    """A Sonic webhook body for a task, like the poll answer once it is done; ``named=False``:
    no task id anywhere, as in MusicAPI's published Sonic example."""
    clips = [
        {
            "clip_id": clip_id,
            **({"task_id": task.task_id} if named else {}),
            "state": state,
            "title": "Webhook song",
            "audio_url": f"https://cdn1.suno.ai/{clip_id}.mp3",
            "duration": "104.88",
            "mv": "chirp-v5",
        }
        for clip_id in task.clip_ids
    ]
    body: dict[str, Any] = {"code": 200, "data": clips, "message": "success"}
    if top_level_id and named:
        body["task_id"] = task.task_id
    return json.dumps(body).encode()


async def deliver(
    client: MusicAPI,
    task: FakeTask,
    *,
    secret: str = SECRET,
    query: str | None = None,
    **kwargs: Any,
) -> WebhookResponse:
    body = body_of(task, **kwargs)
    kind = "song.failed" if kwargs.get("state") == "failed" else "song.completed"
    return await client.webhooks.handle(body, sign_webhook(body, secret, kind=kind), query=query)


def query_sent(fake: FakeMusicAPI, ref: TaskRef) -> str:
    """The query string of the webhook URL the create call of ``ref`` sent."""
    return urlsplit(str(fake.tasks[ref.task_id].request["webhook_url"])).query


@asynccontextmanager
async def waiting(client: MusicAPI, ref: TaskRef, **kwargs: Any) -> AsyncIterator[list[Task]]:
    """``client.await_task(ref, **kwargs)`` in the background while the block runs (it must
    end by the block's end); the list yielded receives its result."""
    got: list[Task] = []

    async def wait() -> None:
        got.append(await client.await_task(ref, **kwargs))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        yield got


async def teach(client: MusicAPI, fake: FakeMusicAPI, n: int) -> None:
    """Run ``n`` tasks one after the other, each awaited and delivered when it is done, so
    the client learns their duration from deliveries alone."""
    for k in range(n):
        ref = await create(client, f"song {k}")
        async with waiting(client, ref):
            await anyio.sleep(fake.tasks[ref.task_id].duration)
            await deliver(client, fake.tasks[ref.task_id])


def polls(fake: FakeMusicAPI, ref: TaskRef) -> list[float]:
    return [r.time for r in fake.requests_to(f"/sonic/task/{ref.task_id}")]


async def create(client: MusicAPI, prompt: str = "lofi", **kwargs: Any) -> TaskRef:
    return await client.sonic.create(mv="sonic-v5", gpt_description_prompt=prompt, **kwargs)


async def deliver_during_fallback_poll(fake: FakeMusicAPI) -> tuple[list[str], list[TaskRef]]:
    """Two tasks awaited with as_completed; the first's delivery lands 2 s into its fallback
    poll (which the test made slow), the second's 10 s later or after its own fallback.
    Returns what the loop yielded, and the two references."""
    async with hooked(fake) as client:
        created = anyio.current_time()
        refs = [await create(client), await create(client, "other")]
        seen: list[str] = []

        async def consume() -> None:
            async with client.as_completed(refs) as stream:
                async for task in stream:
                    seen.append(task.task_id)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(FALLBACK + 2.0 - (anyio.current_time() - created))
            assert polls(fake, refs[0])  # the poll reached the fake; its answer is on its way
            await deliver(client, fake.tasks[refs[0].task_id])
            await anyio.sleep(10.0)
            if not seen[1:]:
                await anyio.sleep(FALLBACK)
                await deliver(client, fake.tasks[refs[1].task_id])
    return seen, refs


# --- configuration ----------------------------------------------------------------------------


def test_a_webhook_url_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="webhook_secret"):
        MusicAPI("k", webhook_url=HOOK)


@pytest.mark.parametrize(
    "url",
    ["http://example.com/hook", "ftp://example.com/hook", "example.com/hook", "https://"],
)
def test_a_webhook_url_must_be_https(url: str) -> None:
    with pytest.raises(ValueError, match="https://"):
        MusicAPI("k", webhook_url=url, webhook_secret=SECRET)


def test_plain_http_is_accepted_for_a_loopback_receiver() -> None:
    MusicAPI("k", webhook_url="http://127.0.0.1:8000/hook", webhook_secret=SECRET)


@pytest.mark.parametrize("secret", ["", "   ", 42])
def test_the_secret_must_be_a_non_empty_string(secret: Any) -> None:
    with pytest.raises(ValueError, match="webhook_secret"):
        MusicAPI("k", webhook_secret=secret)


@pytest.mark.parametrize("tolerance", [0, -1, "300"])
def test_the_tolerance_must_be_positive_seconds(tolerance: Any) -> None:
    with pytest.raises(ValueError, match="webhook_tolerance"):
        MusicAPI("k", webhook_secret=SECRET, webhook_tolerance=tolerance)


def test_the_secret_stays_out_of_reprs() -> None:
    client = MusicAPI("k", webhook_url=HOOK, webhook_secret=SECRET)
    assert SECRET not in repr(client)
    assert SECRET not in repr(client.webhooks)
    assert SECRET not in repr(client.with_options(timeout=5))


def test_without_a_secret_client_webhooks_says_how_to_configure_it() -> None:
    with pytest.raises(RuntimeError, match="webhook_secret"):
        _ = MusicAPI("k").webhooks


# --- creates attach the webhook ---------------------------------------------------------------


async def test_results_of_its_own_tasks_delivered_before_any_wait_are_all_kept() -> None:
    """More than the 1024 finished results kept for re-reading: a batch created first and
    awaited at the end would otherwise poll (and at 1 request / 3 s, time out on) tasks
    whose delivery was answered 200 and is never sent again."""
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=60.0, credits=10**6)
    async with (
        hooked(fake, limiter=None) as client,
        fake.webhooks.running(client.webhooks),
    ):
        refs = [
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt=f"song {i}")
            for i in range(1100)
        ]
        await anyio.sleep(61)  # every result is delivered before anyone waits
        tasks = await client.await_task(refs, timeout=60)
    assert all(task.succeeded for task in tasks)
    assert fake.requests_to("/sonic/task/*") == []


async def test_an_unclaimed_result_is_kept_six_hours_then_polled_for() -> None:
    """Kept for a waiter to come, not for ever: an app that takes its results from its
    callback and never awaits must not hold thousands of tasks."""
    from musicapi_async._constants import WEBHOOK_UNCLAIMED_KEEP

    fake = FakeMusicAPI(rate_limit=None, sonic_duration=60.0)
    async with hooked(fake, limiter=None) as client, fake.webhooks.running(client.webhooks):
        kept, dropped = [
            await client.sonic.create(mv="sonic-v5", gpt_description_prompt=f"song {i}")
            for i in range(2)
        ]
        await anyio.sleep(61)
        assert (await client.await_task(kept, timeout=60)).succeeded
        await anyio.sleep(WEBHOOK_UNCLAIMED_KEEP)
        assert (await client.await_task(dropped, timeout=None)).succeeded
    assert fake.requests_to(f"/sonic/task/{kept.task_id}") == []
    assert len(fake.requests_to(f"/sonic/task/{dropped.task_id}")) == 1


async def test_every_create_of_the_client_attaches_its_webhook() -> None:
    fake = make_fake()
    async with hooked(fake) as client:
        await create(client)
        await client.producer.create(sound="warm analog synthwave")
        await client.sonic.stems_basic(fake.last_task.clip_ids[0])
    bodies = [r.json for r in fake.requests if r.method == "POST"]
    assert len(bodies) == 3
    assert all(b["webhook_url"].startswith(HOOK + "?musicapi_tag=") for b in bodies)
    assert all(b["webhook_secret"] == SECRET for b in bodies)
    # A fresh random tag on each call, which names the task when a delivery does not.
    tags = {parse_qs(urlsplit(b["webhook_url"]).query)["musicapi_tag"][0] for b in bodies}
    assert len(tags) == 3
    assert all(len(tag) >= 16 for tag in tags)


async def test_a_call_naming_its_own_webhook_keeps_it_and_is_polled_as_usual() -> None:
    fake = make_fake(duration=30.0)
    async with hooked(fake) as client:
        ref = await create(client, webhook_url="https://elsewhere.example/hook")
        task = await client.await_task(ref)
    assert task.succeeded
    assert fake.last_task.request["webhook_url"] == "https://elsewhere.example/hook"
    # Not this client's receiver: the scheduler polls it like any other task.
    assert polls(fake, ref)
    assert polls(fake, ref)[0] < FALLBACK


async def test_a_client_without_a_webhook_attaches_nothing() -> None:
    fake = make_fake()
    async with fake.client() as client:
        await create(client)
    assert "webhook_url" not in fake.last_task.request


async def test_batch_items_attach_the_webhook_once_for_the_batch() -> None:
    from musicapi_async import SonicCreate

    fake = make_fake()
    async with hooked(fake) as client:
        items = [SonicCreate(mv="sonic-v5", gpt_description_prompt=f"s{k}") for k in range(2)]
        submission = await client.sonic.batch(items)
    sent = fake.requests_to("/sonic/batch")[0].json
    assert sent["webhook_url"] == HOOK  # untagged: one URL for every task of the batch
    assert len(submission.tasks) == 2


# --- a delivery that names no task: the tag in the URL ---------------------------------------


async def test_a_delivery_naming_no_task_finds_it_by_the_tag_in_its_url() -> None:
    fake = make_fake(duration=90.0)
    async with hooked(fake) as client:
        refs = [await create(client, f"song {k}") for k in range(2)]
        async with waiting(client, refs[1]) as got:
            await anyio.sleep(90.0)
            task = fake.tasks[refs[1].task_id]
            answer = await deliver(client, task, named=False, query=query_sent(fake, refs[1]))
            assert answer.status == 200
    assert got[0].ref == refs[1]
    assert got[0].succeeded
    assert [c.clip_id for c in got[0].clips] == list(fake.tasks[refs[1].task_id].clip_ids)
    assert polls(fake, refs[1]) == []


async def test_the_tag_names_the_family_of_the_create_call() -> None:
    fake = make_fake(duration=20.0)
    async with hooked(fake) as client:
        ref = await client.producer.create(sound="warm analog synthwave")
        await anyio.sleep(fake.tasks[ref.task_id].duration)
        body = json.dumps({"status": "SUCCESS", "data": [{"audio_url": "https://a/b.mp3"}]})
        raw = body.encode()
        answer = await client.webhooks.handle(
            raw, sign_webhook(raw, SECRET), query=query_sent(fake, ref)
        )
        assert answer.status == 200
        with anyio.fail_after(0.001):
            task = await client.await_task(ref)
    assert task.ref == ref
    assert task.ref.family is TaskFamily.PRODUCER
    assert polls(fake, ref) == []


async def test_a_signed_task_id_wins_over_the_unsigned_tag() -> None:
    fake = make_fake(duration=20.0)
    async with hooked(fake) as client:
        first, second = [await create(client, f"song {k}") for k in range(2)]
        await anyio.sleep(20.0)
        # The body names the first task; the URL carries the second's tag.
        await deliver(client, fake.tasks[first.task_id], query=query_sent(fake, second))
        assert (await client.await_task(first)).ref == first
        assert (await client.await_task(second)).ref == second
    # The first came from the delivery; the second was not touched by it and needed a poll.
    assert polls(fake, first) == []
    assert len(polls(fake, second)) == 1


async def test_a_delivery_naming_no_task_with_an_unknown_tag_is_refused() -> None:
    fake = make_fake(duration=20.0)
    async with hooked(fake) as client:
        ref = await create(client)
        await anyio.sleep(20.0)
        task = fake.tasks[ref.task_id]
        for query in (None, "", "musicapi_tag=never-made-here", "other=1"):
            answer = await deliver(client, task, named=False, query=query)
            assert answer.status == 400, query
        assert client.webhooks.statistics().rejected == {"bad_body": 4}


async def test_a_users_own_query_is_kept_and_the_tag_appended() -> None:
    fake = make_fake()
    async with hooked(fake, webhook_url=HOOK + "?team=7&env=prod") as client:
        ref = await create(client)
    query = parse_qs(query_sent(fake, ref))
    assert query["team"] == ["7"]
    assert query["env"] == ["prod"]
    assert len(query["musicapi_tag"]) == 1
    assert fake.tasks[ref.task_id].request["webhook_url"].startswith(HOOK + "?team=7&env=prod&")


async def test_a_url_the_tag_would_push_past_the_limit_is_sent_as_given() -> None:
    url = HOOK + "?pad=" + "x" * (1024 - len(HOOK) - len("?pad="))
    assert len(url) == 1024
    fake = make_fake(duration=20.0)
    async with hooked(fake, webhook_url=url) as client:
        ref = await create(client)
        assert fake.tasks[ref.task_id].request["webhook_url"] == url
        async with waiting(client, ref) as got:
            await anyio.sleep(20.0)
            assert (await deliver(client, fake.tasks[ref.task_id])).status == 200
    assert got[0].ref == ref


async def test_a_legacy_delivery_naming_no_task_is_not_matched_by_its_tag() -> None:
    # No signed timestamp: a captured body could be replayed for any later task at any time.
    fake = make_fake(duration=20.0)
    async with hooked(fake) as client:
        ref = await create(client)
        await anyio.sleep(20.0)
        body = body_of(fake.tasks[ref.task_id], named=False)
        headers = sign_webhook(body, SECRET, legacy=True)
        answer = await client.webhooks.handle(body, headers, query=query_sent(fake, ref))
        assert answer.status == 400
        assert client.webhooks.statistics().rejected == {"bad_body": 1}


async def test_identical_bodies_for_two_tasks_are_two_events() -> None:
    # The same failure, signed in the same second, for two tasks: only their tags differ.
    fake = make_fake(duration=20.0)
    async with hooked(fake) as client:
        refs = [await create(client, f"song {k}") for k in range(2)]
        await anyio.sleep(20.0)
        body = json.dumps({"type": "failed", "message": "moderation"}).encode()
        stamp = int(time.time())
        sent = [sign_webhook(body, SECRET, timestamp=stamp, event_id=f"evt-{k}") for k in (0, 1)]
        for ref, headers in zip(refs, sent, strict=True):
            answer = await client.webhooks.handle(body, headers, query=query_sent(fake, ref))
            assert (answer.status, json.loads(answer.body)) == (200, {"status": "accepted"})
        again = await client.webhooks.handle(body, sent[0], query=query_sent(fake, refs[0]))
        assert json.loads(again.body) == {"status": "duplicate"}
        with anyio.fail_after(0.001):
            tasks = await client.await_task(refs)
    assert [t.status for t in tasks] == [TaskStatus.FAILED, TaskStatus.FAILED]
    assert all(polls(fake, ref) == [] for ref in refs)


class SlowAnswers(httpx.AsyncBaseTransport):
    """Create answers reach the client ``delay`` seconds after the server acted."""

    def __init__(self, inner: httpx.AsyncBaseTransport, delay: float) -> None:
        self.inner, self.delay = inner, delay

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST":
            await response.aread()
            await anyio.sleep(self.delay)
        return response


async def test_a_delivery_before_the_create_answer_waits_for_it() -> None:
    fake = make_fake()
    fake.webhooks.names_task = False
    fake.plan(duration=0.5, outcome="failed")  # an instant failure (moderation, say)
    slow = httpx.AsyncClient(transport=SlowAnswers(fake.transport(), 2.0))
    async with hooked(fake, http_client=slow) as client, fake.webhooks.running(client.webhooks):
        started = anyio.current_time()
        ref = await create(client)
        task = await client.await_task(ref)
        waited = anyio.current_time() - started
    assert task.status is TaskStatus.FAILED
    assert waited == pytest.approx(2.0, abs=0.1)  # the answer's delay, not a fallback poll
    assert [d.status for d in fake.webhooks.deliveries] == [200]
    assert polls(fake, ref) == []


async def test_a_failed_create_leaves_no_tag_waiting() -> None:
    fake = make_fake()
    async with hooked(fake) as client:
        fake.inject("/sonic/create", status=400)
        with pytest.raises(MusicAPIError):
            await create(client)
        assert client.webhooks._pending_tags == {}


async def test_a_call_naming_the_clients_own_webhook_is_tagged_like_the_others() -> None:
    fake = make_fake(duration=20.0)
    async with hooked(fake) as client:
        ref = await create(client, webhook_url=HOOK)
        assert query_sent(fake, ref).startswith("musicapi_tag=")
        assert fake.tasks[ref.task_id].request["webhook_secret"] == SECRET
        async with waiting(client, ref) as got:
            await anyio.sleep(20.0)
            task = fake.tasks[ref.task_id]
            await deliver(client, task, named=False, query=query_sent(fake, ref))
    assert got[0].ref == ref
    assert polls(fake, ref) == []


async def test_a_view_from_with_options_tags_its_creates_for_the_shared_receiver() -> None:
    fake = make_fake(duration=20.0)
    async with hooked(fake) as client:
        ref = await create(client.with_options(timeout=30.0))
        async with waiting(client, ref) as got:
            await anyio.sleep(20.0)
            task = fake.tasks[ref.task_id]
            await deliver(client, task, named=False, query=query_sent(fake, ref))
    assert got[0].ref == ref


@pytest.mark.parametrize(
    ("configured", "sent_start", "sent_end"),
    [
        (HOOK + "#frag", HOOK + "?musicapi_tag=", "#frag"),
        (HOOK + "?", HOOK + "?musicapi_tag=", ""),
        (HOOK + "?a=1&", HOOK + "?a=1&musicapi_tag=", ""),
        (HOOK + "?a=%20b#x?y", HOOK + "?a=%20b&musicapi_tag=", "#x?y"),
    ],
)
async def test_the_tag_joins_the_query_and_leaves_the_rest_as_configured(
    configured: str, sent_start: str, sent_end: str
) -> None:
    fake = make_fake()
    async with hooked(fake, webhook_url=configured) as client:
        ref = await create(client)
    sent = str(fake.tasks[ref.task_id].request["webhook_url"])
    assert sent.startswith(sent_start)
    assert sent.endswith(sent_end)
    tag = sent[len(sent_start) : len(sent) - len(sent_end)]
    assert tag.replace("-", "").replace("_", "").isalnum()
    assert len(tag) == 16


@pytest.mark.parametrize("through", ["receiver", "asgi"])
async def test_the_fakes_deliveries_without_task_ids_resolve_every_wait(through: str) -> None:
    """End to end: the fake sends bodies as MusicAPI's Sonic example shows them, to the tagged
    URLs; straight to the receiver, or through the ASGI adapter over an httpx transport."""
    from musicapi_async.webhooks import asgi_app

    fake = make_fake(duration=60.0)
    fake.webhooks.names_task = False
    async with hooked(fake) as client:
        target: Any = client.webhooks
        if through == "asgi":
            target = httpx.ASGITransport(app=asgi_app(client.webhooks))
        async with fake.webhooks.running(target):
            refs = [await create(client, f"song {k}") for k in range(3)]
            with anyio.fail_after(120):
                tasks = await client.await_task(refs)
    assert [t.ref for t in tasks] == refs
    assert all(t.succeeded for t in tasks)
    assert all(b"task_id" not in d.body for d in fake.webhooks.deliveries)
    assert all(polls(fake, ref) == [] for ref in refs)


# --- deliveries resolve waiters -----------------------------------------------------------------


async def test_a_delivery_resolves_await_task_at_once_without_a_single_poll() -> None:
    fake = make_fake(duration=90.0)
    async with hooked(fake) as client:
        ref = await create(client)
        created = anyio.current_time()
        async with waiting(client, ref) as got:
            await anyio.sleep(90.0)
            answer = await deliver(client, fake.tasks[ref.task_id])
            assert answer.status == 200
        assert anyio.current_time() - created == pytest.approx(90.0)
    assert got[0].succeeded
    assert got[0].ref == ref
    assert [c.clip_id for c in got[0].clips] == list(fake.tasks[ref.task_id].clip_ids)
    assert polls(fake, ref) == []


async def test_a_delivery_before_anyone_waits_is_kept_for_the_waiter() -> None:
    fake = make_fake(duration=10.0)
    async with hooked(fake) as client:
        ref = await create(client)
        await anyio.sleep(10.0)
        await deliver(client, fake.tasks[ref.task_id])
        await anyio.sleep(WEBHOOK_EARLY_KEEP / 2)
        with anyio.fail_after(0.001):
            task = await client.await_task(ref)
    assert task.succeeded
    assert polls(fake, ref) == []


async def test_a_delivery_for_a_task_this_client_has_not_seen_yet_is_kept() -> None:
    # The webhook may beat the create's answer: known to nobody when it lands.
    fake = make_fake(duration=10.0)
    async with hooked(fake) as other, hooked(fake) as client:
        ref = await create(other)
        await anyio.sleep(10.0)
        await deliver(client, fake.tasks[ref.task_id])
        with anyio.fail_after(0.001):
            task = await client.await_task(ref.task_id)
    assert task.succeeded
    assert polls(fake, ref) == []


async def test_an_early_delivery_is_forgotten_after_a_while() -> None:
    fake = make_fake(duration=10.0)
    async with hooked(fake) as other, hooked(fake) as client:
        ref = await create(other)
        await anyio.sleep(10.0)
        await deliver(client, fake.tasks[ref.task_id])
        await anyio.sleep(WEBHOOK_EARLY_KEEP + 1)
        task = await client.await_task(ref.task_id)
    # Not from the kept delivery: a poll fetched it.
    assert task.succeeded
    assert len(polls(fake, ref)) == 1


async def test_as_completed_yields_in_delivery_order() -> None:
    fake = make_fake(duration=60.0)
    async with hooked(fake) as client:
        refs = [await create(client, f"song {k}") for k in range(3)]
        order: list[str] = []

        async def consume() -> None:
            async with client.as_completed(refs) as stream:
                async for task in stream:
                    order.append(task.task_id)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(70.0)
            for ref in (refs[2], refs[0], refs[1]):
                await deliver(client, fake.tasks[ref.task_id])
                await anyio.sleep(1.0)
    assert order == [refs[2].task_id, refs[0].task_id, refs[1].task_id]
    assert all(polls(fake, ref) == [] for ref in refs)


async def test_a_failed_task_by_webhook_is_returned_as_data() -> None:
    fake = make_fake(duration=30.0)
    async with hooked(fake) as client:
        ref = await create(client)
        async with waiting(client, ref) as got:
            await anyio.sleep(30.0)
            await deliver(client, fake.tasks[ref.task_id], state="failed")
    assert got[0].status is TaskStatus.FAILED


async def test_a_streaming_delivery_reports_progress_and_waits_on() -> None:
    fake = make_fake(duration=60.0)
    events: list[TaskProgress] = []
    async with hooked(fake) as client:
        ref = await create(client)
        async with waiting(client, ref, on_progress=events.append) as got:
            await anyio.sleep(30.0)
            await deliver(client, fake.tasks[ref.task_id], state="streaming")
            await anyio.sleep(1.0)
            assert not got  # streaming is not the end
            await anyio.sleep(29.0)
            await deliver(client, fake.tasks[ref.task_id])
    assert [e.state for e in events] == [ProgressState.STREAMING, ProgressState.SUCCEEDED]
    assert events[0].elapsed == pytest.approx(30.0)
    assert got[0].succeeded
    assert polls(fake, ref) == []


async def test_a_delivery_whose_body_names_another_family_still_finds_its_task() -> None:
    fake = make_fake(duration=20.0)
    async with hooked(fake) as client:
        ref = await create(client)
        async with waiting(client, ref) as got:
            await anyio.sleep(20.0)
            body = json.loads(body_of(fake.tasks[ref.task_id]))
            body["platform"] = "nuro"  # a wrong hint: the id is what matters
            raw = json.dumps(body).encode()
            await client.webhooks.handle(raw, sign_webhook(raw, SECRET))
    assert got[0].ref == ref
    assert got[0].ref.family is TaskFamily.SONIC


async def test_views_share_the_receiver() -> None:
    fake = make_fake(duration=20.0)
    async with hooked(fake) as client:
        view = client.with_options(timeout=5)
        assert view.webhooks is client.webhooks
        ref = await create(view)
        await anyio.sleep(20.0)
        await deliver(view, fake.tasks[ref.task_id])
        with anyio.fail_after(0.001):
            assert (await client.await_task(ref)).succeeded


# --- bad and repeated deliveries --------------------------------------------------------------


async def test_a_bad_signature_changes_nothing() -> None:
    fake = make_fake(duration=20.0)
    async with hooked(fake) as client:
        ref = await create(client)
        await anyio.sleep(20.0)
        answer = await deliver(client, fake.tasks[ref.task_id], secret="not-the-secret")
        assert answer.status == 401
        task = await client.await_task(ref)
    # The forged delivery resolved nothing: the result came from the fallback poll.
    assert task.succeeded
    assert len(polls(fake, ref)) == 1


async def test_a_repeated_delivery_is_a_duplicate_and_harmless() -> None:
    fake = make_fake(duration=20.0)
    async with hooked(fake) as client:
        ref = await create(client)
        await anyio.sleep(20.0)
        body = body_of(fake.tasks[ref.task_id])
        headers = sign_webhook(body, SECRET, event_id="evt-1")
        first = await client.webhooks.handle(body, headers)
        second = await client.webhooks.handle(body, headers)
        assert (first.status, second.status) == (200, 200)
        assert b"duplicate" in second.body
        assert (await client.await_task(ref)).succeeded


async def test_a_late_second_event_for_a_finished_task_is_ignored() -> None:
    fake = make_fake(duration=20.0)
    async with hooked(fake) as client:
        ref = await create(client)
        await anyio.sleep(20.0)
        await deliver(client, fake.tasks[ref.task_id])
        first = await client.await_task(ref)
        # Reordered: a streaming event arrives after the end.
        await deliver(client, fake.tasks[ref.task_id], state="streaming")
        assert await client.await_task(ref) is first


# --- polling as the safety net -----------------------------------------------------------------


async def test_a_lost_delivery_delays_the_result_but_never_loses_it() -> None:
    fake = make_fake(duration=90.0)
    async with hooked(fake) as client:
        ref = await create(client)
        created = anyio.current_time()
        task = await client.await_task(ref)
    assert task.succeeded
    # Nothing before the fallback time; then one poll finds it done.
    assert [t - created for t in polls(fake, ref)] == [pytest.approx(FALLBACK, abs=1.5)]


async def test_fallback_polls_back_off_while_the_task_runs_on() -> None:
    fake = make_fake(duration=FALLBACK + 200.0)
    async with hooked(fake) as client:
        ref = await create(client)
        created = anyio.current_time()
        task = await client.await_task(ref, timeout=None)
    assert task.succeeded
    offsets = [t - created for t in polls(fake, ref)]
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert offsets[0] == pytest.approx(FALLBACK, abs=1.5)
    assert gaps[0] == pytest.approx(WEBHOOK_FALLBACK_EVERY, abs=1.5)
    assert all(later >= earlier for earlier, later in itertools.pairwise(gaps))
    assert gaps[1] == pytest.approx(2 * WEBHOOK_FALLBACK_EVERY, abs=1.5)
    assert len(offsets) <= 5


async def test_a_task_without_a_webhook_is_polled_as_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="musicapi_async")
    offsets: list[list[float]] = []
    for kwargs in ({"webhook_secret": SECRET}, {}):  # a receiver but no URL to attach; none
        fake = make_fake(duration=30.0)
        async with fake.client(**kwargs) as client:
            ref = await create(client)
            created = anyio.current_time()
            await client.await_task(ref)
        offsets.append([t - created for t in polls(fake, ref)])
    assert offsets[0] == offsets[1]
    assert offsets[0][0] < FALLBACK / 2
    assert SECRET not in caplog.text


async def test_durations_learned_from_deliveries_guide_the_polling_of_other_tasks() -> None:
    # Deliveries say when tasks finished: a later task of the same model, created with its own
    # webhook elsewhere (so polled), is first polled near that duration, not the prior's.
    fake = make_fake(duration=40.0)
    async with hooked(fake) as client:
        await teach(client, fake, 6)
        polled = await create(client, "polled", webhook_url="https://elsewhere.example/h")
        created = anyio.current_time()
        await client.await_task(polled)
    first = polls(fake, polled)[0] - created
    assert 30.0 <= first <= 50.0


async def test_a_delivery_during_a_fallback_poll_yields_the_task_once() -> None:
    fake = make_fake(duration=FALLBACK - 10.0)
    fake.latency["/sonic/task/*"] = 5.0  # the fallback poll is still in flight at +2 s
    seen, refs = await deliver_during_fallback_poll(fake)
    assert seen == [ref.task_id for ref in refs]


async def test_once_durations_are_learned_a_lost_delivery_is_polled_soon_after_they_end() -> None:
    from musicapi_async._constants import WEBHOOK_FALLBACK_GRACE, WEBHOOK_FALLBACK_SAMPLES

    fake = make_fake(duration=40.0)
    async with hooked(fake) as client:
        await teach(client, fake, WEBHOOK_FALLBACK_SAMPLES)
        lost = await create(client, "lost")
        created = anyio.current_time()
        assert (await client.await_task(lost)).succeeded
    # Every task took 40 s, delivered at once: the lost one is polled 40 s + the grace in,
    # not at twice the prior's expected duration.
    first = polls(fake, lost)[0] - created
    assert 40.0 <= first <= 40.0 + WEBHOOK_FALLBACK_GRACE + 1.5


async def test_lost_deliveries_found_late_do_not_push_later_fallbacks_later() -> None:
    from musicapi_async._constants import WEBHOOK_FALLBACK_GRACE, WEBHOOK_FALLBACK_SAMPLES

    fake = make_fake(duration=40.0)
    async with hooked(fake) as client:
        await teach(client, fake, WEBHOOK_FALLBACK_SAMPLES)
        firsts = []
        for k in range(3 * WEBHOOK_FALLBACK_SAMPLES):  # then every delivery is lost
            lost = await create(client, f"lost {k}")
            created = anyio.current_time()
            await client.await_task(lost)
            firsts.append(polls(fake, lost)[0] - created)
    # Each was found after its fallback poll; what that poll saw late never delays the next.
    assert max(firsts) <= 40.0 + WEBHOOK_FALLBACK_GRACE + 1.5


# --- review regressions -------------------------------------------------------------------------


async def test_a_lost_delivery_never_turns_a_finished_task_into_a_timeout() -> None:
    from musicapi_async._constants import DEADLINE_LEAD

    # Fallback polls at 240, 270, 330, 450 s would next come at 690 s, after the 600 s
    # default deadline: the scheduler looks once more just before it.
    fake = make_fake(duration=460.0)
    async with hooked(fake) as client:
        ref = await create(client)
        created = anyio.current_time()
        task = await client.await_task(ref)
    assert task.succeeded
    assert polls(fake, ref)[-1] - created == pytest.approx(600.0 - DEADLINE_LEAD, abs=2)


async def test_a_cancel_scope_deadline_around_the_wait_counts_too() -> None:
    fake = make_fake(duration=300.0)
    async with hooked(fake) as client:
        ref = await create(client)
        with anyio.fail_after(320.0):  # 240 s fallback sees it running; 270 s too
            task = await client.await_task(ref, timeout=None)
    assert task.succeeded


async def test_a_batch_item_naming_its_own_webhook_is_polled_as_usual() -> None:
    from musicapi_async import SonicCreate

    fake = make_fake(duration=60.0)
    async with hooked(fake) as client:
        item = SonicCreate(
            mv="sonic-v5",
            gpt_description_prompt="own hook",
            webhook_url="https://elsewhere.example/hook",
            webhook_secret="theirs",
        )
        submission = await client.sonic.batch([item])
        created = anyio.current_time()
        await client.await_task(submission.tasks[0])
    # Not delivered here: the scheduler polls it like any task, not only at the fallback.
    assert polls(fake, submission.tasks[0])[0] - created < FALLBACK / 2


async def test_a_poll_error_after_a_delivery_does_not_reach_the_waiter() -> None:
    durations = iter([FALLBACK - 10.0, FALLBACK + 100.0])  # the other is still running at 245
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=lambda task: next(durations))
    fake.inject("/sonic/task/*", status=401, delay=5.0, times=1)  # the fallback poll's answer
    seen, refs = await deliver_during_fallback_poll(fake)
    assert fake.requests_to(f"/sonic/task/{refs[0].task_id}")[0].status == 401
    assert seen == [ref.task_id for ref in refs]


async def test_progress_never_goes_back_when_a_poll_answers_after_a_delivery() -> None:
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=600.0, not_ready_style="200")
    fake.latency["/sonic/task/*"] = 5.0
    events: list[ProgressState] = []
    async with hooked(fake) as client:
        created = anyio.current_time()
        ref = await create(client)
        async with waiting(client, ref, timeout=None, on_progress=lambda e: events.append(e.state)):
            # The fallback poll leaves at 240 s (the task still "running" then); a streaming
            # delivery lands while it is in flight.
            await anyio.sleep(FALLBACK + 2.0 - (anyio.current_time() - created))
            await deliver(client, fake.tasks[ref.task_id], state="streaming")
            await anyio.sleep(10.0)
            assert events == [ProgressState.STREAMING]
            await anyio.sleep(600.0)
            await deliver(client, fake.tasks[ref.task_id])
    assert events[-1] is ProgressState.SUCCEEDED
    assert ProgressState.RUNNING not in events[events.index(ProgressState.STREAMING) :]


async def test_a_delivery_for_a_task_submitted_here_is_kept_past_the_early_window() -> None:
    fake = make_fake(duration=10.0)
    async with hooked(fake) as client:
        ref = await create(client)
        await anyio.sleep(10.0)
        await deliver(client, fake.tasks[ref.task_id])
        await anyio.sleep(WEBHOOK_EARLY_KEEP * 2)
        with anyio.fail_after(0.001):
            task = await client.await_task(ref)
    assert task.succeeded
    assert polls(fake, ref) == []


async def test_a_delivery_before_the_create_call_returns_is_kept_as_this_clients_own() -> None:
    """The task ended (and was delivered) while its create call's answer was still on its
    way: once the call returns, the result is kept like any of this client's, not dropped
    with strangers' after WEBHOOK_EARLY_KEEP."""
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=1.0, latency={"/sonic/create": 12.0})
    async with hooked(fake) as client, fake.webhooks.running(client.webhooks):
        ref = await create(client)
        assert [d.status for d in fake.webhooks.deliveries] == [200]  # before it returned
        await anyio.sleep(WEBHOOK_EARLY_KEEP * 2)
        with anyio.fail_after(0.001):
            task = await client.await_task(ref)
    assert task.succeeded
    assert polls(fake, ref) == []


async def test_a_tagless_delivery_whose_create_call_is_slow_is_deferred_not_refused() -> None:
    """A body naming no task, its tag's create call still unanswered after the wait: 503, so
    the sender delivers again (a 400 is final: the result waited for a fallback poll)."""
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=1.0, latency={"/sonic/create": 12.0})
    fake.webhooks.names_task = False
    async with hooked(fake) as client, fake.webhooks.running(client.webhooks):
        started = anyio.current_time()
        ref = await create(client)
        task = await client.await_task(ref)
        assert anyio.current_time() - started < 30  # from the retried delivery, not a poll
    assert task.succeeded
    assert polls(fake, ref) == []
    assert [d.status for d in fake.webhooks.deliveries] == [503, 200]
    stats = client.webhooks.statistics()
    assert (stats.deferred, stats.rejected_total, stats.accepted) == (1, 0, 1)


@pytest.mark.parametrize("names_task", [False, True])
async def test_the_delivery_of_a_create_that_timed_out_is_kept_not_refused(
    names_task: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A create whose answer is lost (a read timeout after the server made the task): its
    error says the task may exist and carries its URL tag, and the delivery that comes for
    it, even one naming no task (MusicAPI's published Sonic shape), is kept, logged and
    answered 200, so the paid task's clips are never lost to a final 400."""
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=30.0)
    fake.webhooks.names_task = names_task
    fake.inject("/sonic/create", fault="read_timeout", after_processing=True)
    async with hooked(fake) as client, fake.webhooks.running(client.webhooks):
        with pytest.raises(MusicAPIError) as caught:
            await create(client)
        await anyio.sleep(60)
    error = caught.value
    assert error.task_may_exist
    assert error.webhook_tag is not None
    assert "client.webhooks.orphans()" in str(error)
    (task_id,) = fake.tasks
    (orphan,) = client.webhooks.orphans()
    assert orphan.tag == error.webhook_tag
    assert orphan.task_id == (task_id if names_task else None)
    assert tuple(clip.clip_id for clip in orphan.clips) == fake.tasks[task_id].clip_ids
    assert [d.status for d in fake.webhooks.deliveries] == [200]
    assert client.webhooks.statistics().orphans == 1
    assert error.webhook_tag in caplog.text


@pytest.mark.parametrize("names_task", [False, True])
async def test_the_delivery_of_a_create_still_hanging_when_it_comes_is_kept_too(
    names_task: bool,
) -> None:
    """The task is made and delivered (at 30 s) while the create call still hangs; the
    call then times out (at 35 s), within the wait for its answer or after it: the delivery
    is an orphan's all the same, kept rather than refused for good."""
    fake = FakeMusicAPI(rate_limit=None, sonic_duration=30.0)
    fake.webhooks.names_task = names_task
    fake.inject("/sonic/create", fault="read_timeout", after_processing=True, delay=35.0)
    async with hooked(fake) as client, fake.webhooks.running(client.webhooks):
        with pytest.raises(MusicAPIError) as caught:
            await create(client)
        await anyio.sleep(60)
    (orphan,) = client.webhooks.orphans()
    assert orphan.tag == caught.value.webhook_tag
    (task_id,) = fake.tasks
    assert orphan.task_id == (task_id if names_task else None)
    assert 400 not in [d.status for d in fake.webhooks.deliveries]


async def test_a_create_refused_outright_leaves_no_tag_to_look_for() -> None:
    fake = FakeMusicAPI(rate_limit=None, refused_models={"sonic-old"})
    async with hooked(fake) as client:
        with pytest.raises(MusicAPIError) as caught:
            await client.sonic.create(mv="sonic-old", gpt_description_prompt="x")
    assert not caught.value.task_may_exist
    assert caught.value.webhook_tag is None
    assert "orphans" not in str(caught.value)


def test_the_tolerance_must_be_finite() -> None:
    with pytest.raises(ValueError, match="webhook_tolerance"):
        MusicAPI("k", webhook_secret=SECRET, webhook_tolerance=float("inf"))


async def test_webhook_legacy_false_refuses_legacy_deliveries() -> None:
    fake = make_fake(duration=20.0)
    async with hooked(fake, webhook_legacy=False) as client:
        ref = await create(client)
        await anyio.sleep(20.0)
        body = body_of(fake.tasks[ref.task_id])
        legacy = await client.webhooks.handle(body, sign_webhook(body, SECRET, legacy=True))
        current = await client.webhooks.handle(body, sign_webhook(body, SECRET))
    assert (legacy.status, current.status) == (401, 200)


def test_webhook_legacy_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="webhook_legacy"):
        MusicAPI("k", webhook_secret=SECRET, webhook_legacy="false")  # type: ignore[arg-type]
