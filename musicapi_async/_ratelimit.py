"""Client-side rate limiting: a token bucket shared by every request made with one key.

MusicAPI's standard plan allows one request per 3 seconds per API key and answers 429
beyond that. :class:`TokenBucket` keeps every client, coroutine and retry that shares it
under that budget, serves requests the user waits on before background polls, and pauses
for everyone when the server still answers 429.

The request path needs only the small :class:`Limiter` protocol, so another backend (for
example one whose state lives in Redis, shared by several processes) can replace it.
"""

from __future__ import annotations

import enum
import inspect
import logging
import math
import weakref
from collections import deque
from collections.abc import Awaitable
from typing import Any, Protocol, TypeGuard, cast, final, runtime_checkable

import anyio
from anyio.lowlevel import EventLoopToken, current_token
from attrs import frozen

from ._clock import LoopClock
from ._constants import (
    DEFAULT_MARGIN_RECOVERY,
    DEFAULT_MARGIN_STEP,
    DEFAULT_MAX_MARGIN,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_RATE,
    DEFAULT_RATE_MARGIN,
    DEFAULT_RATE_PER,
    RATE_LIMITED_REPORT_TIMEOUT,
)
from ._exceptions import LimiterError
from ._redact import scrub_urls

__all__ = ["BucketStatistics", "Limiter", "Priority", "Slot", "TokenBucket", "check_limiter"]

logger = logging.getLogger("musicapi_async")


class Priority(enum.IntEnum):
    """Who is waiting for a request slot; lower values go first."""

    #: A call the user awaits directly: creates, uploads, an explicit ``get_task``...
    USER = 0
    #: A poll that ``await_task`` / ``as_completed`` sends in the background.
    BACKGROUND = 1


@runtime_checkable
class Limiter(Protocol):
    """What the SDK needs from a rate limiter: two methods. :class:`TokenBucket` is the
    in-process one; another backend (its state in Redis, say, shared by several processes
    and hosts) implements the same two.

    The contract the SDK relies on:

    * :meth:`acquire` is a coroutine that returns once the caller may send one request. It
      must be cancellable through anyio (the SDK runs on asyncio and trio): a waiter
      cancelled before its grant must take no slot and delay no one, since the SDK cancels
      waiters routinely (a paid call dropped before it left, a client closing). A shared
      store should therefore let queue entries expire (a process may die while queued).
    * ``priority``: :attr:`Priority.USER` (a call the user awaits) must be served before
      :attr:`Priority.BACKGROUND` (``await_task``'s polls), first come, first served within
      each. The scheduler queues at most one background acquire at a time per client, so a
      strict order is what bounds a create's wait to one interval behind polling; a backend
      shared by processes keeps that promise only with one queue for all of them.
    * :meth:`on_rate_limited` is called after each 429, with the server's ``Retry-After`` in
      seconds (None when absent), before the call is retried or raised. It should hold every
      user of the key back for that long and may widen a safety margin. It may be a plain
      method or a coroutine function (a shared store needs a round trip): the SDK awaits
      what it returns, for at most 5 seconds, shielded
      from cancellation, and an error it raises is logged, never raised: the pause is
      advice, and the 429 itself is what the caller hears about.
    * Spacing: requests granted ``per / rate`` apart still reach the server closer together
      when their trips differ (network jitter; for a shared backend also the store's round
      trip and each host's path), so keep a safety margin as :class:`TokenBucket` does.

    Optional: ``on_answered(ticket)``, a plain method that must not block. Whatever
    :meth:`acquire` returned is the ticket; the SDK hands it back once the request sent with
    that slot has been answered, unless the answer is a 429 (as the status, or in a 2xx
    body), which goes to :meth:`on_rate_limited` instead: the server saw the request by
    then (:class:`TokenBucket` then gives back the part of its margin that the answer
    proves unneeded). Its errors are logged, never raised; a coroutine it returns is closed
    unawaited, and an ``async def on_answered`` is refused when the client is made. An
    ``interval`` attribute (seconds between two of this client's requests, a positive
    number) sizes the deadlines of ``run_batch`` waits (3.0 s when absent), and
    ``statistics()`` is for you: the SDK calls neither ``statistics`` nor
    ``acquire_nowait``. An error raised by :meth:`acquire` reaches a direct call as
    :class:`~musicapi_async.LimiterError` (nothing was sent); ``await_task`` retries it for
    a while first (see the README).
    """

    async def acquire(self, priority: Priority = Priority.USER) -> object:
        """Wait for a request slot and take it; return a ticket for ``on_answered`` (or
        None)."""
        ...

    def on_rate_limited(self, retry_after: float | None) -> Awaitable[None] | None:
        """The server answered 429: hold every user back (``retry_after`` seconds if known)."""
        ...


