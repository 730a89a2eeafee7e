"""Waiting for tasks: one scheduler per client polls every awaited task under the shared budget.

A MusicAPI key allows about one request every three seconds, and every poll is a request a
create cannot use. So instead of one poll loop per task, the client runs one scheduler:

* it polls only with spare budget, as a background request that user calls overtake, and
  queues at most one poll at the limiter, so a create waits at most one token interval;
* at each token it polls the task most likely to have finished since its last poll, judged
  from the task's age and the durations of the tasks that already finished (learned online
  per family and model, with a prior until some have), never the same task twice within
  ``min_poll_gap`` seconds;
* a task awaited by several coroutines is polled once for all of them, and its result is
  handed to each as soon as a poll sees it.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import inspect
import itertools
import logging
import math
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

import anyio
import attrs
from anyio.abc import TaskGroup
from attrs import frozen

from ._constants import (
    DEADLINE_LEAD,
    DEFAULT_MIN_POLL_GAP,
    DEFAULT_POLL_THRESHOLD,
    DEFAULT_WAIT_TIMEOUT,
    DURATION_MEMORY,
    EXPECTED_DURATION,
    LIMITER_OUTAGE,
    MAX_POLLS_IN_FLIGHT,
    UNREADABLE_POLLS,
    WEBHOOK_EARLY_KEEP,
    WEBHOOK_EARLY_MAX,
    WEBHOOK_FALLBACK_EVERY,
    WEBHOOK_FALLBACK_FACTOR,
    WEBHOOK_FALLBACK_GRACE,
    WEBHOOK_FALLBACK_MAX,
    WEBHOOK_FALLBACK_QUANTILE,
    WEBHOOK_FALLBACK_SAMPLES,
    WEBHOOK_UNCLAIMED_KEEP,
)
from ._exceptions import (
    APIConnectionError,
    MusicAPIError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from ._loops import LoopLocal
from ._models import ClipState, StrEnum, Task, TaskFamily, TaskRef, TaskStatus
from ._ratelimit import Limiter, Priority, Slot, TokenBucket, acquire_slot, limiter_interval
from ._retry import RetryPolicy

if TYPE_CHECKING:
    from ._client import MusicAPI

__all__ = ["ProgressState", "TaskProgress", "WaitTimeoutError"]

logger = logging.getLogger("musicapi_async")

_Key = tuple[TaskFamily, str]
#: Seconds between two looks at the candidates when none is worth a poll yet: at most this,
#: and at most this share of the shortest expected duration among the tasks followed (a
#: task expected in half a second must not wait a whole second for its first look).
_IDLE_LOOK = 1.0
_IDLE_LOOK_SHARE = 1 / 120
#: ...but never more often than this: a task running far past a short expected duration
#: would be looked at every few milliseconds for its whole life.
_IDLE_LOOK_MIN = 0.05
#: EM rounds of the duration estimator per new observation.
_EM_ROUNDS = 10
#: Where a task still running is assumed to end at the latest, in expected durations past
#: the longest task seen (see DurationModel).
_CENSORED_TAIL = 0.25
#: A backlog: at least this many tasks each more likely finished than not (see _pick).
_BACKLOG = 4
#: Seconds before ``DEADLINE_LEAD`` at most that tasks sharing a waiter's deadline are
#: looked at, one request interval apart (see Scheduler._last_looks).
_LAST_LOOK_SPREAD = 60.0
#: Longest wait before re-polling a task whose poll failed transiently.
_MAX_POLL_BACKOFF = 60.0
#: Seconds after its create that a task this client made and the server says it does not
#: know is polled again rather than given up: a new task may take a moment to be seen
#: everywhere, and a "not found" for a task just paid for invites creating it again.
_NOT_FOUND_GRACE = 60.0
#: A result held back by its task's hanging on_progress callback is handed out this many
#: seconds before the waiter's deadline, ahead of a cancel scope firing at that instant.
_CALLBACK_SLACK = 0.1
#: How often an ``await_task`` waiter re-reads the deadline of the cancel scopes around it
#: (seconds): half of ``DEADLINE_LEAD``, so one set or moved while it waits, with more than
#: that lead left, still gets its last look before it.
_SCOPE_LOOK = DEADLINE_LEAD / 2
#: Terminal results kept, so a new waiter on a finished task needs no request.
_RESULT_CACHE = 1024
#: Seconds the polling history of a task nobody awaits any more is kept (the default wait of
#: a Sonic task), at most _RESULT_CACHE of them: awaited again (a wait retried after a
#: timeout, a heartbeat loop of short waits), it is polled on from where it was, its minimum
#: gap and what its polls showed kept, not looked at again at once as a stranger.
_LEFT_KEEP = 600.0
#: Tasks submitted through this client remembered (their time, model, webhook), and so the
#: most delivered results of its own tasks kept until a waiter claims them.
_SUBMITTED_MAX = 10_000


class _NotYetFound(Exception):
    """A "not found" for a task created here moments ago: polled again later."""

    def __init__(self, error: NotFoundError) -> None:
        super().__init__(str(error))
        self.error = error


class ProgressState(StrEnum):
    """Where a task stands, as reported to progress callbacks."""

    PENDING = "pending"
    RUNNING = "running"
    #: Audio is playable already (``task.audio_urls``), though not final.
    STREAMING = "streaming"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"


@final
@frozen
class TaskProgress:
    """A change of state of an awaited task, passed to ``on_progress`` callbacks."""

    ref: TaskRef
    state: ProgressState
    #: The snapshot that showed the change.
    task: Task
    #: Seconds since the task was submitted (since the wait began, for a task this client did
    #: not submit).
    elapsed: float


class WaitTimeoutError(MusicAPIError, TimeoutError):
    """``await_task`` / ``as_completed`` reached its deadline before every task finished.

    ``pending`` holds the unfinished tasks' references: save ``pending_json()`` and resume the
    wait later, in this process or another. ``completed`` holds the tasks that did finish.
    """

    pending: tuple[TaskRef, ...]
    completed: tuple[Task, ...]
    #: Of ``pending``, the tasks not polled once during the wait (a deadline too short for
    #: the budget, or a mistyped id that was never looked up): unknown, not "still running".
    unpolled: tuple[TaskRef, ...]

    def __init__(
        self,
        message: str,
        *,
        pending: tuple[TaskRef, ...],
        completed: tuple[Task, ...],
        unpolled: tuple[TaskRef, ...] = (),
    ) -> None:
        super().__init__(message)
        self.pending = pending
        self.completed = completed
        self.unpolled = unpolled

    def pending_json(self) -> str:
        """The unfinished references as a JSON list, for :meth:`TaskRef.from_dict`."""
        from ._serde import dumps

        return dumps([ref.to_dict() for ref in self.pending])


def progress_state(task: Task) -> ProgressState:
    if task.status is TaskStatus.SUCCEEDED:
        return ProgressState.SUCCEEDED
    if task.status is TaskStatus.FAILED:
        return ProgressState.FAILED
    if any(clip.state is ClipState.STREAMING for clip in task.clips):
        return ProgressState.STREAMING
    return {
        TaskStatus.PENDING: ProgressState.PENDING,
        TaskStatus.RUNNING: ProgressState.RUNNING,
    }.get(task.status, ProgressState.UNKNOWN)


# --- learning durations ---------------------------------------------------------------------


class DurationModel:
    """The distribution of task durations, learned from what polls saw.

    A poll never sees the instant a task finished, only that it finished after the last poll
    that saw it running (``low``) and before the poll that saw it done (``high``); a task
    still running at age ``a`` says only that its duration exceeds ``a`` (right-censored).
    Leaving those out would bias the estimate short, so both kinds count. The distribution
    is the maximum-likelihood one for such intervals (Turnbull's estimator: a few EM rounds
    over the cells that the interval ends cut). A prior interval (half to twice the family's
    expected duration) counts as one observation, so the first decisions are sane. The CDF
    is piecewise linear between cell ends and is tabulated when an observation arrives, so
    each lookup is a binary search.
    """

    def __init__(self, expected: float, memory: int = DURATION_MEMORY) -> None:
        self._expected = expected
        self._prior = (0.5 * expected, 2.0 * expected)
        self._samples: deque[tuple[float, float]] = deque(maxlen=memory)
        self._lows: list[float] | None = None  # sorted, made on demand
        self._running: list[float] = []
        self._xs: list[float] = []
        self._ys: list[float] = []
        self._gs: list[float] = []
        self._tabulate()

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, low: float, high: float, running: Iterable[float] = ()) -> None:
        """A task finished between ages ``low`` and ``high``; ``running``: the ages at which
        the tasks still under way were last seen running."""
        low, high = max(0.0, low), max(0.0, high)
        self._samples.append((min(low, high), max(low, high)))
        self._lows = None
        self._running = [age for age in running if age > 0.0]
        self._tabulate()

    def _tabulate(self) -> None:
        parts = [self._prior, *self._samples]
        # A still-running task lasts longer than its age: an interval open to the right,
        # which no data can close. It is closed here a quarter of the expected duration
        # beyond the longest task seen (the prior's guess before any) or the oldest still
        # running: each poll that finds a task running moves that horizon on. A wider one
        # (the expected duration past the prior's twice-expected end) put a task seen
        # running at 155 s up to 360 s: in a batch, such tasks were not looked at again
        # until every other one was done, and those were all polled at their youngest.
        top = max(high for _, high in self._samples or [self._prior])
        horizon = max(top, *self._running, 0.0) + _CENSORED_TAIL * self._expected
        parts += [(age, horizon) for age in self._running]
        # A zero-width observation is an exact time: give it a sliver of width.
        parts = [(low, high if high > low else low + 1e-6) for low, high in parts]
        xs = sorted({x for part in parts for x in part})
        cells = len(xs) - 1
        spans = [(bisect.bisect_left(xs, low), bisect.bisect_left(xs, high)) for low, high in parts]
        count = len(parts)
        # Start: each observation spread evenly over its length (a difference array).
        density = [0.0] * (cells + 1)
        for first, last in spans:
            share = 1.0 / (xs[last] - xs[first]) / count
            density[first] += share
            density[last] -= share
        mass, running = [], 0.0
        for j in range(cells):
            running += density[j]
            mass.append(running * (xs[j + 1] - xs[j]))
        for _ in range(_EM_ROUNDS):
            prefix = [0.0]
            for m in mass:
                prefix.append(prefix[-1] + m)
            weight = [0.0] * (cells + 1)  # difference array of sum(1 / S_i) over spans
            for first, last in spans:
                total = prefix[last] - prefix[first]
                if total > 0:
                    weight[first] += 1.0 / total
                    weight[last] -= 1.0 / total
            running = 0.0
            for j in range(cells):
                running += weight[j]
                mass[j] *= running / count
        self._xs = xs
        self._ys = [0.0]
        for m in mass:
            self._ys.append(min(1.0, self._ys[-1] + m))
        # The CDF's integral at each end (trapezoids: the CDF is linear in between).
        self._gs = [0.0]
        for i in range(1, len(xs)):
            width = xs[i] - xs[i - 1]
            self._gs.append(self._gs[-1] + width * (self._ys[i] + self._ys[i - 1]) / 2)

    def cdf(self, t: float) -> float:
        """P(duration <= t)."""
        xs, ys = self._xs, self._ys
        if t < xs[0]:
            return 0.0
        if t >= xs[-1]:
            return 1.0
        i = bisect.bisect_right(xs, t)
        x0, x1 = xs[i - 1], xs[i]
        return ys[i - 1] + (ys[i] - ys[i - 1]) * (t - x0) / (x1 - x0)

    def cdf_integral(self, t: float) -> float:
        """The integral of the CDF from 0 to ``t`` (seconds): expected time spent finished."""
        xs, ys, gs = self._xs, self._ys, self._gs
        if t <= xs[0]:
            return 0.0
        if t >= xs[-1]:
            return gs[-1] + (t - xs[-1])
        i = bisect.bisect_right(xs, t)
        y = self.cdf(t)
        return gs[i - 1] + (t - xs[i - 1]) * (ys[i - 1] + y) / 2

    def expected_lag(self, before: float, now: float) -> float:
        """E[seconds since it finished, if it did] given it was running at age ``before``."""
        if now <= before:
            return 0.0
        alive = 1.0 - self.cdf(before)
        if alive <= 1e-12:
            # Beyond everything seen: ending evenly within the window after ``before``.
            window, waited = self._beyond_window(), now - before
            return waited * waited / (2 * window) if waited < window else waited - window / 2
        gained = self.cdf_integral(now) - self.cdf_integral(before)
        gained -= self.cdf(before) * (now - before)
        return max(0.0, gained / alive)

    def seen_quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0-1) of the remembered tasks' shortest possible durations (the
        age at which each was last seen running), without the prior; None before any.

        Lower bounds, on purpose: the age at which a task was *seen finished* can be late by
        any amount (a fallback poll), and feeding that back would push later polls ever
        later; a bound from below only makes them a little early.
        """
        if not self._samples:
            return None
        if self._lows is None:
            self._lows = sorted(low for low, _ in self._samples)
        lows = self._lows
        return lows[min(len(lows) - 1, max(0, math.ceil(q * len(lows)) - 1))]

    def finished_since(self, before: float, now: float) -> float:
        """P(finished by ``now`` | still running at ``before``), ages in seconds."""
        if now <= before:
            return 0.0
        alive = 1.0 - self.cdf(before)
        if alive <= 1e-12:
            # Seen running past everything seen: expected within a window after that poll
            # (its own horizon, moved on by each poll that finds it running), not "any
            # moment now": a few such tasks would otherwise take every slot.
            return min(1.0, (now - before) / self._beyond_window())
        return min(1.0, max(0.0, (self.cdf(now) - self.cdf(before)) / alive))

    def _beyond_window(self) -> float:
        """Seconds within which a task seen running past the horizon is expected to end."""
        return _CENSORED_TAIL * self._expected


