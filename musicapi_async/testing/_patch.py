"""``use_fake``: every ``MusicAPI`` built inside a ``with`` block talks to a FakeMusicAPI."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx

from ._server import FakeMusicAPI

if TYPE_CHECKING:
    from musicapi_async import MusicAPI


@contextmanager
def use_fake(fake: FakeMusicAPI | None = None) -> Iterator[FakeMusicAPI]:
    """Wire every ``MusicAPI(...)`` constructed inside the block to ``fake`` (or a new fake).

    For code that builds its own client where a test cannot pass one in: an app's startup,
    a script, a Celery task, a README example. Inside the block, a client constructed
    without ``http_client`` sends through ``fake.transport()`` to ``fake.base_url``, and
    one constructed without ``api_key`` uses the fake's default key (a real
    ``MUSICAPI_KEY`` in the environment is then ignored, so it never reaches the fake), and
    one without ``expected_durations`` expects the fake's fixed durations, as
    ``fake.client()`` does. Every other argument (``limiter``, ``retry``, ...) is kept. A
    client given an ``http_client`` is left alone: ``fake.client()`` and hand-wired clients
    work as usual.

    It replaces ``MusicAPI.__init__`` for the duration of the block, so it reaches clients
    built through a name imported before the block (``from musicapi_async import
    MusicAPI`` at the top of your app) and in other threads. Like any patch, it is
    process-wide: do not run unrelated tests in parallel threads meanwhile. Blocks nest;
    the innermost fake wins.

    >>> with use_fake(FakeMusicAPI(sonic_duration=5.0)) as fake:
    ...     anyio.run(my_app.main)  # every MusicAPI() in it talks to fake
    >>> fake.requests[0].path
    '/sonic/create'
    """
    from musicapi_async import MusicAPI  # lazy: the fake must not need the SDK

    if fake is None:
        fake = FakeMusicAPI()
    original = MusicAPI.__init__
    wired_to = fake

    @functools.wraps(original)
    def wired(self: MusicAPI, api_key: str | None = None, **kwargs: Any) -> None:
        if kwargs.get("http_client") is None:
            kwargs["http_client"] = httpx.AsyncClient(transport=wired_to.transport())
            kwargs["base_url"] = wired_to.base_url
            # As fake.client() does: the first poll comes when the fake's task ends, not
            # when a real one would (minutes later, in real time).
            kwargs.setdefault("expected_durations", wired_to._fixed_durations())
            if api_key is None:
                api_key = wired_to.default_key
        original(self, api_key, **kwargs)

    MusicAPI.__init__ = wired  # type: ignore[method-assign]
    try:
        yield fake
    finally:
        MusicAPI.__init__ = original  # type: ignore[method-assign]
