"""The fake server's per-key rate limit: a token bucket written as GCRA, exact in virtual time."""

from __future__ import annotations

from typing import final

#: Slack for float error in virtual time (a sleep of 3 s may land 1e-15 s early).
EPS = 1e-6


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