def _uniform_cdf(t: float, low: float, high: float) -> float:
    if t < low:
        return 0.0
    if t >= high:
        return 1.0
    return (t - low) / (high - low)


class _Stage(StrEnum):
    """How far a running task has come, as the per-stage duration models know it."""

    RUNNING = "running"
    STREAMING = "streaming"
    #: Some clips are finished, not all (a task's clips end at different times).
    PARTLY_DONE = "partly done"


#: The stages, in order: a later one says more.
_STAGES = tuple(_Stage)


def _stage(task: Task) -> _Stage | None:
    """The furthest stage a snapshot of a running task shows, if any."""
    if task.is_terminal:
        return None
    if any(clip.state.is_terminal for clip in task.clips):
        return _Stage.PARTLY_DONE
    state = progress_state(task)
    if state is ProgressState.STREAMING:
        return _Stage.STREAMING
    return _Stage.RUNNING if state is ProgressState.RUNNING else None


#: Observations a model needs before the scheduler trusts it over a coarser one.
_MIN_SAMPLES = 3


class _Learner:
    """Duration models per (family, model), falling back to the family's.

    Besides whole durations it learns, per stage (running, streaming, partly done: some
    clips finished, not all), how long tasks took to finish after they were first seen in
    that stage: where the server reports stages (the "200" style), a task seen streaming, or
    with a clip already done, is judged by that, far more precisely.
    """

    def __init__(self, expected: Mapping[str, float]) -> None:
        self._expected = {
            family: expected.get(family.value, EXPECTED_DURATION[family.value])
            for family in TaskFamily
        }
        self._models: dict[tuple[TaskFamily, str | None, _Stage | None], DurationModel]
        self._models = {}

    def _get(self, family: TaskFamily, model: str | None, stage: _Stage | None) -> DurationModel:
        key = (family, model, stage)
        if key not in self._models:
            # Prior of a stage's remaining time: a quarter to all of the expected duration.
            expected = self._expected[family]
            self._models[key] = DurationModel(expected if stage is None else expected / 2)
        return self._models[key]

    def model(
        self, family: TaskFamily, model: str | None, stage: _Stage | None = None
    ) -> DurationModel | None:
        """The most specific model with enough observations (None: no stage model yet)."""
        for key in ((family, model, stage), (family, None, stage)):
            found = self._models.get(key)
            if found is not None and len(found) >= _MIN_SAMPLES:
                return found
        return None if stage is not None else self._get(family, None, None)

    def record(
        self,
        family: TaskFamily,
        model: str | None,
        low: float,
        high: float,
        running: Iterable[tuple[str | None, float]],
        stage: _Stage | None = None,
    ) -> None:
        """A task finished between ``low`` and ``high`` seconds (of age, or since it was
        first seen in ``stage``); ``running``: (model, same measure at its last poll) of the
        family's tasks still under way."""
        running = list(running)
        self._get(family, None, stage).add(low, high, (age for _, age in running))
        if model is not None:
            same = (age for other, age in running if other == model)
            self._get(family, model, stage).add(low, high, same)

    def expected(self, family: TaskFamily) -> float:
        """The prior guess of a task's duration, seconds."""
        return self._expected[family]

    def summary(self) -> dict[str, int]:
        return {
            f"{f.value}:{m}" + (f":{s.value}" if s else ""): len(d)
            for (f, m, s), d in self._models.items()
        }


