"""The README's recipes, driven as their users would drive them, and ``use_fake``.

``tests/test_readme.py`` runs every README block; a block marked
``<!-- readme-test: check NAME -->`` defines an application (a FastAPI app, Django views,
a Celery task, a chat bot) rather than running something, and ``CHECKS[NAME]`` below then
drives it: requests through the ASGI app and its lifespan, Django's async test client, a
Celery task in eager mode, the bot's replies. A check receives the block's namespace as
run, the fake every ``MusicAPI()`` of the block talked to, what it printed, and the
harness's ``anyio.run`` (virtual time on the test's backend).
"""

from __future__ import annotations

import itertools
import json
import sys
import types
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from musicapi_async import MusicAPI
from musicapi_async.testing import FakeMusicAPI, use_fake

Message = dict[str, Any]


@dataclass
class Ran:
    """A README block after it ran: what a check drives and inspects."""

    namespace: dict[str, Any]
    fake: FakeMusicAPI
    #: What the block printed on stdout.
    output: str
    #: ``anyio.run`` as the harness runs it: the test's backend, virtual time.
    run: Callable[..., Any]
    backend: str


@dataclass(frozen=True)
class Check:
    """How to drive a README block that defines an application."""

    drive: Callable[[Ran], None]
    #: The backends it is run on (Django runs async views on asyncio only).
    backends: tuple[str, ...] = ("asyncio", "trio")
    #: ``FakeMusicAPI`` arguments for the block's fake.
    fake_options: Mapping[str, Any] = field(default_factory=dict)
    #: Environment variables the block reads (set while it runs).
    env: Mapping[str, str] = field(default_factory=dict)


# --- FastAPI ------------------------------------------------------------------------------------


