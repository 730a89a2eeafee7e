"""The one request path: every HTTP call of the SDK goes through :meth:`HTTPCore.request`.

It builds the request (auth, headers, JSON), runs the retry loop, and is the only place
where httpx errors and error statuses become the SDK's exceptions. A limiter sits in front
of each *attempt* (retries included), so that a shared request budget sees every request.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import re
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any, Final, NoReturn, Protocol, TypeVar, cast, final

import anyio
import anyio.lowlevel
import httpx
from attrs import frozen

from ._constants import REQUEST_ID_HEADERS
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    GoneError,
    InsufficientCreditsError,
    MusicAPIError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    UpstreamTimeoutError,
)
from ._loops import LoopLocal
from ._ratelimit import Limiter, Priority, Slot, acquire_slot, report_rate_limited
from ._redact import hide_secrets, scrub_urls, shown_location, shown_url
from ._retry import NOT_SENT_ERRORS, RetryEvent, RetryPolicy, parse_retry_after
from ._serde import body_code, dumps, error_text, error_type

logger = logging.getLogger("musicapi_async")

#: What a RuntimeError says when connections are used from another event loop than theirs.
_LOOP_ERRORS: Final = re.compile(r"event loop is closed|different (event )?loop", re.IGNORECASE)

#: Appended to the message of every error after which a paid call's task may exist.
#: How much of a body that is not JSON is read to quote its start: scrubbed of URL secrets
#: before it is cut, so no cut falls inside a URL's credentials.
_TEXT_SCRUBBED = 4096

PAID_ADVICE = (
    " This call spends credits and was not retried: MusicAPI may already have started the "
    "task and charged for it. Before repeating it, check whether it exists: a webhook "
    "delivery for it, the dashboard's task history, or a drop in client.credits.get()."
)
#: The same for a 504: MusicAPI refunds a task that timed out, but a gateway's 504 may hide
#: a create that went through.
PAID_504_ADVICE = (
    " This call spends credits and was not retried. MusicAPI refunds a task that timed out, "
    "but a 504 can also come from a gateway while the request went through, so MusicAPI may "
    "already have started the task and charged for it. Before repeating it, check whether it "
    "exists: a webhook delivery for it, the dashboard's task history, or a drop in "
    "client.credits.get()."
)


class SendWatch(Protocol):
    """Told when a paid call's request leaves, and when an attempt that failed certainly
    did not reach the server (it is retried), so that a paid task's id survives a
    cancellation: see :class:`PaidCall`, which sets it with :data:`SEND_WATCH`."""

    def sending(self) -> None: ...

    def not_sent(self) -> None: ...


#: The :class:`SendWatch` of the paid calls made in this context, if any.
SEND_WATCH: ContextVar[SendWatch | None] = ContextVar("musicapi_send_watch", default=None)

T = TypeVar("T")


class PaidCall:
    """One paid call run so that a cancellation cannot lose what it bought.

    While its request has not left (waiting for the rate limiter, or for a retry after a
    429), a cancellation drops it: nothing was sent. Once the request is on the wire, it is
    let finish (within the client's timeout), since its answer is the only record of what
    was created; the cancellation strikes right after. It is the call's :class:`SendWatch`;
    a subclass adds what to record at each step (``super()`` first for ``sending``, last
    for ``not_sent``).
    """

    def __init__(self) -> None:
        self.sent = False
        #: A cancellation arrived while the call was under way.
        self.cancelled = False
        # Shielded exactly while a request is out: before, a cancellation reaches the call
        # as it would any other, and the request path checks for one just before sending.
        self._guard = anyio.CancelScope()

    def sending(self) -> None:
        self.sent = True
        self._guard.shield = True

    def not_sent(self) -> None:
        self.sent = False
        self._guard.shield = False  # a cancellation now drops it while it waits to be resent

    def interrupted(self) -> None:
        """A cancellation arrived while the call was under way (``sent``: it is let finish)."""

    async def run(self, call: Callable[[], Awaitable[T]], record: Callable[[T | None], None]) -> T:
        """Make the call; ``record`` gets its result (``None``: dropped unsent) before any
        cancellation can strike. Returns that result; an error of the call is raised as it
        is, without ``record``, and so is an error of ``record``; after a drop, the
        cancellation that dropped it is raised."""
        result: T | None = None
        failure: Exception | None = None
        finished = False

        async def on_cancel() -> None:
            # Only to tell (``interrupted``): the guard itself decides what a cancellation does.
            try:
                await anyio.sleep_forever()
            finally:
                if not finished:
                    self.cancelled = True
                    self.interrupted()

        unrecorded: Exception | None = None  # record() failed: what was bought is unknown
        try:
            async with anyio.create_task_group() as watcher:
                watcher.start_soon(on_cancel)
                token = SEND_WATCH.set(self)
                try:
                    with self._guard:
                        try:
                            result = await call()
                        except Exception as exc:  # raised below, not as an exception group
                            failure = exc
                        else:
                            try:
                                record(result)  # still shielded: a cancellation cannot lose it
                            except Exception as exc:  # raised below, as it is, like the call's
                                failure = unrecorded = exc
                except anyio.get_cancelled_exc_class():
                    if not self.sent:
                        # Cancelled before its request left: dropped. (Sent, the guard
                        # shields it; only a forced stop gets through: what it bought is
                        # unknown.)
                        try:
                            record(None)
                        except Exception as exc:  # raised below, as it is
                            unrecorded = exc
                    raise
                finally:
                    finished = True
                    SEND_WATCH.reset(token)
                    watcher.cancel_scope.cancel()
        except anyio.get_cancelled_exc_class():
            if unrecorded is not None:
                # The cancellation that waited for the answer would hide that the answer
                # could not be recorded, and only this error says what was bought.
                raise unrecorded from unrecorded.__cause__
            raise
        if failure is not None:
            raise failure
        return cast(T, result)  # answered: the call's own value


@final
@frozen
class Answer:
    """A 2xx answer: status and decoded JSON body."""

    status_code: int
    body: Any
    headers: httpx.Headers


@final
@frozen
class CallOptions:
    """Per-client (and per ``with_options``) settings of the request path."""

    timeout: httpx.Timeout
    retry: RetryPolicy
    #: Called before each retry sleep; a coroutine function is awaited.
    on_retry: Callable[[RetryEvent], object] | None = None


def new_connection_pool() -> httpx.AsyncClient:
    """The httpx client a :class:`MusicAPI` makes when it is given none."""
    return httpx.AsyncClient(
        follow_redirects=False,
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        verify=_ssl_context(),
    )


_SSL_CONTEXT: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    """httpx's default TLS settings (the CA bundle, ``SSL_CERT_FILE``...), loaded once per
    process: loading them takes tens of milliseconds, which a pool made per request (a
    client per web request) would block its event loop for each time."""
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        _SSL_CONTEXT = httpx.create_ssl_context()
    return _SSL_CONTEXT


#: Each client's own pool in each event loop (owned pools only): it goes with its loop, or
#: with its client.
_POOLS: LoopLocal[HTTPCore, httpx.AsyncClient] = LoopLocal("musicapi_async pools")


class HTTPCore:
    """Owns the key, the base URL and the httpx client; sends requests with retries.

    With ``http_client=None`` it makes its own connection pool for each event loop that uses
    it (made on first use, kept per loop: it goes with its loop or its client; see
    :class:`~musicapi_async._loops.LoopLocal`): connections belong to the
    loop that opened them, and a program that calls ``asyncio.run`` once per job (a Celery
    task, a script) would otherwise meet "Event loop is closed" on its second job. A given
    ``http_client`` is used as it is.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: httpx.URL,
        http_client: httpx.AsyncClient | None,
        user_agent: str,
        default_headers: Mapping[str, str],
        limiter: Limiter | None = None,
    ) -> None:
        self._api_key = api_key
        self.base_url = base_url
        self.owns_http_client = http_client is None
        #: The pool last used: the given one, or (made on first use) this loop's own.
        self.http_client: httpx.AsyncClient | None = http_client
        self._closed = False
        check_default_headers(default_headers)
        # httpx.Headers merges case-insensitively: a user's "user-agent" replaces ours.
        headers = httpx.Headers({"Accept": "application/json", "User-Agent": user_agent})
        headers.update(default_headers)
        self._headers = dict(headers.items())
        self.limiter = limiter
        #: Without a limiter, the scheduler's private one, which paces background polls:
        #: a 429 must hold those back too.
        self.poll_limiter: Limiter | None = None

    def __repr__(self) -> str:
        return f"HTTPCore(base_url={shown_url(str(self.base_url))})"

    def hide_key(self, value: Any) -> Any:
        """``value`` (server text, a decoded body, an answer's headers) with this client's
        API key hidden."""
        if isinstance(value, httpx.Headers):
            return _hidden_headers(value, (self._api_key,))
        return hide_secrets(value, (self._api_key,))

    def http(self) -> httpx.AsyncClient:
        """The httpx client to send with from the running event loop."""
        if self._closed:  # an injected http_client too: a closed client sends nothing
            raise RuntimeError(
                "this MusicAPI client was closed: open it again with `async with client:`, "
                "or make a new one"
            )
        if not self.owns_http_client:
            assert self.http_client is not None  # given
            return self.http_client
        pool = _POOLS.get(self)
        if pool is None or pool.is_closed:
            pool = new_connection_pool()
            _POOLS.set(self, pool)
        self.http_client = pool
        return pool

    def reopen(self) -> None:
        """``async with`` on a closed client: it may send again (with new connections)."""
        self._closed = False

    async def aclose(self) -> None:
        """Close the pool this event loop uses. The pools of other loops go with them: their
        connections cannot be closed from here. An injected http_client is left open."""
        self._closed = True
        if not self.owns_http_client:
            return
        pool = _POOLS.get(self)
        _POOLS.discard(self)
        if pool is not None:
            await pool.aclose()

    def url(self, path: str) -> httpx.URL:
        return self.base_url.copy_with(path=self.base_url.path.rstrip("/") + path)

    async def request(
        self,
        method: str,
        path: str,
        *,
        options: CallOptions,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        paid: bool,
        priority: Priority = Priority.USER,
        held: Slot | None = None,
    ) -> Answer:
        """Send one call, retrying per ``options.retry``; raise a :class:`MusicAPIError`.

        ``paid`` marks a call that may spend credits: it is repeated only when the server
        certainly did not act on it. Every attempt first takes a slot from the limiter at
        ``priority``, except the first when the caller already holds one (``held``).
        """
        content = None if json_body is None else _encode(json_body)
        # What an answer might echo and must not show: the key, and the webhook secrets sent.
        secrets = (self._api_key, *_webhook_secrets(json_body))
        headers = dict(self._headers)
        if content is not None:
            headers["Content-Type"] = "application/json"
        policy = options.retry
        retry_index = 0
        while True:
            try:
                slot, held = held, None
                if self.limiter is not None and slot is None:
                    slot = await acquire_slot(self.limiter, priority)
                return await self._attempt(
                    method, path, content, headers, params, options.timeout, paid, secrets, slot
                )
            except _Retryable as retryable:
                error = retryable.error
                watch = SEND_WATCH.get() if paid else None
                if watch is not None:
                    # A paid call is retryable only when it did not arrive: say so, whether it
                    # is retried or raised (a journal must not count it as a paid attempt).
                    watch.not_sent()
                pacer = self.limiter if self.limiter is not None else self.poll_limiter
                if isinstance(error, RateLimitError) and pacer is not None:
                    # Before the retry or the raise: every user of the key holds back.
                    await report_rate_limited(pacer, error.retry_after)
                if retry_index >= policy.max_retries:
                    raise error from retryable.__cause__
                retry_after = error.retry_after if isinstance(error, APIStatusError) else None
                if retry_after is not None and retry_after > policy.max_retry_after:
                    error.message += (
                        f" The server asked to wait {retry_after:.0f} s, longer than "
                        f"max_retry_after={policy.max_retry_after:.0f} s, so it was not retried."
                    )
                    raise error from retryable.__cause__
                delay = policy.delay(retry_index, retry_after)
                retry_index += 1
                logger.info(
                    "retrying %s %s in %.2f s (retry %d of %d): %s",
                    method,
                    path,
                    delay,
                    retry_index,
                    policy.max_retries,
                    error.message,
                )
                if options.on_retry is not None:
                    outcome = options.on_retry(RetryEvent(method, path, retry_index, delay, error))
                    if inspect.isawaitable(outcome):
                        await outcome
                await anyio.sleep(delay)

    async def _attempt(
        self,
        method: str,
        path: str,
        content: bytes | None,
        headers: dict[str, str],
        params: Mapping[str, str] | None,
        http_timeout: httpx.Timeout,
        paid: bool,
        secrets: tuple[str, ...],
        slot: Slot | None,
    ) -> Answer:
        http = self.http()
        request = http.build_request(
            method,
            self.url(path),
            content=content,
            params=params,
            headers={**headers, "Authorization": f"Bearer {self._api_key}"},
            timeout=http_timeout,
        )
        started = anyio.current_time()
        watch = SEND_WATCH.get() if paid else None
        if watch is not None:
            # Cancelled while it waited for its slot: drop it here, before anything leaves
            # (from sending() on, its PaidCall shields it until the answer).
            await anyio.lowlevel.checkpoint_if_cancelled()
            watch.sending()
        try:
            # An injected client may follow redirects; the SDK never does: a 307 would
            # re-send a paid create past the limiter (README: a 3xx is never followed).
            response = await http.send(request, follow_redirects=False)
            try:
                await response.aread()
            finally:
                await response.aclose()
        except httpx.RequestError as exc:  # transport, decoding and redirect errors alike
            raise self._transport_error(exc, method, path, paid) from exc
        except RuntimeError as exc:
            if self.owns_http_client or not _LOOP_ERRORS.search(str(exc)):
                raise
            raise RuntimeError(
                f"{method} {path}: the http_client given to MusicAPI holds connections of "
                f"another event loop ({exc}). Connections belong to their loop: create the "
                "httpx.AsyncClient inside the loop that uses it (one per asyncio.run), or give "
                "MusicAPI none and it keeps a pool per loop itself"
            ) from exc
        elapsed = anyio.current_time() - started
        logger.debug("%s %s -> %d in %.3f s", method, path, response.status_code, elapsed)
        # The server has seen the request: the limiter hears of it (a refusal for the rate,
        # as the status or in the body, is reported as a 429 instead, by request()).
        rate_limited = response.status_code == 429
        try:
            if response.status_code >= 300:  # a redirect too: not followed, not a success
                _raise_status_error(status_error(response, method, path, secrets=secrets), paid)
            body = _decode(response, method, path, paid, secrets)
            in_body = body_status(body) if response.status_code != 202 else None
            if in_body is not None:
                # An error envelope sent with a 2xx ({"code": 403, "message": "The remaining
                # credits are not enough"}): the error its code names, as if it were the
                # status.
                rate_limited = in_body == 429
                error = status_error(response, method, path, in_body=in_body, secrets=secrets)
                _raise_status_error(error, paid)
            return Answer(response.status_code, body, response.headers)
        finally:
            if slot is not None and not rate_limited:
                slot.answered()

    def _transport_error(
        self, exc: httpx.RequestError, method: str, path: str, paid: bool
    ) -> Exception:
        timeout = isinstance(exc, httpx.TimeoutException)
        cls = APITimeoutError if timeout else APIConnectionError
        # Name the server: a base URL from MUSICAPI_BASE_URL is easy to forget.
        what = self.hide_key(f"{_describe_transport_error(exc)}; server {self.base_url.host}")
        if isinstance(exc, httpx.UnsupportedProtocol):
            return cls(f"{method} {path}: {what}", method=method, path=path)  # same every time
        if isinstance(exc, NOT_SENT_ERRORS):
            return _Retryable(cls(f"{method} {path}: {what}", method=method, path=path))
        if not paid:
            error = cls(f"{method} {path}: {what}", method=method, path=path)
            # A redirect loop repeats identically; a garbled body may be a one-off.
            return error if isinstance(exc, httpx.TooManyRedirects) else _Retryable(error)
        return cls(
            f"{method} {path}: {what}.{PAID_ADVICE}", method=method, path=path, task_may_exist=True
        )


