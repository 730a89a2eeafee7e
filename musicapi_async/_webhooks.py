"""MusicAPI's webhooks: verifying a delivery, reading it as a typed event, receiving it.

MusicAPI POSTs a task's result to the ``webhook_url`` given with the create call (CONTRACT
§12, §15 rule 5). Two signature schemes are in use:

* current: ``X-Webhook-Signature: sha256=<hex>``, the HMAC-SHA256 keyed by the
  ``webhook_secret`` of ``"{X-Webhook-Timestamp}.{raw body}"``, with ``X-Webhook-Id`` (also
  sent as ``Idempotency-Key``) and ``X-Webhook-Event``;
* legacy: ``X-Signature: <hex>``, the HMAC of the raw body alone (no timestamp, hence no
  protection against a replayed delivery).

:func:`verify_webhook` checks one delivery and returns a :class:`WebhookEvent` whose
``task`` is the same :class:`~musicapi_async.Task` that ``get_task`` returns.
:class:`WebhookReceiver` adds what an endpoint needs on top: de-duplication, callbacks and
the HTTP answer to give; the framework adapters are in :mod:`musicapi_async.webhooks`.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import logging
import re
import sys
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Final, Literal, Protocol, TypeVar, final, get_args
from urllib.parse import parse_qsl
from uuid import uuid4

import anyio
from anyio.lowlevel import current_token
from attrs import field, frozen

from ._constants import (
    DEFAULT_WEBHOOK_TOLERANCE,
    WEBHOOK_TAG_PARAM,
    WEBHOOK_TAG_WAIT,
    WEBHOOK_TAGS_MAX,
)
from ._exceptions import MusicAPIError, ResponseValidationError
from ._models import Clip, Task, TaskFamily, TaskRef, TaskStatus
from ._serde import parse_task

__all__ = [
    "HasHandle",
    "VerificationFailure",
    "WebhookEvent",
    "WebhookReceiver",
    "WebhookResponse",
    "WebhookStatistics",
    "WebhookVerificationError",
    "sign_webhook",
    "verify_webhook",
]

logger = logging.getLogger("musicapi_async")

#: Events a :class:`WebhookReceiver` remembers to recognise a re-delivery.
DEFAULT_REMEMBER: Final = 10_000

#: Which check a delivery failed (:attr:`WebhookVerificationError.reason`).
VerificationFailure = Literal[
    "missing_signature",
    "bad_signature",
    "missing_timestamp",
    "bad_timestamp",
    "stale_timestamp",
    "future_timestamp",
    "bad_body",
]
#: How a delivery was signed.
Scheme = Literal["signature", "legacy"]
#: Headers as a mapping, or as the (name, value) pairs of ASGI (bytes) or WSGI (str).
HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]]

#: The query string of the delivery being handled, set by the adapters of
#: :mod:`musicapi_async.webhooks` around ``receiver.handle(body, headers)``: a wrapper of the
#: user's own with the two-argument ``handle`` passes it on without knowing.
DELIVERY_QUERY: ContextVar[str | None] = ContextVar("musicapi_webhook_query", default=None)

#: Unix seconds, optionally with a fraction; ASCII digits only.
_TIMESTAMP: Final = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?")
_PREFIX: Final = "sha256="
_PLATFORMS: Final[Mapping[str, TaskFamily]] = {
    "sonic": TaskFamily.SONIC,
    "suno": TaskFamily.SONIC,
    "producer": TaskFamily.PRODUCER,
    "nuro": TaskFamily.NURO,
}
_KIND_BY_STATUS: Final[Mapping[TaskStatus, str]] = {
    TaskStatus.SUCCEEDED: "song.completed",
    TaskStatus.FAILED: "song.failed",
}
_STREAMING_KIND: Final = "song.streaming"


class WebhookVerificationError(MusicAPIError):
    """A webhook delivery failed verification: ``reason`` names the check.

    The message says what failed and what to do; it never contains the secret nor the
    signature the secret would give. No frame of its traceback keeps that signature in a
    local either, for error trackers that record frame locals; the secret itself is the
    ``secret`` parameter of :func:`verify_webhook` (and of helpers it calls), so have such a
    tracker scrub variables named ``secret``.
    """

    #: One of :data:`VerificationFailure`: ``missing_signature``, ``bad_signature``,
    #: ``missing_timestamp``, ``bad_timestamp``, ``stale_timestamp``, ``future_timestamp``
    #: or ``bad_body`` (signed correctly, but not a task payload the SDK can read).
    reason: VerificationFailure

    def __init__(self, message: str, *, reason: VerificationFailure) -> None:
        super().__init__(f"webhook rejected ({reason}): {message}")
        self.reason = reason


@final
@frozen
class WebhookEvent:
    """One verified delivery: which task, what happened, and the task as a poll would show it."""

    #: ``X-Webhook-Id`` (or ``Idempotency-Key``): the same for every re-delivery of one
    #: event. ``None`` when absent (the legacy scheme sends none). Not covered by the
    #: signature: anyone replaying a captured delivery can change it.
    id: str | None
    #: ``X-Webhook-Event`` (``song.completed``, ``song.failed``...); when absent, inferred
    #: from the task: ``song.completed``, ``song.failed`` or ``song.streaming``.
    kind: str
    task_id: str
    #: Read with the parser of ``get_task``; ``task.ref.family`` is the one of the create
    #: call when the delivery's URL tag named it, else inferred from the payload.
    task: Task
    #: ``X-Webhook-Timestamp`` (UTC); ``None`` for the legacy scheme.
    timestamp: datetime | None
    scheme: Scheme
    #: The decoded JSON body as received.
    raw: Mapping[str, Any] = field(eq=False, repr=False)
    #: True when the body named no task and the tag in the delivery's URL did (the tag is
    #: not signed; see :meth:`WebhookReceiver.handle`).
    by_tag: bool = False

    @property
    def ref(self) -> TaskRef:
        """The task's reference (``task_id`` and family), for ``await_task`` and friends."""
        return self.task.ref


