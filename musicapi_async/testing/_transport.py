"""The httpx transport that serves requests from a :class:`FakeMusicAPI`."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import httpx

from .._redact import redact_url

if TYPE_CHECKING:
    from ._server import FakeMusicAPI

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme))


@final
class FakeTransport(httpx.AsyncBaseTransport):
    """Hands each request to :meth:`FakeMusicAPI.handle` and turns faults into httpx errors.

    A request for another origin than the fake's ``base_url`` raises ``httpx.ConnectError``:
    a client that ignores its configured base URL must not silently reach the fake. The one
    exception is the fake CDN: with ``serve_audio`` on, the hosts of the clips' audio URLs
    (``cdn1.suno.ai``...) answer through :meth:`FakeMusicAPI.handle_cdn`. An answer slower
    than the request's read timeout raises ``httpx.ReadTimeout``, as over a network.
    """

    def __init__(self, fake: FakeMusicAPI) -> None:
        self._fake = fake
        self._origin = _origin(httpx.URL(fake.base_url))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if _origin(request.url) != self._origin:
            cdn = await self._fake.handle_cdn(request.method, str(request.url), request.headers)
            if cdn is not None:
                return httpx.Response(
                    cdn.status, headers=dict(cdn.headers), content=cdn.body, request=request
                )
            raise httpx.ConnectError(
                f"FakeMusicAPI serves {self._fake.base_url}, not {redact_url(request.url)}",
                request=request,
            )
        body = await request.aread()
        # The request's read timeout holds as over a network: an answer slower than it (the
        # fake's latency=, an injection's delay=) is a ReadTimeout.
        read_timeout = request.extensions.get("timeout", {}).get("read")
        answer = await self._fake.handle(
            request.method,
            request.url.path,
            request.headers,
            body,
            request.url.query.decode("ascii"),
            read_timeout=read_timeout,
        )
        if answer.fault == "connect_error":
            raise httpx.ConnectError("FakeMusicAPI: injected connect error", request=request)
        if answer.fault == "read_timeout":
            raise httpx.ReadTimeout("FakeMusicAPI: injected read timeout", request=request)
        if answer.fault == "remote_protocol_error":
            raise httpx.RemoteProtocolError(
                "FakeMusicAPI: injected disconnect without a response", request=request
            )
        return httpx.Response(
            answer.status, headers=dict(answer.headers), content=answer.body, request=request
        )
