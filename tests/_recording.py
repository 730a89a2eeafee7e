"""A recording httpx transport for endpoint tests: logs every request, answers from a script.

It sits under a real ``httpx.AsyncClient`` given to ``MusicAPI(http_client=...)``, so the
SDK's whole request path (headers, JSON encoding, retries, status mapping) runs unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, final

import anyio
import httpx
from attrs import field, frozen

from musicapi_async import MusicAPI

__all__ = ["API_ROOT", "Recorded", "RecordingTransport", "Reply", "make_client"]

#: Where the test clients point; recorded paths are relative to its path.
API_ROOT = "http://localhost/api/v1"
_PREFIX = "/api/v1"


@final
@frozen
class Reply:
    """One scripted answer: status and JSON body (``None``: an empty body)."""

    body: Any = None
    status: int = 200
    headers: Mapping[str, str] = field(factory=dict)
    #: Sent as is instead of ``body`` (a body that is not JSON), when given.
    raw: bytes | None = None


@final
@frozen
class Recorded:
    """One request as the transport received it."""

    method: str
    #: Path relative to the API root, still percent-encoded (``/sonic/task/a%2Fb``).
    path: str
    #: The query string decoded into a dict (one value per key).
    query: Mapping[str, str]
    headers: httpx.Headers
    #: The decoded JSON body, or ``None`` when the request had none.
    json: Any
    #: ``anyio.current_time()`` when the request arrived (virtual time in tests).
    at: float


class RecordingTransport(httpx.AsyncBaseTransport):
    """Answers requests with the scripted replies in order; the last one repeats forever."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[Recorded] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        raw_path = request.url.raw_path.decode("ascii").split("?", 1)[0]
        assert raw_path.startswith(_PREFIX), raw_path
        self.requests.append(
            Recorded(
                method=request.method,
                path=raw_path[len(_PREFIX) :],
                query=dict(request.url.params),
                headers=request.headers,
                json=json.loads(content) if content else None,
                at=anyio.current_time(),
            )
        )
        if not self.replies:
            raise AssertionError(f"unscripted request {request.method} {request.url}")
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if reply.raw is not None:
            return httpx.Response(
                reply.status, content=reply.raw, headers=reply.headers, request=request
            )
        body = b"" if reply.body is None else json.dumps(reply.body).encode()
        headers = {"content-type": "application/json", **reply.headers} if body else reply.headers
        return httpx.Response(reply.status, content=body, headers=headers, request=request)

    @property
    def last(self) -> Recorded:
        assert self.requests, "no request was sent"
        return self.requests[-1]


def make_client(*replies: Reply, **options: Any) -> tuple[MusicAPI, RecordingTransport]:
    """A client with key ``test-key`` whose requests go to a new recording transport."""
    transport = RecordingTransport(*replies)
    client = MusicAPI(
        "test-key",
        base_url=API_ROOT,
        http_client=httpx.AsyncClient(transport=transport),
        **options,
    )
    return client, transport