def check_limiter(limiter: object) -> Limiter:
    """``limiter`` if it implements :class:`Limiter`, else a ``TypeError`` that says how."""
    acquire = getattr(limiter, "acquire", None)
    report = getattr(limiter, "on_rate_limited", None)
    if not (callable(acquire) and callable(report)):
        raise TypeError(
            f"limiter must be a TokenBucket or implement the Limiter protocol: "
            f"`async def acquire(priority)` and `on_rate_limited(retry_after)`; got "
            f"{type(limiter).__name__}"
        )
    if not inspect.iscoroutinefunction(acquire):
        raise TypeError(
            f"limiter.acquire must be a coroutine function (`async def acquire(priority)`): "
            f"{type(limiter).__name__}.acquire is not, and awaiting its result would fail at "
            "the first request"
        )
    answered = _declared_on_answered(limiter)
    if answered is not None and inspect.iscoroutinefunction(answered):
        raise TypeError(
            f"limiter.on_answered must be a plain method (`def on_answered(ticket)`): the SDK "
            f"calls it as each answer comes, without awaiting, and "
            f"{type(limiter).__name__}.on_answered is a coroutine function"
        )
    return cast(Limiter, limiter)


def _declared_on_answered(limiter: object) -> Any:
    """The limiter's ``on_answered`` method if its class declares one, else None: a mock's
    made-up attribute (``AsyncMock()`` answers every name) is not a declaration."""
    if getattr(type(limiter), "on_answered", None) is None:
        return None
    return getattr(limiter, "on_answered", None)


def limiter_interval(limiter: Limiter) -> float:
    """Seconds between two requests through ``limiter``: its optional ``interval``
    attribute when that is a positive number, else the standard plan's 3 s."""
    interval: object = getattr(limiter, "interval", None)
    if _is_number(interval) and 0 < interval < math.inf:
        return float(interval)
    return DEFAULT_RATE_PER


#: Limiter types already told that their ``on_answered`` is not awaited.
_ASYNC_ANSWER_WARNED: weakref.WeakSet[type] = weakref.WeakSet()


@final
class Slot:
    """A request slot taken from a limiter, held until its request is answered."""

    __slots__ = ("limiter", "ticket")

    def __init__(self, limiter: Limiter, ticket: object) -> None:
        self.limiter = limiter
        #: What ``limiter.acquire`` returned.
        self.ticket = ticket

    def answered(self) -> None:
        """The request sent with this slot has an answer: tell the limiter if it asks
        (``on_answered``, optional); its errors are logged, never raised."""
        try:
            report = _declared_on_answered(self.limiter)
            if not callable(report):
                return
            outcome = report(self.ticket)
        except Exception as exc:
            logger.warning(
                "the rate limiter could not record an answer (%s: %s)",
                type(exc).__name__,
                scrub_urls(str(exc))[:500],
            )
            return
        if inspect.iscoroutine(outcome):
            # Nothing awaits it here, in the middle of a request: closed, it warns of
            # nothing when collected, and the limiter's author is told once.
            outcome.close()
            kind = type(self.limiter)
            if kind not in _ASYNC_ANSWER_WARNED:
                _ASYNC_ANSWER_WARNED.add(kind)
                logger.warning(
                    "%s.on_answered returned a coroutine, which was closed unawaited: the "
                    "SDK calls it without awaiting, so it must do its work before returning",
                    kind.__name__,
                )


