"""``MusicAPI``: the async client."""

from __future__ import annotations

import ipaddress
import os
import platform
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar, final

import attrs
import httpx

from ._constants import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    LOOPBACK_HOSTS,
    __version__,
)
from ._credits import CreditsResource
from ._exceptions import ResponseValidationError
from ._http import CallOptions, HTTPCore
from ._models import Task, TaskFamily, TaskRef
from ._nuro import Nuro
from ._producer import Producer
from ._retry import RetryEvent, RetryPolicy
from ._sonic import Sonic

__all__ = ["MusicAPI"]

T = TypeVar("T")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def _user_agent() -> str:
    return (
        f"musicapi-async/{__version__} httpx/{httpx.__version__} "
        f"{platform.python_implementation()}/{platform.python_version()}"
    )


def _check_base_url(base_url: str) -> httpx.URL:
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"base_url {base_url!r} is not a valid URL: {exc}") from exc
    host = url.host.lower()
    if url.scheme == "https" and host:
        return url
    if url.scheme == "http" and _is_loopback(host):
        return url
    if url.scheme == "http":
        raise ValueError(
            f"base_url {base_url!r} uses plain http://: MusicAPI requires https:// (the API key "
            "would travel in clear text). http:// is allowed only for loopback hosts "
            "(localhost, 127.0.0.1, ::1), where fakes run."
        )
    raise ValueError(f"base_url {base_url!r} must be an absolute https:// URL")


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    # Only a literal address: a DNS name such as "127.example.com" may resolve anywhere.
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _timeout(timeout: float | httpx.Timeout | None, connect: float | None) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(
        timeout, connect=connect if timeout is None or connect is None else min(connect, timeout)
    )


@final
class MusicAPI:
    """Async client for MusicAPI. Use it as ``async with MusicAPI() as client: ...``.

    Args:
        api_key: Your key from the MusicAPI dashboard; defaults to ``$MUSICAPI_KEY``.
        base_url: API root; defaults to ``$MUSICAPI_BASE_URL`` or the production URL.
            Must be ``https://`` (``http://`` only for loopback, where fakes run).
        timeout: Seconds allowed for each HTTP attempt, or an ``httpx.Timeout``.
        connect_timeout: Seconds allowed to open a connection.
        max_retries: Shortcut for ``retry=RetryPolicy(max_retries=...)``.
        retry: The full retry policy (backoff, jitter, longest Retry-After honoured).
        on_retry: Called with a :class:`RetryEvent` before each retry sleep (a coroutine
            function is awaited).
        http_client: An ``httpx.AsyncClient`` to send through (proxies, transports, the
            fake server). It is used as given and never closed by this client.
        default_headers: Extra headers sent with every request (not ``Authorization``).

    Raises:
        ValueError: no API key, or an unacceptable ``base_url``.

    >>> async with MusicAPI() as client:
    ...     ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
    ...     task = await client.sonic.get_task(ref)
    """

    sonic: Sonic
    producer: Producer
    nuro: Nuro
    credits: CreditsResource

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[RetryEvent], object] | None = None,
        http_client: httpx.AsyncClient | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not key or not key.strip():
            raise ValueError(
                f"no MusicAPI key: pass api_key= or set the {API_KEY_ENV} environment variable "
                "(keys are on the API Keys page of the MusicAPI dashboard)"
            )
        # The key goes into an HTTP header; a stray space, tab, control or non-ASCII character
        # would otherwise surface only at the first request, as a confusing 401 or encode error.
        if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
            raise ValueError(
                "the API key contains whitespace, line breaks or other characters a key cannot "
                "have; check how it was copied"
            )
        if base_url is None:
            base_url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        url = _check_base_url(base_url)
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise TypeError(
                f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
            )
        self._owns_http_client = http_client is None
        if http_client is None:
            http_client = httpx.AsyncClient(
                follow_redirects=False,
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            )
        self._core = HTTPCore(
            api_key=key,
            base_url=url,
            http_client=http_client,
            user_agent=_user_agent(),
            default_headers=dict(default_headers or {}),
        )
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = attrs.evolve(policy, max_retries=max_retries)
        self._options = CallOptions(
            timeout=_timeout(timeout, connect_timeout), retry=policy, on_retry=on_retry
        )
        self._closed = False
        self._bind_resources()

    def _bind_resources(self) -> None:
        self.sonic = Sonic(self)
        self.producer = Producer(self)
        self.nuro = Nuro(self)
        self.credits = CreditsResource(self)

    def __repr__(self) -> str:
        return f"MusicAPI(base_url={str(self._core.base_url)!r})"

    @property
    def base_url(self) -> str:
        return str(self._core.base_url)

    @property
    def retry(self) -> RetryPolicy:
        return self._options.retry

    @property
    def timeout(self) -> httpx.Timeout:
        return self._options.timeout

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | None = UNSET,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[RetryEvent], object] | None = UNSET,
    ) -> MusicAPI:
        """A view of this client with other per-call settings, sharing its connections.

        >>> task = await client.with_options(timeout=5, max_retries=0).sonic.get_task(ref)

        Closing the view does not close the original; closing the original closes both.
        """
        clone = object.__new__(MusicAPI)
        clone._core = self._core
        clone._owns_http_client = False
        clone._closed = False
        policy = retry or self._options.retry
        if max_retries is not None:
            policy = attrs.evolve(policy, max_retries=max_retries)
        clone._options = CallOptions(
            timeout=self._options.timeout
            if timeout is UNSET
            else _timeout(timeout, self._options.timeout.connect),
            retry=policy,
            on_retry=self._options.on_retry if on_retry is UNSET else on_retry,
        )
        clone._bind_resources()
        return clone

    async def get_task(self, task: TaskRef) -> Task:
        """Poll any task once, whatever its family (sonic, producer or nuro)."""
        if not isinstance(task, TaskRef):
            raise TypeError(
                "client.get_task needs a TaskRef (its family says where to poll); for a bare "
                "id use client.sonic.get_task(task_id) or client.producer.get_task(task_id)"
            )
        resources = {
            TaskFamily.SONIC: self.sonic,
            TaskFamily.PRODUCER: self.producer,
            TaskFamily.NURO: self.nuro,
        }
        return await resources[task.family].get_task(task)

    def _read(self, parse: Callable[[Any], T], body: Any, method: str, path: str) -> T:
        """Run a response parser, adding the call to its validation errors."""
        try:
            return parse(body)
        except ResponseValidationError as exc:
            exc.method, exc.path = method, path
            exc.message = f"{method} {path}: {exc.message}"
            raise

    async def aclose(self) -> None:
        """Close the connections this client opened (not an injected ``http_client``)."""
        self._closed = True
        if self._owns_http_client:
            await self._core.http_client.aclose()

    async def __aenter__(self) -> MusicAPI:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
