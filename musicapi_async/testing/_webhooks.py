"""The fake's webhooks: signed deliveries of task results, with faults (``fake.webhooks``).

A task created with a ``webhook_url`` is delivered when it ends: the body is the poll
answer at that moment (the 200 snapshot, or the failure body) plus ``task_id`` and
``platform`` (``suno``, ``producer``, ``nuro``), signed with the task's ``webhook_secret``
as CONTRACT §12 describes. Signing is written here from the contract, not borrowed from
the SDK, so that tests of the SDK's verification against the fake mean something.

Deliveries are made by a driver that runs in a task group (:meth:`FakeWebhooks.running`
or ``await tg.start(fake.webhooks.run, send)``): it sleeps on anyio's clock until each
event is due, so under a mock clock a task's webhook arrives at its exact done time.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, final
from urllib.parse import urlsplit
from uuid import uuid4

import anyio
import httpx
from attrs import define, field, frozen

# Taken from the SDK side: how its web adapters hand a delivery's query string over (and,
# in the package, the loop clock and the URL redaction of reprs). Signing, URLs and retries
# stay the fake's own, so it never relies on what it tests.
from .._webhooks import handle_delivery
from . import _defaults as d
from ._ratelimit import EPS
from ._types import _redact_url
from ._validate import Reject

if TYPE_CHECKING:
    from ._server import FakeMusicAPI
    from ._types import FakeTask

__all__ = [
    "DEFAULT_WEBHOOK_RETRY_DELAYS",
    "DeliveryOutcome",
    "FakeWebhooks",
    "WebhookDelivery",
    "WebhookSender",
]

#: Seconds between the attempts of one delivery: the first attempt, then one retry after
#: each of these (5 attempts, about 85 s) while the receiver answers 408, 429, 5xx, or the
#: connection fails. Any other answer ends the delivery (2xx: delivered; 4xx: refused).
DEFAULT_WEBHOOK_RETRY_DELAYS: Final = (1.0, 4.0, 16.0, 64.0)
#: What a task without ``webhook_secret`` is signed with: MusicAPI's own default secret,
#: which no receiver knows (CONTRACT §12), so such deliveries fail verification.
UNKNOWN_SECRET: Final = "musicapi-default-secret-nobody-knows"
#: Seconds one HTTP attempt of the default sender may take.
SEND_TIMEOUT: Final = 10.0
#: The webhook ``platform`` of each task family (CONTRACT §12).
PLATFORMS: Final[Mapping[str, str]] = {"sonic": "suno", "producer": "producer", "nuro": "nuro"}

_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_RETRYABLE: Final = frozenset({408, 429})

#: How one attempt ended: ``delivered`` (2xx), ``refused`` (another status: retried if 408,
#: 429 or 5xx), ``error`` (no answer: connection failed or timed out; retried), ``dropped``
#: (a :meth:`FakeWebhooks.drop` fault: never sent).
DeliveryOutcome = Literal["delivered", "refused", "error", "dropped"]
#: Posts one delivery: ``await send(url, body, headers)`` returns the HTTP status.
WebhookSender = Callable[[str, bytes, Mapping[str, str]], Awaitable[int]]


class _Handles(Protocol):
    async def handle(self, body: bytes, headers: Mapping[str, str]) -> Any: ...


#: What :meth:`FakeWebhooks.run` accepts as ``send``.
SendSpec = WebhookSender | _Handles | httpx.AsyncBaseTransport | None


def _redact_headers(headers: Mapping[str, str]) -> str:
    return f"<{len(headers)} headers>"


@final
@frozen
class WebhookDelivery:
    """One attempt to deliver a webhook (``fake.webhook_deliveries``), in time order.

    Never holds the secret; the headers (signature included) and body are kept out of
    ``repr``.
    """

    #: The fake's clock at the attempt (see :class:`FakeTask`).
    time: float
    #: The task's ``webhook_url`` (without its credentials or query in ``repr``).
    url: str = field(repr=_redact_url)
    #: ``X-Webhook-Id``; ``None`` for the legacy scheme, which sends none.
    event_id: str | None
    task_id: str
    #: ``song.completed``, ``song.failed`` or ``song.streaming``.
    kind: str
    #: 1 for the first attempt of this copy, 2 for its first retry...
    attempt: int
    #: The receiver's HTTP status; ``None`` when there was no answer or nothing was sent.
    status: int | None
    outcome: DeliveryOutcome
    #: What went wrong without an answer (the exception's type and text).
    error: str | None = None
    #: 1, or 2 for the extra copy a :meth:`FakeWebhooks.duplicate` fault sends.
    copy: int = 1
    body: bytes = field(default=b"", repr=False)
    headers: Mapping[str, str] = field(factory=dict, repr=_redact_headers)

    @property
    def delivered(self) -> bool:
        """True when the receiver answered 2xx."""
        return self.outcome == "delivered"

    def json(self) -> Any:
        """The body decoded."""
        return json.loads(self.body)


@define
class _Event:
    task_id: str
    url: str
    secret: str = field(repr=False)
    kind: str
    #: anyio time at which the event happens (and its payload is rendered).
    due: float
    event_id: str
    body: bytes | None = None
    #: Set once released (faults applied): how many copies go. A driver stopped mid-way
    #: puts the event back, and the next driver goes on from ``copy`` and ``attempt``.
    copies: int | None = None
    copy: int = 1
    attempt: int = 1


@define
class _Faults:
    drop: int = 0
    drop_rate: float = 0.0
    rng: random.Random = field(factory=random.Random)
    duplicate: int | None = 0
    delay: float = 0.0
    delay_times: int | None = 0
    reorder: int = 0
    reorder_seed: int | None = None
    held: list[tuple[_Event, int, float]] = field(factory=list)


def _take(count: int | None) -> tuple[bool, int | None]:
    """Use one of ``count`` (``None``: unlimited): (applies, what is left)."""
    if count is None:
        return True, None
    if count > 0:
        return True, count - 1
    return False, 0


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@final
class FakeWebhooks:
    """The webhook sender of a :class:`FakeMusicAPI` (``fake.webhooks``).

    Deliver while a block runs, here straight to a receiver in process::

        receiver = WebhookReceiver("s3cret", on_event=events.append)
        async with fake.webhooks.running(receiver):
            ref = await api.sonic.create(..., webhook_url="https://me.example/hook",
                                         webhook_secret="s3cret")
            await anyio.sleep(fake.sonic_duration)  # the delivery happens at the done time

    ``send`` may be a receiver (anything with ``async handle(body, headers)``), an
    ``httpx`` transport (``httpx.ASGITransport(app=asgi_app(receiver))``: the delivery goes
    through the app), a coroutine function ``send(url, body, headers) -> status``, or
    ``None``: a real HTTP POST to each task's ``webhook_url`` (for a served fake and a
    receiver listening on loopback).

    Settings (attributes): ``legacy`` (sign with ``X-Signature`` only, no id, no timestamp),
    ``names_task`` (default True: ``task_id`` and ``platform`` at the body's top level, as
    third-party receivers expect; False sends the bare poll envelope, as MusicAPI's
    published Sonic example shows it),
    ``streaming`` (also send ``song.streaming`` when a Sonic task's clips start streaming;
    off by default since whether MusicAPI sends it is disputed), ``retry_delays``
    (:data:`DEFAULT_WEBHOOK_RETRY_DELAYS`), ``clock`` (Unix seconds signed into
    ``X-Webhook-Timestamp``; default ``time.time``).

    Faults, each for the next events (a copy and its retries are one event): :meth:`drop`,
    :meth:`duplicate`, :meth:`delay`, :meth:`reorder`. Every attempt is recorded in
    :attr:`deliveries` (also ``fake.webhook_deliveries``).
    """

    def __init__(self, fake: FakeMusicAPI) -> None:
        self._fake = fake
        self.legacy = False
        self.names_task = True
        self.streaming = False
        self.retry_delays: tuple[float, ...] = DEFAULT_WEBHOOK_RETRY_DELAYS
        self.clock: Callable[[], float] = time.time
        #: Applied to each body before it is signed (a served fake points its CDN URLs at
        #: itself with this).
        self.rewrite_body: Callable[[bytes], bytes] | None = None
        self._queue: list[tuple[float, int, _Event]] = []
        self._order = itertools.count()
        self._deliveries: list[WebhookDelivery] = []
        self._faults = _Faults()
        self._wake: anyio.Event | None = None
        self._running = False
        self._in_progress = 0

    def __repr__(self) -> str:
        return (
            f"FakeWebhooks(scheduled={len(self._queue)}, deliveries={len(self._deliveries)}, "
            f"running={self._running})"
        )

    # ------------------------------------------------------------------ hooks of the server

    @staticmethod
    def check_request(request: Mapping[str, Any], envelope: Mapping[str, Any]) -> None:
        """Refuse (400) a ``webhook_url`` MusicAPI could not call: HTTPS, or HTTP on loopback."""
        for body in (request, envelope):
            url = body.get("webhook_url")
            if url is None:
                continue
            if not isinstance(url, str):
                raise Reject(400, "The 'webhook_url' field should be a string.")
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            if not parts.netloc or not (
                parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK)
            ):
                raise Reject(400, "The 'webhook_url' field should be an https URL.")
            secret = body.get("webhook_secret")
            if secret is not None and not isinstance(secret, str):
                raise Reject(400, "The 'webhook_secret' field should be a string.")

    def task_started(self, task: FakeTask, envelope: Mapping[str, Any]) -> None:
        """Schedule the webhooks of a new task, if it (or its batch) named a URL."""
        source = task.request if task.request.get("webhook_url") else envelope
        url = source.get("webhook_url")
        if not isinstance(url, str) or not url:
            return
        secret = source.get("webhook_secret")
        secret = secret if isinstance(secret, str) and secret else UNKNOWN_SECRET
        if self.streaming and task.family == "sonic" and task.duration > 0:
            # The moment the last clip starts streaming: every clip then streams or is done
            # (nudged past it, so that float rounding cannot render it still running).
            moment = task.created_at + task.duration * d.PHASE_STREAMING * (1 + 1e-9) + 1e-9
            if moment < task.done_at:
                self._push(_Event(task.task_id, url, secret, "song.streaming", moment, _new_id()))
        kind = "song.failed" if task.failed else "song.completed"
        self._push(_Event(task.task_id, url, secret, kind, task.done_at, _new_id()))

    def _push(self, event: _Event) -> None:
        heapq.heappush(self._queue, (event.due, next(self._order), event))
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ faults

    def drop(
        self, times: int | None = 1, *, rate: float | None = None, seed: int | None = None
    ) -> None:
        """Lose the next ``times`` events (never sent, never retried: a lost webhook).

        With ``rate`` instead, lose each event from now on with that probability
        (``random.Random(seed)``); ``drop(rate=0)`` stops.
        """
        if rate is not None:
            if not 0.0 <= rate <= 1.0:
                raise ValueError("rate must be between 0 and 1")
            self._faults.drop_rate = rate
            self._faults.rng = random.Random(seed)
            return
        if times is None or times < 1:
            raise ValueError("times must be >= 1 (or give rate=)")
        self._faults.drop += times

    def duplicate(self, times: int | None = 1) -> None:
        """Send the next ``times`` events (``None``: every one) twice, same id and body:
        the copy goes once the first one's attempts are over (as a sender that lost the
        answer would)."""
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        self._faults.duplicate = times

    def delay(self, seconds: float, *, times: int | None = 1) -> None:
        """Send the next ``times`` events (``None``: every one) ``seconds`` late; their
        payload is still the task at its event time."""
        if not (isinstance(seconds, (int, float)) and seconds >= 0 and math.isfinite(seconds)):
            raise ValueError("seconds must be a finite number >= 0")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        self._faults.delay, self._faults.delay_times = float(seconds), times

    def reorder(self, count: int = 2, *, seed: int | None = None) -> None:
        """Hold the next ``count`` events until the last of them is due, then send them one
        after another in reverse order, or shuffled by ``random.Random(seed)``.

        Events held when the driver stops are never sent.
        """
        if count < 2:
            raise ValueError("count must be >= 2 to reorder anything")
        self._faults.reorder, self._faults.reorder_seed = count, seed

    def clear_faults(self) -> None:
        """Stop every fault; events held by :meth:`reorder` are released when next due."""
        held = self._faults.held
        self._faults = _Faults()
        for event, _copies, _extra in held:
            self._push(event)

    # ------------------------------------------------------------------ state

    @property
    def deliveries(self) -> tuple[WebhookDelivery, ...]:
        """Every delivery attempt so far (dropped events included), in time order."""
        return tuple(self._deliveries)

    @property
    def scheduled(self) -> int:
        """Events not yet sent: waiting for their time, held, or being delivered. An event
        still being delivered when the driver stops is kept, and the next driver goes on
        with its next attempt at once."""
        return len(self._queue) + len(self._faults.held) + self._in_progress

    # ------------------------------------------------------------------ the driver

    @asynccontextmanager
    async def running(self, send: SendSpec = None) -> AsyncIterator[FakeWebhooks]:
        """Deliver webhooks while the block runs (see the class docstring for ``send``)."""
        async with anyio.create_task_group() as tg:
            await tg.start(self.run, send)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    async def run(
        self,
        send: SendSpec = None,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Deliver webhooks until cancelled: ``await tg.start(fake.webhooks.run, send)``.

        Raises:
            RuntimeError: another driver of this fake is running.
        """
        if self._running:
            raise RuntimeError("fake.webhooks is already being run by another driver")
        self._running = True
        try:
            async with _open(send) as post, anyio.create_task_group() as tg:
                task_status.started()
                while True:
                    self._wake = anyio.Event()
                    now = self._fake._clock.now()
                    # EPS: the fake's clock may be the loop's plus an offset, whose rounding
                    # must not leave a due event a wait too short for the loop to take.
                    while self._queue and self._queue[0][0] <= now + EPS:
                        _, _, event = heapq.heappop(self._queue)
                        self._release(event, tg, post)
                    wait = self._queue[0][0] - now if self._queue else math.inf
                    with anyio.move_on_after(wait):
                        await self._wake.wait()
        finally:
            self._running = False
            self._wake = None

    def _release(self, event: _Event, tg: anyio.abc.TaskGroup, post: WebhookSender) -> None:
        if event.copies is not None:  # put back by a stopped driver: its faults are applied
            self._in_progress += 1
            tg.start_soon(self._deliver_all, [(event, event.copies, 0.0)], post)
            return
        faults = self._faults
        if event.body is None:
            event.body = self._payload(event)
        if faults.drop > 0 or (faults.drop_rate and faults.rng.random() < faults.drop_rate):
            faults.drop = max(0, faults.drop - 1)
            self._record(event, 1, 1, None, "dropped", None, {})
            return
        doubled, faults.duplicate = _take(faults.duplicate)
        late, faults.delay_times = _take(faults.delay_times)
        batch = (event, 2 if doubled else 1, faults.delay if late else 0.0)
        if faults.reorder > 0:
            faults.held.append(batch)
            faults.reorder -= 1
            if faults.reorder:
                return
            held, faults.held = faults.held, []
            if faults.reorder_seed is None:
                held.reverse()
            else:
                random.Random(faults.reorder_seed).shuffle(held)
            self._in_progress += len(held)
            # One task sends them in order: sibling tasks start in no fixed order on trio.
            tg.start_soon(self._deliver_all, held, post)
            return
        self._in_progress += 1
        tg.start_soon(self._deliver_all, [batch], post)

    def _payload(self, event: _Event) -> bytes:
        task = self._fake.tasks[event.task_id]
        named = {"task_id": task.task_id, "platform": PLATFORMS[task.family]}
        body: dict[str, Any] = {
            **(named if self.names_task else {}),
            **self._fake._webhook_payload(event.task_id, event.due),
        }
        raw = json.dumps(body).encode()
        return raw if self.rewrite_body is None else self.rewrite_body(raw)

    async def _deliver_all(
        self, batch: list[tuple[_Event, int, float]], post: WebhookSender
    ) -> None:
        left = len(batch)  # counted in _in_progress until settled, whatever ends this
        try:
            for done, (event, copies, extra) in enumerate(batch):
                event.copies = copies
                try:
                    if extra > 0:
                        event.due = self._fake._clock.now() + extra  # when it goes, if stopped
                        await anyio.sleep(extra)
                    while event.copy <= copies:
                        await self._attempts(event, post)
                        event.copy, event.attempt = event.copy + 1, 1
                except anyio.get_cancelled_exc_class():
                    # The driver stopped: what is not delivered yet waits for the next
                    # driver, as MusicAPI's sender would go on retrying whatever the
                    # receiver's side did.
                    for later, later_copies, later_extra in batch[done + 1 :]:
                        later.copies, later.due = later_copies, later.due + later_extra
                    for kept, _, _ in batch[done:]:
                        heapq.heappush(self._queue, (kept.due, next(self._order), kept))
                    raise
                left -= 1
                self._in_progress -= 1
        finally:
            self._in_progress -= left

    async def _attempts(self, event: _Event, post: WebhookSender) -> None:
        assert event.body is not None
        copy = event.copy
        resumed = event.attempt > 1
        for attempt, pause in enumerate((0.0, *self.retry_delays), start=1):
            if attempt < event.attempt:
                continue
            event.attempt = attempt
            if pause > 0 and not resumed:  # a resumed retry goes at once: its pause is over
                await anyio.sleep(pause)
            resumed = False
            headers = self._sign(event, event.body)
            try:
                status = await post(event.url, event.body, headers)
            except (httpx.HTTPError, OSError) as exc:
                self._record(event, attempt, copy, None, "error", exc, headers)
                continue
            if 200 <= status < 300:
                self._record(event, attempt, copy, status, "delivered", None, headers)
                return
            self._record(event, attempt, copy, status, "refused", None, headers)
            if status < 500 and status not in _RETRYABLE:
                return

    def _sign(self, event: _Event, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.legacy:
            headers["X-Signature"] = _hex(event.secret, body)
            return headers
        stamp = str(int(self.clock()))
        headers.update(
            {
                "X-Webhook-Id": event.event_id,
                "Idempotency-Key": event.event_id,
                "X-Webhook-Event": event.kind,
                "X-Webhook-Timestamp": stamp,
                "X-Webhook-Signature": "sha256=" + _hex(event.secret, f"{stamp}.".encode() + body),
            }
        )
        return headers

    def _record(
        self,
        event: _Event,
        attempt: int,
        copy: int,
        status: int | None,
        outcome: DeliveryOutcome,
        error: BaseException | None,
        headers: Mapping[str, str],
    ) -> None:
        self._deliveries.append(
            WebhookDelivery(
                time=self._fake._clock.now(),
                url=event.url,
                event_id=None if self.legacy else event.event_id,
                task_id=event.task_id,
                kind=event.kind,
                attempt=attempt,
                status=status,
                outcome=outcome,
                error=None if error is None else f"{type(error).__name__}: {error}",
                copy=copy,
                body=event.body or b"",
                headers=dict(headers),
            )
        )


def _new_id() -> str:
    return f"evt_{uuid4().hex}"


@asynccontextmanager
async def _open(send: SendSpec) -> AsyncIterator[WebhookSender]:
    if send is None or isinstance(send, httpx.AsyncBaseTransport):
        kwargs: dict[str, Any] = {"timeout": SEND_TIMEOUT, "trust_env": False}
        if send is not None:
            kwargs["transport"] = send
        async with httpx.AsyncClient(**kwargs) as http:

            async def post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
                answer = await http.post(url, content=body, headers=dict(headers))
                return answer.status_code

            yield post
        return
    if hasattr(send, "handle"):
        receiver: _Handles = send

        async def hand(url: str, body: bytes, headers: Mapping[str, str]) -> int:
            # As the adapters of musicapi_async.webhooks do: the URL's query string (a
            # client's tag) set where a receiver finds it, even behind a wrapper.
            response = await handle_delivery(receiver, body, headers, urlsplit(url).query)
            return int(response.status)

        yield hand
        return
    if not callable(send):
        raise TypeError(
            "send must be a receiver (with handle), an httpx transport, a coroutine function "
            f"(url, body, headers) -> status, or None; got {type(send).__name__}"
        )
    yield send