#: Headers that describe each request's own body or connection: httpx sets them, and a
#: default one would be sent beside (or instead of) the right value.
_PER_REQUEST_HEADERS: Final = ("Content-Type", "Content-Length", "Host", "Transfer-Encoding")


def check_default_headers(headers: Mapping[str, str]) -> None:
    """Refuse extra headers that cannot or must not be sent (``MusicAPI(default_headers=)``)."""
    given: Iterable[object] = headers  # bytes names too: httpx accepts them
    names = {
        (name.decode("latin-1") if isinstance(name, bytes) else name).lower()
        for name in given
        if isinstance(name, (str, bytes))
    }
    if "authorization" in names:
        raise ValueError("default_headers must not set Authorization: pass api_key= instead")
    for header in _PER_REQUEST_HEADERS:
        if header.lower() in names:
            raise ValueError(
                f"default_headers must not set {header}: the SDK sets it on each request "
                "from the request itself"
            )
    httpx.Headers(headers)  # a name or value that is not text raises TypeError here


class _Retryable(Exception):
    """Internal: an attempt failed in a way the retry loop may repeat."""

    def __init__(self, error: MusicAPIError) -> None:
        super().__init__(error.message)
        self.error = error


def _describe_transport_error(exc: httpx.RequestError) -> str:
    kinds: list[tuple[type[httpx.RequestError], str]] = [
        (httpx.ConnectTimeout, "timed out connecting"),
        (httpx.ReadTimeout, "timed out waiting for the response"),
        (httpx.WriteTimeout, "timed out sending the request"),
        (httpx.PoolTimeout, "timed out waiting for a free connection in the pool"),
        (httpx.ConnectError, "could not connect"),
        (httpx.RemoteProtocolError, "the server broke the HTTP protocol or closed the connection"),
        (httpx.ReadError, "the connection failed while reading the response"),
        (httpx.WriteError, "the connection failed while sending the request"),
        (httpx.DecodingError, "the response body could not be decoded"),
        (httpx.TooManyRedirects, "the server redirected too many times"),
    ]
    text = next((text for kind, text in kinds if isinstance(exc, kind)), "the request failed")
    detail = str(exc)
    return (
        f"{text} ({type(exc).__name__}: {detail})" if detail else f"{text} ({type(exc).__name__})"
    )


