"""The SDK's exceptions.

Every error the SDK raises for a failed call is a :class:`MusicAPIError`::

    MusicAPIError
    ├── APIConnectionError             the request did not get a usable HTTP answer
    │   └── APITimeoutError            ... because a timeout expired
    ├── APIStatusError                 the server answered with an error status
    │   ├── BadRequestError            400 validation
    │   ├── AuthenticationError        401
    │   ├── PermissionDeniedError      403
    │   │   └── InsufficientCreditsError   403/402 "credits ... not enough"
    │   ├── NotFoundError              404 (and 400 "task not found.")
    │   ├── GoneError                  410 endpoint retired (all of Nuro)
    │   ├── RateLimitError             429, with retry_after
    │   └── ServerError                5xx
    │       └── UpstreamTimeoutError   504, credits refunded
    ├── LimiterError                   the rate limiter failed (a shared backend down): not sent
    ├── ResponseValidationError        a 2xx answer the SDK cannot read, with the field path
    ├── ResultNotReadyError            a sync endpoint kept answering "not ready"
    ├── TaskFailedError                a task ended in failure (Task.raise_for_status)
    ├── WaitTimeoutError               await_task / as_completed deadline (also TimeoutError)
    └── DownloadError                  client.download failed: status, connection or size

Misuse of the SDK itself raises ``ValueError``, ``TypeError`` or ``RuntimeError``.

An error raised by a call that spends credits, when the server may have acted on it
(a read timeout, a dropped connection after sending, a 5xx, a 2xx answer the SDK cannot
read), has ``task_may_exist`` set
and says so in its message: the SDK never re-sends such a call by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from ._models import Task, TaskRef

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "GoneError",
    "InsufficientCreditsError",
    "LimiterError",
    "MusicAPIError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseValidationError",
    "ResultNotReadyError",
    "ServerError",
    "TaskFailedError",
    "UpstreamTimeoutError",
]


class MusicAPIError(Exception):
    """Base class of every error a MusicAPI call raises."""

    #: HTTP method and path (relative to the base URL) of the call, when there was one.
    method: str | None
    path: str | None
    #: True when the call spends credits and the server may have acted on it before the
    #: error: do not blindly repeat it.
    task_may_exist: bool
    #: Raised by ``await_task`` / ``as_completed`` because one task's poll failed for good
    #: (401, 404, 410...): that task, the tasks that did finish, and those still unfinished,
    #: so that one bad reference never hides the other results.
    failed_task: TaskRef | None = None
    completed: tuple[Task, ...] = ()
    pending: tuple[TaskRef, ...] = ()
    #: A create call of a client with a webhook that raised though its task may exist: the
    #: tag it added to its webhook URL, which finds the delivery of that task if MusicAPI
    #: started it (``client.webhooks.orphans()``).
    webhook_tag: str | None = None

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        task_may_exist: bool = False,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.task_may_exist = task_may_exist

    @property
    def message(self) -> str:
        """What happened and what to do: ``str(error)``."""
        return str(self.args[0]) if self.args else ""

    @message.setter
    def message(self, message: str) -> None:
        # Kept in ``args``, which repr(), tracebacks and pickling read: a message completed
        # after the error was made (the advice of a paid call) reaches them all.
        self.args = (message, *self.args[1:])

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles as cls(*args), which loses (or lacks) the keyword-only
        # arguments of the subclasses: rebuild without __init__, then restore the attributes.
        return (_restore, (type(self), self.args), self.__dict__.copy())


def _restore(cls: type[MusicAPIError], args: tuple[Any, ...]) -> MusicAPIError:
    """Unpickle an SDK exception: its class and args; pickle then sets its attributes."""
    error = cls.__new__(cls)
    error.args = args
    return error


class APIConnectionError(MusicAPIError):
    """No usable HTTP answer: DNS, refused or reset, TLS, protocol, undecodable body, redirects."""


class APITimeoutError(APIConnectionError):
    """A connect, write, read or pool timeout expired."""


class APIStatusError(MusicAPIError):
    """The server answered with an error status (4xx/5xx)."""

    status_code: int
    #: The body's ``type`` (Nuro style: ``bad_request``, ``api_error``...) or string ``code``.
    error_type: str | None
    request_id: str | None
    #: The decoded JSON body, or the text when it was not JSON.
    body: object
    #: The answer's headers; lookups ignore case (``error.headers["Retry-After"]``).
    headers: Mapping[str, str]
    #: Seconds the server asked to wait (``Retry-After``), if it said (429, and some 503s).
    retry_after: float | None

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        request_id: str | None = None,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
        method: str | None = None,
        path: str | None = None,
        task_may_exist: bool = False,
    ) -> None:
        super().__init__(message, method=method, path=path, task_may_exist=task_may_exist)
        self.status_code = status_code
        self.error_type = error_type
        self.request_id = request_id
        self.body = body
        self.headers = httpx.Headers(headers or {})
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """400: the server refused the input (nothing was charged)."""


class AuthenticationError(APIStatusError):
    """401: missing or invalid API key."""


class PermissionDeniedError(APIStatusError):
    """403: no subscription, moderation refusal, quota... (see the message)."""


class InsufficientCreditsError(PermissionDeniedError):
    """403 (or 402) because the account's credits do not cover the call: buy credits."""


class NotFoundError(APIStatusError):
    """404, or 400 "task not found.": unknown task or clip."""


class GoneError(APIStatusError):
    """410: the endpoint or task type is retired (every Nuro route); use sonic or producer."""


class RateLimitError(APIStatusError):
    """429: too many requests for this key; ``retry_after`` says how long to wait, if known."""


class ServerError(APIStatusError):
    """5xx: a server-side failure."""


class UpstreamTimeoutError(ServerError):
    """504: the upstream generator timed out; MusicAPI refunds the credits."""


class LimiterError(MusicAPIError):
    """The client's rate limiter raised instead of granting a slot (a limiter whose state
    lives in a shared store that is down, say): the request was not sent, so nothing was
    created or charged. The limiter's own error is the ``__cause__``."""


class ResponseValidationError(MusicAPIError):
    """A successful answer whose body does not have the documented shape."""

    #: Where the bad value sits, e.g. ``$.data[0].duration``.
    field_path: str | None
    body: object
    #: The answer's HTTP status (2xx), its request id and headers, when known: with
    #: ``task_may_exist``, the request id is what MusicAPI's support asks for.
    status_code: int | None
    request_id: str | None
    headers: Mapping[str, str] | None

    def __init__(
        self,
        message: str,
        *,
        field_path: str | None = None,
        body: object = None,
        method: str | None = None,
        path: str | None = None,
        task_may_exist: bool = False,
        status_code: int | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path, task_may_exist=task_may_exist)
        self.field_path = field_path
        self.body = body
        self.status_code = status_code
        self.request_id = request_id
        self.headers = None if headers is None else httpx.Headers(headers)


class ResultNotReadyError(MusicAPIError):
    """An endpoint that builds its result on demand (midi, download) was still not ready."""


class TaskFailedError(MusicAPIError):
    """A task ended in failure. MusicAPI refunds failed tasks automatically."""

    task: Task

    def __init__(self, message: str, *, task: Task) -> None:
        super().__init__(message)
        self.task = task