@final
@frozen
class OrphanDelivery:
    """A verified delivery for a create call of this client that raised (a read timeout, a
    dropped connection, a cancelled call...): its task was started after all.

    Matched by the tag the create call added to its webhook URL, which the error of that
    call carries as ``error.webhook_tag``. ``task_id`` is None when the body does not name
    its task (MusicAPI's published Sonic shape); the clips still carry their ids and audio
    URLs.
    """

    #: The tag of the create call (``error.webhook_tag``).
    tag: str
    #: The task, when the body names it: ``await_task`` it, it is the one that was paid for.
    task_id: str | None
    #: The clips the delivery carries (best effort: empty when the body has none readable).
    clips: tuple[Clip, ...]
    #: When it arrived (UTC).
    received: datetime
    #: The decoded JSON body as received.
    raw: Mapping[str, Any] = field(eq=False, repr=False)


@final
@frozen
class WebhookResponse:
    """The HTTP answer a webhook endpoint should give (:meth:`WebhookReceiver.handle`).

    * 200 ``{"status": "accepted"}``: a new, verified event, passed to the callbacks;
    * 200 ``{"status": "duplicate"}``: a re-delivery of an event already accepted;
    * 400 ``{"error": "bad_body"}``: correctly signed but not a task payload;
    * 401 ``{"error": <reason>}``: not authenticated: missing or wrong signature, missing,
      malformed, stale or future timestamp. Nothing was called;
    * 500 ``{"error": "callback_failed"}``: a callback raised; the event is not remembered,
      so the sender's retry can succeed;
    * 503 ``{"error": "task_pending"}`` with ``Retry-After``: the body names no task and the
      create call whose tag the URL carries is still unanswered; nothing was called, and
      the sender's retry can succeed.
    """

    status: int
    body: bytes
    headers: Mapping[str, str]

    @property
    def accepted(self) -> bool:
        """True for a 2xx answer (new or duplicate event)."""
        return 200 <= self.status < 300


@final
@frozen
class WebhookStatistics:
    """Counts of a :class:`WebhookReceiver`'s deliveries so far."""

    #: New events passed to the callbacks.
    accepted: int
    #: Re-deliveries of events already accepted (answered 200, nothing called).
    duplicate: int
    #: Refused deliveries by :data:`VerificationFailure` reason.
    rejected: Mapping[str, int]
    #: Deliveries answered 500 because a callback raised.
    failed: int
    #: Events currently remembered for de-duplication (each under one or two keys).
    remembered: int
    #: Deliveries answered 503 (retry later): the body names no task, and the create call
    #: whose tag the URL carries had still not been answered after a wait.
    deferred: int = 0
    #: Deliveries for create calls of this client that raised (see
    #: :meth:`WebhookReceiver.orphans`).
    orphans: int = 0

    @property
    def rejected_total(self) -> int:
        """Every refused delivery, whatever the reason."""
        return sum(self.rejected.values())


class HasHandle(Protocol):
    """Anything that answers a webhook delivery: a :class:`WebhookReceiver`, ``client.webhooks``.

    The adapters set the request's query string where :meth:`WebhookReceiver.handle` finds
    it, so a wrapper that calls it with ``(body, headers)`` loses nothing.
    """

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> WebhookResponse: ...


async def handle_delivery(
    receiver: HasHandle, body: bytes, headers: Mapping[str, str], query: str
) -> WebhookResponse:
    """``receiver.handle(body, headers)`` with the delivery's query string (which carries
    the client's tag) set for :class:`WebhookReceiver` to read, as every adapter and the
    fake's in-process sender call it: a wrapper of your own with the two-argument ``handle``
    passes it on without knowing."""
    token = DELIVERY_QUERY.set(query or None)
    try:
        return await receiver.handle(body, headers)
    finally:
        DELIVERY_QUERY.reset(token)


# --- verification ---------------------------------------------------------------------------