def _encode(body: Mapping[str, Any]) -> bytes:
    try:
        return dumps(dict(body)).encode()
    except ValueError as exc:
        # JSON has no NaN or infinity; name the argument rather than json's "out of range".
        found = _non_finite(body, "")
        if found is None:
            raise
        where, value = found
        raise ValueError(f"{where} must be a finite number, got {value!r}") from exc


def _non_finite(value: Any, path: str) -> tuple[str, float] | None:
    """Where the first NaN or infinity sits in a request body (``items[0].style_weight``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    children: Iterable[tuple[str, Any]] = ()
    if isinstance(value, Mapping):
        children = ((f"{path}.{key}" if path else str(key), v) for key, v in value.items())
    elif isinstance(value, (list, tuple)):
        children = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    for child_path, child in children:
        found = _non_finite(child, child_path)
        if found is not None:
            return found
    return None


def _raise_status_error(error: APIStatusError, paid: bool) -> NoReturn:
    """Raise an error answer: a 429, and a 5xx to a call that spends nothing, as retryable;
    a 5xx to a paid call with ``task_may_exist`` and the advice that goes with it."""
    if isinstance(error, RateLimitError):
        raise _Retryable(error)  # the limiter hears of it in request()
    if isinstance(error, ServerError):
        if not paid:
            raise _Retryable(error)
        error.task_may_exist = True
        error.message += PAID_504_ADVICE if isinstance(error, UpstreamTimeoutError) else PAID_ADVICE
    if error.status_code == 303 and paid:
        # A 303 answers a request that was carried out: a paid one may have started a task.
        error.task_may_exist = True
        error.message += PAID_ADVICE
    raise error


def _decode(
    response: httpx.Response, method: str, path: str, paid: bool, secrets: Iterable[str]
) -> Any:
    if not response.content:
        return None
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep to decode
        if response.status_code == 202:
            # "Accepted, not ready yet" whatever its body says (CONTRACT §15): no body.
            return None
        snippet = scrub_urls(response.text[:_TEXT_SCRUBBED], secrets=secrets)[:200]
        request_id = hide_secrets(request_id_of(response.headers), secrets)
        # A paid call answered 2xx: the server acted, whatever the body says.
        raise ResponseValidationError(
            f"{method} {path} answered {response.status_code} with a body that is not JSON: "
            f"{snippet!r}.{PAID_ADVICE if paid else ''}{shown_request_id(request_id)}",
            field_path="$",
            body=snippet,
            method=method,
            path=path,
            task_may_exist=paid,
            status_code=response.status_code,
            request_id=request_id,
            headers=_hidden_headers(response.headers, secrets),
        ) from exc


def _webhook_secrets(body: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The ``webhook_secret`` values of a request body: its own and its batch items'."""
    if body is None:
        return ()
    found = [body.get("webhook_secret")]
    items = body.get("items")
    if isinstance(items, list):
        found += [item.get("webhook_secret") for item in items if isinstance(item, Mapping)]
    return tuple(secret for secret in found if isinstance(secret, str) and secret)


