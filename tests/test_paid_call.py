"""PaidCall: a paid create under cancellation is dropped while unsent, let finish once sent.

On asyncio and trio, in virtual time, against the in-process fake: what the server created
(and charged) is compared with what ``record`` was told.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from musicapi_async import MusicAPI, Priority, TaskRef, TokenBucket
from musicapi_async._http import PaidCall
from musicapi_async.testing import FakeMusicAPI
from tests._limiters import DelegatingLimiter

pytestmark = pytest.mark.anyio


def creates(fake: FakeMusicAPI) -> int:
    """Tasks the server created (and charged for)."""
    return sum(1 for r in fake.requests_to("/sonic/create", method="POST") if r.task_ids)


def create(client: MusicAPI) -> Any:
    return lambda: client.sonic.create(mv="sonic-v5", gpt_description_prompt="lofi")


async def test_a_call_cancelled_before_it_starts_is_dropped_unsent() -> None:
    """A deadline that passed during synchronous work just before the call: nothing leaves."""
    fake = FakeMusicAPI(rate_limit=None)
    recorded: list[TaskRef | None] = []
    async with fake.client() as client:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await PaidCall().run(create(client), recorded.append)
    assert scope.cancelled_caught
    assert recorded == [None]
    assert creates(fake) == 0


class CancelsAtTheGrant(DelegatingLimiter):
    """A limiter whose grant is where the caller's cancellation lands: at the yield of a
    slot granted at once (the moment a shielded call could miss it)."""

    def __init__(self) -> None:
        super().__init__(TokenBucket(rate=100, per=1.0))
        self.scope = anyio.CancelScope()

    async def acquire(self, priority: Priority = Priority.USER) -> None:
        self.scope.cancel()
        await anyio.lowlevel.cancel_shielded_checkpoint()
        self.inner.acquire_nowait(priority)


async def test_a_call_cancelled_while_it_gets_its_slot_is_dropped_unsent() -> None:
    fake = FakeMusicAPI(rate_limit=None)
    limiter = CancelsAtTheGrant()
    recorded: list[TaskRef | None] = []
    async with fake.client(limiter=limiter) as client:
        with limiter.scope:
            await PaidCall().run(create(client), recorded.append)
    assert limiter.scope.cancelled_caught
    assert recorded == [None]
    assert creates(fake) == 0


async def test_a_call_cancelled_once_sent_is_let_finish_and_recorded() -> None:
    fake = FakeMusicAPI(rate_limit=None, latency={"/sonic/create": 2.0})
    recorded: list[TaskRef | None] = []
    call = PaidCall()
    async with fake.client() as client:
        with anyio.move_on_after(1.0):  # the request is on the wire by then
            await call.run(create(client), recorded.append)
    assert call.cancelled
    assert creates(fake) == 1
    (ref,) = recorded
    assert ref is not None
    assert ref.task_id == fake.last_task.task_id


async def test_a_failed_record_of_a_dropped_call_is_raised_as_it_is() -> None:
    """Dropped unsent, its record(None) fails (a full disk): that error, not a group."""

    class DiskFull(Exception):
        pass

    def record(ref: TaskRef | None) -> None:
        raise DiskFull(repr(ref))

    async def dropped(client: MusicAPI) -> None:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await PaidCall().run(create(client), record)

    fake = FakeMusicAPI(rate_limit=None)
    async with fake.client() as client:
        with pytest.raises(DiskFull, match="None"):
            await dropped(client)
    assert creates(fake) == 0
