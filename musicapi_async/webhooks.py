"""Receive MusicAPI's webhooks in a web framework: ASGI (Starlette, FastAPI), Django, aiohttp.

Each adapter reads the raw body (the signature covers its exact bytes), hands it with the
headers to a :class:`WebhookReceiver` (or ``client.webhooks``, or anything with the same
``handle`` coroutine) and sends back its answer: 200 for a new or a duplicate event, 400
for a signed body that is not a task payload, 401 for a delivery that fails verification,
405 for another method than POST, 413 for a body over ``max_body`` bytes (1 MiB; Django
applies its own ``DATA_UPLOAD_MAX_MEMORY_SIZE``), 500 when a callback raised (the sender
retries). Frameworks are imported only inside the adapter you call: the SDK depends on
none of them.

``client.webhooks`` resolves the client's waiters, so serve it from the event loop the
client runs in (the app's own loop, as in an ASGI app that opens the client in its lifespan).

FastAPI or Starlette (a ``Route`` serves exactly the path; a mount would redirect
``/musicapi-webhook`` to ``/musicapi-webhook/``, see :func:`asgi_app`)::

    from fastapi import FastAPI
    from starlette.routing import Route
    from musicapi_async.webhooks import WebhookReceiver, asgi_app

    receiver = WebhookReceiver(secret, on_event=lambda event: print(event.task_id, event.kind))
    app = FastAPI()
    app.router.routes.append(Route("/musicapi-webhook", asgi_app(receiver)))

Django (``urls.py``)::

    path("musicapi-webhook", django_view(receiver))

aiohttp::

    app.router.add_post("/musicapi-webhook", aiohttp_handler(receiver))

Any other framework: ``response = await receiver.handle(raw_body, headers,
query=query_string)`` and answer ``response.status``, ``response.headers`` and
``response.body``; or verify without a receiver with :func:`verify_webhook`. The query
string carries the tag ``client.webhooks`` matches a task by when the body names none (the
adapters hand it over in a context variable, so a wrapper of your own around ``handle``
needs no ``query`` argument).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final, final

from ._webhooks import (
    HasHandle,
    OrphanDelivery,
    VerificationFailure,
    WebhookEvent,
    WebhookReceiver,
    WebhookResponse,
    WebhookStatistics,
    WebhookVerificationError,
    _lower_headers,
    handle_delivery,
    sign_webhook,
    verify_webhook,
)

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "HasHandle",
    "OrphanDelivery",
    "VerificationFailure",
    "WebhookApp",
    "WebhookEvent",
    "WebhookReceiver",
    "WebhookResponse",
    "WebhookStatistics",
    "WebhookVerificationError",
    "aiohttp_handler",
    "asgi_app",
    "django_view",
    "sign_webhook",
    "verify_webhook",
]

#: Largest delivery body read, in bytes (a Sonic payload is a few kB); 413 beyond.
DEFAULT_MAX_BODY: Final = 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON: Final = "application/json"


def _plain(status: int, error: str) -> tuple[int, bytes, dict[str, str]]:
    headers = {"content-type": _JSON}
    if status == 405:
        headers["allow"] = "POST"
    return status, json.dumps({"error": error}).encode(), headers


def _check_max_body(max_body: int) -> None:
    if not isinstance(max_body, int) or max_body < 1:
        raise ValueError(f"max_body must be a positive number of bytes, got {max_body!r}")


@final
class WebhookApp:
    """The ASGI application :func:`asgi_app` returns.

    A class rather than a function so that Starlette's ``Route`` (and FastAPI's
    ``add_route``) treat it as an ASGI app, not as a ``request -> response`` endpoint.
    """

    def __init__(self, receiver: HasHandle, *, path: str | None, max_body: int) -> None:
        _check_max_body(max_body)
        self._receiver = receiver
        self._path = path
        self._max_body = max_body

    def __repr__(self) -> str:
        return f"WebhookApp(path={self._path!r}, max_body={self._max_body})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await receive()
                await send({"type": "websocket.close", "code": 1003})
            return
        result = await _http(self._receiver, scope, receive, self._path, self._max_body)
        if result is None:  # the client went away
            return
        status, body, headers = result
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})


def asgi_app(
    receiver: HasHandle, *, path: str | None = None, max_body: int = DEFAULT_MAX_BODY
) -> WebhookApp:
    """An ASGI application that answers webhook deliveries with ``receiver``.

    Route it at exactly its path: ``Route("/musicapi-webhook", asgi_app(receiver))`` in a
    Starlette app's routes, ``app.router.routes.append(Route(...))`` in FastAPI. Mounting
    works too (``app.mount("/musicapi-webhook", asgi_app(receiver))``) but then Starlette
    redirects ``/musicapi-webhook`` to ``/musicapi-webhook/`` (307), which a sender may not
    follow: give the ``webhook_url`` with the trailing slash. Alone, serve it with any ASGI
    server (it answers lifespan events); with ``path``, other paths (below the mount
    point) get 404. POST only; a body over ``max_body`` bytes gets 413.
    """
    return WebhookApp(receiver, path=path, max_body=max_body)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _relative_path(scope: Scope) -> str:
    path = str(scope.get("path") or "/")
    root = str(scope.get("root_path") or "")
    # Starlette keeps the mount prefix in "path" and records it in "root_path"; a root of
    # "/musicapi" is no prefix of "/musicapi-webhook" (a whole path segment or nothing).
    root = root.rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root) :]
    return path or "/"


async def _http(
    receiver: HasHandle, scope: Scope, receive: Receive, path: str | None, max_body: int
) -> tuple[int, bytes, dict[str, str]] | None:
    if path is not None and _relative_path(scope).rstrip("/") != path.rstrip("/"):
        return _plain(404, "not_found")
    if scope.get("method") != "POST":
        return _plain(405, "method_not_allowed")
    headers = _lower_headers(scope.get("headers") or [])
    declared = headers.get("content-length", "").strip()
    # ASCII digits only ("²".isdigit() is true, and int() refuses it), and a length past any
    # body (int() refuses over 4300 digits) is too large without reading it as a number.
    if declared.isascii() and declared.isdigit():
        digits = declared.lstrip("0")
        if len(digits) > len(str(max_body)) or int(digits or "0") > max_body:
            return _plain(413, "body_too_large")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = bytes(message.get("body") or b"")
        size += len(chunk)
        if size > max_body:
            return _plain(413, "body_too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    response = await handle_delivery(receiver, b"".join(chunks), headers, query)
    return response.status, response.body, dict(response.headers)


def django_view(receiver: HasHandle) -> Callable[[Any], Awaitable[Any]]:
    """An async Django view (CSRF-exempt, POST only) that answers deliveries with ``receiver``.

    ``path("musicapi-webhook", django_view(receiver))`` in ``urls.py``. It reads
    ``request.body``, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bounds the body.
    Needs Django 5 or newer (an async view under ``csrf_exempt``).
    """
    from django.http import HttpResponse
    from django.views.decorators.csrf import csrf_exempt

    async def musicapi_webhook(request: Any) -> Any:
        if request.method != "POST":
            status, body, headers = _plain(405, "method_not_allowed")
            return HttpResponse(body, status=status, headers=headers)
        response = await handle_delivery(
            receiver,
            request.body,
            _lower_headers(request.headers.items()),
            str(request.META.get("QUERY_STRING") or ""),
        )
        return HttpResponse(response.body, status=response.status, headers=dict(response.headers))

    view: Callable[[Any], Awaitable[Any]] = csrf_exempt(musicapi_webhook)
    return view


def aiohttp_handler(
    receiver: HasHandle, *, max_body: int = DEFAULT_MAX_BODY
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler that answers deliveries with ``receiver`` (POST only).

    ``app.router.add_post("/musicapi-webhook", aiohttp_handler(receiver))``; add it with
    ``add_route("*", ...)`` to have other methods answered 405 by it rather than by aiohttp.
    """
    _check_max_body(max_body)
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        if request.method != "POST":
            status, body, headers = _plain(405, "method_not_allowed")
            return web.Response(status=status, body=body, headers=headers)
        if request.content_length is not None and request.content_length > max_body:
            status, body, headers = _plain(413, "body_too_large")
            return web.Response(status=status, body=body, headers=headers)
        raw = await request.read()
        if len(raw) > max_body:
            status, body, headers = _plain(413, "body_too_large")
            return web.Response(status=status, body=body, headers=headers)
        response = await handle_delivery(
            receiver, raw, _lower_headers(request.headers.items()), request.query_string
        )
        return web.Response(
            status=response.status, body=response.body, headers=dict(response.headers)
        )

    return handler