def _lower_headers(headers: HeadersLike) -> dict[str, str]:
    """Header names in lower case; a repeated header's values joined with ``", "``."""
    pairs: Iterable[tuple[Any, Any]] = headers.items() if isinstance(headers, Mapping) else headers
    result: dict[str, str] = {}
    for name, value in pairs:
        key = (name.decode("latin-1") if isinstance(name, bytes) else str(name)).lower()
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        result[key] = f"{result[key]}, {text}" if key in result else text
    return result


def _hmac_hex(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest().encode("ascii")


def _signature_matches(secret: str, message: bytes, provided: str) -> bool:
    """Whether a header's value is the signature of ``message``, compared in constant time.

    The valid signature exists only in this frame, which has returned before a caller raises
    "bad_signature": error trackers that record the locals of a traceback's frames never
    see it. (The secret itself is a parameter of the frames above, which cannot be helped.)
    """
    value = provided.strip()
    if value[: len(_PREFIX)].lower() == _PREFIX:
        value = value[len(_PREFIX) :]
    provided_hex = value.lower().encode("utf-8", "replace")
    return hmac.compare_digest(_hmac_hex(secret, message), provided_hex)


def _check_arguments(body: object, secret: object, tolerance: float) -> bytes:
    if isinstance(body, str):
        raise TypeError(
            "verify the raw body bytes exactly as received (request.body), not decoded text: "
            "any re-encoding changes the signature"
        )
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"body must be bytes, got {type(body).__name__}")
    if not isinstance(secret, str):
        raise TypeError(f"the webhook secret must be a string, got {type(secret).__name__}")
    if not secret:
        raise ValueError(
            "the webhook secret is empty: pass the webhook_secret given with the create call"
        )
    # NaN fails too, and so does infinity (or an int beyond float), which would let any
    # signed timestamp through, however absurd.
    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance <= sys.float_info.max):
        raise ValueError(f"tolerance must be a finite number of seconds >= 0, got {tolerance!r}")
    return bytes(body)


def _check_current(
    raw: bytes,
    headers: Mapping[str, str],
    secret: str,
    tolerance: float,
    now: float | None,
) -> datetime:
    stamp = headers.get("x-webhook-timestamp")
    if stamp is None or not stamp.strip():
        raise WebhookVerificationError(
            "X-Webhook-Signature is present but X-Webhook-Timestamp is missing; the signature "
            "covers '{timestamp}.{body}', so the delivery cannot be checked",
            reason="missing_timestamp",
        )
    stamp = stamp.strip()
    if not _TIMESTAMP.fullmatch(stamp):
        raise WebhookVerificationError(
            f"X-Webhook-Timestamp must be Unix seconds, got {stamp[:40]!r}",
            reason="bad_timestamp",
        )
    # The signature first: only a genuine sender learns whether its timestamp was fresh.
    signed = stamp.encode("ascii") + b"." + raw
    if not _signature_matches(secret, signed, headers["x-webhook-signature"]):
        raise WebhookVerificationError(
            "X-Webhook-Signature does not match the body signed with your webhook secret: "
            "check that the secret is the webhook_secret of the create call, and that the raw "
            "body bytes are verified before any parsing or re-encoding",
            reason="bad_signature",
        )
    sent = float(stamp)
    clock = time.time() if now is None else now
    age = clock - sent
    if age > tolerance:
        raise WebhookVerificationError(
            f"X-Webhook-Timestamp is {age:.0f} s old, over the tolerance of {tolerance:g} s: "
            "a replayed or long-delayed delivery (check this machine's clock, or raise "
            "tolerance=)",
            reason="stale_timestamp",
        )
    if -age > tolerance:
        raise WebhookVerificationError(
            f"X-Webhook-Timestamp is {-age:.0f} s in the future, over the tolerance of "
            f"{tolerance:g} s (check this machine's clock, or raise tolerance=)",
            reason="future_timestamp",
        )
    try:
        return datetime.fromtimestamp(sent, tz=timezone.utc)
    except (ValueError, OverflowError, OSError) as exc:  # beyond year 9999 or the C time_t
        raise WebhookVerificationError(
            f"X-Webhook-Timestamp {stamp[:40]!r} is not a representable date",
            reason="bad_timestamp",
        ) from exc


def _family(body: Mapping[str, Any]) -> TaskFamily:
    platform = body.get("platform")
    if isinstance(platform, str) and platform.strip().lower() in _PLATFORMS:
        return _PLATFORMS[platform.strip().lower()]
    status = body.get("status")
    if isinstance(status, str) and status:
        if status.isupper():  # Producer: PENDING, RUNNING, SUCCESS, FAILED (§9.4)
            return TaskFamily.PRODUCER
        if body.get("data") is None:  # Nuro: flat, lower-case status (§9.5)
            return TaskFamily.NURO
    return TaskFamily.SONIC


def _task_id(body: Mapping[str, Any]) -> str | None:
    found = body.get("task_id")
    if isinstance(found, str) and found.strip():
        return found.strip()
    data = body.get("data")
    items: list[Any] = (
        [data] if isinstance(data, Mapping) else data if isinstance(data, list) else []
    )
    for item in items:
        found = item.get("task_id") if isinstance(item, Mapping) else None
        if isinstance(found, str) and found.strip():
            return found.strip()
    return None


