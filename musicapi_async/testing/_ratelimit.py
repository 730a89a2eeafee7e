"""The fake server's per-key rate limits, exact in virtual time.

Two rules: :class:`KeyRateLimiter`, a token bucket written as GCRA that counts only accepted
requests (the default), and :class:`StrictKeyRateLimiter`, which refuses any request arriving
less than one interval after the previous request of its key, refused ones included.
"""

from __future__ import annotations

from typing import Protocol, final

#: Slack for float error in virtual time (a sleep of 3 s may land 1e-15 s early).
EPS = 1e-6


class RateLimiter(Protocol):
    """What the fake needs from a rate-limit rule."""

    def acquire(self, key: str, now: float) -> float:
        """Count one request of ``key`` arriving at ``now``; 0.0 if accepted, else seconds to
        wait (the ``Retry-After``, before rounding up)."""
        ...


@final
class KeyRateLimiter:
    """At most ``rate`` requests per ``per`` seconds per key, with a burst of ``rate``.

    Only accepted requests spend budget; a refused one changes nothing.
    """

    def __init__(self, rate: int, per: float) -> None:
        if rate < 1 or per <= 0:
            raise ValueError("rate_limit must be (rate >= 1, per > 0 seconds), or None")
        self.rate = rate
        self.per = per
        self._interval = per / rate
        self._tolerance = self._interval * (rate - 1)
        #: Theoretical arrival time per key: when the bucket would be full again.
        self._tat: dict[str, float] = {}

    def acquire(self, key: str, now: float) -> float:
        """Spend one request of ``key`` at ``now``; 0.0 if accepted, else seconds to wait."""
        tat = self._tat.get(key, now)
        allowed_at = tat - self._tolerance
        if now + EPS < allowed_at:
            return allowed_at - now
        self._tat[key] = max(tat, now) + self._interval
        return 0.0


@final
class StrictKeyRateLimiter:
    """Any two requests of one key less than ``per / rate`` seconds apart: the later gets 429.

    Measured on arrival, and every request counts, refused ones included: a client that
    retries too early pushes its next chance a full interval further. This is the strictest
    reading of "1 request per 3 s", the one a client-side limiter must survive on a real
    network where arrival times jitter.
    """

    def __init__(self, rate: int, per: float) -> None:
        if rate < 1 or per <= 0:
            raise ValueError("rate_limit must be (rate >= 1, per > 0 seconds), or None")
        self.rate = rate
        self.per = per
        self._interval = per / rate
        #: The arrival time of each key's latest request, accepted or not.
        self._last: dict[str, float] = {}

    def acquire(self, key: str, now: float) -> float:
        """Record a request of ``key`` at ``now``; 0.0 if accepted, else seconds to wait."""
        last = self._last.get(key)
        self._last[key] = now
        if last is not None and now - last + EPS < self._interval:
            # This very request restarts the clock: the next one must wait a whole interval.
            return self._interval
        return 0.0
