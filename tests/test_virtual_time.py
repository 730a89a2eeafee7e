from __future__ import annotations

import anyio
import pytest

pytestmark = pytest.mark.anyio


async def test_sleep_advances_virtual_time_exactly() -> None:
    start = anyio.current_time()
    await anyio.sleep(3600)
    assert anyio.current_time() - start == pytest.approx(3600)


async def test_fail_after_fires_in_virtual_time() -> None:
    start = anyio.current_time()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(10):
            await anyio.sleep(100)
    assert anyio.current_time() - start == pytest.approx(10)


async def test_concurrent_sleepers_wake_in_order() -> None:
    woke: list[int] = []

    async def sleeper(n: int) -> None:
        await anyio.sleep(n)
        woke.append(n)

    async with anyio.create_task_group() as tg:
        for n in (3, 1, 2):
            tg.start_soon(sleeper, n)
    assert woke == [1, 2, 3]