def _read_event(
    raw: bytes,
    headers: Mapping[str, str],
    scheme: Scheme,
    timestamp: datetime | None,
    tagged: TaskRef | None,
) -> WebhookEvent:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise WebhookVerificationError(
            f"the signature is valid but the body is not JSON ({type(exc).__name__})",
            reason="bad_body",
        ) from exc
    if not isinstance(body, dict):
        raise WebhookVerificationError(
            "the signature is valid but the body is not a JSON object", reason="bad_body"
        )
    task_id = _task_id(body)
    by_tag = task_id is None and tagged is not None
    if task_id is None and tagged is not None:
        task_id = tagged.task_id
    if task_id is None:
        raise WebhookVerificationError(
            "the signature is valid but the payload names no task: no task_id at its top "
            "level nor in its clips, and no tag of a known create call in the URL (pass the "
            "request's query string as query=; a legacy delivery is never matched by its tag)",
            reason="bad_body",
        )
    # The signed body wins over the (unsigned) URL tag when both name a task.
    family = tagged.family if tagged is not None and tagged.task_id == task_id else None
    ref = TaskRef(task_id, family or _family(body))
    try:
        task = parse_task(ref, 200, body)
    except ResponseValidationError as exc:
        raise WebhookVerificationError(
            f"the signature is valid but the task payload cannot be read: {exc.message}",
            reason="bad_body",
        ) from exc
    kind = headers.get("x-webhook-event", "").strip()
    if not kind:
        kind = _KIND_BY_STATUS.get(task.status, _STREAMING_KIND)
    event_id = (headers.get("x-webhook-id") or headers.get("idempotency-key") or "").strip()
    return WebhookEvent(
        id=event_id or None,
        kind=kind,
        task_id=task_id,
        task=task,
        timestamp=timestamp,
        scheme=scheme,
        raw=body,
        by_tag=by_tag,
    )


def _check_allow_legacy(allow_legacy: object) -> None:
    # A truthy string such as "false" from a settings file must not quietly allow it.
    if not isinstance(allow_legacy, bool):
        raise TypeError(f"allow_legacy must be True or False, got {allow_legacy!r}")


def verify_webhook(
    body: bytes,
    headers: HeadersLike,
    secret: str,
    *,
    tolerance: float = DEFAULT_WEBHOOK_TOLERANCE,
    now: float | None = None,
    allow_legacy: bool = True,
    task: TaskRef | None = None,
) -> WebhookEvent:
    """Verify one webhook delivery and read it; usable from any web framework.

    Give the raw body bytes exactly as received, the request's headers (any case; a mapping
    or (name, value) pairs) and the ``webhook_secret`` sent with the create call. With an
    ``X-Webhook-Signature`` only the current scheme is checked, and its timestamp must be
    within ``tolerance`` seconds of ``now`` (Unix seconds; default: this machine's clock);
    otherwise the legacy ``X-Signature`` (no timestamp, no replay protection). Signatures
    are compared in constant time.

    ``allow_legacy=False`` refuses every delivery without ``X-Webhook-Signature``
    (``missing_signature``). The contract accepts the legacy scheme, hence the default; turn
    it off once your deliveries carry the current one, because a legacy signature covers the
    body alone: a captured delivery can be replayed at any time, and anyone who sees one
    delivery carrying both signatures can strip the current one and replay it as legacy::

        >>> from musicapi_async import sign_webhook, verify_webhook
        >>> body = b'{"task_id": "t-1", "code": 200, "data": [{"state": "succeeded"}]}'
        >>> event = verify_webhook(body, sign_webhook(body, "s3cret"), "s3cret")
        >>> event.task_id, event.kind, event.task.succeeded
        ('t-1', 'song.completed', True)

    ``task`` names the task when the body does not (MusicAPI's published Sonic example
    carries no ``task_id``): :class:`WebhookReceiver` finds it from the tag a client adds
    to its webhook URL. A task named in the signed body wins over it, and a legacy
    delivery ignores it: without a signed timestamp, a captured body could be replayed for
    any task at any time.

    Raises:
        WebhookVerificationError: a check failed; ``reason`` says which.
        ValueError: ``secret`` is empty, or ``tolerance`` negative or not finite.
        TypeError: ``body`` is not bytes (a decoded ``str`` cannot be verified reliably), or
            ``allow_legacy`` is not a bool.
    """
    raw = _check_arguments(body, secret, tolerance)
    _check_allow_legacy(allow_legacy)
    if task is not None and not isinstance(task, TaskRef):
        raise TypeError(f"task must be a TaskRef or None, got {type(task).__name__}")
    lowered = _lower_headers(headers)
    if "x-webhook-signature" in lowered:
        timestamp = _check_current(raw, lowered, secret, tolerance, now)
        return _read_event(raw, lowered, "signature", timestamp, task)
    if not allow_legacy:
        raise WebhookVerificationError(
            "X-Webhook-Signature is missing and the legacy X-Signature scheme is disabled "
            "(allow_legacy=False): only timestamped, current-scheme deliveries are accepted",
            reason="missing_signature",
        )
    legacy = lowered.get("x-signature")
    if legacy is None:
        raise WebhookVerificationError(
            "neither X-Webhook-Signature nor X-Signature is present: only signed MusicAPI "
            "deliveries are accepted (give webhook_secret with the create call)",
            reason="missing_signature",
        )
    if not _signature_matches(secret, raw, legacy):
        raise WebhookVerificationError(
            "X-Signature does not match the body signed with your webhook secret: check "
            "that the secret is the webhook_secret of the create call, and that the raw body "
            "bytes are verified before any parsing or re-encoding",
            reason="bad_signature",
        )
    return _read_event(raw, lowered, "legacy", None, None)