# --- the scheduler --------------------------------------------------------------------------


class _Tracked:
    """One task the scheduler polls, with what it knows of it."""

    __slots__ = (
        "created",
        "failures",
        "fallback_at",
        "fallback_polls",
        "fallback_step",
        "in_flight",
        "known_age",
        "last_error",
        "last_poll",
        "last_reported",
        "last_running_age",
        "last_state",
        "looked_for",
        "model",
        "ref",
        "retry_at",
        "stage_seen",
        "unreadable",
        "watchers",
        "webhook",
    )

    def __init__(
        self,
        ref: TaskRef,
        created: float,
        known_age: bool,
        model: str | None,
        webhook: bool = False,
    ) -> None:
        self.ref = ref
        self.created = created
        #: False for a task this client did not submit: its age is unknown until polled.
        self.known_age = known_age
        self.model = model
        self.last_poll = -math.inf
        #: Age (s) at the last poll that saw it unfinished; 0 before any.
        self.last_running_age = 0.0
        self.last_state: ProgressState | None = None
        #: The snapshot of that state, told to a waiter that joins later.
        self.last_reported: Task | None = None
        #: Age (s) at which each progress stage was first seen.
        self.stage_seen: dict[_Stage, float] = {}
        self.failures = 0
        #: Answers in a row that could not be read (see UNREADABLE_POLLS).
        self.unreadable = 0
        #: Why its last poll failed, if it did: the cause of a timeout error.
        self.last_error: Exception | None = None
        self.retry_at = -math.inf
        self.in_flight = False
        #: The waiter's deadline its last look before which was made (see _last_looks).
        self.looked_for: float | None = None
        self.watchers: set[_Watch] = set()
        #: Its result is due by webhook: polled only as a safety net (see _fallback_due).
        self.webhook = webhook
        self.fallback_polls = 0
        #: When the next fallback poll is due, once one was made.
        self.fallback_at = math.inf
        self.fallback_step = WEBHOOK_FALLBACK_EVERY


_K = TypeVar("_K")


class _Kept(Generic[_K]):
    """Results delivered before anyone awaited them, kept for the waiter to come: at most
    ``most`` of them, each for ``keep`` seconds (times of one event loop: carried into
    another, they start again there)."""

    def __init__(self, most: int, keep: float) -> None:
        self.most, self.keep = most, keep
        self._items: OrderedDict[_K, tuple[float, Task]] = OrderedDict()
        self._epoch: object | None = None

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def put(self, key: _K, task: Task, now: float, epoch: object) -> None:
        self._prune(now, epoch)
        self._items[key] = (now, task)
        self._items.move_to_end(key)
        self._prune(now, epoch)

    def take(self, key: _K, now: float, epoch: object) -> Task | None:
        self._prune(now, epoch)
        entry = self._items.pop(key, None)
        return None if entry is None else entry[1]

    def _prune(self, now: float, epoch: object) -> None:
        if self._epoch is not epoch:
            self._items = OrderedDict((k, (now, task)) for k, (_, task) in self._items.items())
            self._epoch = epoch
        while self._items and (
            len(self._items) > self.most or now - next(iter(self._items.values()))[0] > self.keep
        ):
            self._items.popitem(last=False)


class _Watch:
    """One waiter (an await_task or as_completed call) and the results handed to it."""

    def __init__(
        self,
        keys: dict[_Key, TaskRef],
        on_progress: Callable[[TaskProgress], object] | None,
        deadline: float | None = None,
    ) -> None:
        self.refs = keys
        self.on_progress = on_progress
        #: The waiter's own deadline (its timeout), if any.
        self.own_deadline = deadline
        #: When the waiter gives up (its timeout, or a cancel scope around it), if ever.
        self.deadline = deadline
        self.started = anyio.current_time()
        self.results: deque[tuple[_Key, Task | BaseException]] = deque()
        self.event = anyio.Event()
        #: Per task, the coroutine on_progress callbacks started for it: its result is handed
        #: out once they have returned, so the callback of its last state has run by then.
        self.callbacks: dict[_Key, list[anyio.Event]] = {}
        self._callback_scopes: set[anyio.CancelScope] = set()
        #: The waiter left, or the client closed: no callback of it may start any more.
        self.callbacks_off = False

    def see_scopes(self, outer: float) -> bool:
        """Take ``outer`` (the effective deadline of the cancel scopes around the waiter)
        into its deadline; True if that changed it."""
        own = math.inf if self.own_deadline is None else self.own_deadline
        ends = min(own, outer)
        deadline = None if math.isinf(ends) else ends
        changed = deadline != self.deadline
        self.deadline = deadline
        return changed

    def deliver(self, key: _Key, item: Task | BaseException) -> None:
        self.results.append((key, item))
        self.event.set()

    def start_callback(self, key: _Key, awaitable: Any, task_group: TaskGroup) -> None:
        """Run a coroutine callback about task ``key`` in ``task_group``, until it returns
        or the waiter leaves (:meth:`leave`)."""
        task_group.start_soon(self._run_callback, awaitable, self._held_back_by(key))

    def _held_back_by(self, key: _Key) -> anyio.Event:
        """A new callback about task ``key``: its result waits for the event it sets."""
        done = anyio.Event()
        self.callbacks[key] = [e for e in self.callbacks.get(key, ()) if not e.is_set()] + [done]
        return done

    async def _run_callback(self, awaitable: Any, done: anyio.Event) -> None:
        try:
            if self.callbacks_off:  # the waiter left, or the client closed
                if inspect.iscoroutine(awaitable):
                    awaitable.close()
                return
            with anyio.CancelScope() as scope:
                self._callback_scopes.add(scope)
                try:
                    await awaitable
                except Exception:
                    logger.exception("an on_progress callback raised; the wait goes on")
                finally:
                    self._callback_scopes.discard(scope)
        finally:
            done.set()
            self.event.set()  # a result it held back may be handed out now

    def leave(self) -> None:
        """The waiter is gone: its callbacks still running are cancelled (and those not
        started yet close their coroutine unawaited when their turn comes)."""
        self.cancel_callbacks()

    def cancel_callbacks(self) -> None:
        """Cancel the callbacks of this waiter still running, and start no other."""
        self.callbacks_off = True
        for scope in list(self._callback_scopes):
            scope.cancel()

    def take_ready(self, now: float) -> tuple[_Key, Task | BaseException] | None:
        """The earliest result whose callbacks have all returned, removed; None if none is.

        A callback that hangs holds back its own task's result only, and only until a
        little before the waiter's deadline (then the earliest result goes, ready or not):
        it delays a result, it does not turn it into a timeout.
        """
        for index, (key, item) in enumerate(self.results):
            if all(done.is_set() for done in self.callbacks.get(key, ())):
                del self.results[index]
                self.callbacks.pop(key, None)
                return key, item
        if self.results and self.deadline is not None and now >= self.deadline - _CALLBACK_SLACK:
            key, item = self.results.popleft()
            self.callbacks.pop(key, None)
            return key, item
        return None

    def callback_limit(self, now: float) -> float:
        """Seconds until results held back by callbacks are handed out anyway."""
        if not self.results or self.deadline is None:
            return math.inf
        return max(0.0, self.deadline - _CALLBACK_SLACK - now)


