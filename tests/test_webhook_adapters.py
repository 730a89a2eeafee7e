"""The webhook adapters, each driven through its real framework.

Every adapter must read the raw body and answer what a sender expects: 200 accepted, 200
duplicate, 401 for a bad signature or a stale timestamp (nothing called), 400 for a signed
body that is not a task payload, 405 for GET. The ASGI app runs under Starlette and FastAPI
through ``httpx.ASGITransport`` (asyncio and trio, virtual time); Django's async view through
``django.test.AsyncClient`` with the CSRF middleware on, and aiohttp's handler on a real
loopback server: both asyncio only, in real time (Django hands work to threads, aiohttp is
asyncio-only and listens on a socket).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import anyio
import httpx
import pytest

from musicapi_async import (
    TaskFamily,
    TaskRef,
    WebhookEvent,
    WebhookReceiver,
    WebhookResponse,
    sign_webhook,
)
from musicapi_async.webhooks import aiohttp_handler, asgi_app, django_view

pytestmark = pytest.mark.anyio

SECRET = "whsec-adapter-OTTER-5"
TASK_ID = "7d0c5f0e-3b57-4a53-9f1e-2f1d7b3f9a10"
PAYLOAD = {
    "task_id": TASK_ID,
    "code": 200,
    "data": [{"clip_id": "c-1", "state": "succeeded", "duration": "104.88"}],
}
#: A task this module's receivers know by a URL tag, as a client's receiver knows its creates.
TAG, TAGGED = "tag-Qx7", TaskRef("b1f6a3c2-tagged", TaskFamily.SONIC)


class Send(Protocol):
    """Sends one request: (method, body, headers, query string) -> (status, headers, body)."""

    def __call__(
        self, method: str, body: bytes, headers: Mapping[str, str], query: str = ""
    ) -> Awaitable[tuple[int, Mapping[str, str], bytes]]: ...


class Sink:
    def __init__(self) -> None:
        self.events: list[WebhookEvent] = []
        self.receiver = WebhookReceiver(SECRET, on_event=self.events.append)
        self.receiver._resolve_tag(TAG, TAGGED)


def signed(body: bytes, event_id: str = "evt-1") -> dict[str, str]:
    return sign_webhook(body, SECRET, event_id=event_id)


async def check_every_answer(send: Send, sink: Sink) -> None:
    """The behaviour every adapter must show."""
    body = json.dumps(PAYLOAD, indent=2).encode()  # whitespace: the raw bytes are what counts

    status, headers, answer = await send("POST", body, signed(body), "")
    assert (status, json.loads(answer)) == (200, {"status": "accepted"})
    assert headers["content-type"] == "application/json"
    assert [e.task_id for e in sink.events] == [TASK_ID]
    assert sink.events[0].task.clips[0].duration == 104.88

    status, _, answer = await send("POST", body, signed(body), "")
    assert (status, json.loads(answer)) == (200, {"status": "duplicate"})

    # A body that names no task (MusicAPI's published Sonic example): the tag in the query
    # string, which the client added to its webhook URL, names it.
    bare = json.dumps({k: v for k, v in PAYLOAD.items() if k != "task_id"}).encode()
    status, _, answer = await send(
        "POST", bare, signed(bare, "evt-5"), f"team=7&musicapi_tag={TAG}"
    )
    assert (status, json.loads(answer)) == (200, {"status": "accepted"})
    assert sink.events[-1].ref == TAGGED
    status, _, answer = await send("POST", bare, signed(bare, "evt-6"), "musicapi_tag=unknown")
    assert (status, json.loads(answer)) == (400, {"error": "bad_body"})
    del sink.events[-1]

    forged = {**signed(body, event_id="evt-2"), "X-Webhook-Signature": "sha256=" + "0" * 64}
    status, _, answer = await send("POST", body, forged, "")
    assert (status, json.loads(answer)) == (401, {"error": "bad_signature"})

    stale = sign_webhook(body, SECRET, event_id="evt-3", timestamp=int(time.time()) - 3600)
    status, _, answer = await send("POST", body, stale, "")
    assert (status, json.loads(answer)) == (401, {"error": "stale_timestamp"})

    junk = b"<xml>not json</xml>"
    status, _, answer = await send("POST", junk, sign_webhook(junk, SECRET, event_id="evt-4"), "")
    assert (status, json.loads(answer)) == (400, {"error": "bad_body"})

    status, headers, _ = await send("GET", b"", {}, "")
    assert status == 405
    assert headers["allow"] == "POST"

    assert len(sink.events) == 1  # nothing but the first delivery reached the callback
    stats = sink.receiver.statistics()
    assert (stats.accepted, stats.duplicate, stats.rejected_total) == (2, 1, 4)


def lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


# --- ASGI: Starlette, FastAPI, bare -------------------------------------------------------


@asynccontextmanager
async def asgi_sender(app: Any, path: str) -> AsyncIterator[Send]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://app.example"
    ) as http:

        async def send(
            method: str, body: bytes, headers: Mapping[str, str], query: str = ""
        ) -> tuple[int, Mapping[str, str], bytes]:
            url = f"{path}?{query}" if query else path
            answer = await http.request(method, url, content=body, headers=dict(headers))
            return answer.status_code, lower(answer.headers), answer.content

        yield send


async def test_asgi_app_as_a_starlette_route() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Route

    sink = Sink()
    app = Starlette(routes=[Route("/musicapi-webhook", asgi_app(sink.receiver))])
    async with asgi_sender(app, "/musicapi-webhook") as send:
        await check_every_answer(send, sink)


async def test_asgi_app_mounted_in_starlette_answers_below_the_mount_point() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    sink = Sink()
    app = Starlette(routes=[Mount("/musicapi-webhook", app=asgi_app(sink.receiver))])
    async with asgi_sender(app, "/musicapi-webhook/") as send:
        await check_every_answer(send, sink)
    # Without the slash Starlette redirects, which a sender may not follow (documented).
    async with asgi_sender(app, "/musicapi-webhook") as send:
        body = json.dumps(PAYLOAD).encode()
        assert (await send("POST", body, signed(body, event_id="y")))[0] == 307


async def test_asgi_app_in_fastapi() -> None:
    from fastapi import FastAPI
    from starlette.routing import Route

    sink = Sink()
    app = FastAPI()
    app.router.routes.append(Route("/musicapi-webhook", asgi_app(sink.receiver)))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    async with asgi_sender(app, "/musicapi-webhook") as send:
        await check_every_answer(send, sink)
    async with asgi_sender(app, "/health") as send:
        assert (await send("GET", b"", {}))[0] == 200  # the rest of the app is untouched


async def test_asgi_app_mounted_in_fastapi() -> None:
    from fastapi import FastAPI

    sink = Sink()
    app = FastAPI()
    app.mount("/musicapi-webhook", asgi_app(sink.receiver))
    async with asgi_sender(app, "/musicapi-webhook/") as send:
        body = json.dumps(PAYLOAD).encode()
        assert (await send("POST", body, signed(body)))[0] == 200
    assert len(sink.events) == 1
    assert "secret" not in repr(asgi_app(sink.receiver)).lower()


async def test_asgi_app_alone_with_a_path() -> None:
    sink = Sink()
    app = asgi_app(sink.receiver, path="/hook")
    async with asgi_sender(app, "/hook") as send:
        await check_every_answer(send, sink)
    async with asgi_sender(app, "/elsewhere") as send:
        body = json.dumps(PAYLOAD).encode()
        status, _, answer = await send("POST", body, signed(body, event_id="x"))
        assert (status, json.loads(answer)) == (404, {"error": "not_found"})


async def test_asgi_app_under_a_starlette_mount_with_a_path() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    sink = Sink()
    app = Starlette(routes=[Mount("/hooks", app=asgi_app(sink.receiver, path="/musicapi"))])
    async with asgi_sender(app, "/hooks/musicapi") as send:
        body = json.dumps(PAYLOAD).encode()
        assert (await send("POST", body, signed(body)))[0] == 200
    assert len(sink.events) == 1


class ASGICall:
    """Drives an ASGI app by hand, with the body split in chunks as a server may send it."""

    def __init__(self, chunks: list[bytes], *, disconnect: bool = False) -> None:
        self.messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks)
        ]
        if disconnect:
            self.messages[-1] = {"type": "http.disconnect"}
        self.sent: list[Mapping[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return self.messages.pop(0)

    async def send(self, message: Any) -> None:
        self.sent.append(message)

    async def run(
        self,
        app: Any,
        headers: Mapping[str, str | bytes],
        method: str = "POST",
        *,
        path: str = "/",
        root_path: str = "",
    ) -> int | None:
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "root_path": root_path,
            "headers": [
                (k.lower().encode(), v if isinstance(v, bytes) else v.encode())
                for k, v in headers.items()
            ],
        }
        await app(scope, self.receive, self.send)
        return self.sent[0]["status"] if self.sent else None


@pytest.mark.parametrize(
    ("path", "root_path"),
    [("/musicapi-webhook", "/musicapi"), ("/svc/musicapi-webhook", "/svc"), ("/x", "/svc")],
    ids=["root a string prefix of the path", "root kept in path", "root left out of path"],
)
async def test_asgi_app_strips_a_root_path_only_at_a_segment_boundary(
    path: str, root_path: str
) -> None:
    """Servers differ on whether ``path`` keeps ``root_path``; a root of ``/musicapi`` is
    no prefix of ``/musicapi-webhook``."""
    sink = Sink()
    body = json.dumps(PAYLOAD).encode()
    hook = "/x" if path == "/x" else "/musicapi-webhook"
    app = asgi_app(sink.receiver, path=hook)
    assert await ASGICall([body]).run(app, signed(body), path=path, root_path=root_path) == 200
    assert len(sink.events) == 1


async def test_asgi_app_reassembles_a_body_sent_in_chunks() -> None:
    sink = Sink()
    body = json.dumps(PAYLOAD).encode()
    call = ASGICall([body[:10], b"", body[10:40], body[40:]])
    assert await call.run(asgi_app(sink.receiver), signed(body)) == 200
    assert call.sent[1]["body"] == b'{"status":"accepted"}'
    assert sink.events[0].task_id == TASK_ID


async def test_asgi_app_refuses_a_body_over_max_body() -> None:
    sink = Sink()
    body = json.dumps(PAYLOAD).encode()
    app = asgi_app(sink.receiver, max_body=50)
    chunked = ASGICall([body[:40], body[40:]])
    assert await chunked.run(app, signed(body)) == 413
    declared = ASGICall([body])
    assert await declared.run(app, {**signed(body), "content-length": str(len(body))}) == 413
    assert sink.events == []
    with pytest.raises(ValueError, match="max_body"):
        asgi_app(sink.receiver, max_body=0)


@pytest.mark.parametrize(
    ("length", "status"),
    [(b"\xb2", 200), (b"9" * 5000, 413), (b"0" * 30 + b"5", 200), (b"x", 200)],
    ids=["superscript-two", "5000-digits", "leading-zeros", "not-a-number"],
)
async def test_asgi_app_reads_an_odd_content_length_without_raising(
    length: bytes, status: int
) -> None:
    """A length that is no ASCII number ("²" is a digit to str.isdigit, not to int) is left
    to the body's own size; one past any body is refused unread (int() raised on both: a
    500 with a traceback)."""
    sink = Sink()
    body = json.dumps(PAYLOAD).encode()
    call = ASGICall([body])
    headers: dict[str, str | bytes] = {**signed(body), "content-length": length}
    assert await call.run(asgi_app(sink.receiver), headers) == status


async def test_asgi_app_says_nothing_to_a_client_that_went_away() -> None:
    sink = Sink()
    body = json.dumps(PAYLOAD).encode()
    call = ASGICall([body[:10], b""], disconnect=True)
    assert await call.run(asgi_app(sink.receiver), signed(body)) is None
    assert sink.events == []


async def test_asgi_app_answers_lifespan_and_closes_websockets() -> None:
    app = asgi_app(Sink().receiver)
    lifespan = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return lifespan.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    sent.clear()
    lifespan[:] = [{"type": "websocket.connect"}]
    await app({"type": "websocket", "path": "/"}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1003}]


async def test_a_custom_handle_object_works_with_the_adapters() -> None:
    """Adapters need only ``handle``: ``client.webhooks`` or a wrapper of the user's own."""
    seen: list[bytes] = []

    class Teapot:
        async def handle(self, body: bytes, headers: Mapping[str, str]) -> WebhookResponse:
            seen.append(body)
            assert headers["x-custom"] == "1"  # names arrive in lower case
            return WebhookResponse(418, b"{}", {"content-type": "application/json"})

    async with asgi_sender(asgi_app(Teapot()), "/") as send:
        assert (await send("POST", b"raw", {"X-Custom": "1"}))[0] == 418
    assert seen == [b"raw"]