def sign_webhook(
    body: bytes,
    secret: str,
    *,
    timestamp: int | None = None,
    event_id: str | None = None,
    kind: str = "song.completed",
    legacy: bool = False,
) -> dict[str, str]:
    """The headers MusicAPI would send with ``body``: for tests of a webhook endpoint.

    Current scheme by default (``X-Webhook-Id`` = ``Idempotency-Key``, ``X-Webhook-Event``,
    ``X-Webhook-Timestamp``: ``timestamp`` or now, ``X-Webhook-Signature``); ``legacy=True``
    gives ``X-Signature`` alone (plus ``X-Webhook-Id`` if ``event_id`` is given)::

        >>> headers = sign_webhook(b"{}", "s3cret", timestamp=1700000000, event_id="evt-1")
        >>> headers["X-Webhook-Signature"][:7], headers["X-Webhook-Id"]
        ('sha256=', 'evt-1')
    """
    raw = _check_arguments(body, secret, 0.0)
    headers = {"Content-Type": "application/json"}
    if legacy:
        if event_id is not None:
            headers["X-Webhook-Id"] = event_id
        headers["X-Signature"] = _hmac_hex(secret, raw).decode("ascii")
        return headers
    stamp = str(int(time.time()) if timestamp is None else int(timestamp))
    event_id = f"evt_{uuid4().hex}" if event_id is None else event_id
    signature = _hmac_hex(secret, stamp.encode("ascii") + b"." + raw).decode("ascii")
    headers.update(
        {
            "X-Webhook-Id": event_id,
            "Idempotency-Key": event_id,
            "X-Webhook-Event": kind,
            "X-Webhook-Timestamp": stamp,
            "X-Webhook-Signature": _PREFIX + signature,
        }
    )
    return headers


# --- the receiver ---------------------------------------------------------------------------

Callback = Callable[[WebhookEvent], object]


def _dedup_keys(event: WebhookEvent, body: bytes, headers: Mapping[str, str]) -> tuple[str, ...]:
    """The keys under which a verified delivery counts as seen; any one seen makes a duplicate.

    Only signed bytes make a key that a replay cannot change. Current scheme: the event id
    (unsigned, but stable across MusicAPI's own re-signed retries) and the signature,
    represented by a hash of what it signs (``"{timestamp}.{body}"``): an exact replay
    carries the same, a new one cannot be forged, and no valid signature is kept in memory.
    Legacy: the body alone, whatever id header came with it.
    """
    if event.scheme == "legacy":
        return ("body:" + hashlib.sha256(body).hexdigest(),)
    stamp = headers["x-webhook-timestamp"].strip().encode("ascii")
    signed = "signed:" + hashlib.sha256(stamp + b"." + bytes(body)).hexdigest()
    if event.by_tag:
        # A body naming no task can be the same for two tasks (a failure message sent in
        # the same second): the task its tag named tells them apart.
        signed += ":" + event.task_id
    return (signed,) if event.id is None else (signed, "id:" + event.id)


def _answer(status: int, payload: Mapping[str, str], **headers: str) -> WebhookResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return WebhookResponse(status, body, {"content-type": "application/json", **headers})


#: Seconds between two looks at a delivery handled in another event loop.
_OTHER_LOOP_LOOK: Final = 0.05


@final
class _Signal:
    """Set once, awaited from any event loop. A receiver may serve several loops at once (a
    WSGI server runs each async view in a loop of its own thread), and an anyio ``Event``
    wakes only tasks of the loop that made it: a waiter there waits on it; a waiter in any
    other loop looks again every ``_OTHER_LOOP_LOOK`` seconds instead of hanging for ever."""

    __slots__ = ("_done", "_event", "_loop")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._loop = current_token()
        self._done = False

    def set(self) -> None:
        """Called in the loop that made it (a delivery's or a create call's own)."""
        self._done = True
        self._event.set()

    async def wait(self) -> None:
        if current_token() == self._loop:
            await self._event.wait()
            return
        while not self._done:  # noqa: ASYNC110 (an Event of this loop is what cannot work)
            await anyio.sleep(_OTHER_LOOP_LOOK)


