"""FakeMusicAPI: a stateful, in-process implementation of the MusicAPI server.

Written from CONTRACT.md alone; it shares no parsing or model code with the SDK, so SDK tests
against it catch the SDK's misreadings of the contract.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, final, get_args
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import anyio
import httpx
from attrs import define, evolve, field

from .._clock import LoopClock
from . import _defaults as d
from ._audio import (
    CDN_HOSTS,
    DEFAULT_AUDIO_SECONDS,
    AudioURLKind,
    DownloadRecord,
    audio_clip_id,
    audio_response,
    audio_seed,
    check_seconds,
    synth_wav,
)
from ._ratelimit import EPS, KeyRateLimiter, RateLimiter, StrictKeyRateLimiter
from ._types import (
    Balance,
    ErrorEnvelope,
    FakeResponse,
    FakeTask,
    Family,
    Fault,
    Injection,
    NotReadyStyle,
    Outcome,
    RateLimitRule,
    RequestRecord,
)
from ._validate import Checker, Reject, check_sonic_create
from ._webhooks import FakeWebhooks, WebhookDelivery

if TYPE_CHECKING:
    from .._client import MusicAPI
    from ._transport import FakeTransport

__all__ = ["DurationSpec", "FakeMusicAPI", "OutcomeSpec"]

#: Seconds from creation to done: a number, or a function of the task being created (called
#: with ``duration == 0.0``; every other field is final).
DurationSpec = float | Callable[[FakeTask], float]
#: A task's outcome, or a function of the task being created (``outcome == "success"`` and
#: ``duration == 0.0`` at that point).
OutcomeSpec = Outcome | Callable[[FakeTask], Outcome]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strict_json(body: bytes) -> Any:
    """A request body as JSON: NaN and Infinity, which Python reads but JSON has not, are
    refused as the server refuses any body that is not JSON."""
    return json.loads(body, parse_constant=_refuse_constant)


def _check_outcome(outcome: object, where: str, *, spec: bool = True) -> None:
    """Refuse an outcome the fake does not know, where it is given. ``spec``: ``None`` and a
    function pass (the function's result is checked, with ``spec=False``, at each create)."""
    if spec and (outcome is None or callable(outcome)):
        return
    if outcome not in get_args(Outcome):
        known = ", ".join(repr(o) for o in get_args(Outcome))
        raise ValueError(f"{where}: unknown task outcome {outcome!r}; use one of {known}")


_JSON_HEADERS: Final = {"content-type": "application/json"}
_FAILURE_MESSAGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "failed": d.MSG_TASK_FAILED,
        "timeout": d.MSG_TASK_TIMEOUT,
        "api_error": "API system error, please contact administrator",
        "forbidden": "The song description needs moderation review.",
    }
)
_SECTION_TAG = re.compile(r"\[[^\]]*\]")


@define
class _Account:
    credits: int
    extra_credits: int


@define
class _Plan:
    duration: DurationSpec | None
    outcome: OutcomeSpec | None
    failure_message: str | None


@define
class _ClipSpec:
    clip_id: str
    #: Seconds after the task's creation at which the clip is terminal.
    offset: float
    fails: bool
    #: Every field of the finished clip (``state`` excluded).
    fields: dict[str, Any]


@define
class _TaskState:
    public: FakeTask
    clips: list[_ClipSpec]
    #: Credits taken (from extra_credits, from credits), for the refund.
    charged: tuple[int, int]
    settled: bool = False


@define
class _ClipInfo:
    title: str | None = None
    lyrics: str | None = None
    mv: str | None = None


@define
class _Batch:
    key: str
    entries: list[dict[str, Any]]


@define
class _Ctx:
    route: str
    key: str
    body: dict[str, Any]
    query: dict[str, str]
    param: str | None
    now: float


@define
class _Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(factory=dict)
    task_ids: tuple[str, ...] = ()
    api_key: str | None = None


_Handler = Callable[[_Ctx], _Answer]


def _check_rule(value: RateLimitRule) -> RateLimitRule:
    if value not in get_args(RateLimitRule):
        raise ValueError(f"rate_limit_rule must be 'bucket' or 'strict', got {value!r}")
    return value


def _is_under(path: str, base: str) -> bool:
    return path == base or path.startswith(base + "/")