async def acquire_slot(limiter: Limiter, priority: Priority) -> Slot:
    """``limiter.acquire(priority)``, its errors (cancellation aside) raised as
    :class:`LimiterError`: nothing was sent, and the caller can tell so."""
    try:
        ticket = await limiter.acquire(priority)
    except Exception as exc:
        raise LimiterError(
            f"the rate limiter failed ({type(exc).__name__}: {scrub_urls(str(exc))[:500]}); "
            "the request was not sent, so nothing was created or charged: try again once "
            "the limiter's backend is back"
        ) from exc
    return Slot(limiter, ticket)


async def report_rate_limited(limiter: Limiter, retry_after: float | None) -> None:
    """Tell ``limiter`` of a 429: awaited if it is a coroutine, shielded, for at most
    RATE_LIMITED_REPORT_TIMEOUT seconds; its errors are logged (the pause is advice)."""
    with anyio.move_on_after(RATE_LIMITED_REPORT_TIMEOUT, shield=True) as scope:
        try:
            outcome = limiter.on_rate_limited(retry_after)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            logger.warning(
                "the rate limiter could not record a 429 (%s: %s); its other users are not "
                "held back",
                type(exc).__name__,
                scrub_urls(str(exc))[:500],
            )
    if scope.cancelled_caught:
        logger.warning(
            "the rate limiter took over %g s to record a 429; the call went on without it",
            RATE_LIMITED_REPORT_TIMEOUT,
        )