_ACCEPTED: Final = _answer(200, {"status": "accepted"})
_DUPLICATE: Final = _answer(200, {"status": "duplicate"})
#: A delivery naming no task, for a create call that raised: kept (see orphans()).
_ORPHAN: Final = _answer(200, {"status": "orphan"})
_CALLBACK_FAILED: Final = _answer(500, {"error": "callback_failed"})
#: The create call a delivery's tag names is still unanswered: the sender is to try again.
_TASK_PENDING: Final = _answer(
    503, {"error": "task_pending"}, **{"retry-after": f"{WEBHOOK_TAG_WAIT:.0f}"}
)
_REJECTED: Final[Mapping[str, WebhookResponse]] = {
    reason: _answer(400 if reason == "bad_body" else 401, {"error": reason})
    for reason in get_args(VerificationFailure)
}


_V = TypeVar("_V")


def _keep_newest(kept: OrderedDict[str, _V], tag: str, value: _V) -> None:
    """Keep ``value`` under ``tag`` as the newest entry, forgetting the oldest beyond
    ``WEBHOOK_TAGS_MAX`` (the tags of create calls, and what came for them)."""
    kept[tag] = value
    kept.move_to_end(tag)
    while len(kept) > WEBHOOK_TAGS_MAX:
        kept.popitem(last=False)


