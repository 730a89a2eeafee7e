"""PaidCall: a paid create under cancellation is dropped while unsent, let finish once sent.

On asyncio and trio, in virtual time, against the in-process fake: what the server created
(and charged) is compared with what ``record`` was told.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from musicapi_async import MusicAPI, TaskRef
from musicapi_async._http import PaidCall
from musicapi_async.testing import FakeMusicAPI

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


async def test_a_call_cancelled_while_it_waits_for_its_slot_is_dropped_unsent() -> None:
    """The cancellation lands while the call is parked at the rate limiter's checkpoint (it
    got its token at once): the request must not leave after it."""
    fake = FakeMusicAPI(rate_limit=None)
    recorded: list[TaskRef | None] = []
    async with fake.client() as client:
        with anyio.CancelScope() as scope:

            async def cancel() -> None:  # runs at the call's first yield
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel)
                await PaidCall().run(create(client), recorded.append)
    assert scope.cancelled_caught
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