@final
class FakeMusicAPI:
    """A stateful in-process MusicAPI server for tests, served through an httpx transport.

    Every endpoint of the contract is implemented: keys and credits, the per-key rate limit,
    validation with the documented messages, tasks that progress in ``anyio`` time (virtual
    time under trio's ``MockClock`` or a virtual-time asyncio loop), sync utilities, batch,
    Producer, and Nuro (410 Gone unless ``nuro_retired=False``). Faults and canned answers
    are scheduled with :meth:`inject`; every request is logged in :attr:`requests`.

    Example, with a plain httpx client::

        import anyio, httpx
        from musicapi_async.testing import FakeMusicAPI

        async def main() -> None:
            fake = FakeMusicAPI(sonic_duration=60.0)
            headers = {"Authorization": f"Bearer {FakeMusicAPI.DEFAULT_KEY}"}
            async with httpx.AsyncClient(
                transport=fake.transport(), base_url=fake.base_url, headers=headers
            ) as http:
                body = {"custom_mode": False, "mv": "sonic-v5", "gpt_description_prompt": "lofi"}
                task_id = (await http.post("/sonic/create", json=body)).json()["task_id"]
                await anyio.sleep(60)
                answer = await http.get(f"/sonic/task/{task_id}")
                assert answer.status_code == 200
                assert [c["state"] for c in answer.json()["data"]] == ["succeeded"] * 2
                assert fake.credits().total == 1000 - 15

        anyio.run(main)

    Every constructor argument is also an attribute that tests may change at any time
    (``fake.not_ready_style = "200"``, ``fake.prices["/sonic/wav"] = 2``...).

    Args:
        base_url: Where the fake pretends to live. The transport refuses other hosts with
            ``httpx.ConnectError`` so that an SDK ignoring its ``base_url`` is caught.
        default_key: A key created with ``credits`` / ``extra_credits``; ``None`` for none.
        credits, extra_credits: Balance of ``default_key``.
        prices: Overrides of :data:`DEFAULT_PRICES` (merged over it).
        length_limits: Overrides of :data:`DEFAULT_LENGTH_LIMITS` (merged over it).
        refused_models: ``mv`` values answered with 400; any other model id is accepted.
        rate_limit: ``(rate, per)``: at most ``rate`` requests per ``per`` seconds per key,
            polls included, burst ``rate``; ``None`` disables it. Default one per 3 s.
        rate_limit_rule: How ``rate_limit`` is enforced. ``"bucket"`` (default): a token
            bucket that only accepted requests spend; a refused request changes nothing.
            ``"strict"``: any two requests of one key arriving less than ``per / rate``
            seconds apart get 429 for the later one, refused requests counting too (so a
            retry sent too early pushes the next chance a full interval away; its
            ``Retry-After`` is that interval). Requests refused before the limit applies
            (401, 404 for an unknown route, 410 Nuro) count under neither rule. With
            ``"strict"`` and ``(1, 3.0)``, a client's requests must *arrive* at least 3 s
            apart, which is what a client-side limiter's safety margin is for.
        not_ready_style: ``"202"`` or ``"200"`` (CONTRACT §15 rule 1).
        initial_not_ready: In the ``"200"`` style, seconds of plain ``{"type": "not_ready"}``
            before the snapshots start.
        error_envelope: Shape of error bodies: ``"message"``, ``"error"``, ``"type_error"``
            or ``"code_message"``.
        sonic_duration, producer_duration, nuro_duration: Seconds from creation to done, or a
            function of the :class:`FakeTask` (see :data:`DurationSpec`).
        clip_spread: Seconds between the finishing times of consecutive clips of a task.
        outcome: How tasks end by default (see :data:`Outcome`); :meth:`plan` overrides it
            for the next tasks.
        unknown_task_status: 404 (default, [spec]) or 400 ("task not found.", [docs]).
        strict_clips: Answer 404 "clip not found." for clip ids the fake never produced (nor
            got from :meth:`add_clip`). Default ``False``: any non-empty id is accepted.
        nuro_retired: Every ``/nuro/*`` route answers 410 Gone (the live behaviour).
        duration_as_string: Sonic clips carry ``duration`` as ``"104.88"``; ``False`` sends
            numbers.
        flat_utilities: bpm / vox / upsample-tags answer their fields at the top level
            instead of inside ``data``.
        midi_not_ready_calls, download_not_ready_calls: The first N calls for a clip answer
            202 ``{"type": "not_ready"}`` (free) before the result.
        latency: Route glob → seconds the answer takes (``anyio.sleep``) after processing;
            through :meth:`transport`, one slower than the request's read timeout is an
            ``httpx.ReadTimeout`` (the request was processed all the same).
        no_credits_status: Route → HTTP status of the "not enough credits" refusal, merged
            over the default ``{"/sonic/create-voice": 402}`` ([spec]); other routes 403.
        epoch: Wall-clock time of the first request; ``created_at`` fields count from it.
        serve_audio: Serve the clips' audio: through :meth:`transport`, a GET of a clip's
            ``audio_url`` / ``wav_url`` (or of the links of ``/sonic/wav``,
            ``/sonic/download``, ``/producer/download``) answers 200 with a real WAV file
            synthesised from the prompt and the clip id (:func:`synth_wav`), once the clip
            is finished (a streaming clip's live URL once it streams); 404 for clips the fake
            does not know, has not finished, or failed. The audio is WAV whatever the URL's
            extension says (``Content-Type: audio/wav``). These fetches are logged in
            :attr:`downloads`, not :attr:`requests`. ``False``: the CDN hosts are unknown
            hosts like any other (``httpx.ConnectError``).
        audio_seconds: Length of that audio, seconds (not the clip's ``duration``).
    """

    #: The key a fake created with default arguments accepts.
    DEFAULT_KEY: ClassVar[str] = d.DEFAULT_KEY

    def __init__(
        self,
        *,
        base_url: str = d.DEFAULT_BASE_URL,
        default_key: str | None = d.DEFAULT_KEY,
        credits: int = d.DEFAULT_CREDITS,
        extra_credits: int = 0,
        prices: Mapping[str, int] | None = None,
        length_limits: Mapping[str, int] | None = None,
        refused_models: Iterable[str] = (),
        rate_limit: tuple[int, float] | None = (1, 3.0),
        rate_limit_rule: RateLimitRule = "bucket",
        not_ready_style: NotReadyStyle = "202",
        initial_not_ready: float = d.DEFAULT_INITIAL_NOT_READY,
        error_envelope: ErrorEnvelope = "message",
        sonic_duration: DurationSpec = d.DEFAULT_SONIC_DURATION,
        producer_duration: DurationSpec = d.DEFAULT_PRODUCER_DURATION,
        nuro_duration: DurationSpec = d.DEFAULT_NURO_DURATION,
        clip_spread: float = d.DEFAULT_CLIP_SPREAD,
        outcome: OutcomeSpec = "success",
        unknown_task_status: Literal[404, 400] = 404,
        strict_clips: bool = False,
        nuro_retired: bool = True,
        duration_as_string: bool = True,
        flat_utilities: bool = False,
        midi_not_ready_calls: int = 0,
        download_not_ready_calls: int = 0,
        latency: Mapping[str, float] | None = None,
        no_credits_status: Mapping[str, int] | None = None,
        epoch: datetime = d.DEFAULT_EPOCH,
        serve_audio: bool = True,
        audio_seconds: float = DEFAULT_AUDIO_SECONDS,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self._base_url = str(url).rstrip("/")
        self._base_path = url.path.rstrip("/")
        self.default_key = default_key
        self.prices: dict[str, int] = {**d.DEFAULT_PRICES, **(prices or {})}
        self.length_limits: dict[str, int] = {**d.DEFAULT_LENGTH_LIMITS, **(length_limits or {})}
        self.refused_models: set[str] = set(refused_models)
        self._rate_limit_rule = _check_rule(rate_limit_rule)
        self.rate_limit = rate_limit
        self.not_ready_style = not_ready_style
        self.initial_not_ready = initial_not_ready
        self.error_envelope = error_envelope
        self.sonic_duration: DurationSpec = sonic_duration
        self.producer_duration: DurationSpec = producer_duration
        self.nuro_duration: DurationSpec = nuro_duration
        self.clip_spread = clip_spread
        _check_outcome(outcome, "FakeMusicAPI(outcome=...)")
        self.outcome: OutcomeSpec = outcome
        self.unknown_task_status = unknown_task_status
        self.strict_clips = strict_clips
        self.nuro_retired = nuro_retired
        self.duration_as_string = duration_as_string
        self.flat_utilities = flat_utilities
        self.midi_not_ready_calls = midi_not_ready_calls
        self.download_not_ready_calls = download_not_ready_calls
        self.latency: dict[str, float] = dict(latency or {})
        self.no_credits_status: dict[str, int] = {
            **d.DEFAULT_NO_CREDITS_STATUS,
            **(no_credits_status or {}),
        }
        self.epoch = epoch
        self.serve_audio = serve_audio
        check_seconds(audio_seconds)  # refuse a bad length now, not at the first fetch
        self.audio_seconds = audio_seconds

        self._accounts: dict[str, _Account] = {}
        self._throttled: Counter[str] = Counter()
        self._requests: list[RequestRecord] = []
        self._tasks: dict[str, _TaskState] = {}
        self._public_tasks: dict[str, FakeTask] = {}
        self._unsettled: list[_TaskState] = []
        self._clips: dict[str, _ClipInfo] = {}
        self._batches: dict[str, _Batch] = {}
        self._plans: deque[_Plan] = deque()
        self._injections: list[Injection] = []
        self._midi_calls: Counter[str] = Counter()
        self._download_calls: Counter[str] = Counter()
        self._aligned_paid: set[tuple[str, str]] = set()
        self._t0: float | None = None
        self._durations_handed = 0
        self._songs = 0
        self._downloads: list[DownloadRecord] = []
        #: Clip id -> the text its audio is made from; other known clips use their title.
        self._audio_seeds: dict[str, str] = {}
        #: Clip id -> the task producing it, to serve its audio only once it is finished.
        self._clip_tasks: dict[str, _TaskState] = {}
        #: The fake's time: anyio's clock, mended where a new event loop's went back (one
        #: fake used by several ``anyio.run`` calls, as a Celery worker's tests do).
        self._clock = LoopClock(forward=True)
        #: Signed deliveries to the tasks' ``webhook_url`` (see :class:`FakeWebhooks`).
        self.webhooks = FakeWebhooks(self)
        if default_key is not None:
            self.add_key(default_key, credits=credits, extra_credits=extra_credits)

        self._post: dict[str, _Handler] = {
            "/sonic/create": self._sonic_create,
            "/sonic/upload": self._sonic_upload,
            "/sonic/upload-extend": self._sonic_upload_extend,
            "/sonic/upload-cover": self._sonic_upload_extend,
            "/sonic/persona": self._sonic_persona,
            "/sonic/create-voice": self._sonic_create_voice,
            "/sonic/sample": self._sonic_sample,
            "/sonic/mashup": self._sonic_mashup,
            "/sonic/replace-section": self._sonic_replace_section,
            "/sonic/stems/basic": self._sonic_stems,
            "/sonic/stems/full": self._sonic_stems,
            "/sonic/wav": self._sonic_wav,
            "/sonic/midi": self._sonic_midi,
            "/sonic/aligned-lyrics": self._sonic_aligned_lyrics,
            "/sonic/bpm": self._sonic_bpm,
            "/sonic/vox": self._sonic_vox,
            "/sonic/upsample-tags": self._sonic_upsample_tags,
            "/sonic/lyrics": self._sonic_lyrics,
            "/sonic/download": self._sonic_download,
            "/sonic/batch": self._sonic_batch,
            "/producer/create": self._producer_create,
            "/producer/upload": self._producer_upload,
            "/producer/download": self._producer_download,
            "/nuro/create": self._nuro_create,
        }
        self._get: dict[str, _Handler] = {
            "/get-credits": self._get_credits,
            "/sonic/batch": self._sonic_get_batch,
        }
        self._task_routes: dict[str, Family] = {
            "/sonic/task": "sonic",
            "/producer/task": "producer",
            "/nuro/task": "nuro",
        }

    def __repr__(self) -> str:
        return (
            f"FakeMusicAPI(base_url={self._base_url!r}, keys={len(self._accounts)}, "
            f"tasks={len(self._tasks)}, requests={len(self._requests)})"
        )

    # ------------------------------------------------------------------ settings

    @property
    def base_url(self) -> str:
        """The base URL to give the client (``http://localhost/api/v1`` by default)."""
        return self._base_url

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        """``(rate, per)`` or ``None``; setting it starts every key with a full budget."""
        return self._rate_limit

    @rate_limit.setter
    def rate_limit(self, value: tuple[int, float] | None) -> None:
        self._limiter: RateLimiter | None = None
        if value is not None and self._rate_limit_rule == "strict":
            self._limiter = StrictKeyRateLimiter(value[0], value[1])
        elif value is not None:
            self._limiter = KeyRateLimiter(value[0], value[1])
        self._rate_limit = value

    @property
    def rate_limit_rule(self) -> RateLimitRule:
        """``"bucket"`` or ``"strict"``; setting it starts every key with a clean slate."""
        return self._rate_limit_rule

    @rate_limit_rule.setter
    def rate_limit_rule(self, value: RateLimitRule) -> None:
        self._rate_limit_rule = _check_rule(value)
        self.rate_limit = self._rate_limit

    @property
    def not_ready_style(self) -> NotReadyStyle:
        return self._not_ready_style

    @not_ready_style.setter
    def not_ready_style(self, value: NotReadyStyle) -> None:
        if value not in get_args(NotReadyStyle):
            raise ValueError(f"not_ready_style must be '202' or '200', got {value!r}")
        self._not_ready_style: NotReadyStyle = value

    @property
    def error_envelope(self) -> ErrorEnvelope:
        return self._error_envelope

    @error_envelope.setter
    def error_envelope(self, value: ErrorEnvelope) -> None:
        if value not in get_args(ErrorEnvelope):
            raise ValueError(f"error_envelope must be one of {get_args(ErrorEnvelope)}")
        self._error_envelope: ErrorEnvelope = value

    @property
    def unknown_task_status(self) -> Literal[404, 400]:
        return self._unknown_task_status

    @unknown_task_status.setter
    def unknown_task_status(self, value: Literal[404, 400]) -> None:
        if value not in (404, 400):
            raise ValueError("unknown_task_status must be 404 or 400")
        self._unknown_task_status: Literal[404, 400] = value

    # ------------------------------------------------------------------ keys and credits

    def add_key(
        self, key: str, *, credits: int = d.DEFAULT_CREDITS, extra_credits: int = 0
    ) -> None:
        """Accept ``key`` (``Authorization: Bearer <key>``) with this balance; replaces it."""
        if not key or any(c.isspace() for c in key):
            raise ValueError("an API key must be a non-empty string without spaces")
        self._accounts[key] = _Account(credits, extra_credits)

    def remove_key(self, key: str) -> None:
        """Stop accepting ``key`` (its requests then get 401)."""
        del self._accounts[key]

    def set_credits(
        self,
        key: str | None = None,
        *,
        credits: int | None = None,
        extra_credits: int | None = None,
    ) -> None:
        """Change a key's balance (``None`` keeps a value); ``key=None``: the default key."""
        account = self._account(key)
        if credits is not None:
            account.credits = credits
        if extra_credits is not None:
            account.extra_credits = extra_credits

    def credits(self, key: str | None = None) -> Balance:
        """A key's balance now (refunds due by now included); ``key=None``: the default key.

        Outside an event loop, "now" is the fake's last request plus the real time since
        (where the next loop will go on from): under a virtual clock, ask inside the loop
        (before ``anyio.run`` returns) to see the refunds that fell due after that request.
        """
        self._settle_now()
        account = self._account(key)
        return Balance(account.credits, account.extra_credits)

    def rate_limited(self, key: str | None = None) -> int:
        """How many 429 answers the rate limit gave ``key`` (every key when ``None``)."""
        if key is None:
            return sum(self._throttled.values())
        return self._throttled[key]

    def _account(self, key: str | None) -> _Account:
        name = self.default_key if key is None else key
        if name is None or name not in self._accounts:
            raise KeyError(f"unknown API key (add it with add_key): {name!r}")
        return self._accounts[name]

    # ------------------------------------------------------------------ tasks and clips

    def plan(
        self,
        *,
        duration: DurationSpec | None = None,
        outcome: OutcomeSpec | None = None,
        failure_message: str | None = None,
        times: int = 1,
    ) -> None:
        """Decide the duration and/or outcome of the next ``times`` created tasks.

        Plans queue up in call order; ``None`` keeps the fake's default for that part::

            fake.plan(outcome="failed")                 # the next task fails
            fake.plan(duration=5.0, outcome="partial")  # the one after: fast, one clip fails
        """
        if isinstance(duration, (int, float)) and duration < 0:
            raise ValueError("duration must be >= 0 seconds")
        if times < 1:
            raise ValueError("times must be >= 1")
        _check_outcome(outcome, "plan(outcome=...)")
        for _ in range(times):
            self._plans.append(_Plan(duration, outcome, failure_message))

    def add_clip(
        self,
        clip_id: str,
        *,
        title: str | None = None,
        lyrics: str | None = d.DEFAULT_LYRICS,
        mv: str | None = None,
    ) -> None:
        """Make ``clip_id`` known (it matters with ``strict_clips=True``); ``lyrics=None``
        makes it instrumental (aligned-lyrics answers 404)."""
        self._clips[clip_id] = _ClipInfo(title, lyrics, mv)

    @property
    def tasks(self) -> Mapping[str, FakeTask]:
        """Every task created so far, by id, in creation order (read-only)."""
        return MappingProxyType(self._public_tasks)

    @property
    def last_task(self) -> FakeTask:
        """The most recently created task; ``LookupError`` if none."""
        if not self._public_tasks:
            raise LookupError("no task was created")
        return next(reversed(self._public_tasks.values()))

    @property
    def clip_ids(self) -> frozenset[str]:
        """Every clip id the fake knows (produced, uploaded or added)."""
        return frozenset(self._clips)

    # ------------------------------------------------------------------ faults and log

    def inject(
        self,
        path: str = "*",
        *,
        method: str | None = None,
        status: int | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        fault: Fault | None = None,
        after_processing: bool = False,
        times: int | None = 1,
        delay: float = 0.0,
    ) -> Injection:
        """Replace the answer to the next ``times`` matching requests (``None``: all).

        ``path`` is a glob over the route relative to the base path (``"/sonic/task/*"``).
        Give either ``status`` (answered with ``body``, default an error body in the current
        envelope, and ``headers``) or ``fault``:

        * ``"connect_error"``: ``httpx.ConnectError``; the server never saw the request.
        * ``"read_timeout"``: ``httpx.ReadTimeout``.
        * ``"remote_protocol_error"``: ``httpx.RemoteProtocolError`` (connection dropped).

        With ``after_processing=False`` (default) the request is not processed at all (no
        auth, no rate limit, no charge). With ``True`` it is processed in full (tasks created,
        credits charged, budget spent) and only the answer is replaced: this is how a test
        proves that an SDK never re-sends a paid create after a read timeout::

            fake.inject("/sonic/create", fault="read_timeout", after_processing=True)

        ``connect_error`` cannot happen after processing. Injections are matched in the
        order they were added; each request uses at most one.
        """
        if (status is None) == (fault is None):
            raise ValueError("give exactly one of status= or fault=")
        if fault is not None and fault not in get_args(Fault):
            raise ValueError(f"fault must be one of {get_args(Fault)}")
        if fault == "connect_error" and after_processing:
            raise ValueError("a connect_error happens before the server sees the request")
        if fault is not None and (body is not None or headers):
            raise ValueError("body= and headers= go with status=, not with fault=")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        injection = Injection(
            path=path,
            method=method.upper() if method else None,
            status=status,
            body=body,
            headers=dict(headers or {}),
            fault=fault,
            after_processing=after_processing,
            delay=delay,
            times=times,
        )
        self._injections.append(injection)
        return injection

    def clear_injections(self) -> None:
        """Drop every pending injection."""
        self._injections.clear()

    @property
    def requests(self) -> tuple[RequestRecord, ...]:
        """Every request so far, in arrival order."""
        return tuple(self._requests)

    def requests_to(self, path: str, *, method: str | None = None) -> list[RequestRecord]:
        """The logged requests whose route matches the glob ``path`` (``"/sonic/task/*"``)."""
        wanted = method.upper() if method else None
        return [
            r
            for r in self._requests
            if fnmatch.fnmatchcase(r.path, path) and (wanted is None or r.method == wanted)
        ]

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._requests.clear()

    @property
    def downloads(self) -> tuple[DownloadRecord, ...]:
        """Every fetch of clip audio from the fake CDN so far, in arrival order."""
        return tuple(self._downloads)

    @property
    def webhook_deliveries(self) -> tuple[WebhookDelivery, ...]:
        """Every webhook delivery attempt so far (``fake.webhooks.deliveries``)."""
        return self.webhooks.deliveries

    # ------------------------------------------------------------------ wiring

    def transport(self) -> FakeTransport:
        """An ``httpx.AsyncBaseTransport`` answering from this fake::

        httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url)
        """
        from ._transport import FakeTransport

        return FakeTransport(self)

    def client(self, api_key: str | None = None, **kwargs: Any) -> MusicAPI:
        """A ``musicapi_async.MusicAPI`` wired to this fake (key: ``default_key``).

        ``kwargs`` go to the constructor; ``base_url`` and ``http_client`` are filled in
        unless given, and so is ``expected_durations`` from the fake's fixed durations
        (``sonic_duration=5.0``: the client's first poll comes at about 5 s, not when a
        real Sonic task would end). Close it as usual
        (``async with fake.client() as api: ...``).
        """
        from musicapi_async import MusicAPI  # lazy: the fake must not need the SDK

        key = api_key if api_key is not None else self.default_key
        if key is None:
            raise ValueError("this fake has no default key: pass api_key=")
        kwargs.setdefault("base_url", self.base_url)
        kwargs.setdefault("expected_durations", self._fixed_durations())
        if "http_client" not in kwargs:
            kwargs["http_client"] = httpx.AsyncClient(transport=self.transport())
        return MusicAPI(api_key=key, **kwargs)

    def _fixed_durations(self) -> dict[str, float]:
        """The fake's fixed task durations by family, for a client's ``expected_durations``
        (a duration given as a function is left out: the client keeps its prior)."""
        return {
            family: float(duration)
            for family, duration in (
                ("sonic", self.sonic_duration),
                ("producer", self.producer_duration),
                ("nuro", self.nuro_duration),
            )
            if isinstance(duration, (int, float))
            and not isinstance(duration, bool)
            and duration > 0
        }

    # ------------------------------------------------------------------ the server

    async def handle(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        query: str = "",
        *,
        read_timeout: float | None = None,
    ) -> FakeResponse:
        """Answer one HTTP request; the transport-agnostic core.

        ``path`` is the URL path as received, base path included (``/api/v1/sonic/create``);
        ``query`` the raw query string without ``?``. Returns a :class:`FakeResponse` whose
        ``fault`` is set when the client must see a transport error instead of an answer.
        ``read_timeout``: the client's; an answer delayed longer (``latency=``, an
        injection's ``delay=``) is a ``read_timeout`` fault at that time, processed or not
        as it would have been (an injected ``connect_error`` stays one).
        """
        now = self._clock.now()
        if self._t0 is None:
            self._t0 = now
        self._settle(now)
        method = method.upper()
        lowered = {k.lower(): v for k, v in headers.items()}
        route = path[len(self._base_path) :] if _is_under(path, self._base_path) else None
        shown_path = route if route is not None else path
        try:
            decoded: Any = _strict_json(body) if body else None
        except (ValueError, RecursionError):
            decoded = None
        injection = self._take_injection(method, shown_path)

        def record(answer: _Answer | None, *, fault: Fault | None, processed: bool) -> None:
            self._requests.append(
                RequestRecord(
                    time=now,
                    method=method,
                    path=shown_path,
                    query=query,
                    json=decoded,
                    headers=lowered,
                    api_key=answer.api_key if answer else _bearer_key(lowered),
                    status=None if fault or answer is None else answer.status,
                    response=None if fault or answer is None else answer.body,
                    fault=fault,
                    processed=processed,
                    injected=injection is not None,
                    task_ids=answer.task_ids if answer else (),
                )
            )

        if injection is not None and not injection.after_processing:
            answer = None if injection.fault else self._injected_answer(injection)
            record(answer, fault=injection.fault, processed=False)
            return await self._finish(answer, injection.fault, injection.delay, read_timeout)

        answer = self._process(method, route, lowered, body, query, now)
        fault: Fault | None = None
        delay = self._latency(shown_path)
        if injection is not None:
            delay += injection.delay
            fault = injection.fault
            if fault is None:
                injected = self._injected_answer(injection)
                injected.task_ids, injected.api_key = answer.task_ids, answer.api_key
                answer = injected
        record(answer, fault=fault, processed=True)
        return await self._finish(answer, fault, delay, read_timeout)

    async def handle_cdn(
        self, method: str, url: str, headers: Mapping[str, str]
    ) -> FakeResponse | None:
        """Answer a fetch of clip audio (the fake CDN); ``None`` when ``url`` is not on it.

        ``None`` (the transport then raises ``httpx.ConnectError``) for hosts other than the
        fake's audio hosts, and for every host when ``serve_audio`` is off. Otherwise the
        fetch is logged in :attr:`downloads` and answered: 200 with the clip's WAV (GET) or
        its headers (HEAD), 404 for an unknown, unfinished or failed clip, 405 for other
        methods. No key is needed, as on a public CDN.
        """
        parsed = httpx.URL(url)
        if not self.serve_audio or parsed.host.lower() not in CDN_HOSTS:
            return None
        now = self._clock.now()
        method = method.upper()
        found = audio_clip_id(parsed)
        audio = self._clip_audio(found[0], found[1], now) if found else None
        size, answer = audio_response(method, audio)
        self._downloads.append(
            DownloadRecord(
                time=now,
                method=method,
                url=url,
                headers={k.lower(): v for k, v in headers.items()},
                status=answer.status,
                clip_id=found[0] if found else None,
                size=size,
            )
        )
        return answer

    def _clip_audio(self, clip_id: str, kind: AudioURLKind, now: float) -> bytes | None:
        seed = self._audio_seeds.get(clip_id)
        if seed is None:
            info = self._clips.get(clip_id)
            if info is None:
                return None
            seed = audio_seed(clip_id, info.title)
        state = self._clip_tasks.get(clip_id)
        if state is not None:
            task = state.public
            if task.failed:
                return None
            spec = next((c for c in state.clips if c.clip_id == clip_id), state.clips[0])
            phase = self._clip_state(task, spec, now)
            if phase != "succeeded" and not (kind == "stream" and phase == "streaming"):
                return None
        return synth_wav(seed, self.audio_seconds)

    async def _finish(
        self,
        answer: _Answer | None,
        fault: Fault | None,
        delay: float,
        read_timeout: float | None = None,
    ) -> FakeResponse:
        if read_timeout is not None and delay > read_timeout and fault != "connect_error":
            # The client stops reading first: a read timeout, whatever was processed.
            await anyio.sleep(read_timeout)
            return FakeResponse(0, {}, b"", fault="read_timeout")
        if delay > 0:
            await anyio.sleep(delay)
        if fault is not None or answer is None:
            return FakeResponse(0, {}, b"", fault=fault)
        headers = {**_JSON_HEADERS, "x-request-id": str(uuid4()), **answer.headers}
        if isinstance(answer.body, bytes):
            content = answer.body
        elif isinstance(answer.body, str):
            content = answer.body.encode()
        else:
            content = json.dumps(answer.body).encode()
        return FakeResponse(answer.status, headers, content)

    def _take_injection(self, method: str, path: str) -> Injection | None:
        for injection in self._injections:
            if injection.exhausted:
                continue
            if injection.method is not None and injection.method != method:
                continue
            if fnmatch.fnmatchcase(path, injection.path):
                injection.hits += 1
                return injection
        return None

    def _injected_answer(self, injection: Injection) -> _Answer:
        status = injection.status or 500
        body = injection.body
        if body is None:
            if status == 202:
                body = {"type": "not_ready"}
            elif status < 400:
                body = {"message": "success"}
            else:
                body = self._error_body(status, d.STATUS_MESSAGES.get(status, "Error."))
        return _Answer(status, body, dict(injection.headers))

    def _latency(self, path: str) -> float:
        for pattern, seconds in self.latency.items():
            if fnmatch.fnmatchcase(path, pattern):
                return seconds
        return 0.0

    def _process(
        self,
        method: str,
        route: str | None,
        headers: Mapping[str, str],
        body: bytes,
        query: str,
        now: float,
    ) -> _Answer:
        try:
            answer = self._dispatch(method, route, headers, body, query, now)
        except Reject as reject:
            error = self._error_body(reject.status, reject.message)
            answer = _Answer(reject.status, error, reject.headers)
        answer.api_key = _bearer_key(headers)
        return answer

    def _dispatch(
        self,
        method: str,
        route: str | None,
        headers: Mapping[str, str],
        body: bytes,
        query: str,
        now: float,
    ) -> _Answer:
        if route is None:
            raise Reject(404, d.STATUS_MESSAGES[404])
        if self.nuro_retired and _is_under(route, "/nuro"):
            raise Reject(410, d.MSG_NURO_GONE)
        handler, param = self._route(method, route)
        key = self._authenticate(headers)
        self._spend_budget(key, now)
        payload: Any = {}
        if method == "POST":
            try:
                payload = _strict_json(body)
            except (ValueError, RecursionError):  # not JSON, or nested too deep to read
                payload = None
            if not isinstance(payload, dict):
                raise Reject(400, d.MSG_NOT_JSON)
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        return handler(_Ctx(route, key, payload, params, param, now))

    def _route(self, method: str, route: str) -> tuple[_Handler, str | None]:
        for prefix, family in self._task_routes.items():
            if _is_under(route, prefix):
                if method != "GET":
                    raise Reject(405, d.STATUS_MESSAGES[405])
                rest = route[len(prefix) :].strip("/")
                if "/" in rest:
                    raise Reject(404, d.STATUS_MESSAGES[404])
                return self._poll_handler(family), rest or None
        table = self._post if method == "POST" else self._get if method == "GET" else {}
        if route in table:
            return table[route], None
        if route in self._post or route in self._get:
            raise Reject(405, d.STATUS_MESSAGES[405])
        raise Reject(404, d.STATUS_MESSAGES[404])

    def _authenticate(self, headers: Mapping[str, str]) -> str:
        value = headers.get("authorization")
        if value is None:
            raise Reject(401, d.MSG_NO_AUTH)
        key = _bearer_key(headers)
        if key is None:
            raise Reject(401, d.MSG_BAD_AUTH)
        if key not in self._accounts:
            raise Reject(401, d.MSG_UNKNOWN_KEY)
        return key

    def _spend_budget(self, key: str, now: float) -> None:
        if self._limiter is None:
            return
        wait = self._limiter.acquire(key, now)
        if wait > 0:
            self._throttled[key] += 1
            seconds = max(1, math.ceil(wait - EPS))
            raise Reject(
                429,
                d.MSG_RATE_LIMITED.format(seconds=seconds),
                headers={"retry-after": str(seconds)},
            )

    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        envelope = self._error_envelope
        if envelope == "error":
            return {"error": message}
        if envelope == "type_error":
            return {"type": d.STATUS_TYPES.get(status, "error"), "error": message}
        if envelope == "code_message":
            return {"code": status, "message": message}
        return {"message": message}

    # ------------------------------------------------------------------ credits and tasks

    def _price(self, key: str) -> int:
        if key in self.prices:
            return self.prices[key]
        base = key.split(":", 1)[0]
        return self.prices.get(base, 0)

    def _pay(self, ctx: _Ctx, price_key: str | None = None) -> tuple[int, int]:
        """Charge the price of ``price_key`` (default: the route) to the request's key;
        returns the credits taken from (extra_credits, credits)."""
        price = self._price(price_key or ctx.route)
        account = self._accounts[ctx.key]
        if price <= 0:
            return (0, 0)
        if account.credits + account.extra_credits < price:
            raise Reject(self.no_credits_status.get(ctx.route, 403), d.MSG_NO_CREDITS)
        from_extra = min(max(account.extra_credits, 0), price)
        account.extra_credits -= from_extra
        account.credits -= price - from_extra
        return (from_extra, price - from_extra)

    def _settle_now(self) -> None:
        try:
            now = self._clock.now()
        except RuntimeError:  # outside an event loop: the time the next one will start at
            now = self._clock.estimate()
        self._settle(now)

    def _settle(self, now: float) -> None:
        if not self._unsettled:
            return
        remaining = []
        for state in self._unsettled:
            task = state.public
            if now + EPS < task.done_at:
                remaining.append(state)
                continue
            state.settled = True
            refund = task.refund
            account = self._accounts.get(task.api_key)
            if refund and account is not None:
                from_extra, from_credits = state.charged
                back_to_credits = min(refund, from_credits)
                account.credits += back_to_credits
                account.extra_credits += min(refund - back_to_credits, from_extra)
        self._unsettled = remaining

    def _start_task(
        self,
        ctx: _Ctx,
        *,
        family: Family,
        task_type: str,
        price_key: str,
        clips: list[dict[str, Any]],
        request: Mapping[str, Any] | None = None,
        batch_id: str | None = None,
    ) -> FakeTask:
        try:
            self.webhooks.check_request(ctx.body if request is None else request, ctx.body)
            charged = self._pay(ctx, price_key)
        except Reject:
            for fields in clips:
                self._clips.pop(fields.get("clip_id", ""), None)
            raise
        plan = self._plans.popleft() if self._plans else _Plan(None, None, None)
        default_duration = {
            "sonic": self.sonic_duration,
            "producer": self.producer_duration,
            "nuro": self.nuro_duration,
        }[family]
        task = FakeTask(
            task_id=str(uuid4()),
            family=family,
            endpoint=ctx.route,
            task_type=task_type,
            request=MappingProxyType(dict(ctx.body if request is None else request)),
            api_key=ctx.key,
            created_at=ctx.now,
            duration=0.0,
            outcome="success",
            price=sum(charged),
            clip_ids=tuple(c["clip_id"] for c in clips if "clip_id" in c),
            batch_id=batch_id,
            clock=self._clock.now,
        )
        duration_spec = plan.duration if plan.duration is not None else default_duration
        outcome_spec = plan.outcome if plan.outcome is not None else self.outcome
        duration = max(
            0.0, float(duration_spec(task) if callable(duration_spec) else duration_spec)
        )
        outcome: Outcome = outcome_spec(task) if callable(outcome_spec) else outcome_spec
        if outcome == "failure":
            outcome = "failed"
        try:
            _check_outcome(outcome, "the outcome function's result", spec=False)
        except ValueError:
            # A misuse of the fake (an outcome function's bad result) costs the key nothing.
            account = self._accounts[ctx.key]
            account.extra_credits += charged[0]
            account.credits += charged[1]
            for fields in clips:
                self._clips.pop(fields.get("clip_id", ""), None)
            raise
        if outcome == "partial" and len(clips) <= 1:
            outcome = "failed"
        message = plan.failure_message or _FAILURE_MESSAGES.get(outcome, d.MSG_TASK_FAILED)
        task = evolve(
            task,
            duration=duration,
            outcome=outcome,
            failure_message=message if outcome != "success" else None,
        )
        n = len(clips)
        specs = [
            _ClipSpec(
                clip_id=fields.get("clip_id", ""),
                offset=max(0.0, duration - self.clip_spread * (n - 1 - i)),
                fails=outcome == "partial" and i == n - 1,
                fields=fields,
            )
            for i, fields in enumerate(clips)
        ]
        state = _TaskState(task, specs, charged)
        self._tasks[task.task_id] = state
        self._public_tasks[task.task_id] = task
        self._unsettled.append(state)
        for spec in specs:
            if spec.clip_id:
                self._clip_tasks[spec.clip_id] = state
        self.webhooks.task_started(task, ctx.body)
        return task

    def _submitted(self, task: FakeTask, **extra: Any) -> _Answer:
        return _Answer(
            200, {"message": "success", "task_id": task.task_id, **extra}, task_ids=(task.task_id,)
        )

    # ------------------------------------------------------------------ content

    def _iso(self, now: float) -> str:
        start = now if self._t0 is None else self._t0
        moment = self.epoch + timedelta(seconds=now - start)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def _next_duration(self) -> float:
        value = d.CLIP_DURATIONS[self._durations_handed % len(d.CLIP_DURATIONS)]
        self._durations_handed += 1
        return value

    def _checker(self, ctx: _Ctx, body: Mapping[str, Any] | None = None) -> Checker:
        return Checker(
            ctx.route,
            ctx.body if body is None else body,
            length_limits=self.length_limits,
            refused_models=self.refused_models,
        )

    def _known_clip(self, check: Checker, name: str = "clip_id") -> str:
        clip_id = check.string(name, required=True)
        assert clip_id is not None
        if self.strict_clips and clip_id not in self._clips:
            raise Reject(404, d.MSG_CLIP_NOT_FOUND)
        return clip_id

    def _sonic_clip(
        self,
        ctx: _Ctx,
        request: Mapping[str, Any],
        *,
        title: str | None = None,
        lyrics: str | None = None,
        source: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        clip_id = str(uuid4())
        self._songs += 1
        source_info = self._clips.get(source) if source else None
        mv = _upstream_model(request.get("mv") or (source_info.mv if source_info else None))
        prompt = request.get("prompt") or request.get("lyrics")
        if lyrics is None and not request.get("make_instrumental"):
            if request.get("custom_mode") and prompt and not request.get("auto_lyrics"):
                lyrics = str(prompt)
            elif source_info is not None and source_info.lyrics:
                lyrics = source_info.lyrics
            else:
                lyrics = d.DEFAULT_LYRICS
        if title is None:
            title = request.get("title") or (source_info.title if source_info else None)
            title = title or f"Fake Song {self._songs}"
        fields: dict[str, Any] = {
            "clip_id": clip_id,
            "title": title,
            "tags": request.get("tags") or "pop",
            "lyrics": lyrics,
            "image_url": f"https://cdn2.suno.ai/image_{clip_id}.jpeg",
            "audio_url": f"https://cdn1.suno.ai/{clip_id}.mp3",
            "video_url": f"https://cdn1.suno.ai/{clip_id}.mp4",
            "created_at": self._iso(ctx.now),
            "mv": mv,
            "gpt_description_prompt": request.get("gpt_description_prompt"),
            "negative_tags": request.get("negative_tags"),
            "duration": self._next_duration(),
            "style_weight": request.get("style_weight"),
            "weirdness_constraint": request.get("weirdness_constraint"),
        }
        fields.update(extra or {})
        self._clips[clip_id] = _ClipInfo(title, lyrics, mv)
        description = request.get("gpt_description_prompt") or prompt or title
        self._audio_seeds[clip_id] = audio_seed(clip_id, description, request.get("tags"))
        return fields

    def _render_sonic_clip(self, spec: _ClipSpec, state: str) -> dict[str, Any]:
        fields = dict(spec.fields)
        if state in ("succeeded",):
            if self.duration_as_string and isinstance(fields["duration"], float):
                fields["duration"] = f"{fields['duration']:.2f}"
        else:
            fields.update(video_url=None, duration=None)
            if state == "streaming":
                fields["audio_url"] = f"https://audiopipe.suno.ai/?item_id={spec.clip_id}"
            else:
                fields["audio_url"] = None
            if state == "pending":
                fields["image_url"] = None
        return {"clip_id": fields.pop("clip_id"), "state": state, **fields}

    def _clip_state(self, task: FakeTask, spec: _ClipSpec, now: float) -> str:
        elapsed = now - task.created_at
        if task.failed:
            # A task that fails as a whole shows no finished clip before it fails: its
            # clips' audio is never served, and every credit is refunded.
            end = task.duration
        else:
            end = spec.offset
            if elapsed + EPS >= end:
                return "failed" if spec.fails else "succeeded"
        fraction = elapsed / end if end > 0 else 1.0
        if fraction < d.PHASE_RUNNING:
            return "pending"
        return "running" if fraction < d.PHASE_STREAMING else "streaming"

    def _failure_body(self, task: FakeTask) -> dict[str, Any]:
        text_key = "error" if self._error_envelope in ("error", "type_error") else "message"
        return {"type": task.outcome, text_key: task.failure_message}

    def _webhook_payload(self, task_id: str, at: float) -> dict[str, Any]:
        """The task at ``at`` as a webhook carries it: the poll answer once done, a 200
        snapshot before (a streaming event), whatever ``not_ready_style`` says."""
        state = self._tasks[task_id]
        task = state.public
        if task.family == "sonic" and at + EPS < task.done_at:
            clips = [self._render_sonic_clip(c, self._clip_state(task, c, at)) for c in state.clips]
            return {"code": 200, "data": clips, "message": "success"}
        poll = {"sonic": self._poll_sonic, "producer": self._poll_producer}.get(task.family)
        answer = (poll or self._poll_nuro)(state, max(at, task.done_at))
        return dict(answer.body)

    # ------------------------------------------------------------------ polls

    def _poll_handler(self, family: Family) -> _Handler:
        def poll(ctx: _Ctx) -> _Answer:
            if ctx.param is None:
                raise Reject(400, d.MSG_MISSING_TASK_ID)
            state = self._tasks.get(ctx.param)
            if state is None or state.public.family != family or state.public.api_key != ctx.key:
                raise Reject(self._unknown_task_status, d.MSG_TASK_NOT_FOUND)
            if family == "sonic":
                return self._poll_sonic(state, ctx.now)
            if family == "producer":
                return self._poll_producer(state, ctx.now)
            return self._poll_nuro(state, ctx.now)

        return poll

    def _poll_sonic(self, state: _TaskState, now: float) -> _Answer:
        task = state.public
        if now + EPS >= task.done_at:
            if task.failed:
                return _Answer(200, self._failure_body(task))
            clips = [
                self._render_sonic_clip(c, self._clip_state(task, c, now)) for c in state.clips
            ]
            return _Answer(200, {"code": 200, "data": clips, "message": "success"})
        if self._not_ready_style == "202":
            return _Answer(202, {"type": "not_ready"})
        if now - task.created_at + EPS < self.initial_not_ready:
            return _Answer(200, {"type": "not_ready"})
        clips = [self._render_sonic_clip(c, self._clip_state(task, c, now)) for c in state.clips]
        return _Answer(200, {"code": 200, "data": clips, "message": "success"})

    def _poll_producer(self, state: _TaskState, now: float) -> _Answer:
        task = state.public
        if now + EPS >= task.done_at:
            if task.failed:
                body = {
                    "code": 200,
                    "status": "FAILED",
                    "message": task.failure_message,
                    "data": [],
                }
                return _Answer(200, body)
            data = [dict(c.fields) for c in state.clips]
            return _Answer(
                200, {"code": 200, "status": "SUCCESS", "message": "success", "data": data}
            )
        if self._not_ready_style == "202":
            return _Answer(202, {"type": "not_ready"})
        if now - task.created_at < task.duration * d.PHASE_RUNNING:
            return _Answer(
                200, {"code": 200, "status": "PENDING", "message": "pending", "data": []}
            )
        data = [
            {
                **spec.fields,
                "state": "running",
                "audio_url": None,
                "wav_url": None,
                "duration": None,
            }
            for spec in state.clips
            if "state" in spec.fields  # a download result has no in-progress form
        ]
        return _Answer(200, {"code": 200, "status": "RUNNING", "message": "running", "data": data})

    def _poll_nuro(self, state: _TaskState, now: float) -> _Answer:
        task = state.public
        fields = dict(state.clips[0].fields)
        elapsed = now - task.created_at
        if elapsed + EPS >= task.duration:
            if task.failed:
                fields.update(status="failed", audio_url=None, type=task.outcome)
                fields["message"] = task.failure_message
            return _Answer(200, {"task_id": task.task_id, **fields})
        fraction = elapsed / task.duration
        fields.update(
            status="pending" if fraction < d.PHASE_RUNNING else "running",
            progress=min(99, int(fraction * 100)),
            audio_url=None,
        )
        return _Answer(200, {"task_id": task.task_id, **fields})

    # ------------------------------------------------------------------ sonic: tasks

    def _sonic_create(self, ctx: _Ctx) -> _Answer:
        task = self._create_one(ctx, ctx.body)
        return self._submitted(task)

    def _create_one(self, ctx: _Ctx, body: Any, batch_id: str | None = None) -> FakeTask:
        if not isinstance(body, dict):
            raise Reject(400, d.MSG_NOT_JSON)
        check = Checker(
            "/sonic/create",
            body,
            length_limits=self.length_limits,
            refused_models=self.refused_models,
        )
        task_type = check_sonic_create(check)
        source = body.get("continue_clip_id")
        if isinstance(source, str) and source:
            self._known_clip(check, "continue_clip_id")
        count = 1 if task_type == "concat_music" else 2
        title = None
        if task_type == "concat_music":
            info = self._clips.get(str(source))
            title = f"{info.title} (full)" if info and info.title else None
        clips = [self._sonic_clip(ctx, body, source=source, title=title) for _ in range(count)]
        return self._start_task(
            ctx,
            family="sonic",
            task_type=task_type,
            price_key=f"/sonic/create:{task_type}",
            clips=clips,
            request=body,
            batch_id=batch_id,
        )

    def _sonic_upload_extend(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        check.generation_fields()
        url = check.string("url", required=True)
        _check_url(check, url)
        check.boolean("custom_mode", required=True)
        check.model(required=True)
        check.number("continue_at", minimum=0.0)
        step = "extend" if ctx.route.endswith("extend") else "cover"
        upload_id = str(uuid4())
        self._clips[upload_id] = _ClipInfo("Uploaded audio", None, None)
        # Only the extend flavour concatenates ("upload + extend + concat"; CONTRACT §4).
        part = "extended" if step == "extend" else None
        clips = self._concat_clips(ctx, check, source=upload_id, count=2, part=part)
        task = self._start_task(
            ctx, family="sonic", task_type=f"upload_{step}", price_key=ctx.route, clips=clips
        )
        steps = {
            "upload": {"success": True, "clip_id": upload_id},
            step: {"success": True, "task_id": task.task_id},
        }
        answer = self._submitted(task, steps=steps)
        answer.body = {"code": 200, **answer.body}
        return answer

    def _concat_clips(
        self, ctx: _Ctx, check: Checker, *, source: str | None, count: int, part: str | None
    ) -> list[dict[str, Any]]:
        """``count`` clips; with ``auto_concat`` (and a ``part``), each followed by the full song.

        The results then come in pairs, ``section`` telling the new ``part`` (``"extended"``,
        ``"replaced"``) from the ``"full"`` song (CONTRACT §4, §9.2).
        """
        if part is None or not check.get("auto_concat"):
            return [self._sonic_clip(ctx, ctx.body, source=source) for _ in range(count)]
        return [
            self._sonic_clip(ctx, ctx.body, source=source, extra={"section": section})
            for _ in range(count)
            for section in (part, "full")
        ]

    def _sonic_create_voice(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        _check_url(check, check.string("audio_url", required=True))
        check.string("webhook_url")
        check.string("webhook_secret")
        persona_id = str(uuid4())
        clip = self._sonic_clip(
            ctx, {"title": "Voice", "make_instrumental": True}, extra={"persona_id": persona_id}
        )
        task = self._start_task(
            ctx, family="sonic", task_type="create_voice", price_key=ctx.route, clips=[clip]
        )
        warning = "Voices are kept for 30 days; download what you need."
        return self._submitted(task, warning=warning)

    def _sonic_sample(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        check.generation_fields()
        if check.has("url") == check.has("sample_clip_id"):
            raise check.fail("Exactly one of 'url' or 'sample_clip_id' is required.")
        if check.has("url"):
            _check_url(check, check.string("url"))
        else:
            self._known_clip(check, "sample_clip_id")
        start = check.number("chop_sample_start_s", required=True, minimum=0.0)
        end = check.number("chop_sample_end_s", required=True, minimum=0.0)
        if start is not None and end is not None and end <= start:
            raise check.fail(
                "The 'chop_sample_end_s' field should be greater than chop_sample_start_s."
            )
        check.boolean("custom_mode", required=True)
        check.model(required=True)
        check.boolean("make_instrumental", required=True)
        clips = [self._sonic_clip(ctx, ctx.body) for _ in range(2)]
        task = self._start_task(
            ctx, family="sonic", task_type="sample", price_key=ctx.route, clips=clips
        )
        steps = {
            "upload": {"success": True},
            "sample": {"success": True, "task_id": task.task_id},
        }
        answer = self._submitted(task, steps=steps)
        answer.body = {"code": 200, **answer.body}
        return answer

    def _sonic_mashup(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        check.generation_fields()
        ids = check.get("mashup_clip_ids")
        if (
            not isinstance(ids, list)
            or len(ids) != 2
            or not all(isinstance(i, str) and i for i in ids)
        ):
            raise check.fail("The 'mashup_clip_ids' field should hold exactly 2 clip ids.")
        if self.strict_clips and any(i not in self._clips for i in ids):
            raise Reject(404, d.MSG_CLIP_NOT_FOUND)
        check.boolean("custom_mode", required=True)
        check.model(required=True)
        clips = [self._sonic_clip(ctx, ctx.body, source=ids[0]) for _ in range(2)]
        task = self._start_task(
            ctx, family="sonic", task_type="mashup", price_key=ctx.route, clips=clips
        )
        return self._submitted(task)

    def _sonic_replace_section(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        check.generation_fields()
        source = self._known_clip(check)
        check.model(required=True)
        start = check.number("infill_start_s", required=True, minimum=0.0)
        end = check.number("infill_end_s", required=True, minimum=0.0)
        if start is not None and end is not None and end <= start:
            raise check.fail("The 'infill_end_s' field should be greater than infill_start_s.")
        check.string("infill_lyrics")
        clips = self._concat_clips(ctx, check, source=source, count=1, part="replaced")
        task = self._start_task(
            ctx, family="sonic", task_type="replace_section", price_key=ctx.route, clips=clips
        )
        return self._submitted(task)

    def _sonic_stems(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        source = self._known_clip(check)
        check.string("webhook_url")
        full = ctx.route.endswith("full")
        names = d.STEMS_FULL if full else d.STEMS_BASIC
        clips = [
            self._sonic_clip(
                ctx,
                {"make_instrumental": name != "Vocals"},
                source=source,
                title=name,
                extra={"stem": name.lower().replace(" ", "_")},
            )
            for name in names
        ]
        task = self._start_task(
            ctx,
            family="sonic",
            task_type="stems_full" if full else "stems_basic",
            price_key=ctx.route,
            clips=clips,
        )
        return self._submitted(task)

    def _sonic_batch(self, ctx: _Ctx) -> _Answer:
        items = ctx.body.get("items")
        if not isinstance(items, list) or not items:
            raise Reject(400, "The 'items' field should be a non-empty list.")
        if len(items) > 10:
            raise Reject(400, "A batch holds at most 10 items.")
        batch_id = str(uuid4())
        entries: list[dict[str, Any]] = []
        created: list[str] = []
        for index, item in enumerate(items):
            try:
                task = self._create_one(ctx, item, batch_id=batch_id)
            except Reject as reject:
                entries.append({"index": index, "status": reject.status, "error": reject.message})
            else:
                entries.append({"index": index, "task_id": task.task_id})
                created.append(task.task_id)
        self._batches[batch_id] = _Batch(ctx.key, entries)
        body = {
            "message": "success",
            "batch_id": batch_id,
            "submitted": len(created),
            "tasks": entries,
        }
        return _Answer(200, body, task_ids=tuple(created))

    def _sonic_get_batch(self, ctx: _Ctx) -> _Answer:
        batch_id = ctx.query.get("batch_id")
        if not batch_id:
            raise Reject(400, "missing batch id.")
        batch = self._batches.get(batch_id)
        if batch is None or batch.key != ctx.key:
            raise Reject(self._unknown_task_status, "batch not found.")
        tasks = [
            {"task_id": e["task_id"], "status": self._tasks[e["task_id"]].public.status_at(ctx.now)}
            for e in batch.entries
            if "task_id" in e
        ]
        return _Answer(200, {"batch_id": batch_id, "submitted": len(tasks), "tasks": tasks})

    # ------------------------------------------------------------------ sonic: sync

    def _sonic_upload(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        _check_url(check, check.string("url", required=True))
        self._pay(ctx)
        clip_id = str(uuid4())
        self._clips[clip_id] = _ClipInfo("Uploaded audio", d.DEFAULT_LYRICS, None)
        return _Answer(200, {"code": 200, "message": "success", "clip_id": clip_id})

    def _sonic_persona(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        legacy = "continue_clip_id" in ctx.body and "clip_id" not in ctx.body
        clip_field = "continue_clip_id" if legacy else "clip_id"
        if not check.has("name") or not check.has(clip_field):
            raise check.fail(f"name and {clip_field} are required fields.")
        for name in ("name", "describe", "styles", "description", "vox_audio_id"):
            check.string(name)
        check.number("vocal_start_s", minimum=0.0)
        check.number("vocal_end_s", minimum=0.0)
        self._known_clip(check, clip_field)
        self._pay(ctx)
        body = {"code": 200, "persona_id": str(uuid4()), "message": "success"}
        return _Answer(200, body)

    def _sonic_wav(self, ctx: _Ctx) -> _Answer:
        clip_id = self._known_clip(self._checker(ctx))
        self._pay(ctx)
        url = f"https://cdn1.suno.ai/{clip_id}.wav"
        return _Answer(200, {"message": "success", "data": {"wav_url": url}})

    def _sonic_midi(self, ctx: _Ctx) -> _Answer:
        clip_id = self._known_clip(self._checker(ctx))
        self._midi_calls[clip_id] += 1
        if self._midi_calls[clip_id] <= self.midi_not_ready_calls:
            return _Answer(202, {"type": "not_ready"})
        self._pay(ctx)
        instruments = [
            {
                "name": "Piano",
                "notes": [
                    {"pitch": 60, "start": 0.0, "end": 0.5, "velocity": 96},
                    {"pitch": 64, "start": 0.5, "end": 1.0, "velocity": 90},
                ],
            },
            {"name": "Bass", "notes": [{"pitch": 36, "start": 0.0, "end": 1.0, "velocity": 100}]},
        ]
        data = {"midi_url": f"https://cdn1.suno.ai/{clip_id}.mid", "instruments": instruments}
        return _Answer(200, {"code": 200, "message": "success", "data": data})

    def _sonic_aligned_lyrics(self, ctx: _Ctx) -> _Answer:
        clip_id = self._known_clip(self._checker(ctx))
        info = self._clips.get(clip_id)
        lyrics = info.lyrics if info is not None else d.DEFAULT_LYRICS
        if not lyrics:
            raise Reject(404, "No lyrics found for this clip.")
        if (ctx.key, clip_id) not in self._aligned_paid:
            self._pay(ctx)
            self._aligned_paid.add((ctx.key, clip_id))
        words = _SECTION_TAG.sub(" ", lyrics).split()
        alignment = [
            {
                "word": word,
                "start_s": round(i * 0.45, 2),
                "end_s": round(i * 0.45 + 0.4, 2),
                "p_align": 0.95,
                "success": True,
            }
            for i, word in enumerate(words)
        ]
        return _Answer(200, {"code": 200, "message": "success", "data": {"alignment": alignment}})

    def _utility(self, fields: dict[str, Any]) -> _Answer:
        if self.flat_utilities:
            return _Answer(200, {"code": 200, "message": "success", **fields})
        return _Answer(200, {"code": 200, "message": "success", "data": fields})

    def _sonic_bpm(self, ctx: _Ctx) -> _Answer:
        self._known_clip(self._checker(ctx))
        self._pay(ctx)
        return self._utility({"avg_bpm": 120.0, "max_bpm": 123.5, "min_bpm": 117.2})

    def _sonic_vox(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        clip_id = self._known_clip(check)
        start = check.number("vocal_start_s", minimum=0.0)
        end = check.number("vocal_end_s", minimum=0.0)
        start = 0.0 if start is None else start
        end = start + 30.0 if end is None else end
        if end <= start:
            raise check.fail("The 'vocal_end_s' field should be greater than vocal_start_s.")
        if end - start > 30.0 + EPS:
            raise check.fail("The vocal window should be at most 30 seconds.")
        self._pay(ctx)
        vox_id = str(uuid4())
        return self._utility(
            {
                "vox_audio_id": vox_id,
                "status": "complete",
                "source_clip_id": clip_id,
                "vocal_start_s": start,
                "vocal_end_s": end,
                "wave_response": {"waveform_url": f"https://cdn1.suno.ai/vox_{vox_id}.json"},
            }
        )

    def _sonic_upsample_tags(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        tags = check.string("tags", required=True)
        self._pay(ctx)
        return self._utility({"upsampled_tags": f"{tags}, polished production, wide stereo"})

    def _sonic_lyrics(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        if not check.has("description"):
            raise check.fail("description is required.")
        description = check.string("description")
        self._pay(ctx)
        topic = str(description).strip().rstrip(".")
        results = [
            {"title": f"Song of {topic[:40]}", "lyrics": f"[Verse]\n{topic}\n\n[Chorus]\nLa la la"},
            {"title": f"Ballad of {topic[:40]}", "lyrics": f"[Verse]\nOh {topic}\n\n[Outro]\nFade"},
        ]
        return _Answer(200, {"code": 200, "results": results, "message": "success"})

    def _sonic_download(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        clip_id = self._known_clip(check)
        formats = check.get("formats")
        if formats is None:
            formats = ["mp3"]
        if (
            not isinstance(formats, list)
            or not formats
            or any(f not in ("mp3", "m4a", "wav") for f in formats)
        ):
            raise check.fail("The 'formats' field should be a list of mp3, m4a or wav.")
        self._download_calls[clip_id] += 1
        if self._download_calls[clip_id] <= self.download_not_ready_calls:
            return _Answer(202, {"type": "not_ready"})
        self._pay(ctx)
        data = {f"{f}_url": f"https://cdn1.suno.ai/{clip_id}.{f}" for f in dict.fromkeys(formats)}
        return _Answer(200, {"code": 200, "message": "success", "data": data})

    def _get_credits(self, ctx: _Ctx) -> _Answer:
        account = self._accounts[ctx.key]
        return _Answer(200, {"credits": account.credits, "extra_credits": account.extra_credits})

    # ------------------------------------------------------------------ producer

    def _producer_clip(
        self, ctx: _Ctx, *, title: str | None, sound: Any, lyrics: Any, mv: Any, seed: Any
    ) -> dict[str, Any]:
        clip_id = str(uuid4())
        self._songs += 1
        title = title or f"Fake Track {self._songs}"
        cdn = f"https://musicapi-cdn.b-cdn.net/producer/{clip_id}"
        self._clips[clip_id] = _ClipInfo(title, lyrics if isinstance(lyrics, str) else None, None)
        self._audio_seeds[clip_id] = audio_seed(clip_id, sound or lyrics or title)
        return {
            "clip_id": clip_id,
            "title": title,
            "sound": sound,
            "lyrics": lyrics,
            "audio_url": f"{cdn}.m4a",
            "wav_url": f"{cdn}-wav.wav",
            "image_url": f"{cdn}.jpg",
            "video_url": None,
            "created_at": self._iso(ctx.now),
            "mv": mv or "Lyria 3 Pro",
            "seed": str(seed) if seed is not None else str(1000 + self._songs),
            "duration": self._next_duration(),
            "state": "succeeded",
        }

    def _producer_create(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        task_type = check.string("task_type") or "create_music"
        if task_type in d.PRODUCER_RETIRED_TASK_TYPES:
            raise Reject(410, f"The task_type '{task_type}' has been retired.")
        if task_type not in d.PRODUCER_TASK_TYPES:
            raise check.fail(f"The 'task_type' field is invalid: '{task_type}'.")
        for name in ("sound", "lyrics", "title", "mv", "instruction", "lyrics_text"):
            check.string(name)
        check.string("webhook_url")
        check.string("webhook_secret")
        seed = check.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (str, int, float))):
            raise check.fail("The 'seed' field should be a string or a number.")
        for name in ("starts_at", "ends_at", "starts", "ends", "extend_s"):
            check.number(name, minimum=0.0)
        check.number("length", minimum=1.0, maximum=240.0)
        for name in ("strength", "cover_strength"):
            check.number(name, minimum=0.0, maximum=1.0)
        if task_type == "create_music":
            if not check.has("sound") and not check.has("lyrics"):
                raise check.fail("The 'sound' or 'lyrics' field is required.")
        else:
            check.required("clip_id", suffix=f" when task_type = {task_type}")
            self._known_clip(check)
        start = check.get("starts_at") if check.has("starts_at") else check.get("starts")
        if task_type.startswith("extend") and start is None:
            raise check.fail(f"The 'starts_at' field is required when task_type = {task_type}.")
        if task_type.startswith("replace"):
            end = check.get("ends_at") if check.has("ends_at") else check.get("ends")
            if start is None or end is None:
                raise check.fail("The 'starts_at' and 'ends_at' fields are required.")
            if end <= start:
                raise check.fail("The 'ends_at' field should be greater than starts_at.")
        clip = self._producer_clip(
            ctx,
            title=ctx.body.get("title"),
            sound=ctx.body.get("sound"),
            lyrics=ctx.body.get("lyrics"),
            mv=ctx.body.get("mv"),
            seed=seed,
        )
        task = self._start_task(
            ctx, family="producer", task_type=task_type, price_key=ctx.route, clips=[clip]
        )
        return self._submitted(task)

    def _producer_upload(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        _check_url(check, check.string("audio_url", required=True))
        check.string("webhook_url")
        clip = self._producer_clip(
            ctx, title="Uploaded audio", sound=None, lyrics=None, mv=None, seed=None
        )
        task = self._start_task(
            ctx, family="producer", task_type="upload", price_key=ctx.route, clips=[clip]
        )
        return self._submitted(task)

    def _producer_download(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        clip_id = self._known_clip(check)
        fmt = check.get("format") or "mp3"
        if fmt not in ("mp3", "wav"):
            raise check.fail("The 'format' field should be mp3 or wav.")
        check.string("webhook_url")
        # The download result carries only the URL (CONTRACT §5): no clip_id, no state.
        item = {"audio_url": f"https://musicapi-cdn.b-cdn.net/producer/{clip_id}-download.{fmt}"}
        task = self._start_task(
            ctx, family="producer", task_type="download", price_key=ctx.route, clips=[item]
        )
        return self._submitted(task)

    # ------------------------------------------------------------------ nuro

    def _nuro_create(self, ctx: _Ctx) -> _Answer:
        check = self._checker(ctx)
        kind = check.get("type")
        if kind not in ("vocal", "bgm"):
            raise check.fail("The 'type' field should be 'vocal' or 'bgm'.")
        if kind == "vocal":
            lyrics = check.string("lyrics", required=True)
            duration = check.number("duration", minimum=30, maximum=240, integer=True)
            gender = check.get("gender")
            if gender is not None and gender not in ("Female", "Male"):
                raise check.fail("The 'gender' field should be Female or Male.")
        else:
            check.string("description", required=True)
            lyrics = None
            maximum = None if check.get("version") == "v2.0" else 60
            duration = check.number("duration", minimum=1, maximum=maximum, integer=True)
        clip_id = str(uuid4())
        body = ctx.body
        fields = {
            "status": "succeeded",
            "progress": 100,
            "audio_url": f"https://cdn.musicapi.ai/storage/v1/object/public/songs/song-{clip_id}.wav",
            "lyrics": lyrics,
            "duration": duration or (180 if kind == "vocal" else 60),
            "genre": _first(body.get("genre")) or "Pop",
            "mood": _first(body.get("mood")) or "Happy",
            "gender": body.get("gender") or ("Female" if kind == "vocal" else None),
            "timbre": body.get("timbre") or ("Warm" if kind == "vocal" else None),
        }
        # A Nuro task is flat: one result, no clip id on the wire.
        task = self._start_task(
            ctx, family="nuro", task_type=str(kind), price_key=ctx.route, clips=[fields]
        )
        self._audio_seeds[clip_id] = audio_seed(clip_id, body.get("description") or lyrics)
        self._clip_tasks[clip_id] = self._tasks[task.task_id]
        return self._submitted(task)


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _bearer_key(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, key = value.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or " " in key:
        return None
    return key


def _check_url(check: Checker, url: str | None) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise check.fail("The url should be a public http(s) URL.")


def _upstream_model(mv: Any) -> str:
    """The model id clips report: the upstream one (``sonic-v5`` → ``chirp-v5``)."""
    if not isinstance(mv, str) or not mv:
        return "chirp-v5"
    if mv.startswith("sonic-"):
        return "chirp-" + mv[len("sonic-") :]
    return mv
