"""anyio's clock, continued from one event loop to the next.

Two event loops share no clock: trio starts each run's at a random offset, and a virtual
clock (trio's ``MockClock``) runs at its own pace. State kept in seconds of one loop's clock
(a rate limiter's spacing, a fake server's task times) would read a jump between two
``anyio.run`` calls as time passed or time going back. A :class:`LoopClock` reads
``anyio.current_time()`` plus a constant of the running loop, so virtual time drives it as
it drives anyio, and starts each new loop where the last reading left off plus the real
time between the two, read on ``time.monotonic()``: the one clock two loops share, read and
never waited on.
"""

from __future__ import annotations

import time
from typing import final

import anyio

from ._loops import LoopLocal

__all__ = ["LoopClock"]


@final
class LoopClock:
    """Seconds on anyio's clock, continued across event loops (see the module docstring).

    In the first loop that reads it, it is ``anyio.current_time()`` exactly.

    Args:
        forward: Trust a new loop's clock when it is ahead of this one, and only mend one
            that went back. Right for a fake server, whose tasks must follow a virtual clock
            shared by several runs; wrong for a rate limiter, which must not read trio's
            random start of a run as time passed (the default: every new loop goes on by
            the real time between the two).
    """

    __slots__ = ("__weakref__", "_forward", "_last", "_last_system")

    def __init__(self, *, forward: bool = False) -> None:
        self._forward = forward
        self._last: float | None = None
        self._last_system = 0.0

    def now(self) -> float:
        """The time now; raises anyio's "no event loop" RuntimeError outside one."""
        loop_time = anyio.current_time()
        offset = _OFFSETS.get(self)
        if offset is None:
            offset = 0.0 if self._last is None else self.estimate() - loop_time
            if self._forward:
                offset = max(0.0, offset)
            _OFFSETS.set(self, offset)
        now = loop_time + offset
        self._last, self._last_system = now, time.monotonic()
        return now

    def estimate(self) -> float:
        """The time now as the next event loop will start it (outside a loop, say): the last
        reading plus the real time since. Reads nothing of any loop; 0.0 if never read."""
        if self._last is None:
            return 0.0
        return self._last + max(0.0, time.monotonic() - self._last_system)


#: Each clock's offset in each event loop it was read in.
_OFFSETS: LoopLocal[LoopClock, float] = LoopLocal("musicapi_async loop clock offsets")
