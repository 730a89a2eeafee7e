"""Limiter backends for tests: a TokenBucket behind the ``Limiter`` protocol, whose
``acquire`` a test overrides to inject a fault at the moment it studies."""

from __future__ import annotations

from musicapi_async import BucketStatistics, Priority, TokenBucket


class DelegatingLimiter:
    """Hands every call to ``inner`` (a TokenBucket); subclasses change ``acquire``."""

    def __init__(self, inner: TokenBucket | None = None) -> None:
        self.inner = inner if inner is not None else TokenBucket()

    async def acquire(self, priority: Priority = Priority.USER) -> None:
        await self.inner.acquire(priority)

    def acquire_nowait(self, priority: Priority = Priority.USER) -> None:
        self.inner.acquire_nowait(priority)

    def on_rate_limited(self, retry_after: float | None) -> None:
        self.inner.on_rate_limited(retry_after)

    def statistics(self) -> BucketStatistics:
        return self.inner.statistics()
