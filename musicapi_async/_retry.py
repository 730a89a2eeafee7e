"""When to retry a failed attempt, and how long to wait first.

The rules (CONTRACT §15) depend on whether a repeat could spend credits twice:

* a *safe* call (GET: polls, credits) is retried on connection errors, timeouts, 429 and 5xx;
* a *paid* call (every POST) is retried only when the server certainly did not act on it:
  the connection failed before the request was sent, or the server answered 429.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import final

import httpx
from attrs import field, frozen, validators

from ._constants import (
    DEFAULT_INITIAL_BACKOFF,
    DEFAULT_JITTER,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
)
from ._exceptions import MusicAPIError

__all__ = ["RetryEvent", "RetryPolicy"]

#: httpx errors raised before any byte of the request left: repeating cannot double anything.
NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)

_non_negative_int = validators.ge(0)
_non_negative = validators.ge(0.0)


@final
@frozen
class RetryPolicy:
    """How a client retries. Pass one to ``MusicAPI(retry=...)`` or ``with_options(retry=...)``.

    The wait before retry ``n`` (0-based) is ``min(initial_backoff * 2**n, max_backoff)``,
    shortened at random by up to ``jitter`` of itself so that clients spread out; a server's
    ``Retry-After`` replaces it when longer. A ``Retry-After`` over ``max_retry_after`` is
    not waited for: the :class:`RateLimitError` is raised at once with its ``retry_after``.

    >>> RetryPolicy(max_retries=5, max_backoff=30.0).max_retries
    5
    """

    #: Retries after the first attempt; 0 disables retrying.
    max_retries: int = field(default=DEFAULT_MAX_RETRIES, validator=_non_negative_int)
    #: Seconds before the first retry.
    initial_backoff: float = field(default=DEFAULT_INITIAL_BACKOFF, validator=_non_negative)
    #: Upper bound of the exponential backoff, seconds.
    max_backoff: float = field(default=DEFAULT_MAX_BACKOFF, validator=_non_negative)
    #: Fraction (0-1) of the backoff removed at random.
    jitter: float = field(
        default=DEFAULT_JITTER, validator=[validators.ge(0.0), validators.le(1.0)]
    )
    #: Longest Retry-After (seconds) the client will sleep through by itself.
    max_retry_after: float = field(default=DEFAULT_MAX_RETRY_AFTER, validator=_non_negative)

    def backoff(self, retry_index: int, *, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry ``retry_index`` (0-based), jitter applied."""
        try:
            doubled = self.initial_backoff * 2.0**retry_index
        except OverflowError:  # retry 1024 and later: long past any cap
            doubled = math.inf
        base = min(doubled, self.max_backoff)
        return base * (1.0 - self.jitter * rng())

    def delay(self, retry_index: int, retry_after: float | None) -> float:
        """The wait before a retry: the backoff, or the server's Retry-After if longer."""
        backoff = self.backoff(retry_index)
        return backoff if retry_after is None else max(backoff, retry_after)


@final
@frozen
class RetryEvent:
    """What ``on_retry`` hooks receive before the client sleeps and tries again."""

    method: str
    #: Path relative to the base URL, e.g. ``/sonic/task/123``.
    path: str
    #: 1 for the first retry.
    attempt: int
    #: Seconds the client will sleep before the retry.
    delay: float
    #: The error that caused the retry.
    error: MusicAPIError


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from ``Retry-After`` (seconds or HTTP date) or ``retry-after-ms``, if present."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0 and value == value and value != float("inf"):
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        if seconds == float("inf") and raw.isdigit():
            # Delay-seconds (digits) too large for a float: a wait longer than any
            # max_retry_after, not a missing header (retried at the usual pace).
            return seconds
        return seconds if 0 <= seconds < float("inf") else None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    # An HTTP date can only be compared with the wall clock; this reads it, it never waits on it.
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