#: Each scheduler's token of each event loop it ran in (gone with the loop or the scheduler).
_EPOCHS: LoopLocal[Scheduler, object] = LoopLocal("musicapi_async scheduler epochs")


class Scheduler:
    """Polls the tasks that coroutines await, for one client and its ``with_options`` views."""

    def __init__(
        self,
        client: MusicAPI,
        limiter: Limiter | None,
        *,
        min_poll_gap: float = DEFAULT_MIN_POLL_GAP,
        poll_threshold: float = DEFAULT_POLL_THRESHOLD,
        expected_durations: Mapping[str, float] | None = None,
    ) -> None:
        if not (min_poll_gap >= 0 and math.isfinite(min_poll_gap)):
            raise ValueError("min_poll_gap must be a non-negative number of seconds")
        if not 0.0 <= poll_threshold <= 1.0:
            raise ValueError("poll_threshold must be between 0 and 1")
        self._client = client
        # Without a limiter on the client, polls still need pacing: a private default bucket.
        self.limiter: Limiter = limiter if limiter is not None else TokenBucket()
        self.min_poll_gap = min_poll_gap
        self.poll_threshold = poll_threshold
        expected = dict(expected_durations or {})
        for family, seconds in expected.items():
            if family not in EXPECTED_DURATION:
                raise ValueError(
                    f"expected_durations: unknown task family {family!r}; "
                    f"use {', '.join(EXPECTED_DURATION)}"
                )
            if not (isinstance(seconds, (int, float)) and 0 < seconds < math.inf):
                raise ValueError(f"expected_durations[{family!r}] must be seconds > 0")
        self._learner = _Learner(expected)
        # Times are anyio times of one event loop (its "epoch"): another loop's clock is
        # another (trio starts each run's at a random offset), so each time keeps its epoch.
        #: Per task submitted here: (time, epoch, model, due by webhook).
        self._submitted: OrderedDict[_Key, tuple[float, object, str | None, bool]] = OrderedDict()
        self._done: OrderedDict[_Key, Task] = OrderedDict()
        #: Results of this client's own tasks delivered before anyone awaited them: kept
        #: for a waiter to claim (a batch awaited once every create is out), not evicted
        #: with _done.
        self._unclaimed: _Kept[_Key] = _Kept(_SUBMITTED_MAX, WEBHOOK_UNCLAIMED_KEEP)
        #: Webhook deliveries for other tasks nobody awaited yet, by task id.
        self._early: _Kept[str] = _Kept(WEBHOOK_EARLY_MAX, WEBHOOK_EARLY_KEEP)
        self._tracked: dict[_Key, _Tracked] = {}
        #: Tasks nobody awaits any more, with their polling history: (epoch, when, tracked).
        self._left: OrderedDict[_Key, tuple[object, float, _Tracked]] = OrderedDict()
        self._in_flight = 0
        self._changed = anyio.Event()
        self._changed_epoch: object | None = None
        self._task_group: TaskGroup | None = None  # the client's: where the loop starts
        self._polls: TaskGroup | None = None  # the loop's own: polls and async callbacks
        self._scope: anyio.CancelScope | None = None  # made in attach(): needs an event loop
        self._running = False
        self._closed_reason: str | None = None
        #: When the limiter's background acquires began to fail, while they do.
        self._limiter_down_since: float | None = None
        #: The background acquire queued at the limiter, while it is.
        self._acquiring: anyio.CancelScope | None = None
        #: Set by _pick: the deadline the task it picked gets its last look for, if any.
        self._picked_look: float | None = None
        #: Waiters whose callbacks were started in the client's task group (the scheduler
        #: not running yet): close() cancels them, as the scheduler's own are.
        self._early_watches: weakref.WeakSet[_Watch] = weakref.WeakSet()

    # --- lifecycle ----------------------------------------------------------------------------

    def _epoch(self) -> object:
        """A token of the running event loop (made the first time the scheduler runs in it)."""
        return _EPOCHS.setdefault(self, object)

    def _poke(self) -> None:
        """Wake the loop: something changed (an Event of this event loop, not a past one)."""
        # A stream dropped after its event loop ended has no loop to wake: anyio raises its
        # "no event loop" RuntimeError (NoEventLoopError in recent versions).
        with contextlib.suppress(RuntimeError):
            self._wake_event().set()
            if self._acquiring is not None and self._pick(anyio.current_time()) is None:
                # Every candidate left (its waiters gave up, a webhook brought it) while a
                # poll queued for it: step out of the queue, so the slot stays in the bucket
                # for whoever comes next instead of being taken and left unused.
                self._acquiring.cancel()

    def _wake_event(self) -> anyio.Event:
        epoch = self._epoch()
        if self._changed_epoch is not epoch:
            self._changed, self._changed_epoch = anyio.Event(), epoch
        return self._changed

    def attach(self, task_group: TaskGroup) -> None:
        """Give the scheduler the client's task group (``async with client``)."""
        self._task_group = task_group
        self._scope = anyio.CancelScope()
        self._closed_reason = None
        self._limiter_down_since = None  # a time of another event loop's clock, if any

    def close(self, reason: str) -> None:
        """Stop polling (from any task): current and later waiters get RuntimeError(reason).

        Only the scheduler's own cancel scope is cancelled, never the client's task group,
        so code in the ``async with`` body that called ``aclose()`` goes on running.
        """
        self._closed_reason = reason
        self._task_group = None
        if self._scope is not None:
            self._scope.cancel()
        for watch in list(self._early_watches):
            watch.cancel_callbacks()
        self._early_watches.clear()
        error = RuntimeError(reason)
        for tracked in list(self._tracked.values()):
            for watch in list(tracked.watchers):
                watch.deliver((tracked.ref.family, tracked.ref.task_id), error)
        self._tracked.clear()
        self._left.clear()

    def _ensure_running(self) -> None:
        if self._closed_reason is not None:
            # Not the reason the waiters of the time were given: this one came after.
            raise RuntimeError(
                "this MusicAPI client was closed: open it again with `async with client:` "
                "to wait for tasks, or make a new one"
            )
        if self._task_group is None:
            raise RuntimeError(
                "waiting for tasks needs the client's background poller: use the client as "
                "`async with MusicAPI(...) as client:` and call await_task / as_completed "
                "inside (a with_options view shares its parent's: open the parent)"
            )
        if not self._running:
            self._running = True
            self._task_group.start_soon(self._run, name="musicapi_async scheduler")

    # --- what the client tells it -------------------------------------------------------------

    def note_submitted(self, ref: TaskRef, model: str | None, *, webhook: bool = False) -> None:
        """A create returned ``ref``; ``webhook``: its result will be delivered to this client."""
        key = (ref.family, ref.task_id)
        now = anyio.current_time()
        self._submitted[key] = (now, self._epoch(), model, webhook)
        self._submitted.move_to_end(key)
        while len(self._submitted) > _SUBMITTED_MAX:
            self._submitted.popitem(last=False)
        # Its result delivered before this create call returned: kept as one of this
        # client's own (as long as a delivery after it), not as a stranger's.
        early = self._early.take(ref.task_id, now, self._epoch())
        if early is not None:
            self._unclaimed.put(key, _as_family(early, key[0]), now, self._epoch())

    def statistics(self) -> dict[str, Any]:
        """Tasks being polled, waiters, learned durations (for logs and debugging)."""
        return {
            "tracked": len(self._tracked),
            "waiters": len({w for t in self._tracked.values() for w in t.watchers}),
            "in_flight": self._in_flight,
            "learned": self._learner.summary(),
        }

    def on_webhook(self, task: Task) -> None:
        """A verified webhook delivery: hand its task to the waiters at once.

        A terminal task resolves everyone waiting on it, with no request. A delivery for a
        task nobody awaits yet (it may arrive before the create call returns) is kept for
        ``WEBHOOK_EARLY_KEEP`` seconds for the waiter still to come; a non-terminal one
        (``streaming``) only reports progress. Deliveries arrive at least once and in any
        order: a task already finished ignores them.
        """
        now = anyio.current_time()
        key = self._key_of(task.ref)
        if key in self._done or key in self._unclaimed:
            return
        tracked = self._tracked.get(key)
        if tracked is None:
            if task.is_terminal and key in self._submitted:
                # Submitted here: kept for its waiter, however many finish before it comes.
                self._unclaimed.put(key, _as_family(task, key[0]), now, self._epoch())
            elif task.is_terminal:
                self._early.put(task.ref.task_id, task, now, self._epoch())
            return
        task = _as_family(task, key[0])
        age = now - tracked.created
        self._observe(tracked, task, age, now)
        if not task.is_terminal:
            return
        self._remember_result(key, task)
        self._finish(key, tracked, task)
        if tracked.known_age:
            # Delivered when it finished: learn it as finished within the last second.
            tracked.last_running_age = max(tracked.last_running_age, age - _IDLE_LOOK)
            self._learn(tracked, age)
        self._poke()

    def _remember_result(self, key: _Key, task: Task) -> None:
        self._done[key] = task
        while len(self._done) > _RESULT_CACHE:
            self._done.popitem(last=False)

    def _key_of(self, ref: TaskRef) -> _Key:
        """The key of a delivered task: a delivery's family is guessed from its body, so a
        task tracked under another family with the same id is the one meant."""
        key = (ref.family, ref.task_id)
        if key in self._tracked or key in self._done or key in self._unclaimed:
            return key
        for other in itertools.chain(self._tracked, self._submitted):  # no copy of either
            if other[1] == ref.task_id:
                return other
        return key

    def _take_early(self, key: _Key, now: float) -> Task | None:
        """A result delivered before this waiter came (of a task of this client's, or of
        another's), moved to the results kept; or None."""
        epoch = self._epoch()
        task = self._unclaimed.take(key, now, epoch)
        if task is None:
            early = self._early.take(key[1], now, epoch)
            task = None if early is None else _as_family(early, key[0])
        if task is not None:
            self._remember_result(key, task)  # bounded like every result
        return task

    # --- waiters ------------------------------------------------------------------------------

    def watch(
        self,
        refs: dict[_Key, TaskRef],
        on_progress: Callable[[TaskProgress], object] | None,
        deadline: float | None = None,
    ) -> _Watch:
        self._ensure_running()
        watch = _Watch(refs, on_progress, deadline)
        # The waiter's own deadline, or that of a cancel scope around it (anyio.fail_after).
        watch.see_scopes(anyio.current_effective_deadline())
        now = anyio.current_time()
        for key, ref in refs.items():
            done = self._done.get(key) or self._take_early(key, now)
            if done is not None:
                # Finished before this waiter came: it still hears of the final state.
                submitted = self._submitted.get(key)
                known = submitted is not None and submitted[1] is self._epoch()
                elapsed = now - submitted[0] if submitted is not None and known else 0.0
                self._report_to(watch, ref, _as_family(done, ref.family), elapsed)
                watch.deliver(key, done)
                continue
            tracked = self._tracked.get(key) or self._take_left(key, now)
            if tracked is None:
                submitted = self._submitted.get(key) or (now, None, None, False)
                created, epoch, model, webhook = submitted
                # Submitted in another event loop: its age on this clock is unknown.
                known = epoch is self._epoch()
                tracked = _Tracked(ref, created if known else now, known, model, webhook)
                self._tracked[key] = tracked
            elif tracked.last_reported is not None:
                # Joining a wait under way (or taking one up again): told where the task
                # stands now (streaming, say).
                start = tracked.created if tracked.known_age else now
                self._report_to(watch, ref, tracked.last_reported, now - start)
            tracked.watchers.add(watch)
        self._poke()
        return watch

    def unwatch(self, watch: _Watch) -> None:
        """Forget a waiter (and cancel its callbacks still running); tasks nobody awaits any
        more stop being polled."""
        watch.leave()
        for key in watch.refs:
            tracked = self._tracked.get(key)
            if tracked is None:
                continue
            tracked.watchers.discard(watch)
            # A poll in flight keeps its entry: a waiter arriving meanwhile reuses it.
            if not tracked.watchers and not tracked.in_flight:
                self._leave(key, tracked)
        self._poke()

    def _leave(self, key: _Key, tracked: _Tracked) -> None:
        """Stop polling a task nobody awaits any more, keeping its polling history for a
        while (see ``_LEFT_KEEP``)."""
        del self._tracked[key]
        now = anyio.current_time()
        self._left[key] = (self._epoch(), now, tracked)
        self._left.move_to_end(key)
        while self._left and (
            len(self._left) > _RESULT_CACHE or now - next(iter(self._left.values()))[1] > _LEFT_KEEP
        ):
            self._left.popitem(last=False)

    def _take_left(self, key: _Key, now: float) -> _Tracked | None:
        """The polling history of a task awaited again, made tracked again; None if there
        is none of this event loop's, or it is older than ``_LEFT_KEEP``."""
        kept = self._left.pop(key, None)
        if kept is None:
            return None
        epoch, left, tracked = kept
        if epoch is not self._epoch() or now - left > _LEFT_KEEP:
            return None
        self._tracked[key] = tracked
        return tracked

    # --- choosing -----------------------------------------------------------------------------

    def _score(self, tracked: _Tracked, now: float) -> tuple[float, float]:
        """(chance it finished since its last poll, priority among the candidates).

        The priority is that chance times the lag it would have accrued by now: of two tasks
        equally likely finished, the one likely finished for longer goes first, and a task
        whose chance grew slowly is less likely to be polled in vain.
        """
        if not tracked.known_age:
            if tracked.last_poll == -math.inf:
                return 1.0, math.inf  # never seen: one poll tells where it stands
            # Submitted elsewhere, age unknown: a constant chance per second of waiting.
            waited = now - tracked.last_poll
            chance = min(1.0, waited / self._learner.expected(tracked.ref.family))
            return chance, chance * waited / 2
        age = now - tracked.created
        family, before = tracked.ref.family, tracked.last_running_age
        for stage in reversed(_STAGES):  # the latest stage seen says the most
            seen = tracked.stage_seen.get(stage)
            staged = None if seen is None else self._learner.model(family, tracked.model, stage)
            if staged is not None and seen is not None:
                chance = staged.finished_since(before - seen, age - seen)
                return chance, chance * staged.expected_lag(before - seen, age - seen)
        model = self._learner.model(family, tracked.model)
        assert model is not None  # the whole-duration model always exists
        chance = model.finished_since(before, age)
        return chance, chance * model.expected_lag(before, age)

    def _pick(
        self, now: float, looks: dict[_Key, tuple[float, float]] | None = None
    ) -> _Tracked | None:
        """The task to poll now, if any is worth it.

        As a rule the one with the highest priority (see :meth:`_score`). With a backlog,
        at least ``_BACKLOG`` tasks each more likely finished than not (a batch whose creates
        just went out), the surest goes first instead: every poll in vain then delays all of
        them, and a task seen running earlier whose end is near beats one never looked at.
        Polled first, the fresh ones would all be polled at their youngest, each the least
        likely finished it will ever be.
        """
        # (task, chance, priority, tie-break: the earlier first)
        candidates: list[tuple[_Tracked, float, float, float]] = []
        if looks is None:
            looks = self._last_looks()
        for key, tracked in self._tracked.items():
            if tracked.in_flight or now < tracked.retry_at:
                continue
            if now - tracked.last_poll < self.min_poll_gap:
                continue
            look, _ = looks.get(key, (math.inf, math.inf))
            if now >= look:
                # A waiter gives up soon and nobody looked since: look now, first, the
                # earliest due first.
                candidates.append((tracked, 1.0, math.inf, look))
                continue
            if tracked.webhook:
                # Due by webhook: a poll only once the delivery is overdue (a safety net).
                due = self._fallback_due(tracked)
                if now < due:
                    continue
                chance, priority = 1.0, now - due
            else:
                chance, priority = self._score(tracked, now)
            if chance < self.poll_threshold or chance <= 0.0:
                continue
            candidates.append((tracked, chance, priority, tracked.created))
        backlog = sum(chance >= 0.5 for _, chance, _, _ in candidates) >= _BACKLOG
        best: _Tracked | None = None
        best_key = (-math.inf, -math.inf, -math.inf)
        for tracked, chance, priority, earlier in candidates:
            # With a backlog the chance first, then the usual priority among equally sure
            # tasks; ties go to the oldest task: it has waited longest.
            major = chance if backlog and priority != math.inf else priority
            rank = (major, priority, -earlier)
            if rank > best_key:
                best, best_key = tracked, rank
        self._picked_look = None
        if best is not None and best_key[1] == math.inf:
            chosen = looks.get((best.ref.family, best.ref.task_id))
            if chosen is not None and now >= chosen[0]:
                self._picked_look = chosen[1]
        return best

    def _fallback_due(self, tracked: _Tracked) -> float:
        """When a task whose result is due by webhook is polled, in case it was lost.

        First when nearly every task of its kind would have finished and been delivered:
        the 95th percentile of the durations seen plus a grace for the delivery, once enough
        tasks finished (twice the expected duration until then); then at doubling intervals.
        Like any task, it is also looked at a little before its waiters' earliest deadline
        (``_last_looks``).
        """
        if tracked.fallback_polls:
            due = tracked.fallback_at
        else:
            family = tracked.ref.family
            model = self._learner.model(family, tracked.model)
            seen = None if model is None else model.seen_quantile(WEBHOOK_FALLBACK_QUANTILE)
            if model is not None and seen is not None and len(model) >= WEBHOOK_FALLBACK_SAMPLES:
                due = tracked.created + seen + WEBHOOK_FALLBACK_GRACE
            else:
                due = tracked.created + WEBHOOK_FALLBACK_FACTOR * self._learner.expected(family)
        return due

    def _last_looks(self) -> dict[_Key, tuple[float, float]]:
        """When to look at each task whatever its schedule says, before its waiters'
        earliest deadline: the tasks without a look due are left out.

        A duration model that says "not yet" (a fast task type it has not seen, a short
        timeout) or a lost webhook delivery must not turn a finished task into a timeout.
        The task with the latest deadline is looked at ``DEADLINE_LEAD`` seconds before it,
        each one before a request interval earlier than the next one's look (or
        ``DEADLINE_LEAD`` before its own deadline if sooner), so that several tasks sharing
        a deadline all fit, at one request per interval: with a fixed lead, eight tasks
        left unseen until their waiter's last 10 s timed out with four of them never
        looked at. At most ``_LAST_LOOK_SPREAD`` seconds earlier than the lead: a look
        long before the deadline says little about the task at the deadline. A task
        polled since its look's time needs none (and its slot stays its own).
        """
        dated: list[tuple[float, float, _Key]] = []
        for key, tracked in self._tracked.items():
            deadlines = [w.deadline for w in tracked.watchers if w.deadline is not None]
            if deadlines:
                dated.append((min(deadlines), tracked.created, key))
        if not dated:
            return {}
        dated.sort(reverse=True)  # the latest deadline first
        spacing = limiter_interval(self.limiter)
        looks: dict[_Key, tuple[float, float]] = {}
        following = math.inf  # the look of the task with the next later deadline
        for deadline, _, key in dated:
            own = deadline - DEADLINE_LEAD
            at = max(min(own, following - spacing), own - _LAST_LOOK_SPREAD)
            # A task looked at since keeps its slot all the same: moved up into it, the
            # ones before would each be due again, and looked at twice, while the earliest
            # were pushed out of the window.
            following = at
            tracked = self._tracked[key]
            # Its last look made (slots move later as finished tasks leave: it must not be
            # due again), or polled since its slot.
            if tracked.looked_for != deadline and tracked.last_poll < at:
                looks[key] = (at, deadline)
        return looks

    def _next_last_look(self, now: float, looks: dict[_Key, tuple[float, float]]) -> float:
        """When a last look of ``looks`` (see _last_looks) next falls due and may be made
        (the task's minimum gap and retry wait over), after ``now``; ``inf`` if none."""
        soonest = math.inf
        for key, (at, _) in looks.items():
            tracked = self._tracked[key]
            if tracked.in_flight:
                continue
            ready = max(at, tracked.last_poll + self.min_poll_gap, tracked.retry_at)
            if now < ready < soonest:
                soonest = ready
        return soonest

    def _next_look(self, now: float) -> float:
        """Seconds until a blocked task may be polled again (min gap, retry), at most 1 s
        and at most ``_IDLE_LOOK_SHARE`` of the shortest expected duration followed."""
        soonest = now + _IDLE_LOOK
        looks = {key: at for key, (at, _) in self._last_looks().items()}
        for key, tracked in self._tracked.items():
            expected = self._learner.expected(tracked.ref.family)
            soonest = min(soonest, now + max(expected * _IDLE_LOOK_SHARE, _IDLE_LOOK_MIN))
            for at in (
                tracked.last_poll + self.min_poll_gap,
                tracked.retry_at,
                self._fallback_due(tracked) if tracked.webhook else math.inf,
                looks.get(key, math.inf),
            ):
                if now < at < soonest:
                    soonest = at
        return soonest - now

    # --- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._scope is not None  # attach() made it
        try:
            with self._scope:
                async with anyio.create_task_group() as polls:
                    self._polls = polls
                    await self._loop(polls)
        finally:
            self._polls = None
            self._running = False

    async def _loop(self, polls: TaskGroup) -> None:
        while True:
            try:
                await self._round(polls)
            except Exception:
                # The poller must never take the user's task group down with it (a limiter
                # backend failing, a bug): log, breathe, go on. Cancellation still ends it.
                logger.exception("the task scheduler hit an error; it goes on in a second")
                await anyio.sleep(_IDLE_LOOK)

    async def _round(self, polls: TaskGroup) -> None:
        if not self._tracked or self._in_flight >= MAX_POLLS_IN_FLIGHT:
            await self._wait_for_change(None)
            return
        now = anyio.current_time()
        looks = self._last_looks()
        if self._pick(now, looks) is None:
            await self._wait_for_change(self._next_look(now))
            return
        # One background request queued at most; user calls overtake it. But a waiter's
        # last look before its deadline queues as a user call: behind a steady stream of
        # them (creates in a loop), a background poll never got a slot, and the wait timed
        # out on a task finished long before.
        priority = Priority.USER if self._picked_look is not None else Priority.BACKGROUND
        with anyio.CancelScope() as acquiring:
            if priority is Priority.BACKGROUND:
                # Queued behind user calls until a last look falls due: then it queues
                # again, as one of them.
                acquiring.deadline = self._next_last_look(now, looks)
            self._acquiring = acquiring
            slot: Slot | None = None
            failed: Exception | None = None
            try:
                slot = await acquire_slot(self.limiter, priority)
            except Exception as exc:
                failed = exc
            finally:
                self._acquiring = None
        if acquiring.cancelled_caught:
            return  # nothing left to poll: the limiter kept its slot
        if slot is None:
            assert failed is not None  # the acquire either returned or raised
            await self._limiter_failed(failed)
            return
        self._limiter_down_since = None
        tracked = self._pick(anyio.current_time())
        if tracked is None:
            return  # a candidate left as the slot came: that slot goes unused
        if self._picked_look is not None:
            tracked.looked_for = self._picked_look  # one last look per deadline
        tracked.in_flight = True
        self._in_flight += 1
        polls.start_soon(self._poll, tracked, slot)

    async def _limiter_failed(self, exc: Exception) -> None:
        """A background acquire raised (a shared limiter's backend down, say): the tasks'
        timeouts say why, and once it has failed for LIMITER_OUTAGE seconds the waiters get
        the error, as a direct call gets it at once, instead of waiting blind for ever."""
        now = anyio.current_time()
        if self._limiter_down_since is None:
            self._limiter_down_since = now
            # Its message only, scrubbed: the backend's own error (its __cause__) may hold
            # a password (redis://user:password@host).
            logger.warning(
                "%s; background polls wait for it, and the waiters get this error if it lasts %g s",
                exc,
                LIMITER_OUTAGE,
            )
        for tracked in self._tracked.values():
            tracked.last_error = exc
        if now - self._limiter_down_since >= LIMITER_OUTAGE:
            logger.error(
                "the rate limiter failed for %g s; the waiters get: %r", LIMITER_OUTAGE, exc
            )
            self._limiter_down_since = None
            for key, tracked in list(self._tracked.items()):
                if not tracked.in_flight and key not in self._done:
                    self._finish(key, tracked, exc)
        await anyio.sleep(_IDLE_LOOK)

    async def _wait_for_change(self, limit: float | None) -> None:
        with anyio.move_on_after(math.inf if limit is None else limit):
            await self._wake_event().wait()
        self._changed = anyio.Event()

    async def _poll(self, tracked: _Tracked, slot: Slot) -> None:
        ref = tracked.ref
        key = (ref.family, ref.task_id)
        started = anyio.current_time()
        resource = self._client._resource_for(ref.family)
        # The scheduler retries by polling again later; the request path must not also retry.
        options = attrs.evolve(self._client._options, retry=RetryPolicy(max_retries=0))
        try:
            try:
                task = await resource._poll(ref, options=options, held=slot)
            except NotFoundError as exc:
                verdict = self._not_found(tracked, exc, started)
                if verdict is exc:
                    raise
                raise verdict from None
        except (
            APIConnectionError,
            ServerError,
            RateLimitError,
            ResponseValidationError,
            _NotYetFound,
        ) as exc:
            tracked.last_error = exc.error if isinstance(exc, _NotYetFound) else exc
            if isinstance(exc, ResponseValidationError):
                tracked.unreadable += 1
                if tracked.unreadable >= UNREADABLE_POLLS and key not in self._done:
                    # Not a glitch: every answer about it is one we cannot read, and polling
                    # on would only spend the budget until the deadline. The waiters get why.
                    self._finish(key, tracked, exc)
                    return
            else:
                tracked.unreadable = 0
            # Transient, or a body we could not read this time: poll again later.
            tracked.failures += 1
            # Doubling from the poll gap (1 s at least: a zero gap must still back off), the
            # exponent capped before it overflows a float on a very long outage.
            doubled = max(self.min_poll_gap, 1.0) * 2.0 ** min(tracked.failures, 32)
            backoff = max(doubled, _retry_after(exc))
            tracked.retry_at = anyio.current_time() + min(_MAX_POLL_BACKOFF, backoff)
            logger.info(
                "poll of %s task %s failed (%s); again in %.0f s",
                ref.family.value,
                ref.task_id,
                exc,
                tracked.retry_at - started,
            )
            return
        except Exception as exc:  # a permanent error (401, 404, 410...): the waiters get it
            if key not in self._done:  # unless a webhook delivered the result meanwhile
                self._finish(key, tracked, exc)
            return
        finally:
            tracked.in_flight = False
            tracked.last_poll = started
            self._in_flight -= 1
            self._poke()
            if not tracked.watchers and self._tracked.get(key) is tracked:
                self._leave(key, tracked)  # everyone left while it was in flight
        tracked.failures = tracked.unreadable = 0
        tracked.last_error = None
        try:
            self._after_poll(key, tracked, task, started)
        except Exception as exc:  # a bug here must not leave the waiters hanging
            logger.exception("processing a poll of %s failed", ref.task_id)
            if task.is_terminal:
                self._finish(key, tracked, task)
            else:
                self._finish(key, tracked, exc)

    def _not_found(self, tracked: _Tracked, exc: NotFoundError, started: float) -> Exception:
        """What a "task not found" means for ``tracked``: a task this client created less
        than ``_NOT_FOUND_GRACE`` seconds ago is polled again (:class:`_NotYetFound`); one
        created longer ago fails, saying it was paid for and may still exist."""
        if not tracked.known_age:
            return exc  # not created here: nothing says it exists
        age = started - tracked.created
        if age < _NOT_FOUND_GRACE:
            return _NotYetFound(exc)
        exc.task_may_exist = True
        exc.message += (
            f" This client created it {age:.0f} s ago and MusicAPI answered that create: "
            "with the same key and base URL it may still appear, and it may have been "
            "charged. Check the dashboard before creating it again."
        )
        return exc

    def _after_poll(self, key: _Key, tracked: _Tracked, task: Task, started: float) -> None:
        if key in self._done:
            return  # a webhook delivered it while this poll was in flight: already handed out
        age = started - tracked.created
        self._observe(tracked, task, age, anyio.current_time())
        if task.is_terminal:
            self._remember_result(key, task)
            self._finish(key, tracked, task)
            if tracked.known_age:
                self._learn(tracked, age)
        else:
            tracked.last_running_age = age
            if tracked.webhook:
                # The delivery is late or lost: poll again later, less and less often.
                tracked.fallback_polls += 1
                tracked.fallback_at = started + tracked.fallback_step
                tracked.fallback_step = min(WEBHOOK_FALLBACK_MAX, 2 * tracked.fallback_step)

    def _observe(self, tracked: _Tracked, task: Task, age: float, now: float) -> None:
        """What a poll or a delivery showed of a task at ``age``: the stage it reached (for
        the per-stage duration models) and, if it is news, a progress report."""
        state = progress_state(task)
        stage = _stage(task)
        if stage is not None and stage not in tracked.stage_seen:
            tracked.stage_seen[stage] = age
        if _moves_on(tracked.last_state, state):
            tracked.last_state = state
            tracked.last_reported = task
            self._report(tracked, task, now)

    def _learn(self, tracked: _Tracked, age: float) -> None:
        """Record a finished task's duration, and its time to finish after each stage."""
        family = tracked.ref.family
        others = [
            other
            for other in self._tracked.values()
            if other is not tracked and other.known_age and other.ref.family is family
        ]
        low = tracked.last_running_age
        running = [(other.model, other.last_running_age) for other in others]
        self._learner.record(family, tracked.model, low, age, running)
        for stage, seen in tracked.stage_seen.items():
            staged = [
                (other.model, other.last_running_age - other.stage_seen[stage])
                for other in others
                if stage in other.stage_seen
            ]
            self._learner.record(
                family, tracked.model, max(0.0, low - seen), age - seen, staged, stage
            )

    def _finish(self, key: _Key, tracked: _Tracked, item: Task | BaseException) -> None:
        for watch in tracked.watchers:
            watch.deliver(key, item)
        tracked.watchers.clear()  # once: a late answer about it finds no one to tell
        if self._tracked.get(key) is tracked:
            del self._tracked[key]

    def _report(self, tracked: _Tracked, task: Task, now: float) -> None:
        for watch in list(tracked.watchers):
            start = tracked.created if tracked.known_age else watch.started
            self._report_to(watch, tracked.ref, task, now - start)

    def _report_to(self, watch: _Watch, ref: TaskRef, task: Task, elapsed: float) -> None:
        if watch.on_progress is None:
            return
        event = TaskProgress(ref, progress_state(task), task, elapsed)
        try:
            outcome = watch.on_progress(event)
        except Exception:
            logger.exception("an on_progress callback raised; the wait goes on")
            return
        if not inspect.isawaitable(outcome):
            return
        # In the background, so that it holds back its own task's result only, and only
        # until just before the waiter's deadline: in the scheduler's task group, or in the
        # client's before the scheduler has started (the first wait of an `async with`
        # block, on a task that had finished). Run by the waiter itself, one that hung
        # held back every result past the deadline.
        group = self._polls if self._polls is not None else self._task_group
        if group is None:  # the client is closed: nowhere to run it
            if inspect.iscoroutine(outcome):
                outcome.close()
            return
        if group is not self._polls:
            self._early_watches.add(watch)  # outside the scheduler's scope: close() ends it
        watch.start_callback((ref.family, ref.task_id), outcome, group)


