"""FakeMusicAPI sends real, signed webhooks: when, what, to whom, and with which faults.

Everything runs in virtual time (trio's MockClock, the virtual asyncio loop) and checks
the fake's deliveries with the SDK's own verification, except :class:`TestOverLoopback`,
which posts over real sockets in real time.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketStream, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

from musicapi_async import (
    ClipState,
    MusicAPI,
    TaskFamily,
    WebhookEvent,
    WebhookReceiver,
    WebhookResponse,
)
from musicapi_async import TaskStatus as SDKTaskStatus
from musicapi_async.testing import FakeMusicAPI, serving
from musicapi_async.testing._webhooks import DEFAULT_WEBHOOK_RETRY_DELAYS
from musicapi_async.webhooks import HasHandle, asgi_app

pytestmark = pytest.mark.anyio

SECRET = "whsec-fake-KOALA-19"
HOOK = "https://app.example/musicapi-webhook"
AUTH = {"Authorization": f"Bearer {FakeMusicAPI.DEFAULT_KEY}"}
DESCRIPTION: dict[str, Any] = {
    "custom_mode": False,
    "mv": "sonic-v5",
    "gpt_description_prompt": "lofi hip hop for studying",
}
WITH_HOOK = {**DESCRIPTION, "webhook_url": HOOK, "webhook_secret": SECRET}


def make_fake(**kwargs: Any) -> FakeMusicAPI:
    kwargs.setdefault("rate_limit", None)
    kwargs.setdefault("sonic_duration", 60.0)
    return FakeMusicAPI(**kwargs)


class Sink:
    """A receiver and what reached its callback."""

    def __init__(self, **kwargs: Any) -> None:
        self.events: list[WebhookEvent] = []
        kwargs.setdefault("on_event", self.events.append)
        self.receiver = WebhookReceiver(SECRET, **kwargs)


@asynccontextmanager
async def api(fake: FakeMusicAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url=fake.base_url, headers=AUTH
    ) as http:
        yield http


async def create(http: httpx.AsyncClient, path: str = "/sonic/create", **body: Any) -> str:
    answer = await http.post(path, json={**WITH_HOOK, **body} if path == "/sonic/create" else body)
    assert answer.status_code == 200, answer.text
    task_id: str = answer.json()["task_id"]
    return task_id


def statuses(fake: FakeMusicAPI) -> list[tuple[float, int | None, str]]:
    return [(d.time, d.status, d.outcome) for d in fake.webhook_deliveries]


# --- what is sent, when ---------------------------------------------------------------------


@pytest.mark.parametrize("style", ["202", "200"])
async def test_a_finished_task_is_delivered_at_its_done_time_with_its_poll_body(
    style: str,
) -> None:
    fake = make_fake(not_ready_style=style)
    sink = Sink()
    async with fake.webhooks.running(sink.receiver), api(fake) as http:
        task_id = await create(http)
        await anyio.sleep(30)
        assert fake.webhooks.scheduled == 1  # not due yet: nothing sent
        await anyio.sleep(31)
        poll = (await http.get(f"/sonic/task/{task_id}")).json()
    [delivery] = fake.webhook_deliveries
    assert delivery.time == fake.tasks[task_id].done_at == 60.0
    assert (delivery.task_id, delivery.kind, delivery.status) == (task_id, "song.completed", 200)
    assert (delivery.attempt, delivery.copy, delivery.url) == (1, 1, HOOK)
    assert delivery.json() == {"task_id": task_id, "platform": "suno", **poll}
    [event] = sink.events
    assert event.id == delivery.event_id
    assert event.kind == "song.completed"
    assert event.task.status is SDKTaskStatus.SUCCEEDED
    assert [c.clip_id for c in event.task.clips] == list(fake.tasks[task_id].clip_ids)
    assert delivery.headers["X-Webhook-Id"] == delivery.headers["Idempotency-Key"]


async def test_deliveries_through_the_asgi_app_reach_the_receiver() -> None:
    fake = make_fake()
    sink = Sink()
    transport = httpx.ASGITransport(app=asgi_app(sink.receiver))
    async with fake.webhooks.running(transport), api(fake) as http:
        task_id = await create(http)
        await anyio.sleep(61)
    assert [e.task_id for e in sink.events] == [task_id]
    assert statuses(fake) == [(60.0, 200, "delivered")]


@pytest.mark.parametrize(
    ("outcome", "kind", "status", "clip_states"),
    [
        ("failed", "song.failed", SDKTaskStatus.FAILED, []),
        ("timeout", "song.failed", SDKTaskStatus.FAILED, []),
        ("partial", "song.completed", SDKTaskStatus.SUCCEEDED, ["succeeded", "failed"]),
    ],
)
async def test_failed_and_partial_tasks(
    outcome: str, kind: str, status: SDKTaskStatus, clip_states: list[str]
) -> None:
    fake = make_fake()
    fake.plan(outcome=outcome)  # type: ignore[arg-type]
    sink = Sink()
    async with fake.webhooks.running(sink.receiver), api(fake) as http:
        await create(http)
        await anyio.sleep(61)
    [event] = sink.events
    assert (event.kind, event.task.status) == (kind, status)
    assert [c.state.value for c in event.task.clips] == clip_states
    if not clip_states:
        assert event.raw["type"] == outcome
        assert event.task.error


async def test_producer_and_nuro_tasks_are_delivered_with_their_platform() -> None:
    fake = make_fake(producer_duration=20.0, nuro_duration=40.0, nuro_retired=False)
    sink = Sink()
    hook = {"webhook_url": HOOK, "webhook_secret": SECRET}
    async with fake.webhooks.running(sink.receiver), api(fake) as http:
        producer = await create(http, "/producer/create", sound="surf rock", **hook)
        nuro = await create(http, "/nuro/create", type="bgm", description="calm", **hook)
        await anyio.sleep(41)
    by_task = {e.task_id: e for e in sink.events}
    assert by_task[producer].raw["platform"] == "producer"
    assert by_task[producer].task.ref.family is TaskFamily.PRODUCER
    assert by_task[producer].task.succeeded
    assert by_task[nuro].raw["platform"] == "nuro"
    assert by_task[nuro].task.ref.family is TaskFamily.NURO
    assert by_task[nuro].task.succeeded
    assert [d.time for d in fake.webhook_deliveries] == [20.0, 40.0]


async def test_a_batch_webhook_covers_each_of_its_tasks() -> None:
    fake = make_fake()
    sink = Sink()
    async with fake.webhooks.running(sink.receiver), api(fake) as http:
        body = {"items": [DESCRIPTION, DESCRIPTION], "webhook_url": HOOK, "webhook_secret": SECRET}
        answer = (await http.post("/sonic/batch", json=body)).json()
        await anyio.sleep(61)
    assert sorted(e.task_id for e in sink.events) == sorted(t["task_id"] for t in answer["tasks"])


async def test_tasks_without_a_webhook_url_send_nothing() -> None:
    fake = make_fake()
    async with fake.webhooks.running(Sink().receiver), api(fake) as http:
        await create(http, webhook_url=None, webhook_secret=None)
        await anyio.sleep(61)
    assert fake.webhook_deliveries == ()
    assert fake.webhooks.scheduled == 0


async def test_without_a_secret_the_delivery_is_unverifiable_and_refused_once() -> None:
    fake = make_fake()
    sink = Sink()
    async with fake.webhooks.running(sink.receiver), api(fake) as http:
        await create(http, webhook_secret=None)
        await anyio.sleep(1000)
    assert statuses(fake) == [(60.0, 401, "refused")]  # a 4xx is not retried
    assert sink.events == []
    assert sink.receiver.statistics().rejected == {"bad_signature": 1}


async def test_tasks_created_before_the_driver_starts_are_delivered_when_it_starts() -> None:
    fake = make_fake()
    sink = Sink()
    async with api(fake) as http:
        await create(http)
        await anyio.sleep(100)
        async with fake.webhooks.running(sink.receiver):
            await anyio.sleep(1)
    assert statuses(fake) == [(100.0, 200, "delivered")]


async def test_streaming_events_are_opt_in() -> None:
    fake = make_fake(not_ready_style="200")
    fake.webhooks.streaming = True
    sink = Sink()
    async with fake.webhooks.running(sink.receiver), api(fake) as http:
        await create(http)
        await anyio.sleep(61)
    streaming, completed = sink.events
    assert streaming.kind == "song.streaming"
    assert not streaming.task.is_terminal
    assert {c.state for c in streaming.task.clips} <= {ClipState.STREAMING, ClipState.SUCCEEDED}
    assert len(streaming.task.audio_urls) == 2
    assert completed.kind == "song.completed"
    assert completed.task.succeeded
    assert [round(d.time, 3) for d in fake.webhook_deliveries] == [30.0, 60.0]


async def test_the_legacy_scheme() -> None:
    fake = make_fake()
    fake.webhooks.legacy = True
    sink = Sink()
    async with fake.webhooks.running(sink.receiver), api(fake) as http:
        await create(http)
        await anyio.sleep(61)
    [delivery] = fake.webhook_deliveries
    assert set(delivery.headers) == {"Content-Type", "X-Signature"}
    assert delivery.event_id is None
    [event] = sink.events
    assert (event.scheme, event.id, event.timestamp) == ("legacy", None, None)


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://app.example/hook", True),
        ("http://127.0.0.1:8123/hook", True),
        ("http://localhost/hook", True),
        ("http://[::1]:9000/hook", True),
        ("http://app.example/hook", False),
        ("ftp://app.example/hook", False),
        ("https://", False),
        (12, False),
    ],
)
async def test_webhook_urls_must_be_https_or_loopback_http(url: Any, accepted: bool) -> None:
    fake = make_fake()
    async with api(fake) as http:
        answer = await http.post("/sonic/create", json={**WITH_HOOK, "webhook_url": url})
    if accepted:
        assert answer.status_code == 200
        return
    assert answer.status_code == 400
    assert "webhook_url" in answer.json()["message"]
    assert fake.tasks == {}
    assert fake.credits().total == 1000  # refused before anything was charged


# --- retries --------------------------------------------------------------------------------


async def test_a_5xx_answer_is_retried_and_each_attempt_is_signed_afresh() -> None:
    fake = make_fake()
    fake.webhooks.clock = itertools.count(1_763_000_000).__next__
    calls = 0

    def flaky(event: WebhookEvent) -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise RuntimeError("database down")

    sink = Sink(on_event=flaky, clock=lambda: 1_763_000_000)
    async with fake.webhooks.running(sink.receiver), api(fake) as http:
        await create(http)
        await anyio.sleep(1000)
    assert statuses(fake) == [
        (60.0, 500, "refused"),
        (61.0, 500, "refused"),
        (65.0, 200, "delivered"),
    ]
    first, second, third = fake.webhook_deliveries
    assert [d.attempt for d in (first, second, third)] == [1, 2, 3]
    assert first.event_id == second.event_id == third.event_id
    stamps = [d.headers["X-Webhook-Timestamp"] for d in (first, second, third)]
    assert len(set(stamps)) == 3
    assert first.body == third.body


async def test_connection_failures_are_retried_on_the_schedule_then_given_up() -> None:
    fake = make_fake()
    sent: list[float] = []

    async def unreachable(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        sent.append(anyio.current_time())
        raise httpx.ConnectError("connection refused")

    async with fake.webhooks.running(unreachable), api(fake) as http:
        await create(http)
        await anyio.sleep(10_000)
    expected = list(itertools.accumulate((60.0, *DEFAULT_WEBHOOK_RETRY_DELAYS)))
    assert sent == expected
    assert [d.outcome for d in fake.webhook_deliveries] == ["error"] * len(expected)
    assert fake.webhook_deliveries[0].error == "ConnectError: connection refused"
    assert fake.webhooks.scheduled == 0


@pytest.mark.parametrize(("status", "attempts"), [(400, 1), (404, 1), (408, 5), (429, 5), (503, 5)])
async def test_which_answers_are_retried(status: int, attempts: int) -> None:
    fake = make_fake()

    async def answer(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        return status

    async with fake.webhooks.running(answer), api(fake) as http:
        await create(http)
        await anyio.sleep(10_000)
    assert len(fake.webhook_deliveries) == attempts


async def test_custom_retry_delays() -> None:
    fake = make_fake()
    fake.webhooks.retry_delays = (10.0,)

    async def down(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        return 502

    async with fake.webhooks.running(down), api(fake) as http:
        await create(http)
        await anyio.sleep(1000)
    assert [d.time for d in fake.webhook_deliveries] == [60.0, 70.0]


async def test_a_delivery_cut_short_by_a_stopped_driver_goes_on_with_the_next_one() -> None:
    """Stopping the driver while an event waits for a retry, or for a late delivery, does not
    lose it: the next driver sends the retry at once (its pause is over), and the late one
    when due, each with its id and body."""
    fake = make_fake()
    answers = iter([503])

    async def flaky(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        return next(answers, 200)

    async with api(fake) as http:
        async with fake.webhooks.running(flaky):
            fake.webhooks.delay(100.0)
            late = await create(http)  # done at 60 s, sent 100 s late
            retried = await create(http)  # done at 60 s: 503, the retry due at 61 s
            await anyio.sleep(60.5)
        assert fake.webhooks.scheduled == 2  # the retry and the late event, kept
        await anyio.sleep(100)  # no driver: nothing is sent
        assert len(fake.webhook_deliveries) == 1
        async with fake.webhooks.running(flaky):
            await anyio.sleep(100)
    first, *rest = list(fake.webhook_deliveries)
    assert (first.task_id, first.time, first.status, first.attempt) == (retried, 60.0, 503, 1)
    again, delayed = sorted(rest, key=lambda d: d.task_id != retried)
    assert (again.time, again.status, again.attempt) == (160.5, 200, 2)
    assert (again.event_id, again.body) == (first.event_id, first.body)
    assert (delayed.task_id, delayed.time, delayed.status) == (late, 160.5, 200)
    assert delayed.attempt == 1
    assert fake.webhooks.scheduled == 0


async def test_a_sender_that_crashes_ends_the_driver_without_leaving_an_event_in_progress() -> None:
    """A receiver's bug (an exception that is no HTTP error) ends the driver with it, and the
    fake does not count the event as being delivered for ever."""
    fake = make_fake()

    async def buggy(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        raise RuntimeError("bug in the receiver")

    async def deliver() -> None:
        async with api(fake) as http, fake.webhooks.running(buggy):
            await create(http)
            await anyio.sleep(61)

    with pytest.raises(Exception) as ended:  # noqa: PT011 - a group, as task groups raise
        await deliver()
    assert ended.group_contains(RuntimeError, match="bug in the receiver")
    assert fake.webhooks.scheduled == 0


# --- faults ---------------------------------------------------------------------------------


async def create_staggered(http: httpx.AsyncClient, count: int) -> list[str]:
    """``count`` tasks created one second apart, so they finish at 60, 61, 62..."""
    ids = []
    for _ in range(count):
        ids.append(await create(http))
        await anyio.sleep(1)
    return ids


async def test_drop_loses_the_next_events() -> None:
    fake = make_fake()
    fake.webhooks.drop(2)
    sink = Sink()
    async with fake.webhooks.running(sink.receiver), api(fake) as http:
        ids = await create_staggered(http, 3)
        await anyio.sleep(100)
    assert [e.task_id for e in sink.events] == [ids[2]]
    assert [(d.task_id, d.outcome, d.status) for d in fake.webhook_deliveries] == [
        (ids[0], "dropped", None),
        (ids[1], "dropped", None),
        (ids[2], "delivered", 200),
    ]


async def test_drop_at_a_rate_is_reproducible_with_a_seed() -> None:
    fake = make_fake()
    fake.webhooks.drop(rate=0.5, seed=11)
    async with fake.webhooks.running(Sink().receiver), api(fake) as http:
        await create_staggered(http, 12)
        await anyio.sleep(100)
    rng = random.Random(11)
    expected = ["dropped" if rng.random() < 0.5 else "delivered" for _ in range(12)]
    assert [d.outcome for d in fake.webhook_deliveries] == expected
    assert "dropped" in expected
    assert "delivered" in expected


async def test_duplicate_sends_the_same_event_twice_and_the_receiver_dedupes() -> None:
    fake = make_fake()
    fake.webhooks.duplicate()
    sink = Sink()
    async with fake.webhooks.running(sink.receiver), api(fake) as http:
        ids = await create_staggered(http, 2)
        await anyio.sleep(100)
    deliveries = fake.webhook_deliveries
    assert [(d.task_id, d.copy) for d in deliveries] == [(ids[0], 1), (ids[0], 2), (ids[1], 1)]
    assert deliveries[0].event_id == deliveries[1].event_id
    assert deliveries[0].body == deliveries[1].body
    assert [e.task_id for e in sink.events] == ids
    stats = sink.receiver.statistics()
    assert (stats.accepted, stats.duplicate) == (2, 1)


async def test_delay_sends_late_with_the_payload_of_the_event_time() -> None:
    fake = make_fake()
    fake.webhooks.delay(30)
    sink = Sink()
    async with fake.webhooks.running(sink.receiver), api(fake) as http:
        ids = await create_staggered(http, 2)
        await anyio.sleep(100)
    assert [(d.task_id, d.time) for d in fake.webhook_deliveries] == [
        (ids[1], 61.0),
        (ids[0], 90.0),
    ]
    assert all(e.task.succeeded for e in sink.events)


async def test_reorder_reverses_the_next_events() -> None:
    fake = make_fake()
    fake.webhooks.reorder(3)
    sink = Sink()
    async with fake.webhooks.running(sink.receiver), api(fake) as http:
        ids = await create_staggered(http, 4)
        await anyio.sleep(100)
    assert [(d.task_id, d.time) for d in fake.webhook_deliveries] == [
        (ids[2], 62.0),
        (ids[1], 62.0),
        (ids[0], 62.0),
        (ids[3], 63.0),
    ]
    assert [e.task_id for e in sink.events] == [ids[2], ids[1], ids[0], ids[3]]


async def test_reorder_with_a_seed_shuffles_reproducibly() -> None:
    fake = make_fake()
    fake.webhooks.reorder(5, seed=4)
    async with fake.webhooks.running(Sink().receiver), api(fake) as http:
        ids = await create_staggered(http, 5)
        await anyio.sleep(100)
    expected = list(ids)
    random.Random(4).shuffle(expected)
    assert [d.task_id for d in fake.webhook_deliveries] == expected


async def test_clear_faults_releases_held_events() -> None:
    fake = make_fake()
    fake.webhooks.reorder(3)
    fake.webhooks.drop(5)
    async with fake.webhooks.running(Sink().receiver), api(fake) as http:
        await create_staggered(http, 1)
        fake.webhooks.clear_faults()
        await anyio.sleep(100)
    assert [d.outcome for d in fake.webhook_deliveries] == ["delivered"]


def test_fault_arguments_are_checked() -> None:
    hooks = make_fake().webhooks
    with pytest.raises(ValueError, match="rate"):
        hooks.drop(rate=1.5)
    with pytest.raises(ValueError, match="times"):
        hooks.drop(0)
    with pytest.raises(ValueError, match="times"):
        hooks.duplicate(0)
    with pytest.raises(ValueError, match="seconds"):
        hooks.delay(-1)
    with pytest.raises(ValueError, match="count"):
        hooks.reorder(1)


# --- the driver -----------------------------------------------------------------------------


async def test_one_driver_at_a_time() -> None:
    fake = make_fake()
    async with fake.webhooks.running(Sink().receiver):
        with pytest.raises(RuntimeError, match="already"):
            await fake.webhooks.run(Sink().receiver)
    async with anyio.create_task_group() as tg:  # and again once the first has stopped
        await tg.start(fake.webhooks.run, Sink().receiver)
        tg.cancel_scope.cancel()


async def test_a_sender_of_the_wrong_type_is_refused() -> None:
    fake = make_fake()
    with pytest.raises(TypeError, match="send must be"):
        await fake.webhooks.run(42)  # type: ignore[arg-type]


async def test_no_record_or_repr_shows_the_secret() -> None:
    fake = make_fake()
    async with fake.webhooks.running(Sink().receiver), api(fake) as http:
        await create(http)
        await anyio.sleep(61)
    shown = repr(fake.webhooks) + repr(fake.webhook_deliveries) + repr(fake) + repr(fake.requests)
    assert SECRET not in shown
    assert fake.webhooks.scheduled == 0


# --- with the SDK's client -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "resolved_at", "polled"),
    [
        pytest.param(None, [60.0, 61.0], False, id="none"),
        pytest.param(("duplicate", 1), [60.0, 61.0], False, id="duplicate"),
        pytest.param(("delay", 30.0), [90.0, 61.0], False, id="delay"),  # the next event only
        pytest.param(("reorder", 2), [61.0, 61.0], False, id="reorder"),
        pytest.param(("drop", 1), None, True, id="drop"),
    ],
)
async def test_await_task_is_resolved_by_the_fakes_deliveries(
    fault: tuple[str, Any] | None, resolved_at: list[float] | None, polled: bool
) -> None:
    """Each fault seen from the client: lost deliveries are found by its fallback poll."""
    fake = make_fake()
    if fault is not None:
        getattr(fake.webhooks, fault[0])(fault[1])
    finished: dict[str, float] = {}
    async with (
        fake.client(
            webhook_url=HOOK,
            webhook_secret=SECRET,
            expected_durations={"sonic": 60.0},
            limiter=None,  # creates at 0 s and 1 s exactly
        ) as client,
        fake.webhooks.running(client.webhooks),
    ):
        refs = [await client.sonic.create(**DESCRIPTION)]
        await anyio.sleep(1)
        refs.append(await client.sonic.create(**DESCRIPTION))
        async for task in client.as_completed(refs):
            assert task.succeeded
            finished[task.task_id] = anyio.current_time()
    assert len(finished) == 2
    polls = fake.requests_to("/sonic/task/*")
    assert bool(polls) is polled
    if resolved_at is not None:
        assert [finished[ref.task_id] for ref in refs] == resolved_at
    else:
        assert max(finished.values()) > 61.0  # the lost one waited for the safety-net poll
    stats = client.webhooks.statistics()
    assert stats.duplicate == (1 if fault and fault[0] == "duplicate" else 0)


# --- over real HTTP -------------------------------------------------------------------------


class Forward:
    """A receiver standing in for one that does not exist yet (``client.webhooks``)."""

    target: HasHandle | None = None

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> WebhookResponse:
        assert self.target is not None
        return await self.target.handle(body, headers)


async def _serve_receiver(
    receiver: HasHandle, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED
) -> None:
    """A minimal HTTP/1.1 endpoint on 127.0.0.1 answering with ``receiver``."""

    async def answer(stream: SocketStream) -> None:
        async with stream:
            buffered = BufferedByteReceiveStream(stream)
            head = (await buffered.receive_until(b"\r\n\r\n", 65536)).decode("latin-1")
            lines = head.split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:] if line)
            length = int({k.lower(): v for k, v in headers.items()}.get("content-length", "0"))
            body = await buffered.receive_exactly(length) if length else b""
            response = await receiver.handle(body, headers)
            await stream.send(
                b"HTTP/1.1 %d OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
                % (response.status, len(response.body), response.body)
            )

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        task_status.started(listener.extra(SocketAttribute.local_port))
        await listener.serve(answer)


class TestOverLoopback:
    """Real sockets, real time: the fake posts to the task's webhook_url over HTTP."""

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        param: str = request.param
        return param

    async def test_the_fake_posts_over_http_to_a_loopback_receiver(self) -> None:
        fake = make_fake(sonic_duration=0.2)
        arrived = anyio.Event()
        sink = Sink()
        sink.receiver.subscribe(lambda event: arrived.set())
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                port = await tg.start(_serve_receiver, sink.receiver)
                await tg.start(fake.webhooks.run)  # send=None: real HTTP
                async with api(fake) as http:
                    task_id = await create(http, webhook_url=f"http://127.0.0.1:{port}/hook")
                await arrived.wait()
                # The receiver has answered; the fake records the attempt once it reads that.
                while fake.webhooks.scheduled:  # noqa: ASYNC110 (no event to wait on)
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
        assert sink.events[0].task_id == task_id
        assert [d.status for d in fake.webhook_deliveries] == [200]

    async def test_await_task_is_resolved_by_the_served_fakes_webhook(self, tmp_path: Path) -> None:
        """End to end: SDK client, served fake, loopback receiver; no poll is needed."""
        fake = FakeMusicAPI(sonic_duration=0.3)
        with anyio.fail_after(20):
            async with serving(fake) as served, anyio.create_task_group() as tg:
                forward = Forward()
                port = await tg.start(_serve_receiver, forward)
                async with MusicAPI(
                    FakeMusicAPI.DEFAULT_KEY,
                    base_url=served.base_url,
                    webhook_url=f"http://127.0.0.1:{port}/hook",
                    webhook_secret=SECRET,
                    expected_durations={"sonic": 60.0},  # the fallback poll would come late
                ) as client:
                    forward.target = client.webhooks  # serving() delivers over real HTTP
                    ref = await client.sonic.create(**DESCRIPTION)
                    task = await client.await_task(ref)
                    # The delivery's audio URLs point at the served fake, like its polls'.
                    cdn = f"http://127.0.0.1:{served.port}/cdn/"
                    assert all(url.startswith(cdn) for url in task.audio_urls)
                    audio = await client.download(task.clips[0], tmp_path)
                tg.cancel_scope.cancel()
        assert task.succeeded
        assert fake.requests_to("/sonic/task/*") == []
        assert [d.status for d in fake.webhook_deliveries] == [200]
        assert audio.read_bytes().startswith(b"RIFF")


def test_delivery_records_decode_their_body() -> None:
    from musicapi_async.testing._webhooks import WebhookDelivery

    record = WebhookDelivery(
        time=1.0,
        url=HOOK,
        event_id="e",
        task_id="t",
        kind="song.completed",
        attempt=1,
        status=200,
        outcome="delivered",
        body=json.dumps({"task_id": "t"}).encode(),
    )
    assert record.json() == {"task_id": "t"}
    assert record.delivered
