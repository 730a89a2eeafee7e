"""``MusicAPI``: the async client."""

from __future__ import annotations

import math
import os
import platform
import secrets
from collections.abc import Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, TypeVar, final, overload

import anyio
import attrs
import httpx

from ._constants import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MIN_POLL_GAP,
    DEFAULT_TIMEOUT,
    DEFAULT_WEBHOOK_TOLERANCE,
    WEBHOOK_TAG_PARAM,
    WEBHOOK_URL_MAX,
    __version__,
)
from ._credits import CreditsResource
from ._download import (
    DEFAULT_DOWNLOAD_CHUNK_SIZE,
    DownloadFormat,
    ProgressCallback,
    download_file,
)
from ._exceptions import ResponseValidationError
from ._http import (
    PAID_ADVICE,
    Answer,
    CallOptions,
    HTTPCore,
    check_default_headers,
    request_id_of,
    shown_request_id,
)
from ._models import Clip, Task, TaskFamily, TaskRef
from ._nuro import Nuro
from ._poller import AsCompleted, Scheduler, TaskProgress, default_timeout
from ._producer import Producer
from ._ratelimit import Limiter, TokenBucket, check_limiter
from ._redact import shown_url
from ._resource import TaskResource, check_webhook, is_loopback_host
from ._retry import RetryEvent, RetryPolicy
from ._serde import reports_no_task
from ._sonic import Sonic
from ._webhooks import WebhookEvent, WebhookReceiver

__all__ = ["MusicAPI"]

T = TypeVar("T")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
#: Default of ``MusicAPI(limiter=...)``: a new TokenBucket per client.
DEFAULT_LIMITER: Any = _Unset()


def _user_agent() -> str:
    return (
        f"musicapi-async/{__version__} httpx/{httpx.__version__} "
        f"{platform.python_implementation()}/{platform.python_version()}"
    )


def _check_base_url(base_url: str, source: str = "base_url") -> httpx.URL:
    """``base_url`` checked; ``source`` names where it came from, for the error message."""
    shown = f"{source} {shown_url(base_url)}"
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"{shown} is not a valid URL ({type(exc).__name__})") from None
    if url.userinfo:
        # httpx would send them as Basic auth, in place of the Bearer key.
        raise ValueError(
            f"{shown} carries a user name or password, which the SDK does not send: remove "
            "them from the URL (the API key goes in api_key= or MUSICAPI_KEY)"
        )
    host = url.host.lower()
    if url.scheme == "https" and host:
        return url
    if url.scheme == "http" and is_loopback_host(host):
        return url
    if url.scheme == "http":
        raise ValueError(
            f"{shown} uses plain http://: MusicAPI requires https:// (the API key "
            "would travel in clear text). http:// is allowed only for loopback hosts "
            "(localhost, 127.0.0.1, ::1), where fakes run."
        )
    raise ValueError(f"{shown} must be an absolute https:// URL")