#: The order of the states a task goes through; a report never goes back in it.
_PROGRESS_ORDER: dict[ProgressState, int] = {
    ProgressState.PENDING: 0,
    ProgressState.RUNNING: 1,
    ProgressState.STREAMING: 2,
}


def _moves_on(last: ProgressState | None, state: ProgressState) -> bool:
    """Whether ``state`` is news after ``last``: a change, and not a step back (a poll
    answered after a webhook told of a later stage, or deliveries out of order)."""
    if state is last:
        return False
    if last in _PROGRESS_ORDER and state in _PROGRESS_ORDER:
        return _PROGRESS_ORDER[state] > _PROGRESS_ORDER[last]
    return True


def _as_family(task: Task, family: TaskFamily) -> Task:
    """``task`` as a task of ``family`` (a webhook body does not always say which)."""
    if task.ref.family is family:
        return task
    return attrs.evolve(task, ref=attrs.evolve(task.ref, family=family))


def _retry_after(exc: Exception) -> float:
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) else 0.0


# --- the waiter's side ----------------------------------------------------------------------


def default_timeout(refs: Iterable[TaskRef]) -> float:
    """The default deadline for waiting on these tasks: the longest of their families'."""
    return max((DEFAULT_WAIT_TIMEOUT[ref.family.value] for ref in refs), default=0.0)


