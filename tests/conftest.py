from __future__ import annotations

from typing import Any

import pytest
from trio.testing import MockClock

from tests._virtual_time import VirtualTimeEventLoop


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Every async test runs on asyncio and on trio, both in virtual time."""
    if request.param == "asyncio":
        return ("asyncio", {"loop_factory": VirtualTimeEventLoop})
    return ("trio", {"clock": MockClock(autojump_threshold=0)})