def request_id_of(headers: httpx.Headers) -> str | None:
    """The id the server (or its CDN) gave the answer, which support asks for, or None."""
    return next((headers[name] for name in REQUEST_ID_HEADERS if name in headers), None)


def shown_request_id(request_id: str | None) -> str:
    """The end of an error message that names the answer's request id ("" without one)."""
    return f" [request id {request_id}]" if request_id else ""


def _hidden_headers(headers: httpx.Headers, secrets: Iterable[str]) -> httpx.Headers:
    """``headers`` as received (latin-1 maps every byte back), ``secrets`` hidden."""
    return httpx.Headers(
        [
            (name, hide_secrets(value.decode("latin-1"), secrets).encode("latin-1"))
            for name, value in headers.raw
        ]
    )


def _is_insufficient_credits(message: str) -> bool:
    text = message.lower()
    return "credit" in text and ("not enough" in text or "insufficient" in text)


_STATUS_CLASSES: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    410: GoneError,
    429: RateLimitError,
    504: UpstreamTimeoutError,
}


#: Keys of an answer that says more than "this error": a task's state (a failed task is a
#: result, not an error: CONTRACT §15 rules 1 and 2), a submission, a multi-step report.
_NOT_AN_ERROR_ENVELOPE = frozenset(
    {"type", "status", "data", "task_id", "failed_step", "steps", "clip_id", "results"}
)