# --- Django and aiohttp: asyncio, real time -------------------------------------------------


class Forward:
    """Routes the module's Django URLconf to the current test's receiver."""

    target: WebhookReceiver | None = None

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> WebhookResponse:
        # Two arguments, as HasHandle declares: the adapter's query string reaches the
        # receiver all the same (the tagged delivery of check_every_answer needs it).
        assert self.target is not None
        return await self.target.handle(body, headers)


FORWARD = Forward()
urlpatterns: list[Any] = []  # filled once Django is configured (ROOT_URLCONF is this module)


@pytest.fixture(scope="module")
def django_settings() -> Iterator[None]:
    """Django configured for this module, whichever test configured it first.

    Settings can be configured once per process (another module may have done it): the
    minimum is configured if nobody has, and this module's own values are overridden for
    the duration of its tests only.
    """
    pytest.importorskip("django")
    import django
    from django.conf import settings
    from django.test import override_settings
    from django.urls import path

    if not settings.configured:
        settings.configure(SECRET_KEY="tests-only", USE_TZ=True)
        django.setup()
    urlpatterns[:] = [path("musicapi-webhook", django_view(FORWARD))]
    with override_settings(
        DEBUG=False,
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
    ):
        yield
    urlpatterns.clear()


class TestAsyncioFrameworks:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"  # the real loop: these frameworks use threads or sockets

    @pytest.mark.usefixtures("django_settings")
    async def test_django_view(self) -> None:
        from django.test import AsyncClient

        sink = Sink()
        FORWARD.target = sink.receiver
        client = AsyncClient(enforce_csrf_checks=True)  # csrf_exempt must hold

        async def send(
            method: str, body: bytes, headers: Mapping[str, str], query: str = ""
        ) -> tuple[int, Mapping[str, str], bytes]:
            url = f"/musicapi-webhook?{query}" if query else "/musicapi-webhook"
            if method == "GET":
                answer = await client.get(url)
            else:
                answer = await client.post(
                    url,
                    data=body,
                    content_type="application/json",
                    headers={k: v for k, v in headers.items() if k.lower() != "content-type"},
                )
            return answer.status_code, lower(dict(answer.items())), answer.content

        with anyio.fail_after(30):
            await check_every_answer(send, sink)

    async def test_aiohttp_handler(self) -> None:
        from aiohttp import web
        from aiohttp.test_utils import TestClient, TestServer

        sink = Sink()
        app = web.Application()
        app.router.add_route("*", "/musicapi-webhook", aiohttp_handler(sink.receiver))
        with anyio.fail_after(30):
            async with TestClient(TestServer(app)) as client:

                async def send(
                    method: str, body: bytes, headers: Mapping[str, str], query: str = ""
                ) -> tuple[int, Mapping[str, str], bytes]:
                    url = f"/musicapi-webhook?{query}" if query else "/musicapi-webhook"
                    async with client.request(
                        method, url, data=body, headers=dict(headers)
                    ) as answer:
                        return answer.status, lower(dict(answer.headers)), await answer.read()

                await check_every_answer(send, sink)
                big = b"x" * 2048
                aiohttp_small = web.Application()
                handler = aiohttp_handler(sink.receiver, max_body=1024)
                aiohttp_small.router.add_post("/h", handler)
                async with (
                    TestClient(TestServer(aiohttp_small)) as small,
                    small.post("/h", data=big) as answer,
                ):
                    assert answer.status == 413
        with pytest.raises(ValueError, match="max_body"):
            aiohttp_handler(sink.receiver, max_body=-1)
