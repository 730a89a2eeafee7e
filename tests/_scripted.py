"""A scripted httpx transport: each request gets the next scripted step, in order.

A step is an ``httpx.Response`` to answer with, or an exception (an instance, or an httpx
exception class, which is built with the request) to raise as the network would. Every
request is recorded with the ``anyio.current_time()`` at which it arrived, so that tests in
virtual time can assert the exact waits between attempts. A request beyond the script fails
the test at once: "the SDK sent one request too many" is exactly what the retry tests pin.

>>> transport = ScriptedTransport(httpx.ConnectError, json_response(200, {"credits": 1}))
>>> client = scripted_client(transport)
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from typing import Any, TypeAlias, final

import anyio
import httpx
import pytest
from attrs import frozen

from musicapi_async import MusicAPI

Step: TypeAlias = "httpx.Response | BaseException | type[httpx.RequestError]"

TEST_KEY = "test-key"
TEST_BASE_URL = "http://localhost/api/v1"


@final
@frozen
class Sent:
    """One request the transport received."""

    request: httpx.Request
    #: ``anyio.current_time()`` when it arrived, seconds.
    at: float

    @property
    def path(self) -> str:
        """The path relative to the test base URL, e.g. ``/sonic/task/t-1``."""
        return self.request.url.path.removeprefix("/api/v1")

    def json(self) -> Any:
        return json.loads(self.request.content)


@final
class ScriptedTransport(httpx.AsyncBaseTransport):
    """Answers requests from a fixed script and records them (see the module docstring)."""

    def __init__(self, *steps: Step) -> None:
        self._steps: deque[Step] = deque(steps)
        self._scripted = len(steps)
        self.sent: list[Sent] = []

    def add(self, *steps: Step) -> None:
        """Append more steps to the script."""
        self._steps.extend(steps)
        self._scripted += len(steps)

    @property
    def times(self) -> list[float]:
        """Arrival time of every request, in order."""
        return [sent.at for sent in self.sent]

    @property
    def gaps(self) -> list[float]:
        """Seconds between consecutive requests: the waits the client slept."""
        times = self.times
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    @property
    def remaining(self) -> int:
        """Steps not consumed yet."""
        return len(self._steps)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.sent.append(Sent(request, anyio.current_time()))
        if not self._steps:
            # pytest's Failed is a BaseException: no SDK except clause can swallow it.
            pytest.fail(
                f"unscripted request #{len(self.sent)} ({request.method} {request.url}): "
                f"the script had only {self._scripted} step(s)"
            )
        step = self._steps.popleft()
        if isinstance(step, type):
            raise step(f"scripted {step.__name__}", request=request)
        if isinstance(step, BaseException):
            raise step
        # A fresh Response each time: httpx binds a response to the request it answers.
        return httpx.Response(
            step.status_code, headers=step.headers, content=step.content, request=request
        )


def json_response(
    status_code: int, body: object, *, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A response with a JSON body."""
    return httpx.Response(status_code, json=body, headers=headers)


def text_response(
    status_code: int, text: str = "", *, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A response with a plain-text (or empty) body."""
    return httpx.Response(
        status_code,
        content=text.encode(),
        headers={"content-type": "text/plain", **(headers or {})},
    )


def scripted_client(
    transport: ScriptedTransport, *, api_key: str = TEST_KEY, **kwargs: Any
) -> MusicAPI:
    """A client sending through ``transport`` to the loopback test base URL.

    No rate limiter unless the test passes one: these tests pin the retry loop's own waits.
    """
    kwargs.setdefault("limiter", None)
    return MusicAPI(
        api_key,
        base_url=TEST_BASE_URL,
        http_client=httpx.AsyncClient(transport=transport),
        **kwargs,
    )


#: Bodies of successful answers.
CREDITS_BODY = {"credits": 50, "extra_credits": 0}
SUBMIT_BODY = {"message": "success", "task_id": "t-1"}
SONIC_TASK_BODY = {
    "code": 200,
    "message": "success",
    "data": [{"clip_id": "c-1", "state": "succeeded"}, {"clip_id": "c-2", "state": "succeeded"}],
}
UPLOAD_BODY = {"code": 200, "message": "success", "clip_id": "up-1"}