@final
class WebhookReceiver:
    """Verifies, de-duplicates and dispatches webhook deliveries; framework-agnostic.

    Feed it each request's raw body and headers; it answers with the
    :class:`WebhookResponse` to send back. A new event goes to ``on_event`` and to every
    :meth:`subscribe`\\ d callback (a callback may be a coroutine function); a re-delivery
    is answered 200 without calling anything; a delivery that fails verification is answered
    4xx and changes nothing. A current-scheme delivery is a re-delivery when its
    ``X-Webhook-Id`` or its signature (the same timestamp and body) was seen: the id is not
    signed, so a replay under a changed id is still caught by its signature. A legacy
    delivery is a re-delivery when its body was seen; any id header it carries is ignored,
    since nothing ties it to the signed body. If a callback raises, the answer is 500 and
    the event is not remembered, so the sender's retry calls every callback again: callbacks
    must tolerate seeing an event twice (delivery is at least once anyway)::

        import anyio
        from musicapi_async import WebhookReceiver, sign_webhook

        async def main() -> None:
            receiver = WebhookReceiver("s3cret", on_event=lambda e: print(e.task_id, e.kind))
            body = b'{"task_id": "t-1", "code": 200, "data": []}'
            response = await receiver.handle(body, sign_webhook(body, "s3cret"))
            assert response.status == 200

        anyio.run(main)

    A client's receiver (``client.webhooks``) also knows the tag the client added to its
    webhook URL on each create call (``?musicapi_tag=...``): pass the request's query string
    as ``query=`` (the adapters of :mod:`musicapi_async.webhooks` do) and a delivery whose
    body names no task is matched to its task by that tag.

    Args:
        secret: The ``webhook_secret`` given with the create calls. Never shown in a repr.
        tolerance: Seconds a signed timestamp may differ from ``clock()``.
        on_event: Called with each new :class:`WebhookEvent`.
        remember: How many events to remember (least recently seen dropped first).
        clock: Unix seconds now (default ``time.time``); for tests.
        allow_legacy: Accept the legacy ``X-Signature`` scheme (the contract's default).
            Turn it off once deliveries carry ``X-Webhook-Signature``: a legacy signature
            has no timestamp, so a captured delivery can be replayed once it is no longer
            remembered, and anyone who sees a delivery carrying both signatures can strip
            the current one. See :func:`verify_webhook`.
    """

    def __init__(
        self,
        secret: str,
        *,
        tolerance: float = DEFAULT_WEBHOOK_TOLERANCE,
        on_event: Callback | None = None,
        remember: int = DEFAULT_REMEMBER,
        clock: Callable[[], float] | None = None,
        allow_legacy: bool = True,
    ) -> None:
        _check_arguments(b"", secret, tolerance)
        _check_allow_legacy(allow_legacy)
        if not isinstance(remember, int) or remember < 1:
            raise ValueError(f"remember must be a positive number of events, got {remember!r}")
        self._secret = secret
        self._tolerance = float(tolerance)
        self._remember = remember
        self._clock = clock
        self._allow_legacy = allow_legacy
        self._sinks: list[Callback] = [] if on_event is None else [on_event]
        # Each remembered event under its first key, with all its keys; and every key's event.
        self._seen: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._owner: dict[str, str] = {}
        self._in_flight: dict[str, _Signal] = {}
        # Deliveries may be handled in several threads at once (one event loop each): the
        # bookkeeping between two awaits is done under this lock.
        self._lock = threading.Lock()
        self._accepted = 0
        self._duplicate = 0
        self._failed = 0
        self._deferred = 0
        self._rejected: Counter[str] = Counter()
        # The task each URL tag of a create call stands for (the newest WEBHOOK_TAGS_MAX),
        # and the tags of create calls not answered yet.
        self._tags: OrderedDict[str, TaskRef] = OrderedDict()
        self._pending_tags: dict[str, _Signal] = {}
        # The tags of create calls that raised (an ordered set), and the deliveries that
        # came for them.
        self._orphan_tags: OrderedDict[str, None] = OrderedDict()
        self._orphans: OrderedDict[str, OrphanDelivery] = OrderedDict()
        # Deliveries naming their task that came while their tag's create call was still
        # unanswered: an orphan's, should that call raise.
        self._early_named: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._orphan_count = 0

    def __repr__(self) -> str:
        return (
            f"WebhookReceiver(tolerance={self._tolerance:g}, "
            f"allow_legacy={self._allow_legacy}, callbacks={len(self._sinks)}, "
            f"remembered={len(self._seen)})"
        )

    @property
    def tolerance(self) -> float:
        """Seconds a signed timestamp may differ from the receiver's clock."""
        return self._tolerance

    @property
    def allow_legacy(self) -> bool:
        """Whether deliveries signed with the legacy ``X-Signature`` alone are accepted."""
        return self._allow_legacy

    def verify(
        self, body: bytes, headers: HeadersLike, *, query: str | bytes | None = None
    ) -> WebhookEvent:
        """:func:`verify_webhook` with this receiver's secret, tolerance, clock and legacy
        rule, and the task of a known tag in ``query`` (the delivery's query string)."""
        now = self._clock() if self._clock is not None else None
        return verify_webhook(
            body,
            headers,
            self._secret,
            tolerance=self._tolerance,
            now=now,
            allow_legacy=self._allow_legacy,
            task=self._tags.get(self._tag_in(query) or ""),
        )

    def _expect_tag(self, tag: str) -> None:
        """A create call carrying ``tag`` is about to be sent."""
        self._pending_tags[tag] = _Signal()

    def _resolve_tag(self, tag: str, ref: TaskRef | None) -> None:
        """The create call carrying ``tag`` started ``ref`` (None: it raised, and may
        have started a task all the same: a delivery for it is kept, see :meth:`orphans`)."""
        with self._lock:
            early = self._early_named.pop(tag, None)
        if ref is not None:
            _keep_newest(self._tags, tag, ref)
        else:
            with self._lock:
                _keep_newest(self._orphan_tags, tag, None)
            if early is not None:  # it came before the call raised
                self._keep_orphan(tag, *early)
        waiting = self._pending_tags.pop(tag, None)
        if waiting is not None:
            waiting.set()

    @staticmethod
    def _tag_in(query: str | bytes | None) -> str | None:
        """The client's tag in a delivery's query string (str, or the bytes of ASGI)."""
        if not query:
            return None
        if isinstance(query, (bytes, bytearray)):
            query = bytes(query).decode("latin-1")
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, bytes or None, got {type(query).__name__}")
        tags = [v for k, v in parse_qsl(query.removeprefix("?")) if k == WEBHOOK_TAG_PARAM]
        return tags[-1] if tags else None

    def orphans(self) -> tuple[OrphanDelivery, ...]:
        """Deliveries for create calls of this client that raised, oldest first (the latest
        of each call; at most 10,000 calls remembered).

        Such a call's error says the task may exist and carries its tag
        (``error.webhook_tag``): once MusicAPI delivers the task's result, it is here, with
        its ``task_id`` when the body names it and its clips in any case, so a task paid for
        is never lost to a timeout. They are also logged (a warning) when they arrive.
        """
        with self._lock:
            return tuple(self._orphans.values())

    def _keep_orphan(self, tag: str, task_id: str | None, body: bytes) -> None:
        """Keep a verified delivery for the create call that carried ``tag`` and raised."""
        try:
            raw = json.loads(body)
        except ValueError:
            raw = None
        raw = raw if isinstance(raw, dict) else {}
        try:
            clips = parse_task(TaskRef(task_id or tag, _family(raw)), 200, raw).clips
        except (ResponseValidationError, ValueError, TypeError):
            clips = ()
        orphan = OrphanDelivery(tag, task_id, clips, datetime.now(timezone.utc), raw)
        with self._lock:
            _keep_newest(self._orphans, tag, orphan)
            self._orphan_count += 1
        logger.warning(
            "a webhook delivery came for a create call that raised (tag %s): its task was "
            "started after all (%s; clips %s). client.webhooks.orphans() has it",
            tag,
            f"task {task_id}" if task_id else "the body names no task",
            ", ".join(clip.clip_id or "?" for clip in clips) or "none readable",
        )

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Also send new events to ``callback``; returns a function that unsubscribes it."""
        self._sinks.append(callback)

        def unsubscribe() -> None:
            if callback in self._sinks:
                self._sinks.remove(callback)

        return unsubscribe

    def statistics(self) -> WebhookStatistics:
        """Counts of accepted, duplicate, rejected (by reason) and failed deliveries."""
        return WebhookStatistics(
            accepted=self._accepted,
            duplicate=self._duplicate,
            rejected=dict(self._rejected),
            failed=self._failed,
            remembered=len(self._seen),
            deferred=self._deferred,
            orphans=self._orphan_count,
        )

    async def handle(
        self, body: bytes, headers: HeadersLike, *, query: str | bytes | None = None
    ) -> WebhookResponse:
        """Verify one delivery, pass a new event to the callbacks, and say what to answer.

        ``query``: the request's query string, which carries the client's tag (default: the
        one an adapter of :mod:`musicapi_async.webhooks` set for this delivery). A body
        that names no task is matched by the tag; when the create call carrying it has not
        been answered yet, the delivery waits for that answer (a few seconds at most).
        """
        lowered = _lower_headers(headers)  # once: pairs may be a one-shot iterator
        if query is None:
            query = DELIVERY_QUERY.get()
        try:
            try:
                event = self.verify(body, lowered, query=query)
            except WebhookVerificationError as exc:
                # A valid signature on a body naming no task, whose tag's create call is
                # still on its way back: wait for its answer, then look again.
                tag = self._tag_in(query) or ""
                if exc.reason == "bad_body" and tag in self._orphan_tags:
                    # Signed, naming no task, for a create call that raised: its task was
                    # started after all. Kept and answered 200 (a 400 would be final, and
                    # the result of a paid task lost).
                    self._keep_orphan(tag, None, body)
                    return _ORPHAN
                pending = self._pending_tags.get(tag)
                if exc.reason != "bad_body" or pending is None:
                    raise
                with anyio.move_on_after(WEBHOOK_TAG_WAIT):
                    await pending.wait()
                if tag in self._orphan_tags:
                    # The create call raised meanwhile: its task was started after all.
                    self._keep_orphan(tag, None, body)
                    return _ORPHAN
                if self._pending_tags.get(self._tag_in(query) or "") is pending:
                    # Still unanswered: a 400 would be final to the sender, and the result
                    # would wait for a fallback poll. A 503 makes it deliver again later.
                    with self._lock:
                        self._deferred += 1
                    logger.info(
                        "a webhook delivery names no task and the create call its URL tag "
                        "names is still unanswered after %g s: answered 503, to retry",
                        WEBHOOK_TAG_WAIT,
                    )
                    return _TASK_PENDING
                event = self.verify(body, lowered, query=query)
        except WebhookVerificationError as exc:
            with self._lock:
                self._rejected[exc.reason] += 1
            logger.warning("%s", exc.message)
            return _REJECTED[exc.reason]
        named = self._tag_in(query)
        if named is not None and named in self._orphan_tags and not event.by_tag:
            # It names its task: the one the create call that raised had started.
            self._keep_orphan(named, event.task_id, body)
        elif named is not None and named in self._pending_tags and not event.by_tag:
            # Its create call is not answered yet: should it raise, this is its task.
            with self._lock:
                _keep_newest(self._early_named, named, (event.task_id, body))
        keys = _dedup_keys(event, body, lowered)
        # A copy arriving while the first is being handled waits for its outcome: answering
        # "duplicate" at once would lose the event if the first one's callbacks then fail.
        while True:
            with self._lock:
                busy = self._busy(keys)
                if busy is None:
                    seen = {self._owner[k] for k in keys if k in self._owner}
                    if seen:
                        # A duplicate adds none of its keys: a replay under an invented id
                        # must not make a later event with that id look seen.
                        for first in seen:
                            self._seen.move_to_end(first)
                        self._duplicate += 1
                        return _DUPLICATE
                    done = _Signal()
                    for key in keys:
                        self._in_flight[key] = done
                    break
            await busy.wait()
        try:
            ok = await self._dispatch(event)
            with self._lock:
                if not ok:
                    self._failed += 1
                    return _CALLBACK_FAILED
                self._remember_event(keys)
                self._accepted += 1
                return _ACCEPTED
        finally:
            with self._lock:
                for key in keys:
                    del self._in_flight[key]
            done.set()

    def _busy(self, keys: tuple[str, ...]) -> _Signal | None:
        """The completion of an in-flight delivery sharing one of ``keys``, if any."""
        return next((self._in_flight[k] for k in keys if k in self._in_flight), None)

    def _remember_event(self, keys: tuple[str, ...]) -> None:
        self._seen[keys[0]] = keys
        for key in keys:
            self._owner[key] = keys[0]
        while len(self._seen) > self._remember:
            first, forgotten = self._seen.popitem(last=False)
            for key in forgotten:
                if self._owner.get(key) == first:
                    del self._owner[key]

    async def _dispatch(self, event: WebhookEvent) -> bool:
        """Call every callback (even after one fails); False if any raised."""
        ok = True
        for sink in list(self._sinks):
            try:
                result = sink(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                ok = False
                logger.exception(
                    "webhook callback %r failed on the %s event of task %s; answering 500 so "
                    "that the sender retries",
                    sink,
                    event.kind,
                    event.task_id,
                )
        return ok
