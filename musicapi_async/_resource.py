"""What every resource namespace (``client.sonic``, ``client.producer``...) shares."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

import anyio

from ._constants import LOOPBACK_HOSTS, NOT_READY_DELAY, TITLE_MAX, WEBHOOK_URL_MAX
from ._exceptions import MusicAPIError, ResultNotReadyError
from ._http import CallOptions
from ._models import Task, TaskFamily, TaskRef
from ._ratelimit import Priority, Slot
from ._redact import shown_url
from ._serde import NOT_READY_TYPE, parse_submit, parse_task

if TYPE_CHECKING:
    from ._client import MusicAPI

T = TypeVar("T")


class Resource:
    """Base of the endpoint namespaces; holds the client whose request path it uses."""

    #: The family of the tasks this namespace starts.
    _family: TaskFamily = TaskFamily.SONIC

    def __init__(self, client: MusicAPI) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"

    async def _call(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> T:
        # Every POST may spend credits; only GETs are safe to repeat after an unclear failure.
        answer = await self._client._core.request(
            method,
            path,
            options=self._client._options,
            json_body=body,
            params=params,
            paid=method != "GET",
        )
        return self._client._read(parse, answer, method, path)

    async def _submit(self, path: str, body: Mapping[str, Any]) -> TaskRef:
        family = self._family
        body, webhook, tag = self._client._with_webhook(body)
        try:
            ref = await self._call("POST", path, lambda raw: parse_submit(raw, family), body=body)
        except BaseException as exc:
            self._client._tag_task(tag, None)
            if tag is not None and isinstance(exc, MusicAPIError) and exc.task_may_exist:
                # Its delivery, if MusicAPI started the task, will find its way to this tag.
                exc.webhook_tag = tag
                exc.message += (
                    " This client's webhook will receive the task's result if it was "
                    f"started: client.webhooks.orphans() keeps it (tag {tag})."
                )
            raise
        self._client._tag_task(tag, ref)
        # The scheduler learns durations per model, timed from this moment.
        self._client._scheduler.note_submitted(ref, str(body.get("mv") or path), webhook=webhook)
        return ref

    async def _call_until_ready(
        self, path: str, body: Mapping[str, Any], parse: Callable[[Any], T], wait_timeout: float
    ) -> T:
        """POST an endpoint that answers "not ready" while it builds, until it is ready.

        "Not ready" is HTTP 202 with any body, or HTTP 200 ``{"type": "not_ready"}``
        (CONTRACT §15 rule 1, as for task polls).
        """
        # Checked before the first (paid) request: NaN would repeat it for ever.
        check_number(wait_timeout, "wait_timeout", low=0)
        deadline = anyio.current_time() + wait_timeout
        while True:
            answer = await self._client._core.request(
                "POST", path, options=self._client._options, json_body=body, paid=True
            )
            if answer.status_code != 202 and not _says_not_ready(answer.body):
                return self._client._read(parse, answer, "POST", path)
            if anyio.current_time() + NOT_READY_DELAY > deadline:
                raise ResultNotReadyError(
                    f"POST {path} still answered not ready after {wait_timeout:.0f} s; "
                    "call it again later, or pass a longer wait_timeout=",
                    method="POST",
                    path=path,
                )
            await anyio.sleep(NOT_READY_DELAY)


class TaskResource(Resource):
    """A platform whose async calls return tasks polled at ``/<family>/task/{id}``."""

    async def get_task(self, task: TaskRef | str) -> Task:
        """Poll a task once and return its snapshot (free: polling spends no credits).

        ``task`` is the :class:`TaskRef` a create call returned, or a bare task id.
        """
        return await self._poll(self._ref(task))

    async def _poll(
        self, ref: TaskRef, *, options: CallOptions | None = None, held: Slot | None = None
    ) -> Task:
        """GET the task once. The scheduler polls in the background with a slot in hand."""
        path = f"/{ref.family.value}/task/{_quote(ref.task_id)}"
        answer = await self._client._core.request(
            "GET",
            path,
            options=options or self._client._options,
            paid=False,
            priority=Priority.USER if held is None else Priority.BACKGROUND,
            held=held,
        )
        return self._client._read(
            lambda raw: parse_task(ref, answer.status_code, raw), answer, "GET", path
        )

    def _ref(self, task: TaskRef | str) -> TaskRef:
        if not isinstance(task, (TaskRef, str)):
            raise TypeError(f"expected a TaskRef or a task id string, got {task!r}")
        task_id = task.task_id if isinstance(task, TaskRef) else task
        if not task_id.strip():
            # Polling "/task/" would only earn a 400 "missing task id." from the server.
            raise ValueError(f"the task id is empty ({task!r}); pass the id a create call returned")
        if isinstance(task, TaskRef):
            if task.family is not self._family:
                raise ValueError(
                    f"task {task.task_id} is a {task.family.value} task; poll it with "
                    f"client.{task.family.value}.get_task() or client.get_task()"
                )
            return task
        return TaskRef(task.strip(), self._family)


def _says_not_ready(body: Any) -> bool:
    return isinstance(body, Mapping) and body.get("type") == NOT_READY_TYPE


def _quote(segment: str) -> str:
    return quote(segment, safe="")


def compact(**fields: Any) -> dict[str, Any]:
    """A request body from keyword fields, leaving out the ones not set (None)."""
    return {key: value for key, value in fields.items() if value is not None}


def require(value: object, field: str, context: str) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{field} is required {context}")


def require_text(value: object, field: str, context: str, *, most: int | None = None) -> None:
    """A required text field: a string (``TypeError`` otherwise), not blank, of at most
    ``most`` characters."""
    check_text(value, field, most=most)
    require(value, field, context)


def check_str(value: object, field: str) -> None:
    """A text field: a string or None. The value is not shown (it may be a secret)."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{field} must be a string, got {type(value).__name__}")