def _check_seconds(value: object, name: str) -> None:
    """A timeout: None (no limit) or a finite number of seconds > 0, else an error naming it."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {type(value).__name__}")
    if not 0 < value < math.inf:  # NaN too
        raise ValueError(
            f"{name} must be a finite number of seconds > 0 (or None: no limit), got {value!r}"
        )


def _timeout(timeout: float | httpx.Timeout | None, connect: float | None) -> httpx.Timeout:
    """The ``timeout`` argument, checked, as an httpx.Timeout whose connect part is at most
    ``connect``."""
    if isinstance(timeout, httpx.Timeout):
        for part in ("connect", "read", "write", "pool"):
            _check_seconds(getattr(timeout, part), f"timeout.{part}")
        return timeout
    _check_seconds(timeout, "timeout")
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
        timeout: Seconds allowed for each step of an HTTP attempt (httpx's timeouts: to
            connect, for each write, for each read of the answer, for a pooled connection;
            not for the whole attempt: an answer that keeps trickling in is not cut off),
            or an ``httpx.Timeout``; ``None``: no limit.
        connect_timeout: Seconds allowed to open a connection.
        max_retries: Shortcut for ``retry=RetryPolicy(max_retries=...)``.
        retry: The full retry policy (backoff, jitter, longest Retry-After honoured).
        on_retry: Called with a :class:`RetryEvent` before each retry sleep (a coroutine
            function is awaited).
        http_client: An ``httpx.AsyncClient`` to send through (proxies, transports, the
            fake server). It is used as given and never closed by this client.
        default_headers: Extra headers sent with every request (not ``Authorization``).
        limiter: The rate limiter every request of this client passes through, retries
            and background polls included. By default a :class:`TokenBucket` of its own
            (1 request / 3 s, MusicAPI's standard plan); share one bucket between all clients
            of one key, or pass ``None`` when the key's limit is enforced elsewhere (polls
            are then still paced by a private default bucket).
        min_poll_gap: Fewest seconds between two background polls of one task.
        expected_durations: The scheduler's first guess of how long tasks take, seconds per
            family (``{"sonic": 120, "producer": 30, "nuro": 30}`` by default), until it has
            seen some finish; set it for a fake or a plan whose tasks are much faster.
        webhook_url: Your HTTPS endpoint that receives MusicAPI's webhooks. Every create
            call of this client then asks MusicAPI to call it (unless the call passes its own
            ``webhook_url``), and :meth:`await_task` waits for the delivery instead of
            polling, with rare polls as a safety net. Needs ``webhook_secret``.
        webhook_secret: The secret MusicAPI signs deliveries with; ``client.webhooks``
            verifies them with it. Keep it server-side; it never appears in logs or reprs.
        webhook_tolerance: Seconds a delivery's signed timestamp may differ from this
            machine's clock (replay protection); 5 minutes by default.
        webhook_legacy: Also accept deliveries signed with the legacy ``X-Signature`` only
            (no timestamp, so no replay protection). Pass ``False`` once your deliveries
            carry ``X-Webhook-Signature``.

    Raises:
        ValueError: no API key, or an unacceptable ``base_url``, timeout or header.
        TypeError: an argument of the wrong type (an ``api_key`` that is not a str).

    >>> async with MusicAPI() as client:
    ...     ref = await client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")
    ...     task = await client.await_task(ref)
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
        limiter: Limiter | None = DEFAULT_LIMITER,
        min_poll_gap: float = DEFAULT_MIN_POLL_GAP,
        expected_durations: Mapping[str, float] | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_tolerance: float = DEFAULT_WEBHOOK_TOLERANCE,
        webhook_legacy: bool = True,
    ) -> None:
        if api_key is not None and not isinstance(api_key, str):
            raise TypeError(f"api_key must be a str, got {type(api_key).__name__}")
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not key or not key.strip():
            raise ValueError(
                f"no MusicAPI key: pass api_key= or set the {API_KEY_ENV} environment variable "
                "(keys are on the API Keys page of the MusicAPI dashboard)"
            )
        # The key goes into an HTTP header; a stray space, tab, control or non-ASCII character
        # would otherwise surface only at the first request, as a confusing 401 or encode error.
        if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
            source = (
                "api_key=" if api_key is not None else f"the {API_KEY_ENV} environment variable"
            )
            raise ValueError(
                f"the API key given by {source} contains whitespace, line breaks or other "
                "characters a key cannot have (a trailing newline or carriage return, say); "
                "check how it was copied"
            )
        source = "base_url"
        if base_url is None:
            base_url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
            source = f"{BASE_URL_ENV} (the environment variable)"
        url = _check_base_url(base_url, source)
        _check_seconds(connect_timeout, "connect_timeout")
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise TypeError(
                f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
            )
        headers = dict(default_headers or {})
        check_default_headers(headers)
        check_webhook(webhook_url)
        if webhook_secret is not None and (
            not isinstance(webhook_secret, str) or not webhook_secret.strip()
        ):
            raise ValueError("webhook_secret must be a non-empty string")
        if webhook_url is not None and webhook_secret is None:
            raise ValueError(
                "webhook_url needs webhook_secret: without one MusicAPI signs deliveries with "
                "a default secret, and they cannot be verified (anyone could forge a result)"
            )
        if not (isinstance(webhook_tolerance, (int, float)) and 0 < webhook_tolerance < math.inf):
            raise ValueError("webhook_tolerance must be a finite number of seconds > 0")
        if not isinstance(webhook_legacy, bool):
            raise TypeError(f"webhook_legacy must be True or False, got {webhook_legacy!r}")
        if limiter is DEFAULT_LIMITER:
            limiter = TokenBucket()
        if limiter is not None:
            limiter = check_limiter(limiter)
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = attrs.evolve(policy, max_retries=max_retries)
        options = CallOptions(
            timeout=_timeout(timeout, connect_timeout), retry=policy, on_retry=on_retry
        )
        # The scheduler checks min_poll_gap and expected_durations.
        self._scheduler = Scheduler(
            self, limiter, min_poll_gap=min_poll_gap, expected_durations=expected_durations
        )
        # Every argument is checked: only now open a connection pool, which a later error
        # would leave unclosed.
        self._core = HTTPCore(
            api_key=key,
            base_url=url,
            http_client=http_client,
            user_agent=_user_agent(),
            default_headers=headers,
            limiter=limiter,
        )
        if limiter is None:
            # Polls are still paced (by the scheduler's own bucket): 429s must reach it.
            self._core.poll_limiter = self._scheduler.limiter
        self._exit_stack: AsyncExitStack | None = None
        self._is_view = False
        self._options = options
        self._webhook_url = webhook_url
        self._webhook_secret = webhook_secret
        self._webhooks: WebhookReceiver | None = None
        if webhook_secret is not None:
            self._webhooks = WebhookReceiver(
                webhook_secret,
                tolerance=float(webhook_tolerance),
                on_event=self._on_webhook_event,
                allow_legacy=webhook_legacy,
            )
        self._bind_resources()

    def _bind_resources(self) -> None:
        self.sonic = Sonic(self)
        self.producer = Producer(self)
        self.nuro = Nuro(self)
        self.credits = CreditsResource(self)

    def __repr__(self) -> str:
        return f"MusicAPI(base_url={shown_url(str(self._core.base_url))})"

    @property
    def base_url(self) -> str:
        """The API root every request goes to, e.g. ``https://api.musicapi.ai/api/v1``."""
        return str(self._core.base_url)

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of this client (or of this ``with_options`` view)."""
        return self._options.retry

    @property
    def timeout(self) -> httpx.Timeout:
        """The timeouts of each HTTP attempt, seconds (connect, read, write, pool)."""
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
        clone._scheduler = self._scheduler
        clone._exit_stack = None
        clone._is_view = True
        clone._webhook_url = self._webhook_url
        clone._webhook_secret = self._webhook_secret
        clone._webhooks = self._webhooks
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
        return await self._resource_for(task.family).get_task(task)

    def _resource_for(self, family: TaskFamily) -> TaskResource:
        """The namespace whose task endpoint polls tasks of ``family``."""
        resources: dict[TaskFamily, TaskResource] = {
            TaskFamily.SONIC: self.sonic,
            TaskFamily.PRODUCER: self.producer,
            TaskFamily.NURO: self.nuro,
        }
        return resources[family]

    def _read(self, parse: Callable[[Any], T], answer: Answer, method: str, path: str) -> T:
        """Run a response parser on an :class:`Answer`'s body, adding the call and the answer
        (status, request id, headers) to its validation errors."""
        body = answer.body
        try:
            return parse(body)
        except ResponseValidationError as exc:
            exc.method, exc.path = method, path
            message = f"{method} {path}: {exc.message}"
            # Every POST may spend credits: a 2xx the SDK cannot read does not prove that
            # nothing was started, unless the answer itself says so.
            if method != "GET" and not reports_no_task(body):
                exc.task_may_exist = True
                message = f"{message.rstrip('.')}.{PAID_ADVICE}"
            exc.status_code = answer.status_code
            exc.request_id = self._core.hide_key(request_id_of(answer.headers))
            exc.headers = self._core.hide_key(answer.headers)
            message += shown_request_id(exc.request_id)
            # A parser quotes the body's values: one may echo the key.
            exc.message = self._core.hide_key(message)
            exc.body = self._core.hide_key(exc.body)
            raise

    # --- webhooks -----------------------------------------------------------------------------

    @property
    def webhooks(self) -> WebhookReceiver:
        """The receiver for MusicAPI's webhook deliveries, bound to this client's waiters.

        Hand it each delivery's raw body and headers (or mount an adapter from
        :mod:`musicapi_async.webhooks` that does): a verified delivery resolves the
        :meth:`await_task` / :meth:`as_completed` waiters of its task at once.

        >>> response = await client.webhooks.handle(
        ...     await request.body(), request.headers, query=request.url.query
        ... )

        Raises:
            RuntimeError: the client has no ``webhook_secret``.
        """
        if self._webhooks is None:
            raise RuntimeError(
                "this client has no webhook receiver: create it with "
                "MusicAPI(webhook_url=..., webhook_secret=...)"
            )
        return self._webhooks

    def _on_webhook_event(self, event: WebhookEvent) -> None:
        self._scheduler.on_webhook(event.task)

    def _with_webhook(
        self, body: Mapping[str, Any], *, tag: bool = True
    ) -> tuple[Mapping[str, Any], bool, str | None]:
        """``body`` with this client's webhook attached; whether the result will be delivered
        to this client (a call may name its own ``webhook_url``); and the tag added to the
        URL, which :meth:`_tag_task` ties to the task once the create call answers.

        The tag names the task for a delivery whose body does not (MusicAPI's published
        Sonic example carries no ``task_id``). ``tag=False`` for a call whose tasks share one
        delivery URL (a batch): a tag would not tell them apart.
        """
        if self._webhook_url is None:
            return body, False, None
        given = body.get("webhook_url")
        ours = given == self._webhook_url and body.get("webhook_secret") in (
            None,
            self._webhook_secret,
        )
        if given is not None and not ours:
            return body, self._delivers_here(body), None
        url, name = self._webhook_url, None
        if tag and self._webhooks is not None:
            name = secrets.token_urlsafe(12)
            # By hand rather than urlsplit/urlunsplit, which drop tabs and newlines: the URL
            # goes out exactly as configured, the tag appended to its query.
            base, hash_mark, fragment = url.partition("#")
            joint = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
            tagged = f"{base}{joint}{WEBHOOK_TAG_PARAM}={name}{hash_mark}{fragment}"
            if len(tagged) <= WEBHOOK_URL_MAX:
                url = tagged
                self._webhooks._expect_tag(name)
            else:
                name = None  # MusicAPI would refuse the longer URL: untagged, as before
        body = {**body, "webhook_url": url, "webhook_secret": self._webhook_secret}
        return body, True, name

    def _tag_task(self, tag: str | None, ref: TaskRef | None) -> None:
        """The create call whose webhook URL carried ``tag`` started ``ref`` (None: it
        failed, and the tag names nothing)."""
        if tag is not None and self._webhooks is not None:
            self._webhooks._resolve_tag(tag, ref)

    def _delivers_here(self, body: Mapping[str, Any]) -> bool:
        """Whether the task a body starts will be delivered to this client's receiver."""
        return (
            self._webhook_url is not None
            and body.get("webhook_url") == self._webhook_url
            and body.get("webhook_secret") == self._webhook_secret
        )

    @property
    def limiter(self) -> Limiter | None:
        """The rate limiter in front of every request (None: no client-side limit)."""
        return self._core.limiter

    # --- waiting for tasks --------------------------------------------------------------------

    # A str is also an iterable of str; the first overload wins for it, as intended.
    @overload
    async def await_task(  # type: ignore[overload-overlap]
        self,
        tasks: TaskRef | str,
        *,
        timeout: float | None = ...,
        on_progress: Callable[[TaskProgress], object] | None = ...,
    ) -> Task: ...

    @overload
    async def await_task(
        self,
        tasks: Iterable[TaskRef | str],
        *,
        timeout: float | None = ...,
        on_progress: Callable[[TaskProgress], object] | None = ...,
    ) -> list[Task]: ...

    async def await_task(
        self,
        tasks: TaskRef | str | Iterable[TaskRef | str],
        *,
        timeout: float | None = UNSET,
        on_progress: Callable[[TaskProgress], object] | None = None,
    ) -> Task | list[Task]:
        """Wait until tasks finish; return the terminal :class:`Task` (or a list, in order).

        Give one reference (or a bare Sonic task id) to get one Task, or an iterable of
        references to get a list in the same order. Polling is shared: every task awaited
        anywhere on this client (and its ``with_options`` views) is polled by one scheduler
        under the client's rate limiter, in the background, once per round whoever waits.

        A failed task is returned, not raised: check ``task.succeeded`` or call
        ``task.raise_for_status()``, so one failure never hides the other results.

        Args:
            timeout: Seconds to wait at most (default 10 min for Sonic tasks, 5 min for
                Producer and Nuro; ``None``: no deadline). At the deadline
                :class:`WaitTimeoutError` is raised with the unfinished references
                (``error.pending``, ``error.pending_json()``) to resume later.
                ``anyio.fail_after`` around the call works too.
            on_progress: Called with a :class:`TaskProgress` at every change of state
                (pending, running, streaming, succeeded, failed); may be a coroutine function.

        Raises:
            WaitTimeoutError: the deadline passed first.
            MusicAPIError: a poll failed for good (401, 404 unknown task, 410...).
            RuntimeError: the client is not open (use ``async with MusicAPI() as client``).

        >>> task = await client.await_task(ref)
        >>> tasks = await client.await_task([ref1, ref2])
        """
        single = isinstance(tasks, (TaskRef, str))
        refs = [self._as_ref(tasks)] if single else [self._as_ref(t) for t in tasks]  # type: ignore[union-attr]
        results: dict[tuple[TaskFamily, str], Task] = {}
        stream = self._as_completed(refs, timeout, on_progress, follow_scopes=True)
        async with stream:
            async for task in stream:
                results[(task.ref.family, task.ref.task_id)] = task
        ordered = [results[(ref.family, ref.task_id)] for ref in refs]
        return ordered[0] if single else ordered

    def as_completed(
        self,
        tasks: Iterable[TaskRef | str],
        *,
        timeout: float | None = UNSET,
        on_progress: Callable[[TaskProgress], object] | None = None,
    ) -> AsCompleted:
        """Iterate over tasks as they finish: ``async for task in client.as_completed(refs)``.

        Each terminal :class:`Task` is yielded as soon as a poll sees it (failed ones too).
        Deadline, progress and errors as in :meth:`await_task`. Closing the iterator stops
        the polling of tasks nobody else awaits: ``break`` out of ``async for task in
        client.as_completed(refs)`` does (the iterator is dropped); one kept in a variable
        lives as long as it, so use ``async with client.as_completed(refs) as stream:``.
        """
        if isinstance(tasks, (TaskRef, str)):
            raise TypeError("as_completed takes an iterable of tasks; use await_task for one")
        return self._as_completed(
            [self._as_ref(t) for t in tasks], timeout, on_progress, follow_scopes=False
        )

    def _as_completed(
        self,
        tasks: Iterable[TaskRef],
        timeout: float | None,
        on_progress: Callable[[TaskProgress], object] | None,
        *,
        follow_scopes: bool,
    ) -> AsCompleted:
        refs = {(ref.family, ref.task_id): ref for ref in tasks}
        if timeout is UNSET:
            timeout = default_timeout(refs.values())
        elif timeout is not None and not (timeout >= 0):
            raise ValueError(f"timeout must be a number of seconds >= 0 or None, got {timeout!r}")
        deadline = None if timeout is None else anyio.current_time() + timeout
        return AsCompleted(
            self._scheduler, refs, deadline, on_progress, follow_scopes=follow_scopes
        )

    @staticmethod
    def _as_ref(task: object) -> TaskRef:
        if isinstance(task, TaskRef):
            if not task.task_id.strip():
                raise ValueError(f"the task id is empty ({task!r})")
            return task
        if isinstance(task, str) and task.strip():
            return TaskRef(task.strip(), TaskFamily.SONIC)
        raise TypeError(
            f"expected a TaskRef (or a Sonic task id string), got {type(task).__name__}"
        )

    # --- lifecycle ----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop background polling and close the connections this client opened.

        Safe from any task. An injected ``http_client`` is left open, and so is everything
        of a ``with_options`` view's parent when the view is closed. Waiters still waiting
        get a RuntimeError.
        """
        if self._is_view:
            return
        self._scheduler.close("the MusicAPI client was closed while waiting for tasks")
        await self._core.aclose()  # an injected http_client is left open

    async def __aenter__(self) -> MusicAPI:
        if self._is_view:
            return self  # a view shares its parent's lifetime and background poller
        if self._exit_stack is not None:
            raise RuntimeError(
                "this MusicAPI client is already inside an `async with` block (aclose() does "
                "not end the block): leave it before entering it again"
            )
        self._core.reopen()  # closed by an earlier async with: new connections
        stack = AsyncExitStack()
        task_group = await stack.enter_async_context(anyio.create_task_group())
        # Background polls live in this task group: nothing outlives the async with block.
        self._scheduler.attach(task_group)
        self._exit_stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
        stack, self._exit_stack = self._exit_stack, None
        if stack is not None:
            # Exit the task group here, in the task that entered it, after the poller stopped.
            await stack.aclose()

    def __enter__(self) -> NoReturn:
        raise TypeError(
            "MusicAPI is asynchronous: use `async with MusicAPI() as client:` inside an async "
            "function, run by anyio.run(main), asyncio.run(main()) or trio.run(main)"
        )

    def __exit__(self, *exc_info: object) -> None:  # pragma: no cover - __enter__ raises
        """Only for ``with`` to reach :meth:`__enter__`, which says to use ``async with``."""

    # --- downloads ----------------------------------------------------------------------------

    async def download(
        self,
        clip_or_url: Clip | str,
        dest: str | os.PathLike[str],
        *,
        format: DownloadFormat = "audio",
        filename: str | None = None,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        chunk_size: int = DEFAULT_DOWNLOAD_CHUNK_SIZE,
        timeout: float | httpx.Timeout | None = UNSET,
    ) -> Path:
        """Download a clip's audio (or any http(s) URL) to a file; return the file's path.

        The body is streamed to a temporary file in the destination directory
        (``.<name>.part-<random>``), synced, and renamed to its final name only once it is
        complete and its size matches ``Content-Length``: on an error, a short body or a
        cancellation the temporary file is removed and nothing exists under the final name.

        Audio lives on public CDNs, not on the API: the request carries no API key (nor
        ``default_headers``), does not pass through the client's rate limiter (it spends
        none of the key's request budget), and costs no credits. Redirects (up to 10) are
        followed by hand, without the client's cookies, headers or auth on any hop; one to
        another scheme, or from https to http, is refused. Only a 200 answer carrying audio
        is saved. Downloads share the client's connection pool, so at most 8 run at once
        (per client and event loop); the others wait their turn, and API calls always find
        a free connection.

        Args:
            clip_or_url: A finished :class:`Clip` (its ``audio_url``, or ``wav_url`` with
                ``format="wav"``), or an ``http://`` / ``https://`` URL.
            dest: A directory, where the file is named from the clip's title and id
                (see :func:`safe_filename`) with the extension of the answer's
                ``Content-Type`` (else the URL's); or the path of the file to write. It is
                a directory when it is one, ends with ``/``, comes with ``filename``, or
                does not exist and has no extension (``"songs"``, created); otherwise a
                file (``"songs/lofi.mp3"``, missing directories created).
            format: ``"audio"`` (default) or ``"wav"``, for a Clip.
            filename: The file's name inside the directory ``dest``, as given (no
                directory part).
            overwrite: Replace an existing file; by default :class:`FileExistsError`.
            on_progress: Called as ``on_progress(received, total)`` after each chunk written
                (and once with 0 first): bytes so far and the announced size, or ``None``
                when unknown. May be a coroutine function.
            chunk_size: Bytes read and written at a time.
            timeout: Seconds allowed to connect and for each read (not for the whole
                download: wrap the call in ``anyio.fail_after`` for that); default the
                client's timeout.

        Raises:
            DownloadError: an error status, an answer that is not audio (HTML, JSON, text,
                an empty body), a refused redirect, a failed connection or a timeout (the
                message says which), or a body whose size does not match ``Content-Length``.
            OSError: the file could not be written (a full disk, no permission); its
                message names the destination, and nothing partial is left.
            FileExistsError: the file exists and ``overwrite`` is false.
            ValueError: not an http(s) URL, a clip without that URL (not finished, or still
                streaming), or a ``filename`` with a directory part.

        >>> task = await client.await_task(ref)
        >>> for clip in task.clips:
        ...     path = await client.download(clip, "songs/")
        ...     print(path)  # songs/Three Seconds - 0f3c....mp3
        """
        return await download_file(
            self._core.http(),
            clip_or_url,
            dest,
            format=format,
            filename=filename,
            overwrite=overwrite,
            on_progress=on_progress,
            chunk_size=chunk_size,
            timeout=self._options.timeout
            if timeout is UNSET
            else _timeout(timeout, self._options.timeout.connect),
            user_agent=_user_agent(),
        )