def body_status(body: Any) -> int | None:
    """The error status a 2xx answer carries in its body when the body is a bare error
    envelope (``{"code": 403, "message": ...}``, CONTRACT §15 rule 3, sent with HTTP 200),
    or None: an answer with a task's state, a task id or steps is read as that answer."""
    if not isinstance(body, Mapping) or not _NOT_AN_ERROR_ENVELOPE.isdisjoint(body):
        return None
    code = body_code(body)
    return code if code is not None and 400 <= code <= 599 else None


def status_error(
    response: httpx.Response,
    method: str,
    path: str,
    *,
    in_body: int | None = None,
    secrets: Iterable[str] = (),
) -> APIStatusError:
    """Translate an error answer into the exception class of its status (README table);
    ``in_body``: the error status a 2xx answer carried in its body instead. ``secrets``
    (the client's key), should the server echo them, are hidden from the message, the body
    and the headers."""
    try:
        body: Any = json.loads(response.content) if response.content else None
    except (ValueError, RecursionError):  # RecursionError: nested too deep to decode
        body = scrub_urls(response.text[:_TEXT_SCRUBBED], secrets=secrets)[:500]
    else:
        body = hide_secrets(body, secrets)
    status = response.status_code if in_body is None else in_body
    reason = response.reason_phrase if in_body is None else None
    text = error_text(body) or reason or "no message"  # URLs scrubbed
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIStatusError
    if cls is PermissionDeniedError and _is_insufficient_credits(text):
        cls = InsufficientCreditsError
    if cls is BadRequestError and "task not found" in text.lower():
        cls = NotFoundError
    request_id = hide_secrets(request_id_of(response.headers), secrets)
    answered = (
        f"{status}"
        if in_body is None
        else f"{response.status_code}, with the error code {status} in its body"
    )
    message = f"{method} {path} -> {answered}: {text}"
    if cls is GoneError:
        if path.startswith("/nuro/"):
            message += " (Nuro is retired; use client.sonic or client.producer instead)"
        else:
            message += " (retired by MusicAPI: use a current endpoint or task_type)"
    if cls is InsufficientCreditsError:
        message += " (buy credits or subscribe on the MusicAPI dashboard)"
    if cls is AuthenticationError:
        message += " (check the API key: MUSICAPI_KEY or MusicAPI(api_key=...))"
    if status == 303:
        # "See other": the server did act on the call and points at its outcome.
        location = shown_location(response.headers.get("location"))
        message += (
            f" (a 303 'see other'{f' to {location}' if location else ''}: the server may "
            "have acted on the call and points at its result, which the SDK does not "
            "follow: check base_url or MUSICAPI_BASE_URL)"
        )
    elif 300 <= status < 400:
        location = shown_location(response.headers.get("location"))
        message += (
            f" (a redirect{f' to {location}' if location else ''}, which the SDK does not "
            "follow, so nothing was done: check base_url or MUSICAPI_BASE_URL)"
        )
    message += shown_request_id(request_id)
    kwargs: dict[str, Any] = {
        "status_code": status,
        "error_type": error_type(body),
        "request_id": request_id,
        "body": body,
        "headers": _hidden_headers(response.headers, secrets),
        "method": method,
        "path": path,
    }
    message = hide_secrets(message, secrets)  # the reason phrase, a request id...
    return cls(message, retry_after=parse_retry_after(response.headers), **kwargs)
