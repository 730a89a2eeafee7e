"""The public record types of the fake server: answers, logged requests, tasks, balances."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal, final
from urllib.parse import parse_qs

import anyio
from attrs import define, field, frozen

from .._redact import scrub_urls

__all__ = [
    "Balance",
    "ErrorEnvelope",
    "Family",
    "FakeResponse",
    "FakeTask",
    "Fault",
    "Injection",
    "NotReadyStyle",
    "Outcome",
    "RateLimitRule",
    "RequestRecord",
    "TaskStatusName",
]

#: How a task ends. ``"partial"``: the last clip fails, the others succeed (on a one-clip task
#: it is a plain ``"failed"``). ``"failed"``, ``"timeout"``, ``"api_error"``, ``"forbidden"``:
#: the whole task fails and the poll answers ``{"type": <outcome>, ...}``. ``"failure"`` is
#: accepted as an alias of ``"failed"`` (tasks record ``"failed"``).
Outcome = Literal["success", "partial", "failed", "timeout", "api_error", "forbidden", "failure"]
#: The platform of a task; it decides which ``/<family>/task/{id}`` route serves it.
Family = Literal["sonic", "producer", "nuro"]
#: ``"202"``: 202 ``{"type": "not_ready"}`` until done. ``"200"``: 200 ``not_ready`` at first,
#: then 200 snapshots with clips moving pending → running → streaming → succeeded/failed.
NotReadyStyle = Literal["202", "200"]
#: Error body shape: ``{"message": m}``, ``{"error": m}``, ``{"type": t, "error": m}`` or
#: ``{"code": status, "message": m}``.
ErrorEnvelope = Literal["message", "error", "type_error", "code_message"]
#: A transport failure instead of an HTTP answer.
Fault = Literal["connect_error", "read_timeout", "remote_protocol_error"]
#: How the fake applies ``rate_limit=(rate, per)`` per key. ``"bucket"``: a token bucket of
#: ``rate`` requests per ``per`` seconds (burst ``rate``) spent only by accepted requests.
#: ``"strict"``: any request arriving less than ``per / rate`` seconds after the previous one
#: of its key gets 429, and refused requests count too.
RateLimitRule = Literal["bucket", "strict"]
#: A task's overall status at some instant, as :meth:`FakeTask.status_at` reports it.
TaskStatusName = Literal["pending", "running", "succeeded", "failed"]

_REDACTED = "'<redacted>'"


def _redact_key(key: str | None) -> str:
    return "None" if key is None else _REDACTED


def _without_secrets(value: Any) -> Any:
    """A copy of a JSON value with every ``webhook_secret``, at any depth, redacted, and
    every URL in its strings without credentials or query (a webhook URL's token)."""
    if isinstance(value, Mapping):
        return {
            k: "<redacted>" if k == "webhook_secret" else _without_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        # Batch bodies carry one secret per item: {"items": [{"webhook_secret": ...}]}.
        return type(value)(_without_secrets(v) for v in value)
    if isinstance(value, str):
        return scrub_urls(value)
    return value


def _redact_url(url: str) -> str:
    return repr(scrub_urls(url))


def _redact_body(body: Any) -> str:
    return repr(_without_secrets(body))


def _redact_headers(headers: Mapping[str, str]) -> str:
    shown = {k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in headers.items()}
    return repr(shown)


@final
@frozen
class FakeResponse:
    """What :meth:`FakeMusicAPI.handle` answers: an HTTP answer, or a transport fault.

    When ``fault`` is set there is no answer at all (``status`` is 0): the transport raises
    the matching ``httpx`` exception and an ASGI wrapper would drop the connection.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    fault: Fault | None = None

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


@final
@frozen
class Balance:
    """A key's credits, as ``GET /get-credits`` would report them now."""

    #: Monthly subscription credits.
    credits: int
    #: Bought packs; spent before ``credits``.
    extra_credits: int

    @property
    def total(self) -> int:
        return self.credits + self.extra_credits


@final
@frozen
class RequestRecord:
    """One request the fake saw, in arrival order (``FakeMusicAPI.requests``).

    The API key, the ``Authorization`` header, a body's ``webhook_secret`` and the
    credentials or query of URLs in it are stored but redacted in ``repr``.
    """

    #: The fake's clock when the request arrived (see :class:`FakeTask`).
    time: float
    method: str
    #: Path relative to the base path (``/sonic/create``); the full path if outside it.
    path: str
    #: Raw query string (``batch_id=...``), without ``?``.
    query: str
    #: The decoded JSON body, or ``None`` (no body, or not JSON); every ``webhook_secret``
    #: in it, at any depth (a batch's items), is redacted in ``repr``.
    json: Any = field(repr=_redact_body)
    #: Request headers, names in lower case.
    headers: Mapping[str, str] = field(repr=_redact_headers)
    #: The key sent as ``Bearer <key>``, valid or not; ``None`` without one.
    api_key: str | None = field(repr=_redact_key)
    #: HTTP status the client received; ``None`` when a fault replaced the answer.
    status: int | None
    #: The decoded JSON body the client received (``None`` with a fault).
    response: Any = field(repr=False)
    #: The fault raised instead of answering, if any.
    fault: Fault | None = None
    #: True when the server acted on the request (validated, charged, created tasks). False
    #: for requests an injection answered or failed *before* processing.
    processed: bool = True
    #: True when an :class:`Injection` replaced the answer.
    injected: bool = False
    #: Tasks this request created (one, or several for a batch).
    task_ids: tuple[str, ...] = ()

    @property
    def received(self) -> bool:
        """False only for an injected ``connect_error``: the server never saw the request."""
        return self.fault != "connect_error"

    @property
    def query_params(self) -> dict[str, str]:
        """The query string decoded (last value wins)."""
        return {k: v[-1] for k, v in parse_qs(self.query).items()}

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` header as sent (not redacted)."""
        return self.headers.get("authorization")


@final
@frozen
class FakeTask:
    """A task the fake created, read-only (``FakeMusicAPI.tasks[task_id]``).

    Everything about a task's future is decided when it is created: it is done at
    ``done_at`` (``created_at + duration``, on the fake's clock) with ``outcome``. Failed
    tasks and failed clips are refunded at ``done_at``.

    The fake's clock is ``anyio.current_time()``, mended across event loops: when a new
    loop's clock is behind the fake's last reading (trio starts each run's elsewhere, a
    ``MockClock`` at 0), the fake goes on from that reading by the real time since.
    """

    task_id: str
    family: Family
    #: The route that created it, relative to the base path (``/sonic/create``;
    #: ``/sonic/batch`` for batch items).
    endpoint: str
    #: Sonic create's ``task_type``; for other routes a name such as ``stems_basic``,
    #: ``upload_extend``, ``sample``; Producer's ``task_type``, ``upload`` or ``download``;
    #: Nuro's ``vocal`` or ``bgm``.
    task_type: str
    #: The JSON body that created it (for a batch: the item).
    request: Mapping[str, Any] = field(repr=False)
    api_key: str = field(repr=_redact_key)
    #: The fake's clock at creation.
    created_at: float
    #: Seconds from creation to done (every clip terminal).
    duration: float
    outcome: Outcome
    #: Credits charged at creation.
    price: int
    #: Ids of the clips the task produces, known from creation (the poll shows them when the
    #: task does). Empty for Producer downloads and Nuro tasks, whose results carry no id.
    clip_ids: tuple[str, ...] = ()
    batch_id: str | None = None
    #: The failure message a failed task reports.
    failure_message: str | None = None
    _clock: Callable[[], float] = field(
        default=anyio.current_time, alias="clock", kw_only=True, eq=False, repr=False
    )

    @property
    def done_at(self) -> float:
        return self.created_at + self.duration

    @property
    def failed(self) -> bool:
        """True when the whole task fails."""
        return self.outcome not in ("success", "partial")

    @property
    def refund(self) -> int:
        """Credits given back at ``done_at``: all of them for a failed task, the failed
        clips' share (rounded down) for a partial one, else 0."""
        if self.failed:
            return self.price
        if self.outcome == "partial" and self.clip_ids:
            return self.price // len(self.clip_ids)
        return 0

    def status_at(self, time: float) -> TaskStatusName:
        """The task's overall status at ``time`` (``pending`` in the first quarter)."""
        elapsed = time - self.created_at
        if elapsed + 1e-6 >= self.duration:
            return "failed" if self.failed else "succeeded"
        return "pending" if elapsed < self.duration / 4 else "running"

    @property
    def status(self) -> TaskStatusName:
        """:meth:`status_at` now, on the fake's clock; call it inside an event loop."""
        return self.status_at(self._clock())


@final
@define
class Injection:
    """A scheduled fault or canned answer (``FakeMusicAPI.inject``); ``hits`` counts uses."""

    #: Glob matched against the path relative to the base path (``/sonic/task/*``).
    path: str
    method: str | None
    status: int | None
    body: Any
    headers: Mapping[str, str]
    fault: Fault | None
    after_processing: bool
    #: Seconds to wait (``anyio.sleep``) before answering or raising.
    delay: float
    #: How many requests it applies to; ``None`` for every matching request.
    times: int | None
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times