@final
@frozen
class BucketStatistics:
    """A snapshot of a :class:`TokenBucket` (see :meth:`TokenBucket.statistics`)."""

    #: Tokens available now (0 to ``burst``).
    tokens: float
    #: Waiters queued for a user request.
    waiting_user: int
    #: Waiters queued for a background poll.
    waiting_background: int
    #: Slots granted since the bucket was made.
    granted: int
    #: 429 answers reported to the bucket.
    rate_limited: int
    #: Seconds the bucket held everyone back because of 429s, in total.
    throttled_time: float
    #: Seconds added to every token interval for safety now (the margin, grown by 429s).
    margin: float
    #: Grants whose answer came back within the margin, which gave the rest of it back.
    quick_answers: int = 0


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: Seconds of a wait too short to be one (floating-point rounding of the clock's offset).
_ROUNDING = 1e-6


@final
class _Grant:
    """A slot the bucket granted (the ticket :meth:`TokenBucket.acquire` returns)."""

    __slots__ = ("at", "loop")

    def __init__(self, at: float) -> None:
        #: When, on the bucket's clock, and in which event loop.
        self.at = at
        self.loop = current_token()


class _Waiter:
    __slots__ = ("event", "loop", "priority")

    def __init__(self, priority: Priority) -> None:
        self.priority = priority
        #: The event loop the waiter waits in.
        self.loop = current_token()
        self.event = anyio.Event()

    def wake(self) -> None:
        self.event.set()


@final
class TokenBucket:
    """A token bucket: ``rate`` requests per ``per`` seconds, at most ``burst`` at once.

    The default, ``TokenBucket()``, is MusicAPI's standard plan: 1 request every 3 s.
    Share one bucket between every client that uses the same API key::

        bucket = TokenBucket(rate=1, per=3.0)
        async with MusicAPI(limiter=bucket) as a, MusicAPI(limiter=bucket) as b: ...

    Waiters are served first come, first served within a :class:`Priority`, user requests
    before background polls. A waiter cancelled while queued takes no token and delays no
    one. Arrival times jitter on a real network, so a bucket spacing requests exactly
    ``per / rate`` apart would still draw 429s from a strict server: every interval is
    lengthened by ``margin`` seconds (0.1 s by default), unless the request's answer proves
    it unneeded: the server saw a request before answering it, so when the answer comes
    back sooner than the margin (:meth:`on_answered`; ``burst=1`` only), the next token
    comes ``per / rate`` after that answer. Each 429 reported through
    :meth:`on_rate_limited` pauses the bucket for every user (for ``Retry-After``, or one
    interval, at most ``max_pause`` seconds) and widens the margin by ``margin_step``, up to
    ``max_margin``; the extra margin shrinks back after ``recover_after`` grants without a
    429. A bucket may be reused across event loops (``anyio.run`` calls, one per job, say),
    one at a time: the spacing and any pause carry over from one to the next, and a request
    left queued by a loop that was closed without cancelling it is forgotten.

    Every wait is on anyio's clock, so the bucket works on asyncio and trio and can be
    tested in virtual time. Two event loops share no clock (trio starts each run's at a
    random offset): the bucket keeps its times on a :class:`LoopClock`, which reads the
    time between them on the system's monotonic clock.
    """

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        per: float = DEFAULT_RATE_PER,
        *,
        burst: int = 1,
        margin: float = DEFAULT_RATE_MARGIN,
        margin_step: float = DEFAULT_MARGIN_STEP,
        max_margin: float = DEFAULT_MAX_MARGIN,
        recover_after: int = DEFAULT_MARGIN_RECOVERY,
        max_pause: float = DEFAULT_MAX_RETRY_AFTER,
    ) -> None:
        if not (_is_number(rate) and rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of requests, got {rate!r}")
        if not (_is_number(per) and per > 0 and math.isfinite(per)):
            raise ValueError(f"per must be a positive number of seconds, got {per!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be a whole number of at least 1, got {burst!r}")
        for name, value in (
            ("max_pause", max_pause),
            ("margin", margin),
            ("margin_step", margin_step),
            ("max_margin", max_margin),
        ):
            if not (_is_number(value) and value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a non-negative number of seconds")
        if (
            isinstance(recover_after, bool)
            or not isinstance(recover_after, int)
            or recover_after < 1
        ):
            raise ValueError("recover_after must be a whole number of at least 1")
        self.rate = float(rate)
        self.per = float(per)
        self.burst = burst
        self.margin = float(margin)
        self.margin_step = float(margin_step)
        self.max_margin = max(float(max_margin), self.margin)
        self.recover_after = recover_after
        self.max_pause = float(max_pause)
        self._extra_margin = 0.0
        self._clean_grants = 0
        self._tokens = float(burst)
        # Times on the clock, continued across event loops.
        self._clock = LoopClock()
        self._updated: float | None = None  # the time of the last refill; None: not yet
        self._paused_until = -math.inf
        self._queues: dict[Priority, deque[_Waiter]] = {p: deque() for p in Priority}
        #: The event loop that used the bucket last (see _forget_closed_loops).
        self._last_loop: EventLoopToken | None = None
        self._granted = 0
        #: The latest grant, until its answer is reported (see on_answered).
        self._last_grant: _Grant | None = None
        #: When the next token would have come but for the margin the latest answer gave
        #: back, until that token is taken (see _forget_closed_loops).
        self._full_without_answer: float | None = None
        self._quick_answers = 0
        self._rate_limited = 0
        self._throttled_time = 0.0

    def __repr__(self) -> str:
        return (
            f"TokenBucket(rate={self.rate:g}, per={self.per:g}, burst={self.burst}, "
            f"margin={self.margin:g})"
        )

    # --- the clock ---------------------------------------------------------------------------

    @property
    def interval(self) -> float:
        """Seconds between two tokens now: ``per / rate`` plus the current margin."""
        return self.per / self.rate + self.margin + self._extra_margin

    def _now(self) -> float:
        return self._clock.now()

    def _tokens_at(self, now: float) -> float:
        """The tokens at ``now``, refilled since the last refill (nothing changes)."""
        if self._updated is None or now <= self._updated:
            return self._tokens  # no time passed (the clock never goes back within a loop)
        return min(float(self.burst), self._tokens + (now - self._updated) / self.interval)

    def _refill(self, now: float) -> None:
        self._tokens = self._tokens_at(now)
        self._updated = now if self._updated is None else max(self._updated, now)

    def _wait_time(self, now: float) -> float:
        """Seconds until a token may be granted (0: now)."""
        self._refill(now)
        pause = self._paused_until - now
        missing = (1.0 - self._tokens) * self.interval if self._tokens < 1.0 - 1e-9 else 0.0
        wait = max(pause, missing, 0.0)
        # The clock is the loop's plus an offset (another loop's time): a wait of a rounding
        # error would be a deadline the loop's clock cannot tell from now, and spin for ever.
        return 0.0 if wait < _ROUNDING else wait

    def _take(self, now: float) -> _Grant:
        self._tokens -= 1.0
        self._granted += 1
        self._last_grant = grant = _Grant(now)
        self._full_without_answer = None
        self._clean_grants += 1
        if self._extra_margin and self._clean_grants >= self.recover_after:
            self._extra_margin = max(0.0, self._extra_margin - self.margin_step)
            self._clean_grants = 0
        return grant

    # --- the queue ---------------------------------------------------------------------------

    def _forget_closed_loops(self) -> None:
        """Drop the waiters of event loops that have ended, when another loop comes.

        A loop closed while a request was queued here never ran its waiter's cleanup: left
        in the queue, that waiter would hold back every later loop's requests for ever, and
        waking it would touch a closed loop. A waiter of a loop still running is kept.

        A margin an answer gave back (see on_answered) is taken back too: the time between
        two loops is read on another clock, so the answer's proof holds only within one.
        """
        loop = current_token()
        if loop == self._last_loop:
            return
        self._last_loop = loop
        for queue in self._queues.values():
            for waiter in [w for w in queue if w.loop != loop and _has_ended(w.loop)]:
                queue.remove(waiter)
        if self._full_without_answer is not None:
            now = self._now()
            self._refill(now)
            missing = (self._full_without_answer - now) / self.interval
            self._tokens = min(self._tokens, 1.0 - missing)
            self._full_without_answer = None

    def _head(self) -> _Waiter | None:
        for priority in Priority:
            queue = self._queues[priority]
            if queue:
                return queue[0]
        return None

    def _ahead_of(self, priority: Priority) -> bool:
        """Whether anyone of this priority or a more urgent one is already queued."""
        return any(self._queues[p] for p in Priority if p <= priority)

    def _wake_head(self) -> None:
        head = self._head()
        if head is not None:
            head.wake()

    async def acquire(self, priority: Priority = Priority.USER) -> object:
        """Wait until a request may be sent, and take its token.

        Cancelling the wait takes nothing from the bucket and delays no other waiter. The
        value returned is a ticket for :meth:`on_answered`.
        """
        priority = Priority(priority)
        await anyio.lowlevel.checkpoint_if_cancelled()
        try:
            grant = self.acquire_nowait(priority)
        except anyio.WouldBlock:
            pass
        else:
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return grant
        waiter = _Waiter(priority)
        self._queues[priority].append(waiter)
        try:
            while True:
                if self._head() is waiter:
                    now = self._now()
                    delay = self._wait_time(now)
                    if delay == 0.0:
                        self._queues[priority].popleft()
                        grant = self._take(now)
                        self._wake_head()
                        return grant
                    with anyio.move_on_after(delay):
                        await waiter.event.wait()
                else:
                    await waiter.event.wait()
                waiter.event = anyio.Event()
        except BaseException:
            if waiter in self._queues[priority]:
                was_head = self._head() is waiter
                self._queues[priority].remove(waiter)
                if was_head:
                    self._wake_head()
            raise

    def acquire_nowait(self, priority: Priority = Priority.USER) -> object:
        """Take a token now, or raise ``anyio.WouldBlock`` (nothing is taken then). The
        value returned is a ticket for :meth:`on_answered`."""
        priority = Priority(priority)
        self._forget_closed_loops()
        now = self._now()
        if self._ahead_of(priority) or self._wait_time(now) > 0.0:
            raise anyio.WouldBlock
        grant = self._take(now)
        # The next waiter (e.g. a background poll we overtook) must re-time its sleep.
        self._wake_head()
        return grant

    def on_answered(self, ticket: object) -> None:
        """The request sent with the slot :meth:`acquire` returned as ``ticket`` has an
        answer (the SDK calls this for every answer but a 429).

        The server saw that request before it answered it, so the margin, which is there
        for requests that reach the server later than sent, is unneeded past the answer:
        when it came within the margin, the next token comes ``per / rate`` (plus any
        margin added for 429s) after the answer. That bounds the answered request and the
        next one; a request still in flight from before is left to the margin, as ever.
        Only the latest grant counts, once, reported in the event loop it was granted in;
        during a 429 pause nothing changes. Nor with a ``burst`` above 1: tokens saved up
        are not spaced one by one, so one answer does not bound the next grant.
        """
        if self.burst != 1 or not isinstance(ticket, _Grant) or ticket is not self._last_grant:
            return
        if ticket.loop != current_token():
            return  # granted in another loop: its time there is an estimate from here
        self._last_grant = None
        now = self._now()
        unneeded = self.margin - (now - ticket.at)
        if unneeded < _ROUNDING or now < self._paused_until:
            return
        self._forget_closed_loops()  # before waking the head: it may be a dead loop's
        self._refill(now)
        self._full_without_answer = now + (1.0 - self._tokens) * self.interval
        self._tokens = min(float(self.burst), self._tokens + unneeded / self.interval)
        self._quick_answers += 1
        self._wake_head()

    def on_rate_limited(self, retry_after: float | None) -> None:
        """The server answered 429 to a request that went through this bucket.

        Every user of the bucket waits ``retry_after`` seconds (one interval if the server did
        not say; at most ``max_pause``), and the safety margin grows by ``margin_step`` until
        ``recover_after`` clean grants pass.
        """
        now = self._now()
        self._forget_closed_loops()  # before waking the head: it may be a dead loop's
        self._rate_limited += 1
        self._extra_margin = min(
            self._extra_margin + self.margin_step, self.max_margin - self.margin
        )
        self._clean_grants = 0
        wait = self.interval if retry_after is None else max(0.0, float(retry_after))
        # A server asking for an hour must not freeze every user of the bucket for an hour:
        # the call that got it raises (see RetryPolicy.max_retry_after), the others go on.
        wait = min(wait, self.max_pause)
        until = now + wait + self.margin
        if until > self._paused_until:
            start = max(now, self._paused_until)
            self._throttled_time += until - start
            self._paused_until = until
        self._refill(now)
        self._tokens = min(self._tokens, 0.0)  # the 429 proves the slot was not free
        logger.info("rate limited (429): every request on this key waits %.1f s", until - now)
        self._wake_head()

    def statistics(self) -> BucketStatistics:
        """Tokens, waiters per priority, slots granted, and time lost to 429s.

        Outside an event loop too (a health check between ``asyncio.run`` calls): the
        time is then the clock's estimate, and nothing changes.
        """
        try:
            now = self._now()
        except RuntimeError:  # no event loop ("NoEventLoopError" in recent anyio)
            now = self._clock.estimate()
        tokens = self._tokens_at(now)
        return BucketStatistics(
            tokens=0.0 if now < self._paused_until else max(0.0, tokens),
            waiting_user=len(self._queues[Priority.USER]),
            waiting_background=len(self._queues[Priority.BACKGROUND]),
            granted=self._granted,
            rate_limited=self._rate_limited,
            throttled_time=self._throttled_time,
            margin=self.margin + self._extra_margin,
            quick_answers=self._quick_answers,
        )


def _has_ended(loop: EventLoopToken) -> bool:
    """Whether an event loop has ended: an asyncio loop closed, a trio run finished."""
    native = loop.native_token
    is_closed = getattr(native, "is_closed", None)
    if callable(is_closed):
        return bool(is_closed())
    run_sync_soon = getattr(native, "run_sync_soon", None)
    if callable(run_sync_soon):
        try:
            run_sync_soon(lambda: None)  # thread-safe; raises once the run has finished
        except Exception:
            return True
    return False