def check_bool(value: object, field: str) -> None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{field} must be True or False, got {value!r}")


def check_number(
    value: object, field: str, *, low: float | None = None, high: float | None = None
) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{field} must be a number, got {value!r}")
    # JSON has no NaN or infinity: without this the body would fail to encode, unnamed.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{field} must be a finite number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (
            f"between {low} and {high}"
            if low is not None and high is not None
            else (f"at least {low}" if low is not None else f"at most {high}")
        )
        raise ValueError(f"{field} must be {bounds}, got {value!r}")


def check_title(title: str | None) -> None:
    check_text(title, "title", most=TITLE_MAX)


def check_text(value: object, field: str, *, most: int | None = None) -> None:
    """A text field: a string or None, of at most ``most`` characters (the value unshown)."""
    check_str(value, field)
    if most is not None and isinstance(value, str) and len(value) > most:
        raise ValueError(f"{field} is {len(value)} characters; MusicAPI accepts at most {most}")


def check_span(start: float | None, end: float | None, start_field: str, end_field: str) -> None:
    """Two given ends of a section in seconds: the end after the start."""
    if start is not None and end is not None and end <= start:
        raise ValueError(f"{end_field} must be greater than {start_field}")


def check_url(url: str, field: str) -> None:
    """A URL MusicAPI fetches itself (uploads, samples): public http(s) only."""
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ValueError(f"{field} must be a public http(s) URL that MusicAPI can fetch")


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a literal loopback address (where fakes and tests run)."""
    host = host.lower()
    if host in LOOPBACK_HOSTS:
        return True
    # Only a literal address: a DNS name such as "127.example.com" may resolve anywhere.
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_webhook(url: str | None) -> None:
    """A webhook URL MusicAPI can call: https:// (http:// only for a loopback fake)."""
    if url is None:
        return
    if not isinstance(url, str):
        raise TypeError(f"webhook_url must be a string, got {type(url).__name__}")
    parts = urlsplit(url)
    if not (
        (parts.scheme == "https" and parts.hostname)
        or (parts.scheme == "http" and is_loopback_host(parts.hostname or ""))
    ):
        raise ValueError(
            f"webhook_url must be an https:// URL (MusicAPI only calls HTTPS; http:// is "
            f"accepted for loopback hosts only, where fakes run), got {shown_url(url)}"
        )
    if len(url) > WEBHOOK_URL_MAX:
        raise ValueError(
            f"webhook_url is {len(url)} characters; MusicAPI accepts at most {WEBHOOK_URL_MAX}"
        )