@asynccontextmanager
async def asgi_lifespan(app: Callable[..., Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan as a server does: startup, the block, shutdown."""
    to_app, app_inbox = anyio.create_memory_object_stream[Message](2)
    app_outbox, from_app = anyio.create_memory_object_stream[Message](2)
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    async with to_app, app_inbox, app_outbox, from_app, anyio.create_task_group() as tg:
        tg.start_soon(app, scope, app_inbox.receive, app_outbox.send)
        await to_app.send({"type": "lifespan.startup"})
        assert (await from_app.receive())["type"] == "lifespan.startup.complete"
        try:
            yield
        finally:
            await to_app.send({"type": "lifespan.shutdown"})
            assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"


@asynccontextmanager
async def serving_app(
    app: Callable[..., Coroutine[Any, Any, None]],
) -> AsyncIterator[httpx.AsyncClient]:
    """The app started through its lifespan, and an HTTP client that calls it in process."""
    transport = httpx.ASGITransport(app=app)
    async with (
        asgi_lifespan(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as http,
    ):
        yield http


def drive_fastapi(ran: Ran) -> None:
    app = ran.namespace["app"]
    fake = ran.fake

    async def scenario() -> None:
        async with serving_app(app) as http:
            started = anyio.current_time()
            created = await http.post("/songs", json={"prompt": "lofi hip hop"})
            assert created.status_code == 202, created.text
            # Answered once submitted, not after the two-minute generation.
            assert anyio.current_time() - started < 10
            first = created.json()["task_id"]
            assert first in fake.tasks
            second = (await http.post("/songs", json={"prompt": "sea shanty"})).json()["task_id"]
            assert (await http.get(f"/songs/{first}")).json()["status"] == "pending"

            await anyio.sleep(fake.last_task.duration + 60)
            for task_id in (first, second):
                song = (await http.get(f"/songs/{task_id}")).json()
                assert song["status"] == "succeeded", song
                assert len(song["audio_urls"]) == 2
            assert (await http.get("/songs/unknown")).status_code == 404
            # One client for the app: every request, the handlers' and the background
            # waits', went through one budget of 1 request / 3 s, and none drew a 429.
            times = [record.time for record in fake.requests]
            assert all(later - earlier >= 3.0 for earlier, later in itertools.pairwise(times))
            assert all(record.status != 429 for record in fake.requests)

            third = (await http.post("/songs", json={"prompt": "surf rock"})).json()["task_id"]
            shutdown = anyio.current_time()
        # Shutdown does not wait for the third song: its wait is cancelled, the client closed.
        assert anyio.current_time() - shutdown < 10
        assert fake.tasks[third].done_at > anyio.current_time()
        polls = len(fake.requests)
        with pytest.raises(RuntimeError):
            await app.state.api.await_task(third)
        assert len(fake.requests) == polls

    ran.run(scenario)


# --- Django -------------------------------------------------------------------------------------


def drive_django(ran: Ran) -> None:
    import django
    from django.conf import settings
    from django.test import AsyncClient, override_settings

    if not settings.configured:
        settings.configure(SECRET_KEY="readme-test", ALLOWED_HOSTS=["testserver"])
        django.setup()
    urls = types.ModuleType("readme_django_urls")
    urls.__dict__.update(ran.namespace)
    sys.modules[urls.__name__] = urls
    fake = ran.fake

    async def submit() -> str:
        # With Django's CSRF check on, as in a new project's settings.
        answer = await AsyncClient(enforce_csrf_checks=True).post(
            "/songs", json.dumps({"prompt": "lofi"}), content_type="application/json"
        )
        assert answer.status_code == 202, answer.content
        task_id: str = answer.json()["task_id"]
        return task_id

    async def report(task_id: str) -> tuple[int, dict[str, Any]]:
        answer = await AsyncClient().get(f"/songs/{task_id}")
        return answer.status_code, answer.json()

    async def under_asgi() -> None:
        # One event loop serving concurrent requests: the module-level bucket paces them all.
        task_ids: list[str] = []

        async def submit_one() -> None:
            task_ids.append(await submit())

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(submit_one)
        reports: list[tuple[int, dict[str, Any]]] = []

        async def report_until_done(task_id: str) -> None:
            for _ in range(20):
                status, body = await report(task_id)
                if status != 202:
                    reports.append((status, body))
                    return

        async with anyio.create_task_group() as tg:
            for task_id in task_ids:
                tg.start_soon(report_until_done, task_id)
        assert sorted(body["task_id"] for _, body in reports) == sorted(task_ids)
        assert all(status == 200 and body["status"] == "succeeded" for status, body in reports)

    try:
        with override_settings(
            ROOT_URLCONF=urls.__name__,
            ALLOWED_HOSTS=["testserver"],
            MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
        ):
            ran.run(under_asgi)
            # Each request in an event loop of its own, as under WSGI (one thread): nothing of
            # a client survives from one loop to the next, only the module-level bucket.
            task_id = ran.run(submit)
            assert task_id in fake.tasks
            status, body = ran.run(report, task_id)
            assert (status, body["status"]) == (202, "running")
            for _ in range(20):  # the client asks again, as the 202 says
                status, body = ran.run(report, task_id)
                if status != 202:
                    break
            assert (status, body["status"]) == (200, "succeeded"), body
            assert len(body["audio_urls"]) == 2
    finally:
        del sys.modules[urls.__name__]
    # The module-level bucket paced every request of every loop: the fake refused none.
    times = [record.time for record in fake.requests]
    # At least 3 s apart (within float error: answers came at once, so exactly 3 s at times).
    assert all(later - earlier >= 3.0 - 1e-9 for earlier, later in itertools.pairwise(times))
    assert all(record.status != 429 for record in fake.requests)


# --- Celery -------------------------------------------------------------------------------------


def drive_celery(ran: Ran) -> None:
    app = ran.namespace["app"]
    # Run tasks in process, as a worker would run them; no broker is contacted.
    app.conf.broker_url = "memory://"
    app.conf.result_backend = "cache+memory://"
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    generate_song = ran.namespace["generate_song"]
    fake = ran.fake

    # Two calls, two event loops, two clients: the second works as the first did.
    for prompt in ("lofi hip hop", "sea shanty"):
        urls = generate_song.delay(prompt).get()
        assert len(urls) == 2
        assert all(url.startswith("https://") for url in urls)
    assert [task.request["gpt_description_prompt"] for task in fake.tasks.values()] == [
        "lofi hip hop",
        "sea shanty",
    ]
    # This process's share of the key: one request every 3 s x 4 processes, across both calls.
    times = [record.time for record in fake.requests]
    processes = ran.namespace["PROCESSES"]
    share = 3.0 * processes - 1e-9  # within float error
    assert all(later - earlier >= share for earlier, later in itertools.pairwise(times))


# --- the chat bot -------------------------------------------------------------------------------


def drive_chat_bot(ran: Ran) -> None:
    replies = [line for line in ran.output.splitlines() if line.startswith("bot: ")]
    working = [line for line in replies if "Working on" in line]
    streaming = [line for line in replies if "First listen" in line]
    done = [line for line in replies if line.startswith("bot: Here it is: ")]
    assert len(working) == len(streaming) == len(done) == 2, replies
    assert len(replies) == 6  # "hello" got no answer
    urls = [line.removeprefix("bot: Here it is: ").split() for line in done]
    assert all(len(pair) == 2 for pair in urls)
    assert len({url for pair in urls for url in pair}) == 4
    assert all(url.startswith("https://") for pair in urls for url in pair)


# --- FastAPI with webhooks -----------------------------------------------------------------------

WEBHOOK_SECRET = "whsec-readme-do-not-print"


def drive_fastapi_webhooks(ran: Ran) -> None:
    from musicapi_async import sign_webhook

    app = ran.namespace["app"]
    fake = ran.fake

    async def scenario() -> None:
        async with serving_app(app) as http, anyio.create_task_group() as tg:
            # The fake signs each result and POSTs it to the task's webhook_url: through the
            # app, to the mounted receiver, as MusicAPI would over the internet.
            # Bodies as MusicAPI's published Sonic example shows them, with no task id: the
            # tag the client added to the URL names the task.
            fake.webhooks.names_task = False
            await tg.start(fake.webhooks.run, httpx.ASGITransport(app=app))
            created = await http.post("/songs", json={"prompt": "lofi hip hop"})
            assert created.status_code == 202, created.text
            first = created.json()["task_id"]
            sent = urlsplit(fake.tasks[first].request["webhook_url"])
            assert sent.path.endswith("/musicapi-webhook")
            assert sent.query.startswith("musicapi_tag=")
            assert (await http.get(f"/songs/{first}")).json()["status"] == "running"
            await anyio.sleep(fake.tasks[first].done_at - anyio.current_time() + 0.01)
            song = (await http.get(f"/songs/{first}")).json()
            # Known the instant the task ended, and not one poll was sent.
            assert song["status"] == "succeeded", song
            assert len(song["audio_urls"]) == 2
            assert [r.path for r in fake.requests] == ["/sonic/create"]
            assert [d.status for d in fake.webhook_deliveries] == [200]

            # A forged delivery is refused and changes nothing.
            body = json.dumps({"task_id": first, "code": 200, "data": []}).encode()
            forged = await http.post(
                "/musicapi-webhook", content=body, headers=sign_webhook(body, "guess")
            )
            assert forged.status_code == 401
            assert (await http.get(f"/songs/{first}")).json()["status"] == "succeeded"

            # A lost delivery: the fallback poll finds the result, later but surely.
            fake.webhooks.drop(1)
            lost = (await http.post("/songs", json={"prompt": "sea shanty"})).json()["task_id"]
            await anyio.sleep(fake.tasks[lost].duration + 5)
            assert (await http.get(f"/songs/{lost}")).json()["status"] == "running"
            await anyio.sleep(300)
            assert (await http.get(f"/songs/{lost}")).json()["status"] == "succeeded"
            assert len(fake.requests_to(f"/sonic/task/{lost}")) == 1
            tg.cancel_scope.cancel()
        assert all(r.status != 429 for r in fake.requests)

    ran.run(scenario)
    assert WEBHOOK_SECRET not in ran.output


CHECKS: dict[str, Check] = {
    "fastapi": Check(drive_fastapi),
    "fastapi_webhooks": Check(
        drive_fastapi_webhooks, env={"MUSICAPI_WEBHOOK_SECRET": WEBHOOK_SECRET}
    ),
    "django": Check(drive_django, backends=("asyncio",)),
    "celery": Check(drive_celery),
    # The 200 style shows streaming clips, so the bot's progress message is exercised.
    "chat_bot": Check(drive_chat_bot, fake_options={"not_ready_style": "200"}),
}


# --- use_fake -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_use_fake_wires_clients_built_without_http_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MUSICAPI_KEY", "sk-a-real-key-that-must-not-be-sent")
    monkeypatch.setenv("MUSICAPI_BASE_URL", "https://api.example.com/api/v1")
    with use_fake(FakeMusicAPI(sonic_duration=30.0)) as fake:
        async with MusicAPI() as api:
            ref = await api.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
            task = await api.await_task(ref)
            # It expects the fake's 30 s, as fake.client() does: seen soon after, not when
            # a real Sonic task would be likely done (past 60 s).
            assert anyio.current_time() < 40
    assert task.succeeded
    assert api.base_url == fake.base_url
    assert {record.api_key for record in fake.requests} == {FakeMusicAPI.DEFAULT_KEY}


@pytest.mark.anyio
async def test_use_fake_keeps_explicit_keys_and_other_arguments() -> None:
    with use_fake() as fake:
        async with MusicAPI("sk-unknown", max_retries=0) as api:
            assert api.retry.max_retries == 0
            with pytest.raises(Exception, match="Invalid API key"):
                await api.credits.get()
    assert [record.status for record in fake.requests] == [401]


@pytest.mark.anyio
async def test_use_fake_leaves_clients_with_an_http_client_alone() -> None:
    other = FakeMusicAPI()
    with use_fake() as fake:
        async with other.client() as api:
            await api.credits.get()
    assert len(other.requests) == 1
    assert not fake.requests


def test_use_fake_is_undone_when_the_block_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUSICAPI_KEY", raising=False)
    original = MusicAPI.__init__
    with use_fake() as outer, use_fake() as inner:
        assert MusicAPI().base_url == inner.base_url
        assert outer is not inner
    assert MusicAPI.__init__ is original
    with pytest.raises(ValueError, match="MUSICAPI_KEY"):
        MusicAPI()