class _ProgressForward:
    """A stream's ``on_progress``, reached through a weak reference to the stream."""

    __slots__ = ("_stream",)

    def __init__(self, stream: AsCompleted) -> None:
        self._stream = weakref.ref(stream)

    def __call__(self, event: TaskProgress) -> object:
        stream = self._stream()
        if stream is None or stream._on_progress is None:
            return None  # the stream is gone: nobody to tell
        return stream._on_progress(event)


@final
class AsCompleted:
    """An async iterator over awaited tasks, yielding each terminal :class:`Task` as it ends.

    Made by ``client.as_completed(...)``. A task whose poll failed for good is raised (with
    ``failed_task``, ``completed`` and ``pending``); iterate again for the others. A step
    cancelled from outside (a per-item ``move_on_after``) loses nothing: the next one goes
    on. Running out of results, the deadline, :meth:`close`, leaving ``async with``, or the
    iterator being dropped (a ``break`` out of ``async for ... in
    client.as_completed(...)``) stops the polling of the tasks nobody else awaits. A
    ``break`` alone does not close an iterator kept in a variable: use ``async with
    client.as_completed(refs) as stream:``.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        refs: dict[_Key, TaskRef],
        deadline: float | None,
        on_progress: Callable[[TaskProgress], object] | None,
        *,
        follow_scopes: bool = False,
    ) -> None:
        self._scheduler = scheduler
        self._refs = refs
        self._deadline = deadline
        # await_task's whole wait ends with the cancel scopes around it, whenever their
        # deadline is set (a batch arms it once every create is out). Not so a stream's: a
        # scope around one step (a per-item move_on_after) ends that step, not the wait.
        self._follow_scopes = follow_scopes
        self._completed: dict[_Key, Task] = {}
        self._started = anyio.current_time()
        #: Tasks whose poll failed for good (raised once each).
        self._failed: dict[_Key, BaseException] = {}
        self._closed = False
        #: What ended the stream for every consumer, if not close() or running out: the
        #: deadline's error (or another that ended the wait), raised to the others too.
        self._ended_by: BaseException | None = None
        self._on_progress = on_progress
        # The scheduler holds the watch, and the finalizer below holds it too: through a
        # weak reference to this stream only, so that a callback holding the stream (a
        # method of the object that owns it) does not keep the stream, and its polling,
        # alive for ever once that object is dropped.
        forward = None if on_progress is None else _ProgressForward(self)
        self._watch: _Watch | None = scheduler.watch(refs, forward, deadline) if refs else None
        self._finalizer = (
            weakref.finalize(self, scheduler.unwatch, self._watch) if self._watch else None
        )

    def __aiter__(self) -> AsCompleted:
        return self

    @property
    def pending(self) -> tuple[TaskRef, ...]:
        """The tasks not finished yet (nor failed to poll), in the order given."""
        return tuple(
            ref
            for key, ref in self._refs.items()
            if key not in self._completed and key not in self._failed
        )

    async def __anext__(self) -> Task:
        watch = self._watch
        if self._closed or watch is None or not self.pending:
            self.close()
            raise StopAsyncIteration
        try:
            key, item = await self._next_result(watch)
        except anyio.get_cancelled_exc_class():
            raise  # cancelled from outside: nothing was taken, the next step goes on
        except StopAsyncIteration:
            self.close()
            raise
        except BaseException as exc:
            if self._ended_by is None and not self._closed:
                self._ended_by = exc  # the other consumers waiting hear of it too
            self.close()
            raise
        if isinstance(item, BaseException):
            self._failed[key] = item
            self._wake_if_exhausted(watch)
            raise self._with_context(key, item)  # the others go on: iterate again for them
        self._completed[key] = item
        self._wake_if_exhausted(watch)
        return item

    def _exhausted(self) -> bool:
        """Every task given has been handed out (finished, or its poll failed for good)."""
        return len(self._completed) + len(self._failed) >= len(self._refs)

    def _wake_if_exhausted(self, watch: _Watch) -> None:
        """The last result went to one consumer: wake the others iterating the same stream
        (several workers draining one), so they end instead of waiting for ever."""
        if self._exhausted():
            watch.event.set()

    async def _next_result(self, watch: _Watch) -> tuple[_Key, Task | BaseException]:
        """The next result to hand out: the earliest whose own callbacks have returned."""
        while True:
            if self._closed and self._ended_by is not None:
                # Another consumer of this stream hit the deadline (or an error that ends
                # the wait) while this one waited: it hears of it too, with its own copy.
                raise copy.copy(self._ended_by)
            if self._closed or self._exhausted():
                # Closed from another task (a cancel button, a shutdown hook), or another
                # consumer of this stream took the last result: iterating ends.
                raise StopAsyncIteration
            if self._follow_scopes and watch.see_scopes(anyio.current_effective_deadline()):
                self._scheduler._poke()  # a deadline to look before
            now = anyio.current_time()
            ready = watch.take_ready(now)
            if ready is not None:
                return ready
            limit = watch.callback_limit(now)
            if self._follow_scopes:
                limit = min(limit, _SCOPE_LOOK)
            if self._deadline is not None:
                if now >= self._deadline:
                    raise self._timeout_error()
                limit = min(limit, self._deadline - now)
            # Several consumers may wait on one stream: each waits on the event of the time,
            # and only the one that finds it set replaces it. Replacing it blindly after a
            # wait left a consumer waiting on an event nobody would set again.
            event = watch.event
            with anyio.move_on_after(limit):
                await event.wait()
            if watch.event is event and event.is_set():
                watch.event = anyio.Event()

    def _with_context(self, key: _Key, error: BaseException) -> BaseException:
        """The error of one task's poll, carrying what the wait had (the others' results)."""
        if not isinstance(error, MusicAPIError):
            return error
        # A copy: other waiters on the same task get the same error with their own context.
        own = copy.copy(error)
        own.failed_task = self._refs[key]
        own.completed = tuple(self._completed.values())
        own.pending = tuple(ref for ref in self.pending if (ref.family, ref.task_id) != key)
        own.__cause__ = error.__cause__
        return own

    def _timeout_error(self) -> WaitTimeoutError:
        pending = self.pending
        ids = ", ".join(ref.task_id for ref in pending[:5]) + (" ..." if len(pending) > 5 else "")
        # Why a pending task's last poll failed, if one did: the wait may have been blind.
        cause = next(
            (
                tracked.last_error
                for ref in pending
                if (tracked := self._scheduler._tracked.get((ref.family, ref.task_id)))
                and tracked.last_error is not None
            ),
            None,
        )
        failed = "" if cause is None else f"; the last poll failed: {cause}"
        unpolled = tuple(
            ref
            for ref in pending
            if (tracked := self._scheduler._tracked.get((ref.family, ref.task_id))) is None
            or tracked.last_poll < self._started
        )
        unseen = f", {len(unpolled)} of them not polled during the wait" if unpolled else ""
        error = WaitTimeoutError(
            f"{len(pending)} of {len(self._refs)} task(s) still unfinished at the deadline "
            f"({ids}){unseen}{failed}; resume with "
            "await_task(TaskRef.list_from_json(error.pending_json()))",
            pending=pending,
            completed=tuple(self._completed.values()),
            unpolled=unpolled,
        )
        error.__cause__ = cause
        return error

    def close(self) -> None:
        """Stop waiting (idempotent): tasks nobody else awaits are no longer polled, and
        iterating ends."""
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()
        if self._watch is not None:
            # A consumer waiting in another task wakes and ends. After its event loop ended
            # there is nobody to wake (anyio's "no event loop" RuntimeError).
            with contextlib.suppress(RuntimeError):
                self._watch.event.set()

    async def aclose(self) -> None:
        """Stop waiting, as :meth:`close` does (for ``contextlib.aclosing`` and friends)."""
        self.close()

    async def __aenter__(self) -> AsCompleted:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
