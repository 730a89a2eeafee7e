"""A virtual-time asyncio event loop: the twin of trio's ``MockClock(autojump_threshold=0)``.

When no callback is ready to run, the loop jumps its clock straight to the next timer instead
of sleeping, so ``anyio.sleep(3)`` takes no real time and ``anyio.current_time()`` moves exactly.
Only for tests that do no real I/O (the in-process fake): a loop waiting on a socket would jump
past its timeouts.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from typing import Any


class VirtualTimeEventLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self._virtual_now = 0.0

    def time(self) -> float:
        return self._virtual_now

    def _run_once(self) -> None:
        ready: Any = self._ready  # type: ignore[attr-defined]
        scheduled: Any = self._scheduled  # type: ignore[attr-defined]
        if not ready:
            while scheduled and scheduled[0]._cancelled:
                scheduled[0]._scheduled = False
                heapq.heappop(scheduled)
            # Never to an infinite time (a timer for a deadline of inf): the clock would be
            # inf and every later timeout NaN. Then nothing is due, and the loop waits for a
            # worker thread's result as a real one does.
            if scheduled and math.isfinite(scheduled[0]._when):
                self._virtual_now = max(self._virtual_now, scheduled[0]._when)
        super()._run_once()  # type: ignore[misc]

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        # Python 3.12+ bounds the join of the executor's threads (asyncio.run passes 300 s)
        # on the loop's clock, which here jumps while a thread works (Django's
        # sync_to_async): wait for them without a bound, as 3.10 and 3.11 do.
        await super().shutdown_default_executor()
